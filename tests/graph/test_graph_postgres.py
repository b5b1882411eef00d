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
