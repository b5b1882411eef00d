"""Offline voice over /ws, end to end: speech in → transcript, grounded answer, speech out, stored turns."""

from __future__ import annotations

import asyncio
import io
import json
import time
import wave
from pathlib import Path

import httpx
import psycopg
import pytest
import websockets
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row

from allin.chats import store
from allin.voice.speakable import split_sentences
from tests.conftest import LiveServer
from allin.voice.audio import to_input_rate
from tests.voice_ws.conftest import (QUESTION, Heard, hello, is_error, receive, send_speech, spoken_end,
                                     until, word_recall)


# Questions the persona answers (several sentences to speak) without the knowledge base, so these
# tests run where vector search cannot (see conftest.pgvector_works).
IDENTITY = "Who are you and what can you do?"
SECOND = "What is your name and which team are you from?"


def handler(live_server: LiveServer):
    return live_server.app.state.res.extras["voice_handler"]


def fast_playback(live_server: LiveServer) -> None:
    """Let the server send speech as fast as it is made (tests need not wait in real time)."""
    handler(live_server).options.playback_lead_s = 600.0


async def stored_turns(db_url: str, user_id, chat_id: str) -> list[dict]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        return await store.list_turns(conn, user_id, chat_id)


def wav_info(path: Path) -> tuple[int, float]:
    with wave.open(io.BytesIO(path.read_bytes())) as w:
        return w.getframerate(), w.getnframes() / w.getframerate()


async def ask(live_server: LiveServer, users, pcm: bytes, **speech) -> tuple[dict, Heard]:
    """Connect, say `pcm`, and collect everything until the spoken answer is over."""
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        await send_speech(ws, pcm, **speech)
        return ready, await until(ws, Heard(), spoken_end, timeout=90)


async def test_spoken_question_is_transcribed_answered_spoken_and_stored(
        live_server: LiveServer, users, say, stt, db_url, settings):
    fast_playback(live_server)
    question = say(IDENTITY)
    ready, heard = await ask(live_server, users, question, chunk_ms=20, end_id="q1")

    # What Allin heard: partials while decoding, then the final transcript.
    user = heard.of("transcript", role="user")
    assert user and user[-1]["final"] is True and all(f["final"] is False for f in user[:-1])
    assert word_recall(IDENTITY, user[-1]["text"]) >= 0.7, user[-1]["text"]
    assert user[-1]["reply_to"] == "q1"

    # The same frames as a typed turn.
    message = heard.of("message")[0]
    assert "Allin" in message["content"] and "Team 8" in message["content"]
    assert "".join(f["text"] for f in heard.of("token")) == message["content"]
    complete = heard.of("turn_complete")[0]
    assert complete["turn_id"] == message["turn_id"] and complete["reply_to"] == "q1"

    # Speech: the format first, then audio of a plausible length for what was said.
    first_audio = heard.order.index("binary")
    fmt = heard.of("audio_format")
    assert len(fmt) == 1 and heard.order.index("audio_format") < first_audio and fmt[0]["rate"] == 24_000
    said = heard.of("transcript", role="assistant")
    final = said[-1]
    assert final["final"] is True and "interrupted" not in final and final["turn_id"] == message["turn_id"]
    assert final["text"] == " ".join(split_sentences(message["content"]))
    assert all(f["final"] is False for f in said[:-1]) and len(said) >= 2
    pcm = heard.audio_bytes
    seconds = len(pcm) / 2 / 24_000
    chars = len(final["text"])
    assert chars / 30 < seconds < chars / 6, (seconds, chars)  # ~12-18 characters a second when spoken
    assert heard.json_audio_frames == 0 and heard.binary_frames > 5
    # The audio says the first sentence (transcribed back).
    first = said[0]["text"]
    first_s = min(seconds, len(first) / 12 + 0.5)
    back = stt.transcribe(to_input_rate(pcm[: int(first_s * 24_000) * 2], 24_000)).text
    assert word_recall(first, back) >= 0.6, (first, back)

    # Stored: two voice turns with their recordings; the answer's content is the text answer.
    turns = await stored_turns(db_url, users.alice.id, ready["chat_id"])
    assert [(t["role"], t["modality"]) for t in turns] == [("user", "voice"), ("assistant", "voice")]
    assert turns[0]["content"] == user[-1]["text"] and str(turns[0]["id"]) == user[-1]["turn_id"]
    assert turns[1]["content"] == message["content"] and str(turns[1]["id"]) == message["turn_id"]
    for turn in turns:
        assert turn["audio_ref"] == f"audio/{ready['chat_id']}/{turn['id']}.wav"
    rate, duration = wav_info(settings.data_path / "files" / turns[0]["audio_ref"])
    assert rate == 16_000 and abs(duration - len(question) / 32_000) < 0.7
    rate, duration = wav_info(settings.data_path / "files" / turns[1]["audio_ref"])
    assert rate == 24_000 and abs(duration - seconds) < 0.01

    r = httpx.get(f"{live_server.url}/chat/history/{ready['chat_id']}", headers=users.alice.headers)
    if r.status_code != 404:  # the chat routes are there
        assert r.status_code == 200, r.text
        listed = r.json()["turns"]
        assert [t["modality"] for t in listed] == ["voice", "voice"]
        assert all(t.get("has_audio", True) for t in listed)


