"""Knowledge sync jobs in the app: started by an admin or on a schedule, run once across replicas.

The `jobs` table's partial unique index lets one sync be queued or running at a
time, whichever replica asked first; the others get that job's id back. A
scheduled sync is the same request made by a timer on every replica.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

from loguru import logger

from allin.knowledge.sync import JobRunning, create_job, run_sync_job
from api.state import Resources


def track(res: Resources, coro) -> asyncio.Task:
    """A background task the app keeps a reference to (asyncio holds only weak ones)."""
    tasks: set = res.extras.setdefault("tasks", set())
    task = asyncio.create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


def sync_kwargs(res: Resources, roots: list[Path], *, remove_missing: bool) -> dict:
    deps = res.extras["deps"]
    files = deps.gemini_files  # keyed: removed documents' Gemini files are deleted too
    return dict(roots=roots, knowledge_dir=res.settings.knowledge_path, embedder=deps.embedder,
                max_bytes=res.settings.max_upload_mb << 20, remove_missing=remove_missing,
                after_remove=files.on_document_removed if files is not None else None)


async def start_sync(res: Resources, created_by: UUID | None) -> tuple[UUID, bool]:
    """(job id, already running): starts a sync of the knowledge folder here unless one runs anywhere."""
    knowledge = res.settings.knowledge_path
    knowledge.mkdir(parents=True, exist_ok=True)
    async with res.pool.connection() as conn:
        try:
            job_id = await create_job(conn, "sync", {"root": str(knowledge)}, created_by,
                                      stale_s=res.settings.job_stale_s)
        except JobRunning as running:
            return running.job_id, True
    res.metrics.ingest_jobs.labels("started").inc()

    async def run() -> None:
        report = await run_sync_job(res.pool, job_id, heartbeat_s=res.settings.job_stale_s / 4,
                                    **sync_kwargs(res, [knowledge], remove_missing=True))
        res.metrics.ingest_jobs.labels("done" if report else "failed").inc()
        if report:
            for f in report.files:
                res.metrics.ingest_files.labels(f.status if f.status != "error" else "error").inc()
            logger.info("knowledge sync {}: {}", job_id, report.summary())

    track(res, run())
    return job_id, False


async def scheduled_syncs(res: Resources, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            job_id, elsewhere = await start_sync(res, created_by=None)
            logger.info("scheduled knowledge sync: {} {}", job_id, "already running" if elsewhere else "started")
        except Exception as exc:  # noqa: BLE001 - database down: the next round tries again
            logger.warning("scheduled knowledge sync could not start: {}", exc)


async def start_knowledge_jobs(res: Resources) -> None:
    minutes = res.settings.knowledge_sync_interval_min
    if minutes > 0:
        res.extras["sync_scheduler"] = asyncio.create_task(scheduled_syncs(res, minutes * 60), name="sync-scheduler")


async def stop_knowledge_jobs(res: Resources) -> None:
    scheduler = res.extras.pop("sync_scheduler", None)
    if scheduler is not None:
        scheduler.cancel()
