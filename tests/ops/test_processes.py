"""Real server processes on one Postgres: replicas, restarts, SIGTERM.

Each `AppProcess` is `allin serve` in a child process, so nothing a test
checks can come from memory shared with the test: only the database (and the
knowledge folder, for sync) connects them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal

import httpx
import psycopg
import pytest
import websockets
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from tests.support.server import SHUTDOWN_DONE
from tests.support.ws_client import ask, hello, recv_json

pytestmark = pytest.mark.timeout(300)


async def wait_for_turns(base_url: str, headers: dict, chat_id: str, count: int, timeout: float = 30) -> list[dict]:
    """The chat's turns once there are `count` and none is pending (REST, as a client polls)."""
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as rest:
        for _ in range(int(timeout * 10)):
            turns = (await rest.get(f"/chat/history/{chat_id}")).json()["turns"]
            if len(turns) >= count and all(t["status"] != "pending" for t in turns):
                return turns
            await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} turns, have {turns}")


async def graph_messages(db_url: str, chat_id: str) -> list[tuple[str, str]]:
    """(type, text) of every message in the thread's latest checkpoint, read from Postgres."""
    async with AsyncPostgresSaver.from_conn_string(db_url) as saver:
        saved = await saver.aget_tuple({"configurable": {"thread_id": chat_id}})
    assert saved is not None
    return [(m.type, m.text() if callable(getattr(m, "text", None)) else str(m.content))
            for m in saved.checkpoint["channel_values"]["messages"]]


