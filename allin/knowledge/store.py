"""Documents and chunks in Postgres: bulk writes with COPY, never row by row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
from pgvector.psycopg import register_vector_async

from allin.knowledge.types import Chunk


@dataclass
class DocumentRow:
    id: UUID
    path: str
    title: str
    sha256: str | None
    status: str
    error: str | None
    chunk_count: int
    updated_at: datetime


async def ensure_vector_types(conn: psycopg.AsyncConnection) -> None:
    """Register pgvector's adapters on this connection (once per connection is enough)."""
    if not getattr(conn, "_allin_vector", False):
        await register_vector_async(conn)
        conn._allin_vector = True  # type: ignore[attr-defined]


async def upsert_document(
    conn: psycopg.AsyncConnection,
    *,
    path: str,
    title: str,
    sha256: str | None,
    mime: str | None,
    size_bytes: int | None,
    status: str = "processing",
    allowed_users: list[UUID] | None = None,
) -> UUID:
    cur = await conn.execute(
        """
        INSERT INTO documents (path, title, sha256, mime, size_bytes, status, allowed_users)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (path) DO UPDATE SET title = EXCLUDED.title, sha256 = EXCLUDED.sha256,
            mime = EXCLUDED.mime, size_bytes = EXCLUDED.size_bytes, status = EXCLUDED.status,
            error = NULL, updated_at = now()
        RETURNING id
        """,
        (path, title, sha256, mime, size_bytes, status, allowed_users),
    )
    return (await cur.fetchone())["id"]


async def replace_chunks(
    conn: psycopg.AsyncConnection,
    document_id: UUID,
    chunks: list[Chunk],
    vectors: np.ndarray,
    *,
    title: str,
    pages: int | None,
    embedding_model: str,
) -> int:
    """Swap a document's chunks atomically and mark it ready."""
    await ensure_vector_types(conn)
    if len(chunks) != len(vectors):
        raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
    async with conn.transaction():
        await conn.execute("DELETE FROM chunks WHERE document_id = %s", (document_id,))
        async with conn.cursor().copy(
            "COPY chunks (document_id, ord, kind, page, section, line_start, line_end, content, embedding)"
            " FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["uuid", "int4", "text", "int4", "text", "int4", "int4", "text", "vector"])
            for chunk, vec in zip(chunks, vectors, strict=True):
                await copy.write_row((
                    document_id, chunk.ord, chunk.kind, chunk.page, chunk.section,
                    chunk.line_start, chunk.line_end, chunk.content.replace("\x00", ""),
                    np.asarray(vec, dtype=np.float32),
                ))
        await conn.execute(
            "UPDATE documents SET status = 'ready', error = NULL, title = %s, pages = %s, chunk_count = %s,"
            " embedding_model = %s, ingested_at = now(), updated_at = now() WHERE id = %s",
            (title, pages, len(chunks), embedding_model, document_id),
        )
    return len(chunks)


async def chunk_vectors(conn: psycopg.AsyncConnection, document_id: UUID,
                        embedding_model: str) -> list[tuple[str, Chunk, np.ndarray]]:
    """(document title, chunk, vector) of a ready document's chunks embedded by `embedding_model`."""
    await ensure_vector_types(conn)
    cur = await conn.execute(
        "SELECT d.title, c.ord, c.kind, c.content, c.section, c.embedding FROM chunks c"
        " JOIN documents d ON d.id = c.document_id"
        " WHERE d.id = %s AND d.status = 'ready' AND d.embedding_model = %s ORDER BY c.ord",
        (document_id, embedding_model),
    )
    return [(r["title"], Chunk(ord=r["ord"], kind=r["kind"], content=r["content"], section=r["section"]),
             r["embedding"]) for r in await cur.fetchall()]


async def mark_failed(conn: psycopg.AsyncConnection, document_id: UUID, code: str, message: str) -> None:
    async with conn.transaction():
        await conn.execute("DELETE FROM chunks WHERE document_id = %s", (document_id,))
        await conn.execute(
            "UPDATE documents SET status = 'error', error = %s, chunk_count = 0, updated_at = now() WHERE id = %s",
            (f"{code}: {message}", document_id),
        )


async def delete_document(conn: psycopg.AsyncConnection, document_id: UUID) -> bool:
    cur = await conn.execute("DELETE FROM documents WHERE id = %s RETURNING id", (document_id,))
    return await cur.fetchone() is not None


async def documents_by_path(conn: psycopg.AsyncConnection) -> dict[str, dict[str, Any]]:
    cur = await conn.execute("SELECT id, path, sha256, status, error, gemini_file_name FROM documents")
    return {r["path"]: r for r in await cur.fetchall()}
