"""Checkpointing on the real Postgres: restarts keep the thread, a killed run resumes."""

import subprocess
import sys
import uuid
from contextlib import asynccontextmanager

import psycopg
import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import AsyncConnectionPool

from allin.db.pool import CONNECTION_KWARGS
from graphs.assistant.context import Context
from graphs.assistant.graph import build_graph
from tests.graph.fakes import FakeDeps

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


@asynccontextmanager
async def saver_for(kind: str, url: str):
    """The two ways the product holds the saver: on the app's pool, or on one connection (CLI)."""
    if kind == "pool":
        async with AsyncConnectionPool(url, kwargs=CONNECTION_KWARGS, min_size=1, max_size=4, open=False) as pool:
            yield AsyncPostgresSaver(pool)
    else:
        async with await psycopg.AsyncConnection.connect(url, **CONNECTION_KWARGS) as conn:
            yield AsyncPostgresSaver(conn)


@pytest.fixture(params=["pool", "connection"])
def saver_kind(request):
    return request.param


async def turn(graph, text, thread):
    return await graph.ainvoke({"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}},
                               context=Context(user_id="u", chat_id=thread), durability="sync")


async def test_thread_survives_a_restart(db_url, saver_kind):
    thread = str(uuid.uuid4())
    async with saver_for(saver_kind, db_url) as saver:
        graph = build_graph(FakeDeps()).compile(checkpointer=saver)
        await turn(graph, "first question", thread)
    # A new graph and saver, as in a new process: the earlier turn is there and is sent to the model.
    async with saver_for(saver_kind, db_url) as saver:
        deps = FakeDeps()
        graph = build_graph(deps).compile(checkpointer=saver)
        state = await turn(graph, "second question", thread)
    assert [m.content for m in state["messages"] if m.type == "human"] == ["first question", "second question"]
    assert [m.type for m in deps.model.seen[-1]] == ["system", "human", "ai", "human"]


async def test_killed_run_keeps_the_message_and_resumes(db_url, saver_kind):
    thread = str(uuid.uuid4())
    proc = subprocess.Popen([sys.executable, "-m", "tests.graph.crash_worker", db_url, thread],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "SYNTHESIZE"  # the process is inside synthesize now
    finally:
        proc.kill()  # SIGKILL: no cleanup, like a crash
        proc.wait(10)
    async with saver_for(saver_kind, db_url) as saver:
        graph = build_graph(FakeDeps()).compile(checkpointer=saver)
        config = {"configurable": {"thread_id": thread}}
        snapshot = await graph.aget_state(config)
        assert snapshot.values["messages"][0].content == "How fast should reviews be?"
        assert snapshot.values["route"] == "knowledge" and snapshot.values["passages"]
        assert snapshot.next == ("synthesize",)
        # Resuming runs only what was left: synthesize, not classify/retrieve again.
        deps = FakeDeps()
        graph = build_graph(deps).compile(checkpointer=saver)
        state = await graph.ainvoke(None, config, context=Context(user_id="u", chat_id=thread), durability="sync")
        assert deps.calls == []
        assert state["messages"][-1].content == "route=knowledge [1]"


async def test_unchanged_fields_are_not_written_again(db_url):
    """A turn writes only the fields that changed: the same attachments and prompt version as last
    turn are not written again, yet the state and the stored turn still have them."""
    from graphs.assistant.runner import TurnResult, TurnRunner

    thread = str(uuid.uuid4())
    config = {"configurable": {"thread_id": thread}}
    async with saver_for("pool", db_url) as saver:
        graph = build_graph(FakeDeps()).compile(checkpointer=saver)
        updates = []
        for text in ("first question", "second question"):
            async for update in graph.astream({"messages": [HumanMessage(text)]}, config, stream_mode="updates",
                                              context=Context(user_id="u", chat_id=thread), durability="exit"):
                updates.append(update)
        state = (await graph.aget_state(config)).values
    assert state["memories"] == ["I am on the payments team"] and state["prompt_version"] == 0
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT channel, count(*) FROM checkpoint_blobs WHERE thread_id = %s GROUP BY channel",
                                 (thread,))
        blobs = dict(await cur.fetchall())
    assert blobs["messages"] == 2 and blobs["passages"] == 2  # passages: reset by classify, found again
    # No attachment either time: written once. Memories: reset by classify, recalled again: twice.
    # (Numbers and strings, such as the prompt version, live in the checkpoint row, not in blobs.)
    assert blobs["attachments"] == 1 and blobs["memories"] == 2
    # The second answer's update leaves the prompt version out; the runner reads it from the reply.
    second = [u["synthesize"] for u in updates if "synthesize" in u][1]
    assert "prompt_version" not in second
    result = TurnResult(user_turn_id=uuid.uuid4(), turn_id=uuid.uuid4(), status="complete", content="")
    TurnRunner._apply_update("synthesize", second, result)
    assert result.prompt_version == 0 and result.content == second["messages"][-1].content
