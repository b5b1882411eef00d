"""Keyed voice over /ws: the session bridges to Gemini Live (the fake server) and writes the chat and thread."""

from __future__ import annotations

import asyncio
import io
import json
import wave

import pytest
import websockets
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from pydantic import SecretStr

from allin.config import Settings
from tests.conftest import LiveServer
from tests.fake_gemini.script import Audio, Interrupted, ToolCall
from tests.voice_ws.conftest import Heard, hello, receive, send_speech, until
from tests.voice_ws.test_voice_ws import stored_turns

pytest.importorskip("allin.voice.gemini_live", reason="the Gemini Live bridge is not in this tree")

ANSWER = "Respond within one business day."
ASKED = "How fast should code reviews be?"


@pytest.fixture
def settings(settings: Settings, fake_gemini) -> Settings:
    return settings.model_copy(update={"google_api_key": SecretStr(fake_gemini.api_key),
                                       "google_gemini_base_url": fake_gemini.base_url})


def turn_over(item) -> bool:
    return isinstance(item, dict) and item.get("type") == "turn_complete"


async def test_live_turn_is_relayed_searched_and_stored_in_the_chat_and_thread(
        live_server: LiveServer, users, knowledge, fake_gemini, db_url, settings):
    assert live_server.app.state.res.settings.mode == "gemini"
    fake_gemini.enqueue(ToolCall(name="search_knowledge", args={"query": "how fast should code reviews be"}))
    fake_gemini.enqueue(Audio(text=ANSWER, duration_ms=800, input_text=ASKED))
    speech = b"\x10\x00\xf0\xff" * 8000  # 1 s of PCM16 16 kHz; the fake only measures it
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        await send_speech(ws, speech, chunk_ms=20, end_id="e")
        heard = await until(ws, Heard(), turn_over, timeout=30)
    chat_id = ready["chat_id"]

    # Both directions relayed: the client's audio reached Gemini, Gemini's speech reached the client.
    assert len(fake_gemini.live_audio()) == len(speech)
    assert heard.of("audio_format")[0]["rate"] == 24_000
    assert heard.order.index("audio_format") < heard.order.index("binary")
    assert abs(len(heard.audio_bytes) / 2 / 24_000 - 0.8) < 0.05
    assert heard.of("transcript", role="user", final=True)[-1]["text"] == ASKED
    assert heard.of("transcript", role="assistant", final=True)[-1]["text"] == ANSWER

    # search_knowledge was answered from the ingested document, for this user.
    response = fake_gemini.tool_responses()[-1]
    passages = json.dumps(response)
    assert "review_reviewer_speed" in passages and "business day" in passages.lower()

    # Stored as voice turns, with recordings, and appended to the chat's graph thread.
    turns = await stored_turns(db_url, users.alice.id, chat_id)
    assert [(t["role"], t["modality"], t["content"]) for t in turns] == [
        ("user", "voice", ASKED), ("assistant", "voice", ANSWER)]
    assert turns[1]["reply_to"] == turns[0]["id"] and turns[1]["citations"]
    assert {c["file"] for c in turns[1]["citations"]} == {knowledge}
    complete = heard.of("turn_complete")[-1]
    assert complete["turn_id"] == str(turns[1]["id"]) and complete["user_turn_id"] == str(turns[0]["id"])
    rates = []
    for turn in turns:
        with wave.open(io.BytesIO((settings.data_path / "files" / turn["audio_ref"]).read_bytes())) as w:
            rates.append(w.getframerate())
    assert rates == [16_000, 24_000]
    async with AsyncPostgresSaver.from_conn_string(db_url) as saver:
        state = await saver.aget_tuple({"configurable": {"thread_id": chat_id}})
    messages = state.checkpoint["channel_values"]["messages"]
    assert [(m.type, m.content) for m in messages] == [("human", ASKED), ("ai", ANSWER)]
    assert [m.id for m in messages] == [str(t["id"]) for t in turns]


async def test_interrupt_stops_live_audio_at_once(live_server: LiveServer, users, fake_gemini, db_url):
    # The model speaks 0.5 s, then holds the turn open (as if still talking) until it times out.
    fake_gemini.enqueue(Interrupted(partial_ms=500, wait_for_input=True, timeout=1.5))
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        await send_speech(ws, b"\x00\x01" * 16_000, end_id="e")
        heard = await until(ws, Heard(), lambda f: isinstance(f, bytes), timeout=30)
        await ws.send(json.dumps({"type": "interrupt", "id": "stop"}))
        heard = await until(ws, heard, lambda f: isinstance(f, dict) and f.get("reply_to") == "stop", timeout=10)
        assert heard.frames[-1] == {"type": "turn_complete", "status": "interrupted", "reply_to": "stop"}
        after = Heard()
        await until(ws, after, turn_over, timeout=10)
        assert after.binary_frames == 0  # nothing of the answer after the acknowledgement
        assert after.of("transcript", role="assistant", final=True)[0]["interrupted"] is True
        with pytest.raises(asyncio.TimeoutError):
            await receive(ws, after, timeout=0.5)
    # What the user said is kept; the answer had no words yet (the fake's partial answer is a bare tone).
    turns = await stored_turns(db_url, users.alice.id, ready["chat_id"])
    assert [(t["role"], t["modality"]) for t in turns] == [("user", "voice")]
