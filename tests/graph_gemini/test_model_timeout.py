"""A model that stops answering: each attempt times out, bounded retries, then a clear error; the chat goes on."""

from __future__ import annotations

import asyncio
import time

import pytest
import websockets

from tests.fake_gemini.script import Delay, Json, Text
from tests.graph_gemini.conftest import gemini_mode
from tests.graph_gemini.helpers import answer_calls, ask, hello, of

TIMEOUT_S = 1.0


@pytest.fixture
def settings(settings, fake_gemini):
    return gemini_mode(settings, fake_gemini, model_max_retries=1, model_timeout_s=TIMEOUT_S)


async def test_a_silent_model_times_out_twice_then_the_user_is_told_and_can_go_on(live_server, users, fake_gemini):
    fake_gemini.enqueue(Json({"route": "chat", "reason": "scripted"}))
    fake_gemini.enqueue(Delay(3 * TIMEOUT_S))
    fake_gemini.enqueue(Delay(3 * TIMEOUT_S))
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        started = time.monotonic()
        frames = await ask(ws, "Thanks, that helps a lot!", frame_id="a")
        took = time.monotonic() - started
        assert frames[-1]["type"] == "error" and frames[-1]["code"] == "model_timeout", frames[-1]
        assert of(frames, "token") == []
        assert len(answer_calls(fake_gemini)) == 2  # one call and one retry, no more
        assert took < 2 * TIMEOUT_S + 4, f"bounded: {took:.1f} s"

        await asyncio.sleep(3 * TIMEOUT_S)  # the fake's sleeping handlers finish before new replies are queued
        fake_gemini.enqueue(Json({"route": "identity", "reason": "scripted"}))
        fake_gemini.enqueue(Text("I am Allin, from Team 8."))
        frames = await ask(ws, "Who are you?", frame_id="b")
    assert frames[-1]["type"] == "turn_complete"
    assert of(frames, "message")[0]["content"] == "I am Allin, from Team 8."