async def test_a_chat_started_on_one_replica_continues_on_another(app_process, settings, users):
    a = app_process("a").start()
    b = app_process("b").start()
    alice = users.alice.headers

    async with websockets.connect(a.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        first = await ask(ws, "Who are you?")
    chat_id = ready["chat_id"]
    assert first[-1]["type"] == "turn_complete"

    async with httpx.AsyncClient(base_url=b.url, headers=alice) as rest_b:
        # REST on B sees what A wrote; no sticky session needed.
        detail = (await rest_b.get(f"/chat/history/{chat_id}")).json()
        assert [t["role"] for t in detail["turns"]] == ["user", "assistant"]
        resume = await rest_b.post(f"/chat/history/{chat_id}/resume")
        assert resume.status_code == 200
        assert resume.json()["recent_turns"][0]["content"] == "Who are you?"
        # And /ws on B resumes the same thread.
        async with websockets.connect(b.ws_url) as ws:
            again = await hello(ws, users.alice.token, chat_id=chat_id)
            assert again["type"] == "ready" and again["resumed"] is True
            assert again["last_turn_id"] == first[-1]["turn_id"]
            second = await ask(ws, "What did I ask you first?")
        assert second[-1]["type"] == "turn_complete"
        # Bob cannot join Alice's chat on B either.
        async with websockets.connect(b.ws_url) as ws:
            denied = await hello(ws, users.bob.token, chat_id=chat_id)
            assert denied["type"] == "error" and "Who are you" not in json.dumps(denied)

    async with httpx.AsyncClient(base_url=a.url, headers=alice) as rest_a:
        turns = (await rest_a.get(f"/chat/history/{chat_id}")).json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant"] * 2
    assert turns[2]["content"] == "What did I ask you first?"
    kinds = [kind for kind, _ in await graph_messages(settings.database_url, chat_id)]
    assert kinds == ["human", "ai", "human", "ai"]


async def test_restart_then_resume_and_the_third_turn_sees_all_three(app_process, settings, users):
    server = app_process("before").start()
    async with httpx.AsyncClient(base_url=server.url, headers=users.alice.headers) as rest:
        chat_id = (await rest.post("/chat/start", json={"title": "Restart me"})).json()["chat_id"]
    async with websockets.connect(server.ws_url) as ws:
        await hello(ws, users.alice.token, chat_id=chat_id)
        await ask(ws, "Who are you?")
        await ask(ws, "How do I run the tests?")
    assert server.terminate(), server.log()

    server = app_process("after").start()
    async with httpx.AsyncClient(base_url=server.url, headers=users.alice.headers) as rest:
        resume = (await rest.post(f"/chat/history/{chat_id}/resume")).json()
        assert [t["role"] for t in resume["recent_turns"]] == ["user", "assistant"] * 2
        async with websockets.connect(server.ws_url) as ws:
            ready = await hello(ws, users.alice.token, chat_id=chat_id)
            assert ready["resumed"] is True
            third = await ask(ws, "Thanks, and who wrote the style guide?")
        assert third[-1]["type"] == "turn_complete"
        turns = (await rest.get(f"/chat/history/{chat_id}")).json()["turns"]

    assert [t["role"] for t in turns] == ["user", "assistant"] * 3
    assert [t["content"] for t in turns if t["role"] == "user"] == [
        "Who are you?", "How do I run the tests?", "Thanks, and who wrote the style guide?"]
    # The graph's own state (the checkpoint the third turn ran on) holds all three exchanges.
    messages = await graph_messages(settings.database_url, chat_id)
    assert [kind for kind, _ in messages] == ["human", "ai"] * 3
    assert [text for kind, text in messages if kind == "human"] == [
        t["content"] for t in turns if t["role"] == "user"]


async def test_sync_started_on_both_replicas_runs_once(app_process, settings, users, corpus):
    sources = sorted((corpus / "eng-practices" / "md").rglob("*.md"))[:3]
    for source in sources:
        shutil.copy(source, settings.knowledge_dir / source.name)
    a = app_process("a").start()
    b = app_process("b").start()
    admin = users.admin.headers

    async with httpx.AsyncClient(headers=admin) as http:
        ra, rb = await asyncio.gather(http.post(f"{a.url}/admin/sync_knowledge"),
                                      http.post(f"{b.url}/admin/sync_knowledge"))
        assert ra.status_code == rb.status_code == 202
        ids = {ra.json()["job_id"], rb.json()["job_id"]}
        assert len(ids) == 1, "both replicas must report the same, single job"
        assert sorted([ra.json()["already_running"], rb.json()["already_running"]]) == [False, True]
        job_id = ids.pop()
        for _ in range(600):
            job = (await http.get(f"{b.url}/admin/sync_knowledge/{job_id}")).json()
            if job["status"] in ("done", "failed"):
                break
            await asyncio.sleep(0.2)
    assert job["status"] == "done", job

    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM jobs WHERE kind = 'sync'").fetchone()[0] == 1
        documents = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    assert documents == len(sources) == 3
    assert sorted(f["status"] for f in job["results"]) == ["ingested"] * 3, job["results"]


async def test_sigterm_finishes_the_running_turn_and_says_going_away(app_process, settings, users):
    server = app_process("graceful").start()
    async with websockets.connect(server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        await ws.send(json.dumps({"type": "text", "text": "How do I run the tests?", "id": "q"}))
        await recv_json(ws)  # the turn is under way
        server.proc.send_signal(signal.SIGTERM)
        frames = []
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                frames.append(await recv_json(ws, timeout=30))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    # The answer reached the client before the close (and the chat's new title, which comes after it).
    kinds = [f["type"] for f in frames]
    assert [k for k in kinds if k != "chat"][-2:] == ["message", "turn_complete"], frames
    assert kinds.count("chat") <= 1 and kinds.index("turn_complete") < len(kinds) - kinds.count("chat")
    assert server.proc.wait(30) in (0, -signal.SIGTERM)
    assert SHUTDOWN_DONE in server.log()
    # And it was stored complete.
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute("SELECT role, status FROM chat_turns WHERE chat_id = %s ORDER BY seq",
                            (ready["chat_id"],)).fetchall()
    assert [r[0] for r in rows] == ["user", "assistant"], rows
    assert rows[1][1] == "complete", rows


async def test_a_turn_whose_socket_dropped_completes_and_another_replica_serves_it(app_process, settings, users):
    a = app_process("a").start()
    b = app_process("b").start()
    async with websockets.connect(a.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        await ws.send(json.dumps({"type": "text", "text": "How do I run the tests?"}))
        await recv_json(ws)  # under way; then the client vanishes
    chat_id = ready["chat_id"]

    async with websockets.connect(b.ws_url) as ws:
        again = await hello(ws, users.alice.token, chat_id=chat_id)
        assert again["resumed"] is True
    turns = await wait_for_turns(b.url, users.alice.headers, chat_id, 2)
    assert [(t["role"], t["status"]) for t in turns] == [("user", "complete"), ("assistant", "complete")]
    assert turns[1]["content"].strip()
