"""Live side of the fake Gemini API: the BidiGenerateContent WebSocket.

One reader task journals and dispatches client frames; one worker plays the
replies to each client turn in order. A turn pops queued "live" replies until
a terminal one (Text, Audio, Interrupted, Close, Error...); events (GoAway,
SessionResumptionUpdate, Transcript, ToolCall, Delay) are played on the way.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect

from .script import (Audio, Close, Delay, Entry, Error, FunctionCall, GoAway, Interrupted, Reply,
                     SessionResumptionUpdate, Text, Transcript, decode_b64, texts_of)
from .wire import (audio_ms, count_tokens, echo_text, function_results, model_id, model_method,
                   normalize, tone)

if TYPE_CHECKING:
    from .fake import FakeGemini

AUDIO_TOKENS_PER_S = 32  # what the real service bills for audio
logger = logging.getLogger(__name__)


@dataclass
class Turn:
    """One client turn: what was asked, the default answer, and any audio length."""

    prompt: str = ""
    answer: str = ""
    audio_ms: int | None = None
    input_sent: bool = False  # input transcription already sent this turn


def reason(text: str) -> str:
    """Close reasons are limited to 123 bytes."""
    return text.encode()[:123].decode(errors="ignore")


async def serve(fake: FakeGemini, ws: WebSocket, version: str) -> None:
    # Accept first and reject after the setup frame: a refused handshake would
    # reach the SDK as a bare ConnectionClosedError without code or reason.
    await ws.accept()
    try:
        first = json.loads(await ws.receive_text())
    except (WebSocketDisconnect, ValueError, KeyError):
        return
    number = fake.log.next_session()
    frame = normalize(first)
    setup = frame.get("setup") or {}
    model = model_id(setup.get("model", ""))
    fake.log.add(Entry(kind="live", method="WS", path=ws.url.path, model=model,
                       headers={k.lower(): v for k, v in ws.headers.items()}, body=setup,
                       raw=first, frame="setup" if "setup" in frame else next(iter(frame), None),
                       session=number))
    key = ws.headers.get("x-goog-api-key") or ws.query_params.get("key")
    if "setup" not in frame:
        problem = "The first message must be a setup message."
    elif key != fake.api_key:
        problem = "API key not valid. Please pass a valid API key."
    elif version not in ("v1beta", "v1alpha") or model_method(model) != "live":
        problem = (f"models/{model} is not found for API version {version}, "
                   "or is not supported for bidiGenerateContent.")
    else:
        await LiveSession(fake, ws, number, setup, model).run()
        return
    await ws.close(1008, reason(problem))


class LiveSession:
    def __init__(self, fake: FakeGemini, ws: WebSocket, number: int, setup: dict, model: str) -> None:
        self.fake, self.ws, self.number, self.model = fake, ws, number, model
        self.loop = asyncio.get_running_loop()
        config = setup.get("generationConfig") or {}
        self.audio_out = "AUDIO" in [m.upper() for m in config.get("responseModalities") or []]
        self.transcribe_in = "inputAudioTranscription" in setup
        self.transcribe_out = "outputAudioTranscription" in setup
        self.resumption = "sessionResumption" in setup
        self.turns: asyncio.Queue[Turn] = asyncio.Queue()
        self.tool_responses: asyncio.Queue[list[dict]] = asyncio.Queue()
        self.new_input = asyncio.Event()  # client input arrived (barge-in)
        self.pending_turns: list[dict] = []
        self.audio = bytearray()
        self.audio_rate = 16000
        self.send_lock = asyncio.Lock()
        self.closed = False
        self.turn_count = 0

    async def run(self) -> None:
        self.fake.live_sessions[self.number] = self
        await self.send({"setupComplete": {}})
        worker = asyncio.create_task(self.worker())
        try:
            await self.reader()
        finally:
            worker.cancel()
            self.closed = True
            self.fake.live_sessions.pop(self.number, None)

    # --- client → server ---------------------------------------------------------------

    async def reader(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                raw = json.loads(message.get("text") or message.get("bytes") or b"")
            except ValueError:
                await self.close(1007, "Request contains an invalid argument.")
                return
            for name, payload in normalize(raw).items():
                self.fake.log.add(Entry(kind="live", method="WS", path=self.ws.url.path,
                                        model=self.model, headers={}, body=payload, raw=raw,
                                        frame=name, session=self.number))
                self.dispatch(name, payload if isinstance(payload, dict) else {})

    def dispatch(self, name: str, payload: dict) -> None:
        if name == "clientContent":
            self.pending_turns += payload.get("turns") or []
            if payload.get("turnComplete"):
                answer = echo_text(self.pending_turns)
                prompt = " ".join(texts_of({"turns": self.pending_turns}))
                self.turns.put_nowait(Turn(prompt, answer))
                self.pending_turns = []
        elif name == "realtimeInput":
            blobs = ([payload["audio"]] if "audio" in payload else []) + payload.get("mediaChunks", [])
            for blob in blobs:
                if blob.get("mimeType", "").startswith("audio/"):
                    self.audio += decode_b64(blob["data"])
                    rate = re.search(r"rate=(\d+)", blob["mimeType"])
                    self.audio_rate = int(rate.group(1)) if rate else 16000
            if blobs or "text" in payload or "activityStart" in payload:
                self.new_input.set()
            if isinstance(payload.get("text"), str):
                self.turns.put_nowait(Turn(payload["text"], "Echo: " + payload["text"]))
            if payload.get("audioStreamEnd") or "activityEnd" in payload:
                millis = len(self.audio) * 1000 // (2 * self.audio_rate)
                self.audio = bytearray()
                heard = f"(audio of {millis} ms)"
                self.turns.put_nowait(Turn(heard, f"Echo: {heard}", audio_ms=millis))
        elif name == "toolResponse":
            self.tool_responses.put_nowait(payload.get("functionResponses") or [])

    # --- server → client -------------------------------------------------------------

    async def send(self, message: dict) -> None:
        async with self.send_lock:
            if self.closed:
                return
            try:
                await self.ws.send_text(json.dumps(message))
            except (WebSocketDisconnect, RuntimeError):
                self.closed = True

    async def close(self, code: int, why: str) -> None:
        async with self.send_lock:
            if self.closed:
                return
            self.closed = True
            try:
                await self.ws.close(code, reason(why))
            except (WebSocketDisconnect, RuntimeError):
                pass

    async def push(self, reply: Reply) -> None:
        await self.play(reply, Turn())

    async def worker(self) -> None:
        try:
            while not self.closed:
                turn = await self.turns.get()
                epoch = self.fake.epoch
                while not self.closed:
                    reply = self.fake.script.pop("live") if epoch == self.fake.epoch else None
                    if reply is None:
                        await self.play(self.default_reply(turn), turn)
                        break
                    if await self.play(reply, turn):
                        break
        except Exception as exc:  # a bug in the fake: fail the test loudly, not by a hang
            logger.exception("fake Gemini Live worker failed")
            await self.close(1011, f"fake_gemini error: {exc!r}")

    def default_reply(self, turn: Turn) -> Reply:
        return Audio(text=turn.answer) if self.audio_out else Text(turn.answer)

    async def input_transcription(self, turn: Turn, text: str | None = None) -> None:
        if turn.audio_ms is not None and self.transcribe_in and not turn.input_sent:
            turn.input_sent = True
            text = text or turn.prompt
            await self.send({"serverContent": {"inputTranscription": {"text": text}}})

    async def play(self, reply: Reply, turn: Turn) -> bool:
        """Send one reply; True when it ended the turn."""
        if isinstance(reply, Delay):
            await self.fake.sleep(reply.seconds, self.fake.epoch)
        elif isinstance(reply, (Close, Error)):
            if isinstance(reply, Error):
                error = reply.body()["error"]
                reply = Close(reply.code if reply.code >= 1000 else 1011,
                              f"{error['status']}: {error['message']}")
            await self.close(reply.code, reply.reason)
        elif isinstance(reply, GoAway):
            await self.send({"goAway": {"timeLeft": reply.time_left}})
            if reply.close_after is not None:
                self.loop.call_later(reply.close_after, lambda: asyncio.ensure_future(
                    self.close(1000, "Session ended after goAway.")))
        elif isinstance(reply, SessionResumptionUpdate):
            handle = reply.handle or f"fake-handle-{self.number}-{secrets.token_hex(4)}"
            await self.send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": reply.resumable}
                             if reply.resumable else {"resumable": False}})
        elif isinstance(reply, Transcript):
            turn.input_sent = turn.input_sent or reply.input is not None
            for key, text in (("inputTranscription", reply.input), ("outputTranscription", reply.output)):
                if text is not None:
                    await self.send({"serverContent": {key: {"text": text}}})
        elif isinstance(reply, FunctionCall):
            await self.tool_call(reply, turn)
        elif isinstance(reply, Audio):
            await self.input_transcription(turn, reply.input_text)
            millis = reply.duration_ms if reply.duration_ms is not None else audio_ms(reply.text)
            await self.speak(tone(millis, reply.rate), reply.rate, reply.chunk_ms, reply.text)
            await self.finish(turn, reply.text, millis)
            return True
        elif isinstance(reply, Interrupted):
            self.new_input.clear()  # input from now on, while the model speaks, barges in
            await self.input_transcription(turn)
            await self.speak(tone(reply.partial_ms), 24000, 100, "")
            if reply.wait_for_input:
                try:
                    await asyncio.wait_for(self.new_input.wait(), reply.timeout)
                except TimeoutError:
                    pass
            await self.send({"serverContent": {"interrupted": True}})
            if reply.turn_complete:
                await self.complete_turn({})
            return True
        elif hasattr(reply, "parts"):  # Text, CodeExecution, Parts
            await self.input_transcription(turn)
            chunks = [[{"text": c}] for c in reply.chunks] if getattr(reply, "chunks", None) \
                else [reply.parts()]
            for parts in chunks:
                await self.send({"serverContent": {"modelTurn": {"parts": parts}}})
            await self.finish(turn, " ".join(p.get("text", "") for p in reply.parts()), 0)
            return True
        else:
            await self.close(1011, f"fake_gemini: {type(reply).__name__} cannot answer a Live turn")
        return self.closed

    async def tool_call(self, call: FunctionCall, turn: Turn) -> None:
        if self.resumption:  # no resuming in the middle of a tool call
            await self.send({"sessionResumptionUpdate": {"resumable": False}})
        call_id = call.id or f"function-call-{secrets.token_hex(6)}"
        await self.send({"toolCall": {"functionCalls": [call.call() | {"id": call_id}]}})
        try:
            responses = await asyncio.wait_for(self.tool_responses.get(), getattr(call, "timeout", 30))
        except TimeoutError:
            await self.close(1011, f"No tool response for {call.name} in time.")
            return
        turn.answer = function_results(responses)

    async def speak(self, pcm: bytes, rate: int, chunk_ms: int, transcript: str) -> None:
        step = max(2, rate * 2 * chunk_ms // 1000)
        for i in range(0, len(pcm), step):
            data = base64.b64encode(pcm[i:i + step]).decode()
            await self.send({"serverContent": {"modelTurn": {"parts": [
                {"inlineData": {"mimeType": f"audio/pcm;rate={rate}", "data": data}}]}}})
            if i == 0 and transcript and self.transcribe_out:
                await self.send({"serverContent": {"outputTranscription": {"text": transcript}}})

    async def finish(self, turn: Turn, reply_text: str, reply_ms: int) -> None:
        prompt = count_tokens([turn.prompt]) + (turn.audio_ms or 0) * AUDIO_TOKENS_PER_S // 1000
        response = count_tokens([reply_text]) + reply_ms * AUDIO_TOKENS_PER_S // 1000
        await self.send({"serverContent": {"generationComplete": True}})
        await self.complete_turn({"usageMetadata": {"promptTokenCount": prompt,
                                                    "responseTokenCount": response,
                                                    "totalTokenCount": prompt + response}})

    async def complete_turn(self, extra: dict) -> None:
        # The resumption update goes just before turnComplete, so a client
        # reading with session.receive() (which stops at turnComplete) sees it.
        self.turn_count += 1
        if self.resumption:
            await self.send({"sessionResumptionUpdate": {
                "newHandle": f"fake-handle-{self.number}-{self.turn_count}", "resumable": True}})
        await self.send({"serverContent": {"turnComplete": True}} | extra)


