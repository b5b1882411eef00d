"""Stop Postgres under load for 10 s, start it again: fast 503s meanwhile, quick recovery, no lost turns.

A real server process on a Postgres of the test's own; clients keep reading
chats over REST and sending turns over /ws the whole time. Prints its figures
(run with -s to see them).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import dataclass, field

import httpx
import psycopg
import pytest
import websockets

from allin.config import Settings
from allin.db.migrate import migrate_url
from allin.users import create_user
from tests.conftest import short_tmpdir
from tests.support.pg import PgCluster
from tests.support.server import AppProcess
from tests.support.ws_client import hello

pytestmark = pytest.mark.timeout(300)
OUTAGE_S = 10
DB_TIMEOUT_S = 2.0


@dataclass
class Log:
    rest: list[tuple[float, int, float]] = field(default_factory=list)  # (at, status, seconds)
    completed: list[str] = field(default_factory=list)  # assistant turn ids the clients saw complete
    turn_errors: list[str] = field(default_factory=list)


@pytest.fixture
def own_cluster():
    root = short_tmpdir("alu")
    cluster = PgCluster(root / "d")
    cluster.init(durable=True)  # "no lost committed turns" means committed as production commits
    cluster.start()
    yield cluster, root
    if cluster.is_running():
        cluster.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)


async def rest_client(base: str, token: str, log: Log, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                status = (await http.get("/chat/history")).status_code
            except httpx.HTTPError:
                status = 0
            log.rest.append((t0, status, time.monotonic() - t0))
            await asyncio.sleep(0.05)


async def ws_client(url: str, token: str, log: Log, stop: asyncio.Event) -> None:
    chat_id = None
    while not stop.is_set():
        try:
            async with websockets.connect(url) as ws:
                ready = await hello(ws, token, chat_id=chat_id)
                if ready["type"] != "ready":
                    log.turn_errors.append(ready.get("code", "?"))
                    await asyncio.sleep(0.3)
                    continue
                chat_id = ready["chat_id"]
                while not stop.is_set():
                    await ws.send(json.dumps({"type": "text", "text": "How fast should reviews be?"}))
                    while True:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        if frame["type"] == "turn_complete":
                            log.completed.append(frame["turn_id"])
                            break
                        if frame["type"] == "error":
                            log.turn_errors.append(frame["code"])
                            break
                    await asyncio.sleep(0.1)
        except (websockets.ConnectionClosed, OSError, asyncio.TimeoutError) as exc:
            log.turn_errors.append(f"connection: {type(exc).__name__}")
            await asyncio.sleep(0.3)


async def test_database_outage_under_load(own_cluster, users):
    cluster, root = own_cluster
    url = cluster.url()
    await migrate_url(url, embedding_dim=384)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True,
                                                     row_factory=psycopg.rows.dict_row) as conn:
        tokens = [(await create_user(conn, f"load{i}"))[1] for i in range(3)]
    (root / "knowledge").mkdir()
    settings = Settings(_env_file=None, database_url=url, ALLIN_DATA_DIR=root / "data",
                        ALLIN_KNOWLEDGE_DIR=root / "knowledge", google_api_key=None)
    # Clients ask again 0.1 s after each answer: far past the per-user turn limit, which is not
    # what this test is about.
    server = AppProcess(settings, "outage", DB_TIMEOUT_S=str(DB_TIMEOUT_S), TURNS_PER_MINUTE="10000").start()
    log, stop = Log(), asyncio.Event()
    try:
        workers = [asyncio.create_task(rest_client(server.url, t, log, stop)) for t in tokens] + \
                  [asyncio.create_task(ws_client(server.ws_url, t, log, stop)) for t in tokens[:2]]
        for _ in range(600):  # warm: both chats have answered (the first turn loads the local models)
            if len(log.completed) >= 4:
                break
            await asyncio.sleep(0.1)
        completed_before = len(log.completed)
        assert completed_before >= 4, (log.turn_errors, server.log()[-3000:])
        down_at = time.monotonic()
        await asyncio.to_thread(cluster.stop, "immediate")
        await asyncio.sleep(OUTAGE_S)
        starting_at = time.monotonic()
        await asyncio.to_thread(cluster.start)
        up_at = time.monotonic()
        await asyncio.sleep(8)
        stop.set()
        await asyncio.wait(workers, timeout=40)
    finally:
        server.kill()

    before = [r for r in log.rest if r[0] < down_at]
    # Requests that began 2 s into the outage (the app checks every 0.5 s, each check waits up to 1 s)
    # and ended before Postgres was restarted.
    during = [r for r in log.rest if down_at + 2 <= r[0] and r[0] + r[2] < starting_at]
    after = [r for r in log.rest if r[0] >= up_at]
    first_ok = min((at for at, status, _ in after if status == 200), default=float("inf"))
    recovery_s = first_ok - up_at
    outage_errors = sum(status != 200 for _, status, _ in during) / max(1, len(during))
    slowest_during = max((secs for *_, secs in during), default=0.0)
    print(f"\nREST: {len(before)} before (all 200: {all(s == 200 for _, s, _ in before)}), "
          f"{len(during)} during the {starting_at - down_at:.0f} s outage ({outage_errors:.0%} failed, statuses "
          f"{sorted({s for _, s, _ in during})}, slowest {slowest_during:.2f} s), recovery {recovery_s:.2f} s "
          f"after the database returned; turns completed {len(log.completed)} "
          f"({completed_before} before the outage), turn errors {sorted(set(log.turn_errors))}")

    assert before and all(status == 200 for _, status, _ in before)
    assert during and {status for _, status, _ in during} <= {503}, "fail fast with 503, nothing else"
    assert slowest_during < 0.5, "once the database is known to be down, requests fail at once"
    assert recovery_s < 5, f"recovered after {recovery_s:.1f} s"
    assert all(status == 200 for at, status, _ in after if at >= first_ok + 1)
    assert len(log.completed) > completed_before, "turns complete again after the outage"
    assert {e.split(":")[0] for e in log.turn_errors} <= {"database_unavailable", "connection"}, log.turn_errors
    # Every turn a client saw complete is stored: none lost.
    with psycopg.connect(url) as conn:
        stored = {str(r[0]) for r in conn.execute("SELECT id FROM chat_turns WHERE role = 'assistant'")}
    assert set(log.completed) <= stored
