"""Knowledge: documents people may see and their source files; upload, remove, sync and access for admins."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request, UploadFile, status
from fastapi.responses import FileResponse
from loguru import logger
from pydantic import BaseModel, Field

from allin.knowledge import store
from allin.knowledge.filetypes import detect
from allin.knowledge.sync import get_job, key_to_path, sync_paths
from allin.knowledge.types import IngestError
from api import knowledge_jobs
from api.deps import AdminUser, ConnDep, CurrentUser, ResourcesDep, reject_repeated_fields
from api.errors import AppError, error_responses, not_found
from api.state import Resources

router = APIRouter(tags=["knowledge"], responses=error_responses(400, 401, 422, 503))
UPLOAD_DIR = "uploads"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


class DocumentPublic(BaseModel):
    id: UUID
    title: str
    path: str
    mime: str | None
    pages: int | None
    status: str
    error: str | None
    chunk_count: int
    restricted: bool
    updated_at: datetime
    ingested_at: datetime | None


class DocumentList(BaseModel):
    items: list[DocumentPublic]


class JobAccepted(BaseModel):
    job_id: UUID
    already_running: bool = False


class JobPublic(BaseModel):
    id: UUID
    kind: str
    status: str
    progress: dict[str, Any]
    results: list[dict[str, Any]]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class AccessUpdate(BaseModel):
    users: Annotated[list[Annotated[str, Field(max_length=64)]] | None, Field(max_length=500)] = Field(
        default=None, description="User names who may see the document; null = the whole team.")


def _visible_sql(admin: bool) -> str:
    return "TRUE" if admin else "(status = 'ready' AND (allowed_users IS NULL OR %(uid)s = ANY(allowed_users)))"


def _public(row: dict) -> DocumentPublic:
    return DocumentPublic(**{k: row[k] for k in DocumentPublic.model_fields if k != "restricted"},
                          restricted=row["allowed_users"] is not None)


@router.get("/knowledge/documents", response_model=DocumentList)
async def list_documents(user: CurrentUser, conn: ConnDep) -> DocumentList:
    cur = await conn.execute(
        "SELECT id, title, path, mime, pages, status, error, chunk_count, allowed_users, updated_at, ingested_at"
        f" FROM documents WHERE {_visible_sql(user.is_admin)} ORDER BY path", {"uid": user.id})
    return DocumentList(items=[_public(r) for r in await cur.fetchall()])


@router.get("/knowledge/documents/{document_id}/file", response_class=FileResponse, responses=error_responses(404))
async def document_file(document_id: UUID, user: CurrentUser, conn: ConnDep, res: ResourcesDep) -> FileResponse:
    """The source file; PDFs open at a page with `#page=N`."""
    cur = await conn.execute(
        f"SELECT path, title, mime FROM documents WHERE id = %(id)s AND {_visible_sql(user.is_admin)}",
        {"id": document_id, "uid": user.id})
    row = await cur.fetchone()
    if row is None:
        raise not_found("document")
    path = key_to_path(row["path"], res.settings.knowledge_path)
    if not path.is_file():
        raise AppError(404, "file_missing", "the document's source file is no longer on disk")
    return FileResponse(path, media_type=row["mime"] or "application/octet-stream", filename=path.name,
                        content_disposition_type="inline")


def _safe_upload_name(name: str | None) -> str:
    raw = (name or "").replace("\\", "/").split("/")[-1]
    if not raw or raw in (".", "..") or "\x00" in (name or ""):
        raise AppError(422, "bad_filename", "the file needs a plain name")
    if (name or "").replace("\\", "/") != raw:
        raise AppError(422, "bad_filename", "file names may not contain folders or '..'")
    cleaned = _SAFE_NAME.sub("_", raw).strip(" .")[:150]
    if not cleaned:
        raise AppError(422, "bad_filename", "the file needs a plain name")
    return cleaned


async def save_upload(file: UploadFile, dest_dir: Path, max_bytes: int) -> Path:
    """Stream to a temp file beside the target with a size cap (413), check the real type (415), move in place."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    name = _safe_upload_name(file.filename)
    # The temp name keeps the extension: type detection reads the bytes, and the name for text types.
    tmp_path = dest_dir / f".upload-{uuid4().hex}-{name}"
    size = 0
    try:
        with tmp_path.open("wb") as tmp:
            while chunk := await file.read(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise AppError(413, "payload_too_large", f"files are limited to {max_bytes >> 20} MB")
                tmp.write(chunk)
        if size == 0:
            raise AppError(422, "empty_file", "the file is empty")
        try:
            await asyncio.to_thread(detect, tmp_path, max_bytes=max_bytes)
        except IngestError as exc:
            raise AppError(415, exc.code, exc.message) from None
        final = dest_dir / name
        tmp_path.replace(final)
        return final
    finally:
        tmp_path.unlink(missing_ok=True)


@router.post("/admin/knowledge/files", response_model=DocumentPublic, status_code=status.HTTP_201_CREATED,
             tags=["admin"], responses=error_responses(403, 413, 415))
async def upload_file(file: UploadFile, _: AdminUser, res: ResourcesDep, request: Request) -> DocumentPublic:
    """Add a file to the knowledge folder (uploads/) and ingest it now; one bad file gets a clear error row."""
    await reject_repeated_fields(request)
    knowledge = res.settings.knowledge_path
    path = await save_upload(file, knowledge / UPLOAD_DIR, res.settings.max_upload_mb << 20)
    report = await sync_paths(res.pool, **knowledge_jobs.sync_kwargs(res, [path], remove_missing=False))
    async with res.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, title, path, mime, pages, status, error, chunk_count, allowed_users, updated_at, ingested_at"
            " FROM documents WHERE path = %s", (f"{UPLOAD_DIR}/{path.name}",))
        row = await cur.fetchone()
    if row is None:
        raise AppError(500, "ingest_failed", report.summary())
    return _public(row)


