"""The pooled checkpointer: checkpoint calls of different chats overlap instead of queueing."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import AsyncConnectionPool

from allin.db.pool import CONNECTION_KWARGS
from graphs.assistant.checkpointer import pooled_checkpointer
from graphs.assistant.context import Context
from graphs.assistant.graph import build_graph
from tests.graph.fakes import FakeDeps


def thread(thread_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id}}


async def _holding_a_call_open(saver, chats: list[str], timeout: float = 3) -> None:
    """Keep one saver call in progress (a listing paused after its first row), then read another chat."""
    listing = saver.alist(thread(chats[0]))
    await anext(listing)  # the listing now holds its connection (and the saver's lock, if any)
    try:
        await asyncio.wait_for(saver.aget_tuple(thread(chats[1])), timeout)
    finally:
        await listing.aclose()


@pytest.fixture
async def pool(db_url):
    async with AsyncConnectionPool(db_url, kwargs=CONNECTION_KWARGS, min_size=1, max_size=8, open=False) as pool:
        yield pool


async def turns(graph, chats: list[str], per_chat: int) -> None:
    async def chat(chat_id: str) -> None:
        for i in range(per_chat):
            await graph.ainvoke({"messages": [HumanMessage(f"question {i}")]}, thread(chat_id),
                                context=Context(user_id="u", chat_id=chat_id), durability="sync")

    await asyncio.gather(*(chat(c) for c in chats))


async def test_concurrent_chats_keep_their_own_history(pool):
    graph = build_graph(FakeDeps()).compile(checkpointer=pooled_checkpointer(pool))
    chats = [str(uuid.uuid4()) for _ in range(12)]
    await turns(graph, chats, per_chat=3)
    for chat_id in chats:
        state = await graph.aget_state(thread(chat_id))
        assert [m.content for m in state.values["messages"] if m.type == "human"] == [
            "question 0", "question 1", "question 2"]
        assert state.values["messages"][-1].content == "route=knowledge [1]"


async def test_one_slow_call_does_not_hold_up_other_chats(pool):
    saver = pooled_checkpointer(pool)
    graph = build_graph(FakeDeps()).compile(checkpointer=saver)
    chats = [str(uuid.uuid4()) for _ in range(2)]
    await turns(graph, chats, per_chat=1)
    await _holding_a_call_open(saver, chats)


async def test_the_shipped_saver_still_queues_every_call(pool):
    """Canary for langchain-ai/langgraph#7259: when this fails, the library no longer serialises calls
    on a pool and graphs/assistant/checkpointer.py can go back to a plain AsyncPostgresSaver."""
    saver = AsyncPostgresSaver(pool)
    graph = build_graph(FakeDeps()).compile(checkpointer=saver)
    chats = [str(uuid.uuid4()) for _ in range(2)]
    await turns(graph, chats, per_chat=1)
    with pytest.raises(TimeoutError):
        await _holding_a_call_open(saver, chats)


async def test_latest_checkpoint_is_reused_only_while_it_is_still_the_latest(pool):
    """A turn's load of its chat's checkpoint is answered from what this saver wrote last, and
    matches a fresh read; once another replica (a second saver on the same database) moves the
    thread on, the next load reads the database and sees that replica's turn."""
    here, there = pooled_checkpointer(pool), pooled_checkpointer(pool)
    graph_here = build_graph(FakeDeps()).compile(checkpointer=here)
    graph_there = build_graph(FakeDeps()).compile(checkpointer=there)
    chat = str(uuid.uuid4())

    async def ask(graph, text: str) -> None:
        await graph.ainvoke({"messages": [HumanMessage(text)]}, thread(chat),
                            context=Context(user_id="u", chat_id=chat), durability="exit")

    await ask(graph_here, "question 0")
    await ask(graph_here, "question 1")
    assert here.reused == 1  # the second turn started from memory
    remembered = await here.aget_tuple(thread(chat))
    fresh = await AsyncPostgresSaver(pool).aget_tuple(thread(chat))
    assert remembered.config == fresh.config and remembered.parent_config == fresh.parent_config
    assert remembered.checkpoint == fresh.checkpoint and remembered.pending_writes == fresh.pending_writes == []
    assert remembered.metadata == fresh.metadata

    await ask(graph_there, "question from another replica")
    loaded = here.loaded
    await ask(graph_here, "question 2")
    assert here.loaded == loaded + 1
    state = await graph_here.aget_state(thread(chat))
    assert [m.content for m in state.values["messages"] if m.type == "human"] == [
        "question 0", "question 1", "question from another replica", "question 2"]


async def test_a_run_changing_channel_containers_in_place_does_not_touch_the_remembered_checkpoint(pool):
    """LangGraph's barrier and topic channels add to their set/list in place; the copy handed to a run
    and the one kept for the next must not share them."""
    saver = pooled_checkpointer(pool)
    graph = build_graph(FakeDeps()).compile(checkpointer=saver)
    chat = str(uuid.uuid4())
    await graph.ainvoke({"messages": [HumanMessage("question 0")]}, thread(chat),
                        context=Context(user_id="u", chat_id=chat), durability="exit")
    handed = await saver.aget_tuple(thread(chat))
    for value in handed.checkpoint["channel_values"].values():
        if isinstance(value, (list, set, dict)):
            value.clear()  # what an in-place update could do to it
    again = await saver.aget_tuple(thread(chat))
    fresh = await AsyncPostgresSaver(pool).aget_tuple(thread(chat))
    assert saver.reused == 2 and again.checkpoint == fresh.checkpoint