async def test_spoken_question_is_answered_from_the_documents(live_server: LiveServer, users, knowledge, say):
    fast_playback(live_server)
    _, heard = await ask(live_server, users, say(QUESTION), end_id="q1")
    assert word_recall(QUESTION, heard.of("transcript", role="user", final=True)[0]["text"]) >= 0.7
    message = heard.of("message")[0]
    assert "code review" in message["content"].lower()
    assert message["citations"] and {c["file"] for c in message["citations"]} == {knowledge}
    spoken = heard.of("transcript", role="assistant", final=True)[0]["text"]
    assert spoken == " ".join(split_sentences(message["content"]))
    assert "[" not in spoken and "review_reviewer_speed" not in spoken  # no citation marks or file names read out
    assert spoken.endswith("The sources are in the chat.")
    # The very answer a typed question gets: voice runs the same graph.
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ws.send(json.dumps({"type": "text", "text": heard.of("transcript", role="user", final=True)[0]["text"]}))
        typed = await until(ws, Heard(), lambda f: isinstance(f, dict) and f.get("type") == "turn_complete")
    assert typed.of("message")[0]["content"] == message["content"]


async def test_json_audio_frames_get_json_audio_back(live_server: LiveServer, users, say):
    fast_playback(live_server)
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await send_speech(ws, say(IDENTITY), chunk_ms=100, as_json=True, end_id="j")
        heard = await until(ws, Heard(), spoken_end, timeout=90)
    assert heard.binary_frames == 0 and heard.json_audio_frames > 5
    assert all(len(a) % 2 == 0 for a in heard.audio)
    assert heard.of("audio_format")[0]["rate"] == 24_000
    assert word_recall(IDENTITY, heard.of("transcript", role="user", final=True)[0]["text"]) >= 0.7
    assert heard.of("message")


async def test_bad_audio_is_reported_and_the_session_goes_on(live_server: LiveServer, users, say):
    fast_playback(live_server)
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        # Half a sample.
        await ws.send(b"\x01\x02\x03")
        err = await until(ws, Heard(), lambda f: isinstance(f, dict), timeout=10)
        assert err.frames[-1]["code"] == "bad_audio" and "even number of bytes" in err.frames[-1]["message"]
        # Not base64.
        await ws.send(json.dumps({"type": "audio", "data": "@@@", "id": "b64"}))
        err = await until(ws, Heard(), lambda f: isinstance(f, dict), timeout=10)
        assert err.frames[-1]["code"] == "bad_audio" and err.frames[-1]["reply_to"] == "b64"
        # One frame longer than a frame may be (6 s).
        await ws.send(b"\x00\x00" * 16_000 * 6)
        err = await until(ws, Heard(), lambda f: isinstance(f, dict), timeout=10)
        assert err.frames[-1]["code"] == "bad_audio" and "at most" in err.frames[-1]["message"]
        # Silence only, then audio_end.
        await send_speech(ws, b"\x00\x00" * 16_000 * 2, end_id="quiet")
        err = await until(ws, Heard(), lambda f: isinstance(f, dict), timeout=10)
        assert err.frames[-1]["code"] == "no_speech" and err.frames[-1]["reply_to"] == "quiet"
        assert "no speech" in err.frames[-1]["message"]
        # Speech longer than VOICE_MAX_UTTERANCE_S (5 s here), without a pause.
        long = say("I would like to know every single thing about how code reviews work here including who "
                   "reviews what and how long the whole thing usually takes for a new engineer")
        assert len(long) / 32_000 > 6
        await send_speech(ws, long, end_id="long")
        heard = await until(ws, Heard(), is_error("utterance_too_long"), timeout=20)
        assert "at most 5 s" in heard.frames[-1]["message"]
        # The rest of that utterance is dropped: no transcript, no turn.
        await ws.send(json.dumps({"type": "ping", "id": "p"}))
        heard = await until(ws, heard, lambda f: isinstance(f, dict) and f.get("type") == "pong", timeout=10)
        assert not heard.of("transcript") and not heard.of("token")
        # A good utterance is answered as usual.
        await send_speech(ws, say(IDENTITY), end_id="good")
        heard = await until(ws, Heard(), spoken_end, timeout=90)
        assert word_recall(IDENTITY, heard.of("transcript", role="user", final=True)[0]["text"]) >= 0.7
        assert heard.of("message") and heard.audio_bytes
        assert not heard.of("error")