@router.delete("/admin/knowledge/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["admin"],
               responses=error_responses(403, 404))
async def delete_document(document_id: UUID, _: AdminUser, conn: ConnDep, res: ResourcesDep) -> None:
    cur = await conn.execute("SELECT path, gemini_file_name FROM documents WHERE id = %s", (document_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("document")
    await store.delete_document(conn, document_id)
    files = res.extras["deps"].gemini_files
    if files is not None and row["gemini_file_name"]:
        # Its Gemini copy goes in the background: a slow or failing Files API never holds up the delete.
        knowledge_jobs.track(res, files.delete_remote_quietly(row["gemini_file_name"]))
    # Uploaded files go with their document; files in the team's own folders are theirs to manage
    # (a later sync would otherwise bring the document back: remove the file there too).
    path = key_to_path(row["path"], res.settings.knowledge_path)
    if row["path"].startswith(UPLOAD_DIR + "/"):
        path.unlink(missing_ok=True)


@router.put("/admin/knowledge/documents/{document_id}/access", response_model=DocumentPublic, tags=["admin"],
            responses=error_responses(403, 404))
async def set_access(document_id: UUID, body: AccessUpdate, _: AdminUser, conn: ConnDep) -> DocumentPublic:
    ids = None
    if body.users is not None:
        cur = await conn.execute("SELECT name, id FROM users WHERE name = ANY(%s) AND revoked_at IS NULL",
                                 (body.users,))
        found = {r["name"]: r["id"] for r in await cur.fetchall()}
        missing = sorted(set(body.users) - set(found))
        if missing:
            raise AppError(422, "unknown_users", f"no such users: {', '.join(missing)}")
        ids = list(found.values())
    cur = await conn.execute(
        "UPDATE documents SET allowed_users = %s, updated_at = now() WHERE id = %s"
        " RETURNING id, title, path, mime, pages, status, error, chunk_count, allowed_users, updated_at, ingested_at",
        (ids, document_id))
    row = await cur.fetchone()
    if row is None:
        raise not_found("document")
    return _public(row)


@router.post("/admin/sync_knowledge", response_model=JobAccepted, status_code=status.HTTP_202_ACCEPTED,
             tags=["admin"], responses=error_responses(403))
async def start_sync(admin: AdminUser, res: ResourcesDep) -> JobAccepted:
    """Scan the knowledge folder in the background; one sync at a time across all replicas."""
    job_id, already_running = await knowledge_jobs.start_sync(res, admin.id)
    return JobAccepted(job_id=job_id, already_running=already_running)


@router.get("/admin/sync_knowledge/{job_id}", response_model=JobPublic, tags=["admin"],
            responses=error_responses(403, 404))
async def sync_status(job_id: UUID, _: AdminUser, conn: ConnDep) -> JobPublic:
    job = await get_job(conn, job_id)
    if job is None:
        raise not_found("job")
    return JobPublic(**job)
