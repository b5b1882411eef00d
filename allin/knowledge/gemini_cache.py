"""Gemini context caches for files mode: the system prompt and the attached documents, cached once.

When the same documents are attached turn after turn (a conversation about
one handbook), sending them again costs their full input tokens each time; a
cache (`client.caches`) holds them and the generate request only names it.
Worth it only above Gemini's minimum cacheable size, so smaller sets are sent
as they are. One cache per (model, system prompt, attached files in order),
recorded in `gemini_caches` so every replica reuses it; created under an
advisory lock (one creation for concurrent turns), its lifetime renewed while
it is in use and replaced once it has expired or vanished remotely.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
import psycopg
from loguru import logger

from allin.models.gemini_client import UsesGenaiClient, api_status
from allin.models.retry import model_retrying

# Gemini refuses explicit caches under a model-dependent floor (1,024-4,096 tokens); the
# highest one keeps every model safe, and below it the saving is small anyway.
MIN_CACHE_TOKENS = 4096
CACHE_TTL = timedelta(hours=1)
RENEW_WHEN_LEFT = timedelta(minutes=15)  # extend a cache in use before it lapses
SAFETY = timedelta(minutes=1)  # a cache this close to expiry is not handed to a request
_GONE_STATUS = {403, 404}


def cache_key(model: str, system_text: str, files: list[tuple[str, str]]) -> str:
    """`files`: (label, uri) pairs in the order the model sees them."""
    digest = hashlib.sha256(model.encode())
    digest.update(b"\0" + system_text.encode())
    for label, uri in files:
        digest.update(b"\0" + label.encode() + b"\0" + uri.encode())
    return digest.hexdigest()


async def estimate_tokens(conn: psycopg.AsyncConnection, document_ids: list[str]) -> int:
    """About four characters a token over the documents' extracted text: enough to compare with a floor."""
    cur = await conn.execute(
        "SELECT coalesce(sum(length(content)), 0) / 4 AS tokens FROM chunks WHERE document_id = ANY(%s::uuid[])",
        (document_ids,))
    return int((await cur.fetchone())["tokens"])


class GeminiContextCache(UsesGenaiClient):
    async def for_files(self, conn: psycopg.AsyncConnection, *, model: str, system_text: str,
                        blocks: list[dict], document_ids: list[str]) -> str | None:
        """The cache name to answer with, or None (too small, or caching failed: send everything).

        `blocks`: the LangChain content blocks of the attached files (labels and file parts), which
        the cache holds in place of the request."""
        files = [(b.get("text", ""), b.get("file_uri", "")) for b in blocks]
        tokens = await estimate_tokens(conn, document_ids)
        if tokens < MIN_CACHE_TOKENS:
            return None
        key = cache_key(model, system_text, files)
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (key,))
                row = await (await conn.execute(
                    "SELECT name, expires_at FROM gemini_caches WHERE key = %s", (key,))).fetchone()
                now = datetime.now(timezone.utc)
                if row and row["expires_at"] - now > SAFETY:
                    if row["expires_at"] - now > RENEW_WHEN_LEFT:
                        return row["name"]
                    expires = await self._renew(row["name"])
                    if expires is not None:
                        await conn.execute("UPDATE gemini_caches SET expires_at = %s WHERE key = %s",
                                           (expires, key))
                        return row["name"]
                name, expires = await self._create(model, system_text, blocks)
                await conn.execute(
                    "INSERT INTO gemini_caches (key, name, model, tokens, expires_at) VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, expires_at = EXCLUDED.expires_at,"
                    " created_at = now()", (key, name, model, tokens, expires))
            if row:
                await self.delete_quietly(row["name"])
            return name
        except Exception as exc:  # noqa: BLE001 - caching is an optimisation: the turn goes on without it
            logger.warning("Gemini context cache not used: {}", exc)
            return None

    async def _create(self, model: str, system_text: str, blocks: list[dict]) -> tuple[str, datetime]:
        from google.genai import types

        parts = [types.Part.from_uri(file_uri=b["file_uri"], mime_type=b["mime_type"]) if b.get("file_uri")
                 else types.Part.from_text(text=b.get("text", "")) for b in blocks]
        config = types.CreateCachedContentConfig(
            contents=[types.Content(role="user", parts=parts)], system_instruction=system_text,
            ttl=f"{int(CACHE_TTL.total_seconds())}s", display_name="allin files")
        async for attempt in model_retrying(self._settings.model_max_retries):
            with attempt:
                cache = await self.client.aio.caches.create(model=model, config=config)
        logger.info("created Gemini context cache {} ({} parts)", cache.name, len(parts))
        return cache.name, cache.expire_time or datetime.now(timezone.utc) + CACHE_TTL

    async def _renew(self, name: str) -> datetime | None:
        """Extend a cache's lifetime; None when it is gone (then a new one is made)."""
        from google.genai import types

        try:
            cache = await self.client.aio.caches.update(
                name=name, config=types.UpdateCachedContentConfig(ttl=f"{int(CACHE_TTL.total_seconds())}s"))
        except Exception as exc:  # noqa: BLE001
            if api_status(exc) in _GONE_STATUS:
                return None
            raise
        return cache.expire_time or datetime.now(timezone.utc) + CACHE_TTL

    async def delete_quietly(self, name: str) -> None:
        try:
            await self.client.aio.caches.delete(name=name)
        except Exception as exc:  # noqa: BLE001 - it expires on its own
            if api_status(exc) not in _GONE_STATUS:
                logger.warning("could not delete Gemini context cache {}: {}", name, exc)