async def test_interrupt_stops_the_audio_at_once(live_server: LiveServer, users, say, db_url):
    # Real-time pacing (the default): the server holds the answer's audio and sends it as it would be played.
    lead = handler(live_server).options.playback_lead_s
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        await send_speech(ws, say(IDENTITY), end_id="q")
        heard = await until(ws, Heard(), lambda f: isinstance(f, bytes), timeout=60)
        started = heard.first_audio_at
        with pytest.raises(asyncio.TimeoutError):  # listen for a while, as a player would
            while True:
                await receive(ws, heard, timeout=started + 0.8 - time.perf_counter())
        await ws.send(json.dumps({"type": "interrupt", "id": "stop"}))
        # Everything up to the acknowledgement was already on its way; nothing may follow it.
        heard = await until(ws, heard, lambda f: isinstance(f, dict) and f.get("reply_to") == "stop"
                            and f.get("type") == "turn_complete", timeout=10)
        acked = time.perf_counter()
        assert heard.frames[-1]["status"] == "interrupted"
        assert acked - started < 2.0
        audio_s = len(heard.audio_bytes) / 2 / 24_000
        assert audio_s <= (acked - started) + lead + 0.2, audio_s  # paced: never far ahead of playback
        late = Heard()
        final = await until(ws, late, spoken_end, timeout=10)
        assert final.frames[-1]["interrupted"] is True
        with pytest.raises(asyncio.TimeoutError):
            await receive(ws, late, timeout=1.0)
        assert late.binary_frames == 0
        # Still usable.
        await ws.send(json.dumps({"type": "ping", "id": "p"}))
        assert (await until(ws, Heard(), lambda f: isinstance(f, dict), timeout=5)).frames[-1]["type"] == "pong"
    # The stored answer is the whole text answer, not the part that was said.
    turns = await stored_turns(db_url, users.alice.id, ready["chat_id"])
    assert [(t["role"], t["modality"]) for t in turns] == [("user", "voice"), ("assistant", "voice")]
    message = heard.of("message")
    assert message, "the persona's answer is written long before its speech ends"
    assert turns[-1]["content"] == message[0]["content"] and turns[-1]["status"] == "complete"
    said = final.frames[-1]["text"]
    assert said and len(said) < len(" ".join(split_sentences(turns[-1]["content"])))


async def test_speaking_over_the_answer_barges_in(live_server: LiveServer, users, say):
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await send_speech(ws, say(IDENTITY), end_id="q1")
        heard = await until(ws, Heard(), lambda f: isinstance(f, bytes), timeout=60)
        # The user talks over the answer (no interrupt frame): voice activity alone stops it.
        fast_playback(live_server)  # for the second answer
        second = say(SECOND)
        await send_speech(ws, second, end=False)
        heard = await until(ws, heard, spoken_end, timeout=10)
        assert heard.frames[-1]["interrupted"] is True
        await ws.send(json.dumps({"type": "audio_end", "id": "q2"}))
        heard = await until(ws, heard, lambda f: spoken_end(f) and not f.get("interrupted"), timeout=60)
    finals = heard.of("transcript", role="user", final=True)
    assert len(finals) == 2 and finals[0].get("reply_to") == "q1"
    assert word_recall(SECOND, finals[1]["text"]) >= 0.7
    messages = heard.of("message")
    assert messages and messages[-1].get("reply_to") == "q2", messages
    # The first answer was either written out before the user spoke over it (speech can start on
    # its first sentence, before the whole text is out) or stopped there, and then said so.
    assert len(messages) == 2 or heard.of("turn_complete", status="interrupted"), heard.order


