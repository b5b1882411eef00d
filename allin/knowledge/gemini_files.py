"""Gemini Files API copies of knowledge documents (retrieval_mode=files, keyed only).

Each document is uploaded once (resumable upload, through the google-genai SDK)
and its remote name, uri, mime, sha256 and expiry are recorded on its row. A
turn reuses the recorded file while the document's content is unchanged and
the file lives more than `REUSE_MARGIN` longer; otherwise it uploads again and
deletes the superseded copy. Gemini drops files after 48 h, and a file can
also disappear remotely before its recorded expiry, so a reused file is
checked with one `files.get` first.

Two turns (on any replica) asking for the same document upload it once: the
check-and-upload runs under a per-document transaction-level advisory lock.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
from loguru import logger

from allin.knowledge.pipeline import sha256_file
from allin.knowledge.sync import key_to_path
from allin.models.gemini_client import UsesGenaiClient, api_status
from allin.models.retry import model_retrying

# A file expiring sooner than this is replaced rather than referenced: a turn (and the model
# reading the file) must finish before the copy goes away.
REUSE_MARGIN = timedelta(hours=1)
# Types Gemini reads as documents; text-like sources (Markdown, HTML, code) go up as plain text.
_NATIVE_MIMES = {"application/pdf", "image/png", "image/jpeg", "image/webp"}
_GONE_STATUS = {403, 404}  # the Files API answers 403 for a missing or expired file

_SELECT = (
    "SELECT id, path, title, sha256, mime, gemini_file_name, gemini_file_uri, gemini_file_mime,"
    " gemini_file_sha256, gemini_expires_at FROM documents WHERE id = %s"
)


class FileUnsupported(ValueError):
    """The document cannot be given to Gemini as a file (its type, or its source file is gone)."""


@dataclass(frozen=True)
class FileRef:
    """A document's live Gemini file: what a generate request references."""

    document_id: str
    name: str
    uri: str
    mime: str

    def to_dict(self) -> dict:
        return asdict(self)


def upload_mime(mime: str | None) -> str:
    """The mime type to upload a document as, or FileUnsupported (DOCX and other binaries)."""
    if mime in _NATIVE_MIMES:
        return mime
    if mime and mime.startswith("text/"):
        return "text/plain"
    raise FileUnsupported(f"no Gemini file type for {mime or 'an unknown type'}")


def _lock_key(document_id: Any) -> str:
    return f"allin-gemini-file:{document_id}"


class GeminiFiles(UsesGenaiClient):
    """Uploads and tracks documents' Gemini files; built once per process, client made on first use."""

    async def ensure_uploaded(self, conn: psycopg.AsyncConnection, document_id: Any) -> FileRef:
        """The document's live file, uploading it first when needed (at most once at a time per document).

        Holds `conn` in a transaction for the duration of an upload: the lock must cover it.
        """
        superseded: str | None = None
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_lock_key(document_id),))
            row = await (await conn.execute(_SELECT, (document_id,))).fetchone()
            if row is None:
                raise LookupError(f"document {document_id} not found")
            if self._recorded_is_current(row) and await self._still_there(row["gemini_file_name"]):
                return FileRef(str(row["id"]), row["gemini_file_name"], row["gemini_file_uri"], row["gemini_file_mime"])
            mime = upload_mime(row["mime"])
            path = key_to_path(row["path"], self._settings.knowledge_path)
            if not await asyncio.to_thread(path.is_file):
                raise FileUnsupported(f"source file {row['path']} is missing")
            digest = await asyncio.to_thread(sha256_file, path)
            file = await self._upload(path, mime, display_name=Path(row["path"]).name)
            expires = file.expiration_time or datetime.now(timezone.utc) + timedelta(hours=48)
            await conn.execute(
                "UPDATE documents SET gemini_file_name = %s, gemini_file_uri = %s, gemini_file_mime = %s,"
                " gemini_file_sha256 = %s, gemini_expires_at = %s WHERE id = %s",
                (file.name, file.uri, mime, digest, expires, row["id"]),
            )
            logger.info("uploaded {} to Gemini as {} (expires {})", row["path"], file.name, expires.isoformat())
            if row["gemini_file_name"] and row["gemini_file_name"] != file.name:
                superseded = row["gemini_file_name"]
        if superseded:
            await self.delete_remote(superseded)  # outside the lock: others need not wait for it
        return FileRef(str(row["id"]), file.name, file.uri, mime)

    async def delete_remote(self, name: str) -> bool:
        """Delete a remote file; False when it was already gone (404/403). Other errors raise."""
        try:
            async for attempt in model_retrying(self._settings.model_max_retries):
                with attempt:
                    await self.client.aio.files.delete(name=name)
        except Exception as exc:
            if api_status(exc) in _GONE_STATUS:
                return False
            raise
        logger.info("deleted Gemini file {}", name)
        return True

    async def delete_remote_quietly(self, name: str | None) -> None:
        """Best effort, for removals: a failure is logged, never raised (the local delete is done)."""
        if not name:
            return
        try:
            await self.delete_remote(name)
        except Exception as exc:  # noqa: BLE001 - the file expires on its own within 48 h anyway
            logger.warning("could not delete Gemini file {}: {}", name, exc)

    async def on_document_removed(self, row: dict) -> None:
        """Sync's `after_remove`: the removed document's remote copy goes too (best effort)."""
        await self.delete_remote_quietly(row.get("gemini_file_name"))

    # -- internals -----------------------------------------------------------------------

    @staticmethod
    def _recorded_is_current(row: dict) -> bool:
        expires = row["gemini_expires_at"]
        return bool(
            row["gemini_file_name"] and row["gemini_file_uri"] and row["gemini_file_mime"]
            and row["sha256"] and row["gemini_file_sha256"] == row["sha256"]
            and expires is not None and expires > datetime.now(timezone.utc) + REUSE_MARGIN
        )

    async def _still_there(self, name: str) -> bool:
        """Whether the service still holds the file (it may have been deleted or expired early)."""
        try:
            async for attempt in model_retrying(self._settings.model_max_retries):
                with attempt:
                    file = await self.client.aio.files.get(name=name)
        except Exception as exc:
            if api_status(exc) in _GONE_STATUS:
                logger.info("Gemini file {} is gone; uploading again", name)
                return False
            raise
        state = getattr(file.state, "value", file.state)
        expires = file.expiration_time
        return state in (None, "ACTIVE") and (expires is None or expires > datetime.now(timezone.utc) + REUSE_MARGIN)

    async def _upload(self, path: Path, mime: str, *, display_name: str) -> Any:
        from google.genai import types

        config = types.UploadFileConfig(mime_type=mime, display_name=display_name[:512])
        async for attempt in model_retrying(self._settings.model_max_retries):
            with attempt:
                return await self.client.aio.files.upload(file=path, config=config)
        raise AssertionError("unreachable")
