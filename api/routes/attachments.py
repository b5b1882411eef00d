"""Files a user attaches to a question: their text joins that chat's context only, never the knowledge base."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Form, Request, UploadFile, status
from pydantic import BaseModel

from allin.chats import store as chat_store
from allin.knowledge.extract import extract
from allin.knowledge.sync import get_ocr
from allin.knowledge.types import IngestError
from allin.storage import make_storage
from api.deps import ConnDep, CurrentUser, ResourcesDep, reject_repeated_fields
from api.errors import AppError, error_responses, not_found
from api.routes.knowledge import save_upload

router = APIRouter(tags=["chats"], responses=error_responses(400, 401, 422, 503))
MAX_ATTACHMENT_TEXT = 20_000  # characters kept for the model; the file itself is stored whole


class AttachmentPublic(BaseModel):
    id: UUID
    filename: str
    mime: str
    size_bytes: int
    chat_id: UUID | None
    status: str
    error: str | None
    text_preview: str
    created_at: datetime


def _read_text(path: Path, max_bytes: int) -> tuple[str, str]:
    """(mime, text): OCR for images, page text and tables for PDFs, the text itself for logs."""
    doc = extract(path, ocr=get_ocr(), max_bytes=max_bytes)
    text = "\n\n".join(c.content for c in doc.chunks)
    return doc.mime, text[:MAX_ATTACHMENT_TEXT]


@router.post("/chat/attachments", response_model=AttachmentPublic, status_code=status.HTTP_201_CREATED,
             responses=error_responses(404, 413, 415))
async def upload_attachment(
    file: UploadFile, user: CurrentUser, conn: ConnDep, res: ResourcesDep, request: Request,
    chat_id: Annotated[UUID | None, Form()] = None,
) -> AttachmentPublic:
    await reject_repeated_fields(request)
    if chat_id is not None and await chat_store.get_chat(conn, user.id, chat_id) is None:
        raise not_found("chat")
    max_bytes = res.settings.max_upload_mb << 20
    workdir = Path(tempfile.mkdtemp(prefix="att", dir=res.settings.data_path if res.settings.data_path.exists() else None))
    try:
        path = await save_upload(file, workdir, max_bytes)
        size = path.stat().st_size
        attachment_id = uuid4()
        try:
            mime, text = await asyncio.to_thread(_read_text, path, max_bytes)
            state, error = "ready", None
        except IngestError as exc:
            mime, text, state, error = "application/octet-stream", None, "error", f"{exc.code}: {exc.message}"
        key = f"attachments/{user.id}/{attachment_id}/{path.name}"
        await make_storage(res.settings).put(key, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    cur = await conn.execute(
        "INSERT INTO attachments (id, user_id, chat_id, filename, mime, size_bytes, storage_key, text, status, error)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
        (attachment_id, user.id, chat_id, path.name, mime, size, key, text, state, error),
    )
    row = await cur.fetchone()
    return AttachmentPublic(**{k: row[k] for k in ("id", "filename", "mime", "size_bytes", "chat_id", "status",
                                                    "error", "created_at")},
                            text_preview=(row["text"] or "")[:300])
