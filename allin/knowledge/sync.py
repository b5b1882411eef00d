"""Knowledge sync: scan folders, ingest what is new or changed, drop what is gone.

Incremental by content hash. One bad file never stops a sync: it gets a
per-file error on its document row. Jobs live in the `jobs` table; a partial
unique index allows one queued/running sync at a time across all replicas,
and a heartbeat lets a replica take over a sync whose process died.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
from loguru import logger
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from allin.knowledge import store
from allin.knowledge.chunk import embedding_text
from allin.knowledge.filetypes import is_supported_name
from allin.knowledge.ocr import Ocr
from allin.knowledge.pipeline import FileResult, process_files, sha256_file

ACCESS_FILE = ".allin-access"  # a folder-level list of user names who may see its documents
STALE_JOB_S = 60  # default for JOB_STALE_S
SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", "build", "dist"}


@functools.cache
def get_ocr(threads: int = 2) -> Ocr:
    return Ocr(threads=threads)


@dataclass
class FileOutcome:
    path: str
    status: str  # ingested | unchanged | removed | error
    chunks: int = 0
    error: str | None = None
    seconds: float = 0.0
    reused: int = 0  # of `chunks`, those unchanged since the last ingest (their vectors were kept)


@dataclass
class SyncReport:
    ingested: int = 0
    unchanged: int = 0
    removed: int = 0
    errors: int = 0
    files: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        if not (self.ingested or self.removed or self.errors):
            return f"nothing to do: {self.unchanged} file(s) unchanged"
        reused = sum(f.reused for f in self.files)
        kept = f" ({reused} of their {sum(f.chunks for f in self.files if f.status == 'ingested')} chunks " \
               "unchanged: not embedded again)" if reused else ""
        return (f"{self.ingested} ingested{kept}, {self.removed} removed, {self.errors} failed, "
                f"{self.unchanged} unchanged in {self.seconds:.1f}s")


def document_key(path: Path, knowledge_dir: Path) -> str:
    """Documents inside the knowledge dir are keyed by their relative path; others by absolute path."""
    path = path.resolve()
    try:
        return path.relative_to(knowledge_dir.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def key_to_path(key: str, knowledge_dir: Path) -> Path:
    p = Path(key)
    return p if p.is_absolute() else knowledge_dir / p


def scan(roots: Iterable[Path]) -> list[Path]:
    """Files to ingest under the given files/folders (sorted, deduplicated)."""
    found: set[Path] = set()
    for root in roots:
        root = Path(root)
        if root.is_file():
            found.add(root.resolve())
            continue
        if (root / ".git").exists():
            from allin.knowledge.repo import iter_source_files

            found.update(p.resolve() for p in iter_source_files(root))
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
            for name in filenames:
                if name.startswith(".") or name == ACCESS_FILE:
                    continue
                p = Path(dirpath) / name
                if is_supported_name(p) or p.suffix.lower() in {".pdf", ".png", ".jpg", ".jpeg", ".webp"}:
                    found.add(p.resolve())
    return sorted(found)


def folder_access(path: Path, stop_at: Path) -> list[str] | None:
    """User names from the nearest `.allin-access` file between the file and the knowledge dir."""
    folder = path.parent
    stop = stop_at.resolve()
    while True:
        marker = folder / ACCESS_FILE
        if marker.is_file():
            names = [ln.strip() for ln in marker.read_text(encoding="utf-8").splitlines()
                     if ln.strip() and not ln.startswith("#")]
            return names
        if folder == stop or folder.parent == folder or stop not in folder.parents:
            return None
        folder = folder.parent


async def _user_ids(conn: psycopg.AsyncConnection, names: list[str] | None) -> list[UUID] | None:
    if names is None:
        return None
    cur = await conn.execute("SELECT id FROM users WHERE name = ANY(%s)", (names,))
    return [r["id"] for r in await cur.fetchall()]


Progress = Callable[[dict], Awaitable[None]]


async def sync_paths(
    pool: AsyncConnectionPool,
    *,
    roots: list[Path],
    knowledge_dir: Path,
    embedder: Any,
    max_bytes: int,
    remove_missing: bool = True,
    force: bool = False,
    progress: Progress | None = None,
    after_ingest: Callable[[UUID, Path], Awaitable[None]] | None = None,
    after_remove: Callable[[dict], Awaitable[None]] | None = None,
) -> SyncReport:
    """Bring the documents table in line with the files under `roots`."""
    started = time.perf_counter()
    report = SyncReport()
    files = await asyncio.to_thread(scan, roots)
    async with pool.connection() as conn:
        known = await store.documents_by_path(conn)
    keys = {document_key(p, knowledge_dir): p for p in files}

    # Hash first (cheap) so unchanged files are skipped without parsing.
    todo: list[Path] = []
    for key, path in keys.items():
        row = known.get(key)
        digest = await asyncio.to_thread(sha256_file, path)
        # Same bytes as last time: nothing to redo, whether it ingested or failed then.
        if row and row["sha256"] == digest and row["status"] in ("ready", "error") and not force:
            report.unchanged += 1
            report.files.append(FileOutcome(key, "unchanged", 0))
        else:
            todo.append(path)

    removed: list[dict] = []
    if remove_missing:
        scanned_roots = [document_key(Path(r), knowledge_dir) for r in roots]
        for key, row in known.items():
            inside = any(key == r or key.startswith(r.rstrip("/") + "/") or r in ("", ".") for r in scanned_roots)
            if inside and key not in keys:
                removed.append(row)

    total = len(todo) + len(removed)
    done = 0

    async def tick(current: str) -> None:
        if progress is not None:
            await progress({"total": total, "done": done, "current": current, "unchanged": report.unchanged})

    await tick("")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[FileResult | None] = asyncio.Queue(maxsize=2)

    embedder_name = getattr(embedder, "name", "unknown")

    def previous(path: Path) -> dict[str, np.ndarray]:
        """In the embedding thread: the vectors of the document's chunks as stored now."""
        row = known.get(document_key(path, knowledge_dir))
        if row is None or row["status"] != "ready":
            return {}

        async def read() -> list:
            async with pool.connection() as conn:
                return await store.chunk_vectors(conn, row["id"], embedder_name)

        rows = asyncio.run_coroutine_threadsafe(read(), loop).result()
        return {embedding_text(title, chunk): np.asarray(vector, dtype=np.float32) for title, chunk, vector in rows}

    def produce() -> None:
        try:
            # One OCR thread: a sync already keeps both cores busy embedding, and onnxruntime's idle
            # workers spin (bench/ingest.py: 152 -> 139 s of CPU for 301 pages, same wall time).
            for result in process_files(todo, ocr=get_ocr(threads=1), embedder=embedder, max_bytes=max_bytes,
                                        previous=previous):
                asyncio.run_coroutine_threadsafe(queue.put(result), loop).result()
        finally:
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

    producer = asyncio.create_task(asyncio.to_thread(produce))
    while (result := await queue.get()) is not None:
        key = document_key(result.path, knowledge_dir)
        await tick(key)
        async with pool.connection() as conn:
            access = await _user_ids(conn, folder_access(result.path, knowledge_dir))
            title = result.document.title if result.document else result.path.stem
            doc_id = await store.upsert_document(
                conn, path=key, title=title, sha256=result.sha256,
                mime=result.document.mime if result.document else None,
                size_bytes=result.path.stat().st_size if result.path.exists() else None,
                allowed_users=access,
            )
            if result.ok:
                n = await store.replace_chunks(conn, doc_id, result.document.chunks, result.vectors,
                                               title=title, pages=result.document.pages,
                                               embedding_model=embedder_name)
                report.ingested += 1
                report.files.append(FileOutcome(key, "ingested", n, seconds=round(result.extract_s + result.embed_s, 3),
                                                reused=result.reused))
            else:
                await store.mark_failed(conn, doc_id, result.error.code, result.error.message)
                report.errors += 1
                report.files.append(FileOutcome(key, "error", 0, f"{result.error.code}: {result.error.message}"))
        if result.ok and after_ingest is not None:
            try:
                await after_ingest(doc_id, result.path)
            except Exception as exc:  # noqa: BLE001 - remote copies are best effort; local search works
                logger.warning("post-ingest step failed for {}: {}", key, exc)
        done += 1
    await producer

    for row in removed:
        async with pool.connection() as conn:
            await store.delete_document(conn, row["id"])
        if after_remove is not None:
            try:
                await after_remove(row)
            except Exception as exc:  # noqa: BLE001
                logger.warning("post-remove step failed for {}: {}", row["path"], exc)
        report.removed += 1
        report.files.append(FileOutcome(row["path"], "removed"))
        done += 1
        await tick(row["path"])
    report.seconds = round(time.perf_counter() - started, 2)
    return report