async def test_text_and_voice_turns_share_the_chat_and_the_graph_thread(
        live_server: LiveServer, users, say, db_url):
    fast_playback(live_server)
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        await ws.send(json.dumps({"type": "text", "text": "Who are you?", "id": "t"}))
        await until(ws, Heard(), lambda f: isinstance(f, dict) and f.get("type") == "turn_complete", timeout=60)
        await send_speech(ws, say(SECOND), end_id="v")
        heard = await until(ws, Heard(), spoken_end, timeout=90)
    chat_id = ready["chat_id"]
    turns = await stored_turns(db_url, users.alice.id, chat_id)
    assert [(t["role"], t["modality"]) for t in turns] == [
        ("user", "text"), ("assistant", "text"), ("user", "voice"), ("assistant", "voice")]
    async with AsyncPostgresSaver.from_conn_string(db_url) as saver:
        state = await saver.aget_tuple({"configurable": {"thread_id": chat_id}})
    messages = state.checkpoint["channel_values"]["messages"]
    assert [m.type for m in messages] == ["human", "ai", "human", "ai"]
    assert messages[0].content == "Who are you?"
    assert messages[2].content == heard.of("transcript", role="user", final=True)[0]["text"]
    assert messages[3].content == heard.of("message")[0]["content"]
    assert [messages[0].id, messages[2].id] == [str(turns[0]["id"]), str(turns[2]["id"])]


async def test_a_pause_mid_question_does_not_split_it(live_server: LiveServer, users, say):
    fast_playback(live_server)
    first, rest = say("Who are you"), say("and what can you do?")
    pause = b"\x00\x00" * 16_000  # 1 s more: voice activity detection ends the first half on its own
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        # The first half is being transcribed when the rest starts: it is heard again with it.
        await send_speech(ws, first + pause + rest, end_id="q")
        heard = await until(ws, Heard(), spoken_end, timeout=90)
    finals = heard.of("transcript", role="user", final=True)
    assert len(finals) == 1 and finals[0]["reply_to"] == "q"
    assert word_recall("Who are you and what can you do?", finals[0]["text"]) >= 0.7, finals[0]["text"]
    assert len(heard.of("message")) == 1 and not heard.of("error")


def early_stt(live_server: LiveServer, result: str) -> float:
    registry = live_server.app.state.res.metrics.registry
    return registry.get_sample_value("allin_voice_early_stt_total", {"result": result}) or 0.0


def trim_silence(pcm: bytes) -> bytes:
    """The TTS's speech without the silence it pads its audio with."""
    import numpy as np

    samples = np.frombuffer(pcm, "<i2")
    return pcm[: 2 * (int(np.nonzero(np.abs(samples) > 100)[0][-1]) + 1)]


async def test_transcription_starts_in_the_closing_silence_and_is_used(live_server: LiveServer, users, say):
    fast_playback(live_server)
    used, dropped = early_stt(live_server, "used"), early_stt(live_server, "dropped")
    speech = trim_silence(say(IDENTITY)) + bytes(2 * 16_000 * 3 // 10)  # 300 ms of silence, then audio_end
    _, heard = await ask(live_server, users, speech, end_id="q")
    final = heard.of("transcript", role="user", final=True)
    assert len(final) == 1 and word_recall(IDENTITY, final[0]["text"]) >= 0.7, final
    assert "Team 8" in heard.of("message")[0]["content"]
    assert (early_stt(live_server, "used"), early_stt(live_server, "dropped")) == (used + 1, dropped)


async def test_an_early_transcript_is_dropped_when_the_user_goes_on(live_server: LiveServer, users, say):
    """A pause inside a question starts a transcription; the words after it must still be heard."""
    fast_playback(live_server)
    dropped = early_stt(live_server, "dropped")
    pause = bytes(2 * 16_000 * 3 // 10)  # long enough to start one, shorter than the end of an utterance
    speech = trim_silence(say("Who are you?")) + pause + trim_silence(say(SECOND)) + pause
    _, heard = await ask(live_server, users, speech, end_id="q")
    final = heard.of("transcript", role="user", final=True)
    assert len(final) == 1, final
    assert word_recall("Who are you? " + SECOND, final[0]["text"]) >= 0.7, final
    assert early_stt(live_server, "dropped") >= dropped + 1
