"""Keyed live voice: one /ws voice session bridged to Gemini Live.

Tasks, all owned by the bridge:
- the supervisor holds the connection: connect, rotate on goAway, resume with
  the latest resumable handle, capped reconnects (`ReconnectBudget`);
- per connection, a sender drains the outbound queue (client audio, typed
  questions, tool answers) and a receiver feeds server messages to `LiveRelay`;
- the emitter hands events to `on_event`, one at a time, in order.

Both directions go through bounded `FrameQueue`s so neither the caller nor the
receiver waits on the other side; control frames (tool answers, interrupts,
errors, reconnects) go ahead of queued audio, and an interrupt drops the audio
still queued for the client. The pure logic lives in `live_relay.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google import genai
from google.genai import types
from loguru import logger

from allin.voice.live_relay import (CallTool, CancelTools, FrameQueue, GoAwayNotice, LiveEvent,
                                    LiveRelay, ReconnectBudget, classify_failure)

__all__ = ["LiveBridge", "LiveEvent", "LiveStats", "SEARCH_TOOL", "search_tool"]

SEARCH_TOOL = "search_knowledge"
INPUT_MIME = "audio/pcm;rate=16000"
PASSAGE_KEYS = ("n", "title", "file", "page", "section", "content")


def search_tool() -> types.Tool:
    """The one function the live model may call: the same retrieval as text chat."""
    return types.Tool(function_declarations=[types.FunctionDeclaration(
        name=SEARCH_TOOL,
        description=("Search the team's onboarding documents (handbooks, guides, policies, code "
                     "conventions). Returns numbered passages with title, file, page and section. "
                     "Use it for any question about how things are done here, and cite passages "
                     "by title and page."),
        parameters=types.Schema(type=types.Type.OBJECT, required=["query"], properties={
            "query": types.Schema(type=types.Type.STRING,
                                  description="What to look up, as a short search query.")}))])


# --- outbound frames (to Gemini) ---------------------------------------------------


@dataclass(frozen=True)
class AudioIn:
    pcm: bytes


@dataclass(frozen=True)
class AudioEnd:
    pass


@dataclass(frozen=True)
class TextIn:
    text: str


@dataclass(frozen=True)
class ToolAnswer:
    response: types.FunctionResponse


Outbound = AudioIn | AudioEnd | TextIn | ToolAnswer


class _Stop:
    """Tells the emitter to finish."""


STOP = _Stop()


@dataclass
class LiveStats:
    setups: int = 0  # sessions opened (first one included)
    reconnects: int = 0
    audio_in_dropped: int = 0  # client frames dropped because the buffer was full
    audio_out_dropped: int = 0  # model frames dropped because on_event fell behind
    audio_out_flushed: int = 0  # model frames dropped by interrupts (barge-in)
    tool_calls: int = 0
    delivery_failures: int = 0  # on_event raised


class LiveBridge:
    """A Gemini Live session for one voice conversation; see the module docstring."""

    def __init__(self, *, api_key: str, model: str, system_prompt: str,
                 search: Callable[[str], Awaitable[list[dict]]],
                 on_event: Callable[[LiveEvent], Awaitable[None]],
                 base_url: str | None = None, voice_name: str | None = None,
                 max_reconnects: int = 3, stable_after_s: float = 60.0,
                 reconnect_delay_s: float = 0.5, connect_timeout_s: float = 10.0,
                 tool_timeout_s: float = 15.0, input_buffer_s: float = 10.0,
                 output_buffer_s: float = 60.0) -> None:
        self.model = model
        self.system_prompt = system_prompt
        self.voice_name = voice_name
        self.stats = LiveStats()
        self._api_key = api_key
        self._base_url = base_url.rstrip("/") if base_url else None
        self._search = search
        self._on_event = on_event
        self._reconnect_delay_s = reconnect_delay_s
        self._connect_timeout_s = connect_timeout_s
        self._tool_timeout_s = tool_timeout_s
        self._relay = LiveRelay()
        self._budget = ReconnectBudget(max_reconnects, stable_after_s)
        self._outbound: FrameQueue[Outbound] = FrameQueue(
            int(input_buffer_s * 16_000 * 2), lambda f: len(f.pcm) if isinstance(f, AudioIn) else 0)
        self._to_client: FrameQueue[LiveEvent | _Stop] = FrameQueue(
            int(output_buffer_s * 24_000 * 2), lambda e: len(e.audio) if isinstance(e, LiveEvent) else 0)
        self._client: genai.Client | None = None  # kept for the bridge's life: a collected Client closes its transport
        self._supervisor: asyncio.Task | None = None
        self._emitter: asyncio.Task | None = None
        self._tools: dict[str, asyncio.Task] = {}
        self._connected = asyncio.Event()
        self._rotate = asyncio.Event()  # goAway seen and the turn is over: move to a new connection
        self._rotate_pending = False
        self._stopping = asyncio.Event()
        self._closing = False
        self._lost: tuple[str, str] | None = None  # (input, output) of a turn cut by a drop

    @property
    def running(self) -> bool:
        return self._supervisor is not None and not self._supervisor.done() and not self._closing

    # --- public API -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect; returns once the session is up, or once it failed for good (after
        its `error` event was handed to `on_event`)."""
        if self._supervisor is not None:
            raise RuntimeError("LiveBridge.start() called twice")
        options = types.HttpOptions(base_url=self._base_url) if self._base_url else None
        self._client = genai.Client(api_key=self._api_key, http_options=options)
        self._emitter = asyncio.create_task(self._emit_loop(), name="live-emitter")
        self._supervisor = asyncio.create_task(self._supervise(), name="live-supervisor")
        connected = asyncio.create_task(self._connected.wait())
        await asyncio.wait({connected, self._supervisor}, return_when=asyncio.FIRST_COMPLETED)
        connected.cancel()
        if self._supervisor.done():  # gave up: let the error event out before returning
            await asyncio.wait({self._emitter}, timeout=5)

    async def send_audio(self, pcm16_16k: bytes) -> None:
        """Queue client audio (PCM16 mono 16 kHz); never waits on the network."""
        if not self.running or not pcm16_16k:
            return
        dropped = self._outbound.put_data(AudioIn(pcm16_16k))
        if dropped:
            self.stats.audio_in_dropped += dropped
            if self.stats.audio_in_dropped == dropped:  # once per bridge, not per frame
                logger.warning("live voice: input buffer full, dropping the oldest client audio")

    async def end_audio(self) -> None:
        """The client stopped streaming (mic off): the model answers what it heard."""
        if self.running:
            self._outbound.put_data(AudioEnd())

    async def send_text(self, text: str) -> None:
        """A typed question in the same live session; the answer comes back as audio."""
        if self.running and text.strip():
            self._outbound.put_data(TextIn(text))

    async def interrupt(self) -> None:
        """The client stopped playback: drop queued model audio and mute the rest of
        the answer in progress (Gemini has no cancel; the user's voice barges in itself)."""
        self.stats.audio_out_flushed += self._to_client.drop(_is_audio)
        self._relay.interrupt()
        self._to_client.put_control(LiveEvent("interrupted"))

    async def close(self) -> None:
        """Stop everything now; queued audio in both directions is dropped."""
        if self._closing:
            return
        self._closing = True
        self._stopping.set()
        self._outbound.clear()
        self._to_client.clear()
        self._to_client.put_control(STOP)
        for task in self._tools.values():
            task.cancel()
        for task, grace in ((self._supervisor, 3.0), (self._emitter, 1.0)):
            # close() may come from on_event itself (the emitter): it must not wait for itself.
            if task is not None and not task.done() and task is not asyncio.current_task():
                _, pending = await asyncio.wait({task}, timeout=grace)
                for late in pending:
                    late.cancel()
                    await asyncio.gather(late, return_exceptions=True)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aio.aclose()

    # --- connection ------------------------------------------------------------------

    def _config(self, handle: str | None) -> types.LiveConnectConfig:
        speech = types.SpeechConfig(voice_config=types.VoiceConfig(
            prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=self.voice_name))) \
            if self.voice_name else None
        return types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO],
            system_instruction=self.system_prompt,
            speech_config=speech,
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            session_resumption=types.SessionResumptionConfig(handle=handle),
            # Audio-only sessions end after 15 min without compression.
            context_window_compression=types.ContextWindowCompressionConfig(sliding_window=types.SlidingWindow()),
            tools=[search_tool()])

    async def _supervise(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    outcome = await self._connection(self._relay.handle)
                    failure = None
                except Exception as exc:  # noqa: BLE001 - every failure is classified below
                    failure = classify_failure(exc, self.model)
                    outcome = "failed"
                    if failure.fatal and self._relay.handle and failure.code != "live_auth_failed":
                        # Maybe only the handle we hold is refused (they last 2 h): one try afresh tells.
                        logger.info("live voice: resuming refused ({}), trying a new session", failure.message)
                        self._relay.handle = None
                        failure = None
                if self._stopping.is_set():
                    return
                if failure and failure.fatal:
                    logger.warning("live voice: {}", failure.message)
                    self._fail(failure.code, failure.message)
                    return
                self._lost = self._relay.drop_turn() or self._lost
                self._abandon_tools()
                if not self._budget.take():
                    why = failure.message if failure else "goAway"
                    self._fail("live_unavailable", f"Gemini Live kept dropping the connection "
                               f"({self._budget.max_reconnects} reconnects in a row; last: {why}).")
                    return
                logger.info("live voice: reconnecting ({}), attempt {}", failure.message if failure else outcome,
                            self._budget.used)
                delay = 0.0 if outcome == "rotate" else self._budget.backoff_s(self._reconnect_delay_s)
                if delay:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), delay)
        finally:
            if not self._closing:
                self._to_client.put_data(STOP)  # after the events already queued

    async def _connection(self, handle: str | None) -> str:
        """One connection, from setup to its end: 'rotate' or 'stop', or raises."""
        assert self._client is not None
        async with contextlib.AsyncExitStack() as stack:
            connect = self._client.aio.live.connect(model=self.model, config=self._config(handle))
            async with asyncio.timeout(self._connect_timeout_s):
                session = await stack.enter_async_context(connect)
            self._budget.connected()
            self._rotate.clear()
            self._rotate_pending = False
            self.stats.setups += 1
            if self.stats.setups > 1:  # a session was up before: tell the client what survived
                lost, self._lost = self._lost, None
                self.stats.reconnects += 1
                self._to_client.put_control(LiveEvent(
                    "reconnected", code="resumed" if handle else "new_session",
                    message=("resumed the Gemini Live session" if handle else
                             "started a new Gemini Live session (earlier context is lost)")
                    + ("; the turn in progress was lost" if lost else ""),
                    input_text=lost[0] if lost else "", output_text=lost[1] if lost else ""))
            self._connected.set()
            return await self._serve(session)

    async def _serve(self, session: Any) -> str:
        receiver = asyncio.create_task(self._receive_loop(session))
        sender = asyncio.create_task(self._send_loop(session))
        rotate = asyncio.create_task(self._rotate.wait())
        stop = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({receiver, sender, rotate, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, rotate, stop):
                task.cancel()
            if not receiver.done():
                # Close while the receiver still reads: websockets stops reading after
                # 16 unread messages, and a close would then wait out its 10 s timeout.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(session.close(), 2.0)
                receiver.cancel()
            await asyncio.gather(receiver, sender, rotate, stop, return_exceptions=True)
        if stop in done:
            return "stop"
        if rotate in done:
            return "rotate"
        for task in (receiver, sender):
            if task in done and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        raise ConnectionError("the Live session ended")

    async def _receive_loop(self, session: Any) -> None:
        while True:
            async for message in session.receive():  # one turn per receive(); errors raise
                self._on_message(message)

    async def _send_loop(self, session: Any) -> None:
        while True:
            frame = await self._outbound.get()
            try:
                await self._send(session, frame)
            except BaseException:
                if not isinstance(frame, ToolAnswer):  # a new session would not know that call
                    self._outbound.put_data(frame, front=True)
                raise

    async def _send(self, session: Any, frame: Outbound) -> None:
        match frame:
            case AudioIn(pcm):
                await session.send_realtime_input(audio=types.Blob(data=pcm, mime_type=INPUT_MIME))
            case AudioEnd():
                await session.send_realtime_input(audio_stream_end=True)
                self._relay.expect_reply()
            case TextIn(text):
                await session.send_client_content(
                    turns=types.Content(role="user", parts=[types.Part(text=text)]), turn_complete=True)
                self._relay.add_user_text(text)
            case ToolAnswer(response):
                await session.send_tool_response(function_responses=[response])

    # --- server messages ---------------------------------------------------------------

    def _on_message(self, message: types.LiveServerMessage) -> None:
        if self._closing:
            return
        for frame in self._relay.process(message):
            match frame:
                case LiveEvent(kind="interrupted"):
                    self.stats.audio_out_flushed += self._to_client.drop(_is_audio)
                    self._to_client.put_control(frame)
                case LiveEvent():
                    self.stats.audio_out_dropped += self._to_client.put_data(frame)
                case CallTool():
                    self.stats.tool_calls += 1
                    self._tools[frame.id] = asyncio.create_task(self._answer_tool(frame))
                case CancelTools(ids):
                    for call_id in ids:
                        if task := self._tools.pop(call_id, None):
                            task.cancel()
                case GoAwayNotice(time_left):
                    logger.info("live voice: goAway (time left {}), moving to a new connection", time_left)
                    self._rotate_pending = True
        # Rotate between turns so no answer is cut; a close before then reconnects anyway.
        if self._rotate_pending and not self._relay.busy:
            self._rotate.set()

    async def _answer_tool(self, call: CallTool) -> None:
        passages: list[dict] | None = None
        try:
            query = str(call.args.get("query") or "").strip()
            if call.name != SEARCH_TOOL:
                result: dict = {"error": f"Unknown function {call.name!r}; the only function is {SEARCH_TOOL}."}
            elif not query:
                result = {"error": f"{SEARCH_TOOL} needs a non-empty 'query'."}
            else:
                async with asyncio.timeout(self._tool_timeout_s):
                    found = await self._search(query)
                passages = [_jsonable({k: p[k] for k in PASSAGE_KEYS if k in p}) for p in found]
                result = {"passages": passages} if passages else \
                    {"passages": [], "note": "Nothing in the team documents matches this query."}
        except Exception as exc:  # noqa: BLE001 - the model gets an error payload, the session lives on
            logger.warning("live voice: {} failed: {!r}", call.name, exc)
            kind = "timed out" if isinstance(exc, TimeoutError) else f"failed ({type(exc).__name__})"
            result = {"error": f"{call.name} {kind}; answer without it or ask to retry."}
        finally:
            self._tools.pop(call.id, None)
        self._outbound.put_control(ToolAnswer(types.FunctionResponse(id=call.id, name=call.name, response=result)))
        self._to_client.put_data(LiveEvent("tool_call", name=call.name, args=call.args, passages=passages))

    def _abandon_tools(self) -> None:
        """Calls of a closed connection cannot be answered on the next one."""
        for task in self._tools.values():
            task.cancel()
        self._tools.clear()
        self._outbound.drop(lambda f: isinstance(f, ToolAnswer))

    # --- to the client -------------------------------------------------------------------

    def _fail(self, code: str, message: str) -> None:
        self._to_client.put_control(LiveEvent("error", code=code, message=message))

    async def _emit_loop(self) -> None:
        while True:
            event = await self._to_client.get()
            if isinstance(event, _Stop):
                return
            try:
                await self._on_event(event)
            except Exception:  # noqa: BLE001 - one failed delivery must not end the session
                self.stats.delivery_failures += 1
                if self.stats.delivery_failures == 1:  # a gone client would fail every event
                    logger.exception("live voice: on_event failed for a {} event", event.kind)


def _is_audio(item: object) -> bool:
    return isinstance(item, LiveEvent) and item.kind == "audio"


def _jsonable(value: dict) -> dict:
    """Passages go to the SDK as JSON: make ids, paths and dates plain strings."""
    return json.loads(json.dumps(value, default=str))
