"""Offline, through the real app over /ws: told in one chat, recalled in another, forgotten on request."""

from __future__ import annotations

import httpx
import websockets

from tests.memory.helpers import ask, hello, memories_of


async def test_a_fact_from_chat_a_answers_a_question_in_chat_b_until_deleted(live_server, users):
    async with websockets.connect(live_server.ws_url) as ws:
        chat_a = (await hello(ws, users.alice.token))["chat_id"]
        await ask(ws, "I'm on the payments team.")
    [item] = await memories_of(live_server.url, users.alice.headers)
    assert item["text"] == "I'm on the payments team."

    async with websockets.connect(live_server.ws_url) as ws:
        chat_b = (await hello(ws, users.alice.token))["chat_id"]
        answer = await ask(ws, "Which team am I on?")
    assert chat_b != chat_a
    assert "payments team" in answer["content"], answer["content"]

    # Bob has no such memory, and his question does not reach Alice's.
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.bob.token)
        bobs = await ask(ws, "Which team am I on?")
    assert "payments" not in bobs["content"]

    r = httpx.delete(f"{live_server.url}/memory", headers=users.alice.headers)
    assert r.status_code == 204
    assert await memories_of(live_server.url, users.alice.headers, timeout=0) == []
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        after = await ask(ws, "Which team am I on?")
    assert "payments" not in after["content"], after["content"]
