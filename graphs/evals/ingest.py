"""Put the documents a dataset needs into the knowledge base, visible to the evaluation user only.

Uses the knowledge pipeline's lowest-level pieces (`pipeline.process_files`,
`store.upsert_document` / `replace_chunks`). A file whose content (sha256) is
already in the knowledge base and visible to the evaluation user is not
ingested again, so an eval against a synced database scores what users get.
Files the eval adds are restricted to the evaluation user: planted injection
documents never reach a real user, and `remove_documents` takes them away
afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from allin.knowledge import store
from allin.knowledge.pipeline import process_files, sha256_file
from allin.knowledge.repo import DEFAULT_MAX_BYTES, iter_source_files

PATH_PREFIX = "eval"


@dataclass
class IngestSummary:
    added: list[dict] = field(default_factory=list)      # {id, path, chunks}
    present: list[str] = field(default_factory=list)     # already in the knowledge base (same content)
    failed: list[dict] = field(default_factory=list)     # {path, error}
    removed_stale: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"added": self.added, "present": self.present, "failed": self.failed,
                "removed_stale": self.removed_stale, "seconds": round(self.seconds, 2)}


def expand(paths: Iterable[Path], *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Path]:
    """Files as given, folders as the supported files under them; a missing path is an error."""
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files.extend(iter_source_files(path, max_bytes=max_bytes))
        elif path.is_file():
            files.append(path.resolve())
        else:
            raise FileNotFoundError(f"no such document or folder: {path}")
    return list(dict.fromkeys(files))


async def _eval_owned(conn, owner_id: UUID | str) -> list[dict]:
    cur = await conn.execute(
        "SELECT id, path, sha256 FROM documents WHERE allowed_users = ARRAY[%s::uuid]", (str(owner_id),))
    return await cur.fetchall()


async def ensure_documents(pool: AsyncConnectionPool, embedder, paths: Iterable[Path], *, owner_id: UUID | str,
                           max_bytes: int = DEFAULT_MAX_BYTES) -> IngestSummary:
    """Make every file under `paths` searchable by `owner_id`; drop eval documents left by other runs."""
    started = time.perf_counter()
    summary = IngestSummary()
    files = await asyncio.to_thread(expand, paths, max_bytes=max_bytes)
    hashes = dict(zip(files, await asyncio.to_thread(lambda: [sha256_file(f) for f in files]), strict=True))
    async with pool.connection() as conn:
        # Left by an earlier run (crashed, or --keep) and not part of this one: they would skew retrieval.
        stale = [d["id"] for d in await _eval_owned(conn, owner_id) if d["sha256"] not in set(hashes.values())]
        for doc_id in stale:
            await store.delete_document(conn, doc_id)
        summary.removed_stale = len(stale)
        cur = await conn.execute(
            "SELECT sha256 FROM documents WHERE status = 'ready' AND sha256 IS NOT NULL"
            " AND (allowed_users IS NULL OR %s::uuid = ANY(allowed_users))", (str(owner_id),))
        visible = {r["sha256"] for r in await cur.fetchall()}
    todo = [f for f in files if hashes[f] not in visible]
    summary.present = [str(f) for f in files if hashes[f] in visible]
    if todo:
        # Parsing and embedding are CPU work: a worker thread, as a sync job would do.
        results = await asyncio.to_thread(
            lambda: list(process_files(todo, ocr=None, embedder=embedder, max_bytes=max_bytes)))
        async with pool.connection() as conn:
            for result in results:
                name = f"{PATH_PREFIX}/{result.path.parent.name}/{result.path.name}"
                if not result.ok:
                    summary.failed.append({"path": str(result.path), "error": f"{result.error.code}: {result.error.message}"})
                    continue
                document = result.document
                doc_id = await store.upsert_document(
                    conn, path=name, title=document.title, sha256=result.sha256, mime=document.mime,
                    size_bytes=result.path.stat().st_size, allowed_users=[owner_id])
                chunks = await store.replace_chunks(conn, doc_id, document.chunks, result.vectors, title=document.title,
                                                    pages=document.pages, embedding_model=embedder.name)
                summary.added.append({"id": str(doc_id), "path": name, "chunks": chunks})
    summary.seconds = time.perf_counter() - started
    return summary


async def remove_documents(pool: AsyncConnectionPool, owner_id: UUID | str) -> int:
    """Delete every document restricted to the evaluation user (what `ensure_documents` added)."""
    async with pool.connection() as conn:
        owned = await _eval_owned(conn, owner_id)
        for doc in owned:
            await store.delete_document(conn, doc["id"])
    return len(owned)
