"""Keyed, through the real app over /ws, against the fake Gemini server.

Gemini (the fake) extracts the fact from chat A (mem0 `infer=True`), and the
memory reaches the synthesize request of chat B. Replies are scripted in the
order the app asks for them: classify, answer, then two calls after the turn
that race each other (the chat's title and the memory extraction), so each
of those gets a reply both can read.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from pydantic import SecretStr

from tests.fake_gemini import Error, Json, Text
from tests.memory.helpers import ask, hello, memories_of

FACT = "User works on the payments team"


@pytest.fixture
def settings(settings, fake_gemini):
    return settings.model_copy(update={"google_api_key": SecretStr(fake_gemini.api_key),
                                       "google_gemini_base_url": fake_gemini.base_url, "model_max_retries": 1})


def route(name: str) -> Json:
    return Json({"route": name, "reason": "scripted for the test"})


def memories_section(sent: str) -> str:
    """The <memories> part of a turn message, or "" when the turn had none."""
    start, end = sent.find("<memories>"), sent.find("</memories>")
    return sent[start:end] if 0 <= start < end else ""


def synthesize_requests(fake) -> list:
    return [e for e in fake.requests("generate") if e.stream]


def extraction_requests(fake) -> list:
    return [e for e in fake.requests("generate") if "Memory Extractor" in (e.system_text or "")]


# Read as a title by the chat-title step and as facts by mem0: either may ask first.
AFTER_TURN_REPLY = Json({"title": "Payments Team", "topics": ["payments"], "memory": [{"id": "0", "text": FACT}]})


async def tell_the_team(live_server, users, fake_gemini) -> None:
    """Alice says which team she is on, in a chat of her own (the fact Gemini then extracts)."""
    fake_gemini.enqueue(route("chat"))
    fake_gemini.enqueue(Text("Nice to meet you!"))
    fake_gemini.enqueue(AFTER_TURN_REPLY)
    fake_gemini.enqueue(AFTER_TURN_REPLY)
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ask(ws, "Hi, I'm on the payments team and I just joined.")


async def test_gemini_extracts_the_fact_and_the_next_chat_is_answered_with_it(live_server, users, fake_gemini):
    await tell_the_team(live_server, users, fake_gemini)
    [item] = await memories_of(live_server.url, users.alice.headers)
    assert item["text"] == FACT

    # mem0's fact extraction went to the fake: JSON mode with its answer schema, the user's words inside.
    [extraction] = extraction_requests(fake_gemini)
    assert not extraction.stream and extraction.model == live_server.app.state.res.settings.chat_model
    config = extraction.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config.get("responseJsonSchema") or config["responseSchema"]
    assert "memory" in schema["properties"]
    assert "Memory Extractor" in extraction.system_text
    sent = "\n".join(extraction.texts)
    assert "I'm on the payments team and I just joined." in sent
    assert "lasting facts the user states about themselves" in sent  # our instructions

    fake_gemini.enqueue(route("chat"))
    fake_gemini.enqueue(Text("You are on the payments team."))
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        answer = await ask(ws, "Which team am I on?")
    assert answer["content"] == "You are on the payments team."
    turn_b = synthesize_requests(fake_gemini)[-1]
    assert FACT in memories_section("\n".join(turn_b.texts))
    # A question says nothing about the user: no extraction call after it.
    assert len(extraction_requests(fake_gemini)) == 1

    assert httpx.delete(f"{live_server.url}/memory", headers=users.alice.headers).status_code == 204
    fake_gemini.enqueue(route("chat"))
    fake_gemini.enqueue(Text("I don't know yet."))
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ask(ws, "Which team am I on?")
    sent = "\n".join(synthesize_requests(fake_gemini)[-1].texts)
    assert "<question>\nWhich team am I on?" in sent and "payments" not in sent


async def test_when_gemini_fails_the_users_own_statement_is_kept(live_server, users, fake_gemini):
    fake_gemini.enqueue(route("chat"))
    fake_gemini.enqueue(Text("Noted."))
    fake_gemini.enqueue(Error(503))  # the title and the extraction both fail, whichever asks first
    fake_gemini.enqueue(Error(503))
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.bob.token)
        await ask(ws, "I'm on the search team.")
    [item] = await memories_of(live_server.url, users.bob.headers)
    assert item["text"] == "I'm on the search team."
    assert len(extraction_requests(fake_gemini)) == 1  # one attempt, no retry storm


async def test_a_live_voice_conversation_knows_the_user_and_is_remembered_too(live_server, users, fake_gemini):
    """Keyed voice runs no graph: the memories go into the Live session's instructions, and a voice turn
    feeds memory like a typed one."""
    from tests.fake_gemini.script import Audio
    from tests.voice_ws.conftest import Heard, send_speech, until

    await tell_the_team(live_server, users, fake_gemini)
    await memories_of(live_server.url, users.alice.headers)
    extractions = len(extraction_requests(fake_gemini))

    fake_gemini.enqueue(Audio(text="You are on the payments team.", duration_ms=400,
                              input_text="I moved to the search team last week."))
    fake_gemini.enqueue(Json({"memory": [{"id": "0", "text": "User moved to the search team"}]}))
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await send_speech(ws, b"\x10\x00\xf0\xff" * 4000, chunk_ms=20, end_id="e")
        await until(ws, Heard(), lambda item: isinstance(item, dict) and item.get("type") == "turn_complete",
                    timeout=30)
    assert FACT in fake_gemini.system_text("live")
    for _ in range(100):
        if len(extraction_requests(fake_gemini)) > extractions:
            break
        await asyncio.sleep(0.1)
    sent = "\n".join(extraction_requests(fake_gemini)[-1].texts)
    assert "I moved to the search team last week." in sent