# --- jobs ------------------------------------------------------------------------------


class JobRunning(Exception):
    def __init__(self, job_id: UUID):
        super().__init__(str(job_id))
        self.job_id = job_id


async def create_job(conn: psycopg.AsyncConnection, kind: str, params: dict, created_by: UUID | None, *,
                     stale_s: float = STALE_JOB_S) -> UUID:
    """A queued job, or JobRunning with the id of the one already queued/running anywhere.
    A job with no heartbeat for `stale_s` belonged to a process that died: it is failed first."""
    # A job whose replica died stops heart-beating: fail it so a new one can start.
    await conn.execute(
        "UPDATE jobs SET status = 'failed', error = 'abandoned (no heartbeat)', finished_at = now()"
        " WHERE kind = %s AND status IN ('queued', 'running')"
        " AND coalesce(heartbeat_at, created_at) < now() - make_interval(secs => %s)",
        (kind, stale_s),
    )
    try:
        cur = await conn.execute(
            "INSERT INTO jobs (kind, params, created_by, heartbeat_at) VALUES (%s, %s, %s, now()) RETURNING id",
            (kind, Jsonb(params), created_by),
        )
        return (await cur.fetchone())["id"]
    except psycopg.errors.UniqueViolation:
        cur = await conn.execute("SELECT id FROM jobs WHERE kind = %s AND status IN ('queued', 'running')", (kind,))
        row = await cur.fetchone()
        raise JobRunning(row["id"]) from None


