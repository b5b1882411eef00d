"""kill -9 in the middle of a turn: nothing the user typed is lost, the chat goes on, no duplicates."""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest
import websockets

from graphs.assistant.runner import STOPPED_REPLY
from tests.ops.test_processes import graph_messages, wait_for_turns
from tests.support.ws_client import ask, hello

pytestmark = pytest.mark.timeout(300)

SLOW_CODE = "```python\nimport time\ntime.sleep(20)\nprint('finished')\n```"


async def test_killed_mid_turn_the_question_is_kept_answered_as_interrupted_and_the_chat_goes_on(
        app_process, settings, users):
    # A short turn limit, so the restarted server may conclude soon that nobody is still answering.
    a = app_process("a", TURN_TIMEOUT_S="3").start()
    async with websockets.connect(a.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        await ws.send(json.dumps({"type": "text", "text": SLOW_CODE}))
        chat_id = ready["chat_id"]
        with psycopg.connect(settings.database_url) as conn:
            for _ in range(100):  # the question is stored before any work on it starts
                if conn.execute("SELECT count(*) FROM chat_turns WHERE chat_id = %s", (chat_id,)).fetchone()[0]:
                    break
                await asyncio.sleep(0.05)
        await asyncio.sleep(1)  # well inside the 20 s code run
        a.kill()

    b = app_process("b", TURN_TIMEOUT_S="3").start()
    turns = await wait_for_turns(b.url, users.alice.headers, chat_id, 2, timeout=30)
    assert [(t["role"], t["status"]) for t in turns] == [("user", "complete"), ("assistant", "interrupted")]
    assert turns[0]["content"] == SLOW_CODE and turns[1]["content"] == STOPPED_REPLY
    assert turns[1]["reply_to"] == turns[0]["turn_id"]

    async with websockets.connect(b.ws_url) as ws:
        again = await hello(ws, users.alice.token, chat_id=chat_id)
        assert again["resumed"] is True
        frames = await ask(ws, "Who are you?")
    assert frames[-1]["type"] == "turn_complete"
    await asyncio.sleep(4)  # more sweeps run: still one reply per question
    turns = await wait_for_turns(b.url, users.alice.headers, chat_id, 4)
    assert [(t["role"], t["status"]) for t in turns] == [
        ("user", "complete"), ("assistant", "interrupted"), ("user", "complete"), ("assistant", "complete")]
    assert [kind for kind, _ in await graph_messages(settings.database_url, chat_id)] == ["human", "ai"] * 2


async def test_a_turn_past_the_turn_limit_ends_with_a_clear_error_and_the_chat_stays_usable(app_process, users):
    server = app_process("limit", TURN_TIMEOUT_S="2").start()
    async with websockets.connect(server.ws_url) as ws:
        await hello(ws, users.alice.token)
        started = asyncio.get_running_loop().time()
        frames = await ask(ws, SLOW_CODE, timeout=15)
        assert frames[-1]["type"] == "error" and frames[-1]["code"] == "turn_timeout", frames[-1]
        assert asyncio.get_running_loop().time() - started < 6
        assert (await ask(ws, "Who are you?"))[-1]["type"] == "turn_complete"
