"""LiveBridge against the fake Gemini Live server, through the unmodified google-genai SDK."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fake_gemini import Audio, Close, GoAway, Interrupted, ToolCall
from tests.voice_live.support import LIVE_MODEL, Searches

pytestmark = pytest.mark.gemini

SECOND = bytes(range(256)) * 125  # 1 s of PCM16 mono 16 kHz, every byte value: any mix-up shows
FRAME = 3200  # 100 ms
BYTES_PER_MS_OUT = 48  # PCM16 at 24 kHz
PASSAGE = {"n": 1, "title": "Engineering handbook", "file": "handbook.pdf", "page": 3,
           "section": "Code review", "content": "Every pull request needs one approving review "
                                                "within one business day.", "score": 0.91}


async def speak(bridge, pcm: bytes = SECOND) -> None:
    for start in range(0, len(pcm), FRAME):
        await bridge.send_audio(pcm[start:start + FRAME])
    await bridge.end_audio()


def audio_bytes(events) -> int:
    return sum(len(e.audio) for e in events if e.kind == "audio")


async def test_setup_asks_for_audio_transcripts_resumption_compression_and_the_search_tool(make_bridge, fake_gemini):
    bridge, _ = make_bridge(voice_name="Kore")
    await bridge.start()
    setup = fake_gemini.live_setups()[0]
    assert setup["model"] == f"models/{LIVE_MODEL}"
    assert setup["generationConfig"]["responseModalities"] == ["AUDIO"]
    assert setup["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Kore"
    assert fake_gemini.system_text("live") == "You are Allin, from Team 8."
    assert setup["inputAudioTranscription"] == {} and setup["outputAudioTranscription"] == {}
    assert setup["sessionResumption"] == {}
    assert "slidingWindow" in setup["contextWindowCompression"]
    declared = setup["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declared] == ["search_knowledge"]
    assert declared[0]["parameters"]["properties"]["query"]["type"] == "STRING"
    assert declared[0]["parameters"]["required"] == ["query"]
    assert fake_gemini.last_request("live", "setup").headers["x-goog-api-key"] == fake_gemini.api_key


async def test_audio_flows_both_ways_with_partial_and_final_transcripts(make_bridge, fake_gemini):
    bridge, recorder = make_bridge()
    await bridge.start()
    await speak(bridge)
    done = await recorder.wait_for("turn_complete")

    # In: exactly the PCM sent, as 16 kHz audio blobs, then audioStreamEnd.
    assert fake_gemini.live_audio() == SECOND
    frames = fake_gemini.live_frames(frame="realtimeInput")
    assert {f.body["audio"]["mimeType"] for f in frames if "audio" in f.body} == {"audio/pcm;rate=16000"}
    assert frames[-1].body == {"audioStreamEnd": True}
    # Out: the fake speaks 50 ms per character of its reply, at 24 kHz.
    reply = "Echo: (audio of 1000 ms)"
    assert audio_bytes(recorder.events) == 50 * len(reply) * BYTES_PER_MS_OUT
    assert {e.rate for e in recorder.of("audio")} == {24000}
    transcripts = [(e.role, e.text, e.final) for e in recorder.of("transcript")]
    assert transcripts == [("user", "(audio of 1000 ms)", False), ("assistant", reply, False),
                           ("user", "(audio of 1000 ms)", True), ("assistant", reply, True)]
    assert (done.input_text, done.output_text) == ("(audio of 1000 ms)", reply)
    assert recorder.kinds()[-1] == "turn_complete"
    # The partial assistant transcript arrives with the first audio chunk, not after the turn.
    kinds = recorder.kinds()
    assert kinds.index("transcript", kinds.index("audio")) < len(kinds) - 4


async def test_typed_question_is_a_client_content_turn_answered_in_audio(make_bridge, fake_gemini):
    bridge, recorder = make_bridge()
    await bridge.start()
    await bridge.send_text("How do code reviews work?")
    done = await recorder.wait_for("turn_complete")
    turn = fake_gemini.live_frames(frame="clientContent")[0].body
    assert turn["turns"] == [{"role": "user", "parts": [{"text": "How do code reviews work?"}]}]
    assert turn["turnComplete"] is True
    assert done.input_text == "How do code reviews work?"
    assert done.output_text == "Echo: How do code reviews work?"
    assert audio_bytes(recorder.events) == 50 * len(done.output_text) * BYTES_PER_MS_OUT


async def test_barge_in_drops_queued_audio_and_nothing_stale_follows(make_bridge, fake_gemini):
    fake_gemini.enqueue(Interrupted(partial_ms=2000))  # 20 chunks of 100 ms, then waits for our voice
    bridge, recorder = make_bridge()

    async def slow_listener(event):  # a client slower than the model: audio piles up in the bridge
        if event.kind == "audio":
            if len(recorder.of("audio")) == 1:
                await bridge.send_audio(b"\x01\x00" * 1600)  # the user talks over the model
            await asyncio.sleep(0.05)

    recorder.hooks.append(slow_listener)
    await bridge.start()
    await bridge.send_text("Tell me everything about deployments.")
    await recorder.wait_for("turn_complete")

    kinds = recorder.kinds()
    cut = kinds.index("interrupted")
    assert "audio" not in kinds[cut:]
    assert 1 <= kinds.count("audio") < 20
    assert bridge.stats.audio_out_flushed == 20 - kinds.count("audio")
    # The next answer is not muted.
    await bridge.send_text("And testing?")
    await recorder.wait_for("turn_complete", 2)
    second = recorder.kinds()[recorder.kinds().index("turn_complete") + 1:]
    assert second.count("audio") == len(range(0, 50 * len("Echo: And testing?"), 100))


async def test_client_interrupt_flushes_and_mutes_the_rest_of_the_answer(make_bridge, fake_gemini):
    fake_gemini.enqueue(Audio(text="A long answer.", duration_ms=3000))
    bridge, recorder = make_bridge()

    async def stop_after_first(event):
        if event.kind == "audio" and len(recorder.of("audio")) == 1:
            await bridge.interrupt()

    recorder.hooks.append(stop_after_first)
    await bridge.start()
    await bridge.send_text("Explain everything.")
    done = await recorder.wait_for("turn_complete")
    kinds = recorder.kinds()
    assert kinds.count("audio") == 1 and "audio" not in kinds[kinds.index("interrupted"):]
    assert done.output_text == "A long answer."


async def test_search_knowledge_call_is_answered_from_search(make_bridge, fake_gemini):
    fake_gemini.enqueue(ToolCall(name="search_knowledge", args={"query": "code review"}, id="call-7"))
    searches = Searches([PASSAGE])
    bridge, recorder = make_bridge(search=searches)
    await bridge.start()
    await bridge.send_text("How fast are reviews?")
    done = await recorder.wait_for("turn_complete")

    assert searches.queries == ["code review"]
    passage = {k: v for k, v in PASSAGE.items() if k != "score"}  # the model gets the cited fields only
    assert fake_gemini.tool_responses() == [
        {"id": "call-7", "name": "search_knowledge", "response": {"passages": [passage]}}]
    call = recorder.of("tool_call")[0]
    assert (call.name, call.args, call.passages) == ("search_knowledge", {"query": "code review"}, [passage])
    # The fake answers by reading back the function response.
    assert "one approving review within one business day" in done.output_text
    assert bridge.stats.tool_calls == 1


async def test_unknown_function_and_failing_search_get_error_payloads(make_bridge, fake_gemini):
    fake_gemini.enqueue(ToolCall(name="deploy_to_prod", args={}, id="call-1"))
    fake_gemini.enqueue(ToolCall(name="search_knowledge", args={"query": "vpn"}, id="call-2"))
    searches = Searches(error=RuntimeError("database is down"))
    bridge, recorder = make_bridge(search=searches)
    await bridge.start()
    await bridge.send_text("Deploy it, then tell me about the VPN.")
    await recorder.wait_for("turn_complete")

    answers = {r["id"]: r for r in fake_gemini.tool_responses()}
    assert answers["call-1"]["name"] == "deploy_to_prod"
    assert "Unknown function 'deploy_to_prod'" in answers["call-1"]["response"]["error"]
    assert "search_knowledge failed (RuntimeError)" in answers["call-2"]["response"]["error"]
    assert searches.queries == ["vpn"]
    assert "database is down" not in str(answers)  # internals stay in the log


async def test_go_away_moves_to_a_resumed_session_and_the_conversation_goes_on(make_bridge, fake_gemini):
    bridge, recorder = make_bridge()
    await bridge.start()
    await bridge.send_text("first")
    await recorder.wait_for("turn_complete")
    first = fake_gemini.last_session()

    fake_gemini.push_live(GoAway(time_left="5s"))  # the bridge moves before the server closes
    event = await recorder.wait_for("reconnected")
    assert (event.code, event.input_text) == ("resumed", "")
    setups = fake_gemini.live_setups()
    assert len(setups) == 2
    assert setups[1]["sessionResumption"] == {"handle": f"fake-handle-{first}-1"}
    assert first not in fake_gemini.live_sessions  # the old connection was closed by the bridge

    await bridge.send_text("second")
    done = await recorder.wait_for("turn_complete", 2)
    assert done.output_text == "Echo: second"
    assert [e.texts for e in fake_gemini.live_frames(frame="clientContent")] == [["second"]]
    assert bridge.stats.reconnects == 1


async def test_go_away_mid_answer_waits_for_the_turn_to_end(make_bridge, fake_gemini):
    fake_gemini.enqueue(GoAway(time_left="5s"))  # played before the answer
    bridge, recorder = make_bridge()
    await bridge.start()
    await bridge.send_text("first")
    done = await recorder.wait_for("turn_complete")
    await recorder.wait_for("reconnected")
    assert done.output_text == "Echo: first"  # the answer was not cut
    assert recorder.kinds().index("turn_complete") < recorder.kinds().index("reconnected")
    assert fake_gemini.live_setups()[1]["sessionResumption"]["handle"].endswith("-1")


async def test_dropped_connection_resumes_with_the_latest_handle(make_bridge, fake_gemini):
    bridge, recorder = make_bridge()
    await bridge.start()
    await bridge.send_text("remember this")
    await recorder.wait_for("turn_complete")
    first = fake_gemini.last_session()
    fake_gemini.push_live(Close(1011, "INTERNAL: backend restarted"))
    await recorder.wait_for("reconnected")
    assert fake_gemini.live_setups()[1]["sessionResumption"] == {"handle": f"fake-handle-{first}-1"}
    await speak(bridge, SECOND[:FRAME * 5])
    done = await recorder.wait_for("turn_complete", 2)
    assert done.input_text == "(audio of 500 ms)"
    assert fake_gemini.live_audio() == SECOND[:FRAME * 5]  # all of it on the new session


async def test_drop_mid_turn_reports_the_lost_turn(make_bridge, fake_gemini):
    fake_gemini.enqueue(Interrupted(partial_ms=300, wait_for_input=True, timeout=5))
    bridge, recorder = make_bridge()
    await bridge.start()
    await speak(bridge, SECOND[:FRAME * 2])
    await recorder.wait_for("audio")
    fake_gemini.push_live(Close(1011, "INTERNAL"))
    event = await recorder.wait_for("reconnected")
    assert event.code == "new_session"  # no turn had completed: no handle to resume
    assert event.input_text == "(audio of 200 ms)"
    assert "lost" in event.message


async def test_reconnects_are_capped_then_one_error(make_bridge, fake_gemini):
    bridge, recorder = make_bridge(max_reconnects=2)
    await bridge.start()
    closed: set[int] = set()
    deadline = time.monotonic() + 10
    while not recorder.of("error") and time.monotonic() < deadline:
        for number in list(fake_gemini.live_sessions):
            if number not in closed:
                closed.add(number)
                await asyncio.to_thread(fake_gemini.push_live, Close(1011, "UNAVAILABLE: overloaded"), number)
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # nothing more happens after giving up

    assert len(fake_gemini.live_setups()) == 3  # the first session and 2 reconnects
    assert [e.code for e in recorder.of("error")] == ["live_unavailable"]
    assert "UNAVAILABLE: overloaded" in recorder.of("error")[0].message
    assert len(recorder.of("reconnected")) == 2
    assert recorder.kinds()[-1] == "error"
    assert not bridge.running
    await bridge.send_audio(SECOND)  # a stopped bridge ignores input
    assert len(fake_gemini.live_setups()) == 3


async def test_a_stable_session_gives_the_reconnect_budget_back(make_bridge, fake_gemini):
    bridge, recorder = make_bridge(max_reconnects=1, stable_after_s=0.3)
    await bridge.start()
    for round_ in (1, 2):
        await asyncio.sleep(0.4)  # healthy for longer than stable_after_s
        await asyncio.to_thread(fake_gemini.push_live, Close(1011, "INTERNAL"))
        await recorder.wait_for("reconnected", round_)
    await asyncio.to_thread(fake_gemini.push_live, Close(1011, "INTERNAL"))  # at once: over budget
    await recorder.wait_for("error")
    assert len(fake_gemini.live_setups()) == 3
    assert recorder.of("error")[0].code == "live_unavailable"


async def test_bad_key_fails_fast_without_retries(make_bridge, fake_gemini):
    bridge, recorder = make_bridge(api_key="not-the-key")
    started = time.monotonic()
    await bridge.start()
    elapsed = time.monotonic() - started
    assert elapsed < 2
    assert [(e.kind, e.code) for e in recorder.events] == [("error", "live_auth_failed")]
    assert "API key not valid" in recorder.events[0].message
    assert not bridge.running
    await asyncio.sleep(0.2)
    assert len(fake_gemini.live_setups()) == 1


async def test_unknown_model_fails_with_model_not_found(make_bridge, fake_gemini):
    bridge, recorder = make_bridge(model="no-such-live-model-v0")
    await bridge.start()
    assert [(e.kind, e.code) for e in recorder.events] == [("error", "live_model_not_found")]
    assert "no-such-live-model-v0" in recorder.events[0].message
    assert len(fake_gemini.live_setups()) == 1


async def test_close_mid_answer_is_prompt_and_silent(make_bridge, fake_gemini):
    fake_gemini.enqueue(Audio(text="A very long answer.", duration_ms=6000))  # 60 unread chunks
    bridge, recorder = make_bridge()
    await bridge.start()
    await bridge.send_text("Talk for a while.")
    await recorder.wait_for("audio")
    await asyncio.sleep(0.1)  # let the rest of the answer pile up
    started = time.monotonic()
    await bridge.close()
    assert time.monotonic() - started < 1.5  # no 10 s websocket close timeout
    count = len(recorder.events)
    await asyncio.sleep(0.2)
    assert len(recorder.events) == count
    assert not fake_gemini.live_sessions  # the server saw the socket close


async def test_audio_end_to_first_audio_latency(make_bridge, fake_gemini):
    """Figure for the report: end of speech to the first model audio, against the fake."""
    bridge, recorder = make_bridge()
    await bridge.start()
    for start in range(0, len(SECOND), FRAME):
        await bridge.send_audio(SECOND[start:start + FRAME])
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.05)  # audio already on its way, as in a real stream
    ended = loop.time()
    await bridge.end_audio()
    await recorder.wait_for("audio")
    first_audio = recorder.times[recorder.kinds().index("audio")]
    latency_ms = (first_audio - ended) * 1000
    print(f"audio_end -> first audio event: {latency_ms:.1f} ms")
    assert latency_ms < 500


async def test_a_refused_resumption_falls_back_to_a_new_session(make_bridge, fake_gemini):
    bridge, recorder = make_bridge()
    await bridge.start()
    await bridge.send_text("first")
    await recorder.wait_for("turn_complete")
    # A refusal while holding a handle may only mean the handle expired: one fresh try.
    await asyncio.to_thread(fake_gemini.push_live, Close(1008, "Session not found."))
    event = await recorder.wait_for("reconnected")
    assert event.code == "new_session" and "context is lost" in event.message
    assert [s["sessionResumption"] for s in fake_gemini.live_setups()] == [{}, {}]
    assert not recorder.of("error")


async def test_a_policy_close_without_a_handle_is_not_retried(make_bridge, fake_gemini):
    bridge, recorder = make_bridge()
    await bridge.start()
    await asyncio.to_thread(fake_gemini.push_live, Close(1008, "Operation is not supported."))
    error = await recorder.wait_for("error")
    assert error.code == "live_rejected" and "Operation is not supported." in error.message
    await asyncio.sleep(0.1)
    assert len(fake_gemini.live_setups()) == 1