async def get_job(conn: psycopg.AsyncConnection, job_id: UUID) -> dict | None:
    cur = await conn.execute(
        "SELECT id, kind, status, params, progress, results, error, created_at, started_at, finished_at"
        " FROM jobs WHERE id = %s", (job_id,))
    return await cur.fetchone()


async def _heartbeat(pool: AsyncConnectionPool, job_id: UUID, every_s: float) -> None:
    """Beat while the job runs, however long one file takes (a big OCR'd PDF), so only a dead
    process's job ever looks stale."""
    while True:
        await asyncio.sleep(every_s)
        try:
            async with pool.connection() as conn:
                await conn.execute("UPDATE jobs SET heartbeat_at = now() WHERE id = %s", (job_id,))
        except Exception as exc:  # noqa: BLE001 - a missed beat is retried; staleness allows several
            logger.warning("job {} heartbeat failed: {}", job_id, exc)


async def run_sync_job(pool: AsyncConnectionPool, job_id: UUID, *, heartbeat_s: float = STALE_JOB_S / 4,
                       **sync_kwargs: Any) -> SyncReport | None:
    """Run a queued sync job, recording progress and per-file results on its row."""
    async with pool.connection() as conn:
        await conn.execute("UPDATE jobs SET status = 'running', started_at = now(), heartbeat_at = now() WHERE id = %s",
                           (job_id,))
    beating = asyncio.create_task(_heartbeat(pool, job_id, heartbeat_s))
    try:
        return await _run_sync_job(pool, job_id, **sync_kwargs)
    finally:
        beating.cancel()


async def _run_sync_job(pool: AsyncConnectionPool, job_id: UUID, **sync_kwargs: Any) -> SyncReport | None:

    async def progress(state: dict) -> None:
        async with pool.connection() as conn:
            await conn.execute("UPDATE jobs SET progress = %s, heartbeat_at = now() WHERE id = %s",
                               (Jsonb(state), job_id))

    try:
        report = await sync_paths(pool, progress=progress, **sync_kwargs)
    except asyncio.CancelledError:
        async with pool.connection() as conn:
            await conn.execute("UPDATE jobs SET status = 'failed', error = 'cancelled (server stopping)',"
                               " finished_at = now() WHERE id = %s", (job_id,))
        raise
    except Exception as exc:  # noqa: BLE001
        logger.opt(exception=exc).error("sync job {} failed", job_id)
        async with pool.connection() as conn:
            await conn.execute("UPDATE jobs SET status = 'failed', error = %s, finished_at = now() WHERE id = %s",
                               (f"{type(exc).__name__}: {exc}", job_id))
        return None
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE jobs SET status = 'done', finished_at = now(), results = %s,"
            " progress = progress || %s WHERE id = %s",
            (Jsonb([asdict(f) for f in report.files]),
             Jsonb({"summary": report.summary(), "ingested": report.ingested, "removed": report.removed,
                    "errors": report.errors, "unchanged": report.unchanged, "seconds": report.seconds,
                    "done": len(report.files) - report.unchanged, "total": len(report.files) - report.unchanged}),
             job_id),
        )
    return report
