"""Knowledge sync across processes: a killed sync is taken over cleanly; scheduled syncs run once."""

from __future__ import annotations

import asyncio
import shutil

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.timeout(300)


def fill_knowledge(settings, corpus) -> int:
    sources = [*sorted((corpus / "eng-practices" / "pdf").glob("*.pdf")),
               *sorted((corpus / "eng-practices" / "md").glob("*.md"))]
    for source in sources:
        shutil.copy(source, settings.knowledge_dir / f"{source.stem}{source.suffix}")
    return len(sources)


async def job(http: httpx.AsyncClient, base: str, job_id: str) -> dict:
    return (await http.get(f"{base}/admin/sync_knowledge/{job_id}")).json()


def consistent_documents(db_url: str) -> list[tuple]:
    """Every 'ready' document has exactly the chunks it reports, each ordinal once."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """SELECT d.path, d.status, d.chunk_count, count(c.id) AS chunks, count(DISTINCT c.ord) AS ords
               FROM documents d LEFT JOIN chunks c ON c.document_id = d.id GROUP BY d.id""").fetchall()
    for path, status, reported, chunks, ords in rows:
        if status == "ready":
            assert reported == chunks == ords > 0, (path, reported, chunks, ords)
    return rows


async def test_a_sync_killed_midway_is_taken_over_and_nothing_half_done_counts_as_done(
        app_process, settings, users, corpus):
    files = fill_knowledge(settings, corpus)
    a = app_process("a").start()
    async with httpx.AsyncClient(headers=users.admin.headers, timeout=30) as http:
        job_id = (await http.post(f"{a.url}/admin/sync_knowledge")).json()["job_id"]
        for _ in range(600):
            state = await job(http, a.url, job_id)
            if state["progress"].get("done", 0) >= 2 or state["status"] in ("done", "failed"):
                break
            await asyncio.sleep(0.05)
        assert state["status"] == "running", "the sync finished before it could be killed; give it more files"
        a.kill()
        half = consistent_documents(settings.database_url)
        assert any(status != "ready" for _, status, *_ in half) or len(half) < files

        # A new process, told that 2 s without a heartbeat means dead.
        b = app_process("b", JOB_STALE_S="2").start()
        await asyncio.sleep(2.5)
        accepted = (await http.post(f"{b.url}/admin/sync_knowledge")).json()
        assert accepted["job_id"] != job_id and accepted["already_running"] is False
        old = await job(http, b.url, job_id)
        assert old["status"] == "failed" and "heartbeat" in old["error"]
        for _ in range(1200):
            state = await job(http, b.url, accepted["job_id"])
            if state["status"] in ("done", "failed"):
                break
            await asyncio.sleep(0.1)
    assert state["status"] == "done", state
    rows = consistent_documents(settings.database_url)
    assert len(rows) == files and all(status == "ready" for _, status, *_ in rows), rows


async def test_scheduled_syncs_on_two_replicas_never_overlap(app_process, settings, users, corpus):
    for source in sorted((corpus / "eng-practices" / "md").glob("*.md"))[:3]:
        shutil.copy(source, settings.knowledge_dir / source.name)
    every = {"KNOWLEDGE_SYNC_INTERVAL_MIN": "0.02"}  # 1.2 s
    app_process("a", **every).start()
    app_process("b", **every).start()
    with psycopg.connect(settings.database_url) as conn:
        for _ in range(300):
            done = conn.execute("SELECT count(*) FROM jobs WHERE kind = 'sync' AND status = 'done'").fetchone()[0]
            if done >= 3:
                break
            await asyncio.sleep(0.1)
        jobs = conn.execute("SELECT started_at, finished_at, status, created_by FROM jobs WHERE kind = 'sync'"
                            " AND status = 'done' ORDER BY started_at").fetchall()
        documents = conn.execute("SELECT count(*) FROM documents WHERE status = 'ready'").fetchone()[0]
    assert len(jobs) >= 3 and all(created_by is None for *_, created_by in jobs)
    for earlier, later in zip(jobs, jobs[1:]):
        assert earlier[1] <= later[0], "two syncs ran at the same time"
    assert documents == 3
