"""Frame-level tests of the bridge's pure parts: server messages in, frames out."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from google.genai import errors, types
from websockets.datastructures import Headers
from websockets.http11 import Response

from allin.voice.live_relay import (CallTool, CancelTools, FrameQueue, GoAwayNotice, LiveEvent,
                                    LiveRelay, ReconnectBudget, classify_failure)

PCM = b"\x01\x02" * 2400  # 100 ms at 24 kHz


def content(**fields) -> types.LiveServerMessage:
    return types.LiveServerMessage(server_content=types.LiveServerContent(**fields))


def audio(data: bytes = PCM, mime: str = "audio/pcm;rate=24000") -> types.LiveServerMessage:
    return content(model_turn=types.Content(role="model", parts=[
        types.Part(inline_data=types.Blob(data=data, mime_type=mime))]))


def heard(text: str, finished: bool | None = None) -> types.LiveServerMessage:
    return content(input_transcription=types.Transcription(text=text, finished=finished))


def said(text: str) -> types.LiveServerMessage:
    return content(output_transcription=types.Transcription(text=text))


def resumption(handle: str | None, resumable: bool) -> types.LiveServerMessage:
    return types.LiveServerMessage(session_resumption_update=types.LiveServerSessionResumptionUpdate(
        new_handle=handle, resumable=resumable))


TURN_COMPLETE = content(turn_complete=True)
INTERRUPTED = content(interrupted=True)


def run(relay: LiveRelay, *messages: types.LiveServerMessage) -> list:
    return [frame for message in messages for frame in relay.process(message)]


def test_a_spoken_turn_becomes_audio_partials_finals_and_turn_complete():
    frames = run(LiveRelay(), heard("How do"), heard(" reviews work?"), audio(), said("Within"),
                 audio(PCM[:480], "audio/pcm;rate=16000"), said(" a day."), TURN_COMPLETE)
    assert frames == [
        LiveEvent("transcript", role="user", text="How do"),
        LiveEvent("transcript", role="user", text="How do reviews work?"),
        LiveEvent("audio", audio=PCM, rate=24000),
        LiveEvent("transcript", role="assistant", text="Within"),
        LiveEvent("audio", audio=PCM[:480], rate=16000),
        LiveEvent("transcript", role="assistant", text="Within a day."),
        LiveEvent("transcript", role="user", text="How do reviews work?", final=True),
        LiveEvent("transcript", role="assistant", text="Within a day.", final=True),
        LiveEvent("turn_complete", input_text="How do reviews work?", output_text="Within a day."),
    ]


def test_a_finished_transcription_is_final_at_once_and_not_repeated():
    relay = LiveRelay()
    assert run(relay, heard("Hello.", finished=True)) == [
        LiveEvent("transcript", role="user", text="Hello.", final=True)]
    assert run(relay, TURN_COMPLETE) == [LiveEvent("turn_complete", input_text="Hello.")]


def test_turns_do_not_leak_into_each_other():
    relay = LiveRelay()
    run(relay, heard("one"), said("uno"), TURN_COMPLETE)
    assert run(relay, heard("two"), TURN_COMPLETE)[-1] == LiveEvent("turn_complete", input_text="two")
    assert relay.in_turn is False


def test_interrupted_mutes_late_audio_until_the_turn_ends():
    relay = LiveRelay()
    frames = run(relay, audio(), INTERRUPTED, audio(), said("late words"), TURN_COMPLETE, audio())
    assert [f.kind for f in frames] == ["audio", "interrupted", "transcript", "transcript",
                                        "turn_complete", "audio"]
    assert frames[-2].output_text == "late words"


def test_client_interrupt_mutes_only_an_answer_in_progress():
    idle = LiveRelay()
    idle.interrupt()
    assert [f.kind for f in run(idle, audio())] == ["audio"]
    busy = LiveRelay()
    run(busy, audio())
    busy.interrupt()
    assert run(busy, audio(), TURN_COMPLETE) == [LiveEvent("turn_complete")]


def test_only_resumable_handles_are_kept():
    relay = LiveRelay()
    run(relay, resumption("h1", True))
    assert relay.handle == "h1"
    run(relay, resumption(None, False), resumption("h-mid-generation", False))
    assert relay.handle == "h1"
    run(relay, resumption("h2", True))
    assert relay.handle == "h2"


def test_tool_calls_cancellations_and_go_away_are_frames_for_the_bridge():
    relay = LiveRelay()
    call = types.LiveServerMessage(tool_call=types.LiveServerToolCall(function_calls=[
        types.FunctionCall(id="c1", name="search_knowledge", args={"query": "vpn"})]))
    cancel = types.LiveServerMessage(tool_call_cancellation=types.LiveServerToolCallCancellation(ids=["c1"]))
    away = types.LiveServerMessage(go_away=types.LiveServerGoAway(time_left="5s"))
    assert run(relay, call, cancel, away) == [
        CallTool(id="c1", name="search_knowledge", args={"query": "vpn"}), CancelTools(("c1",)),
        GoAwayNotice("5s")]
    assert relay.in_turn  # a tool call is part of a turn: no rotation now


def test_typed_text_is_the_turns_input_and_a_dropped_turn_is_returned():
    relay = LiveRelay()
    relay.add_user_text("Where is the VPN guide?")
    run(relay, audio(), said("It is in"))
    assert relay.drop_turn() == ("Where is the VPN guide?", "It is in")
    assert relay.drop_turn() is None  # idle now
    assert run(relay, TURN_COMPLETE) == [LiveEvent("turn_complete")]


def test_busy_from_the_question_until_the_answer_is_complete():
    relay = LiveRelay()
    assert not relay.busy
    relay.add_user_text("What is Allin?")
    assert relay.busy and not relay.in_turn  # asked, nothing heard back yet
    run(relay, audio())
    assert relay.busy and relay.in_turn
    run(relay, TURN_COMPLETE)
    assert not relay.busy
    relay.expect_reply()  # mic off
    assert relay.busy
    assert relay.drop_turn() is None  # nothing said either way: nothing lost


def test_text_parts_are_thoughts_not_speech():
    thought = content(model_turn=types.Content(role="model", parts=[types.Part(text="**Planning**")]))
    assert run(LiveRelay(), thought) == []


# --- FrameQueue ------------------------------------------------------------------------


def sized(frame: tuple[str, bytes]) -> int:
    return len(frame[1])


async def test_control_frames_jump_ahead_of_data():
    queue: FrameQueue[tuple[str, bytes]] = FrameQueue(100, sized)
    queue.put_data(("audio", b"a" * 10))
    queue.put_data(("text", b""))
    queue.put_control(("interrupted", b""))
    assert [(await queue.get())[0] for _ in range(3)] == ["interrupted", "audio", "text"]


async def test_data_over_budget_drops_the_oldest_audio_only():
    queue: FrameQueue[tuple[str, bytes]] = FrameQueue(25, sized)
    queue.put_data(("audio", b"1" * 10))
    queue.put_data(("turn_complete", b""))
    queue.put_data(("audio", b"2" * 10))
    assert queue.put_data(("audio", b"3" * 10)) == 1
    assert [await queue.get() for _ in range(3)] == [
        ("turn_complete", b""), ("audio", b"2" * 10), ("audio", b"3" * 10)]
    assert queue.dropped == 1
    queue.put_data(("audio", b"4" * 50))  # larger than the budget alone: kept
    assert await queue.get() == ("audio", b"4" * 50)


async def test_drop_removes_matching_frames_and_get_waits_for_the_next():
    queue: FrameQueue[tuple[str, bytes]] = FrameQueue(100, sized)
    for i in range(3):
        queue.put_data(("audio", bytes([i])))
    queue.put_data(("transcript", b""))
    assert queue.drop(lambda f: f[0] == "audio") == 3
    assert await queue.get() == ("transcript", b"")
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    queue.put_control(("error", b""))
    assert await asyncio.wait_for(waiting, 1) == ("error", b"")


# --- ReconnectBudget ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_caps_consecutive_reconnects():
    budget = ReconnectBudget(3, stable_after_s=60, clock=Clock())
    budget.connected()
    assert [budget.take() for _ in range(4)] == [True, True, True, False]


def test_budget_is_given_back_after_a_stable_session_only():
    clock = Clock()
    budget = ReconnectBudget(2, stable_after_s=60, clock=clock)
    budget.connected()
    assert budget.take() and budget.take()
    budget.connected()
    clock.now += 59  # not stable yet
    assert not budget.take()
    budget.connected()
    clock.now += 60
    assert budget.take() and budget.used == 1


def test_backoff_first_reconnect_immediate_then_doubling_to_a_cap():
    budget = ReconnectBudget(10, 60, clock=Clock())
    delays = []
    for _ in range(7):
        budget.take()
        delays.append(budget.backoff_s(0.5, cap_s=4))
    assert delays == [0, 0.5, 1, 2, 4, 4, 4]


# --- classify_failure ---------------------------------------------------------------------


@pytest.mark.parametrize(("exc", "code", "fatal"), [
    (errors.APIError(1008, "API key not valid. Please pass a valid API key.", None), "live_auth_failed", True),
    (errors.APIError(1008, "models/x is not found for API version v1beta, or is not supported "
                           "for bidiGenerateContent.", None), "live_model_not_found", True),
    (errors.APIError(1007, "Request contains an invalid argument.", None), "live_rejected", True),
    (errors.APIError(1011, "RESOURCE_EXHAUSTED: quota", None), "live_dropped", False),
    (errors.APIError(1000, "Session ended after goAway.", None), "live_dropped", False),
    (errors.APIError(1006, "Abnormal closure.", None), "live_dropped", False),
    (ConnectionRefusedError(111, "Connection refused"), "live_dropped", False),
    (TimeoutError(), "live_dropped", False),
    (websockets.InvalidURI("ftp://x", "scheme isn't ws or wss"), "live_unavailable", True),
    (websockets.InvalidStatus(Response(403, "Forbidden", Headers())), "live_auth_failed", True),
    (websockets.InvalidStatus(Response(503, "Unavailable", Headers())), "live_dropped", False),
])
def test_failures_are_classified(exc, code, fatal):
    failure = classify_failure(exc, "gemini-live-2.5-flash-preview")
    assert (failure.code, failure.fatal) == (code, fatal)


def test_refusal_messages_say_what_to_check():
    auth = classify_failure(errors.APIError(1008, "API key not valid.", None), "m")
    model = classify_failure(errors.APIError(1008, "models/m is not found", None), "m")
    assert "GOOGLE_API_KEY" in auth.message and "API key not valid." in auth.message
    assert "'m'" in model.message and "LIVE_MODEL" in model.message
