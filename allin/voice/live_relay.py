"""The socket-free half of the Gemini Live bridge (pipecat style).

- `LiveEvent`: what the bridge reports to the /ws layer.
- `LiveRelay`: server messages in, typed frames out (events for the client,
  tool calls and goAway notices for the bridge); keeps the turn's transcripts
  and the latest resumable handle.
- `FrameQueue`: control frames first, data frames bounded by a byte budget.
- `ReconnectBudget`: capped consecutive reconnects, reset after a stable session.
- `classify_failure`: which connection failures are worth a reconnect.

Tests feed these frames and assert the frames that come out; the bridge in
`gemini_live.py` only wires them to sockets and tasks.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import websockets
from google.genai import errors, types

OUTPUT_RATE = 24_000
"""Gemini Live speaks PCM16 mono at 24 kHz."""

EventKind = Literal["audio", "transcript", "turn_complete", "interrupted", "error", "tool_call", "reconnected"]
Role = Literal["user", "assistant"]


@dataclass
class LiveEvent:
    """One thing the bridge reports to the /ws layer."""

    kind: EventKind
    audio: bytes = b""
    rate: int = OUTPUT_RATE
    role: Role | None = None
    text: str = ""  # transcript: the role's text so far this turn (final: all of it)
    final: bool = False
    input_text: str = ""  # turn_complete: the whole turn; reconnected: a turn lost in the drop
    output_text: str = ""
    # error: live_auth_failed | live_model_not_found | live_rejected | live_unavailable;
    # reconnected: resumed (context kept) | new_session (no resumable handle: context lost)
    code: str = ""
    message: str = ""
    name: str = ""  # tool_call (informational: the bridge answers it itself)
    args: dict | None = None
    passages: list[dict] | None = None  # tool_call: what search returned (for citations)


@dataclass(frozen=True)
class CallTool:
    """The model asked for a function call; the bridge must answer it by `id`."""

    id: str
    name: str
    args: dict


@dataclass(frozen=True)
class CancelTools:
    """The model no longer wants these calls answered."""

    ids: tuple[str, ...]


@dataclass(frozen=True)
class GoAwayNotice:
    """The server will close this connection soon: move to a new one."""

    time_left: str | None


RelayFrame = LiveEvent | CallTool | CancelTools | GoAwayNotice


def rate_of(mime_type: str | None, default: int = OUTPUT_RATE) -> int:
    found = re.search(r"rate=(\d+)", mime_type or "")
    return int(found.group(1)) if found else default


class LiveRelay:
    """Turns `LiveServerMessage`s into frames; pure state, no I/O."""

    def __init__(self) -> None:
        self.handle: str | None = None  # latest handle the server marked resumable
        self.in_turn = False  # the server is hearing or answering a turn
        self._awaiting = False  # a typed question or end of audio went out, no reply yet
        self._typed: list[str] = []
        self._heard: list[str] = []
        self._said: list[str] = []
        self._open: set[Role] = set()  # roles with text not yet sent as final
        self._muted = False  # after an interrupt: drop the rest of this turn's audio

    def process(self, message: types.LiveServerMessage) -> list[RelayFrame]:
        frames: list[RelayFrame] = []
        update = message.session_resumption_update
        # Handles sent while generating or calling tools are not resumable: keep the last good one.
        if update and update.resumable and update.new_handle:
            self.handle = update.new_handle
        if message.server_content:
            frames += self._content(message.server_content)
        if message.tool_call:
            self.in_turn = True
            frames += [CallTool(id=call.id or "", name=call.name or "", args=dict(call.args or {}))
                       for call in message.tool_call.function_calls or []]
        if message.tool_call_cancellation:
            frames.append(CancelTools(tuple(message.tool_call_cancellation.ids or ())))
        if message.go_away:
            frames.append(GoAwayNotice(message.go_away.time_left))
        return frames

    def _content(self, content: types.LiveServerContent) -> list[RelayFrame]:
        frames: list[RelayFrame] = []
        if content.input_transcription:
            frames += self._transcript("user", content.input_transcription)
        for part in (content.model_turn.parts or []) if content.model_turn else []:
            # With AUDIO responses, text parts are the model's thoughts: the words
            # spoken come from the output transcription instead.
            blob = part.inline_data
            if blob and blob.data and (blob.mime_type or "").startswith("audio/"):
                self.in_turn = True
                if not self._muted:
                    frames.append(LiveEvent("audio", audio=blob.data, rate=rate_of(blob.mime_type)))
        if content.output_transcription:
            frames += self._transcript("assistant", content.output_transcription)
        if content.interrupted:
            self._muted = True  # late chunks of the cancelled answer must not reach the client
            frames.append(LiveEvent("interrupted"))
        if content.turn_complete:
            frames += self._complete_turn()
        return frames

    def _transcript(self, role: Role, piece: types.Transcription) -> list[RelayFrame]:
        parts = self._heard if role == "user" else self._said
        if piece.text:
            parts.append(piece.text)
            self._open.add(role)
            self.in_turn = True
        if piece.finished and role in self._open:
            self._open.discard(role)
            return [LiveEvent("transcript", role=role, text="".join(parts).strip(), final=True)]
        return [LiveEvent("transcript", role=role, text="".join(parts).strip())] if piece.text else []

    def _complete_turn(self) -> list[RelayFrame]:
        frames: list[RelayFrame] = [
            LiveEvent("transcript", role=role, text="".join(parts).strip(), final=True)
            for role, parts in (("user", self._heard), ("assistant", self._said)) if role in self._open
        ]
        frames.append(LiveEvent("turn_complete", input_text=self.input_text, output_text=self.output_text))
        self._reset_turn()
        return frames

    @property
    def input_text(self) -> str:
        return " ".join(t for t in [*self._typed, "".join(self._heard).strip()] if t)

    @property
    def output_text(self) -> str:
        return "".join(self._said).strip()

    @property
    def busy(self) -> bool:
        """A turn is under way or asked for: not the moment to change connections."""
        return self.in_turn or self._awaiting

    def expect_reply(self) -> None:
        """The client ended its input (typed question, end of audio); an answer should follow."""
        self._awaiting = True

    def add_user_text(self, text: str) -> None:
        """A typed question went out: it is this turn's input alongside any speech."""
        self._typed.append(text)
        self.expect_reply()

    def interrupt(self) -> None:
        """The client stopped playback: mute the rest of the answer in progress."""
        if self.in_turn:
            self._muted = True

    def drop_turn(self) -> tuple[str, str] | None:
        """The connection went away mid-turn: forget it (a resumed session does not
        know it either) and return its (input, output) text, or None if idle."""
        lost = (self.input_text, self.output_text)
        self._reset_turn()
        return lost if any(lost) else None

    def _reset_turn(self) -> None:
        self._typed, self._heard, self._said = [], [], []
        self._open.clear()
        self._muted = self.in_turn = self._awaiting = False


T = TypeVar("T")


class FrameQueue(Generic[T]):
    """Two lanes for one consumer: control frames go first; data frames keep their
    order, and when the sized ones (audio) pass `max_bytes`, the oldest are dropped."""

    def __init__(self, max_bytes: int, size: Callable[[T], int] = lambda _item: 0) -> None:
        self.max_bytes = max_bytes
        self.size = size
        self.dropped = 0  # sized frames dropped for room, over the queue's life
        self._control: deque[T] = deque()
        self._data: deque[T] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()

    def put_control(self, item: T, *, front: bool = False) -> None:
        (self._control.appendleft if front else self._control.append)(item)
        self._ready.set()

    def put_data(self, item: T, *, front: bool = False) -> int:
        """Queue a data frame; returns how many older sized frames made room for it."""
        (self._data.appendleft if front else self._data.append)(item)
        self._bytes += self.size(item)
        made_room = 0
        while self._bytes > self.max_bytes:
            oldest = next((i for i, x in enumerate(self._data) if self.size(x) and x is not item), None)
            if oldest is None:
                break  # only the new frame is left: keep it
            self._bytes -= self.size(self._data[oldest])
            del self._data[oldest]
            made_room += 1
        self.dropped += made_room
        self._ready.set()
        return made_room

    def drop(self, predicate: Callable[[T], bool]) -> int:
        """Remove queued frames (either lane) matching `predicate`; returns how many."""
        before = len(self)
        self._control = deque(x for x in self._control if not predicate(x))
        self._data = deque(x for x in self._data if not predicate(x))
        self._bytes = sum(self.size(x) for x in self._data)
        return before - len(self)

    def clear(self) -> None:
        self._control.clear()
        self._data.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._control) + len(self._data)

    async def get(self) -> T:
        while not (self._control or self._data):
            self._ready.clear()
            await self._ready.wait()
        if self._control:
            return self._control.popleft()
        item = self._data.popleft()
        self._bytes -= self.size(item)
        return item


class ReconnectBudget:
    """At most `max_reconnects` reconnects in a row; a session that stayed up for
    `stable_after_s` gives the whole budget back."""

    def __init__(self, max_reconnects: int, stable_after_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_reconnects = max_reconnects
        self.stable_after_s = stable_after_s
        self.used = 0
        self._clock = clock
        self._up_since: float | None = None

    def connected(self) -> None:
        self._up_since = self._clock()

    def take(self) -> bool:
        """Ask for one more reconnect after a session ended or a connect failed."""
        if self._up_since is not None and self._clock() - self._up_since >= self.stable_after_s:
            self.used = 0
        self._up_since = None
        if self.used >= self.max_reconnects:
            return False
        self.used += 1
        return True

    def backoff_s(self, base_s: float, cap_s: float = 8.0) -> float:
        """The first reconnect goes at once; later ones wait base, 2*base, ... up to cap."""
        return 0.0 if self.used <= 1 else min(cap_s, base_s * 2 ** (self.used - 2))


@dataclass(frozen=True)
class LiveFailure:
    code: str  # error code for the client, or live_dropped when worth a reconnect
    message: str
    fatal: bool


def classify_failure(exc: BaseException, model: str) -> LiveFailure:
    """Decide whether a connection failure is worth a reconnect.

    The service refuses a bad key or model by closing 1008 right after setup
    (1007 for a malformed request): retrying those would only repeat the refusal.
    """
    if isinstance(exc, errors.APIError):
        code, reason = exc.code, str(exc.details or exc.message or "").strip()
        refused = code in (1007, 1008) or (400 <= (code or 0) < 500 and code not in (408, 429))
        if refused:
            return _refusal(code, reason, model)
        return LiveFailure("live_dropped", f"connection closed ({code}{': ' + reason if reason else ''})", False)
    if isinstance(exc, websockets.InvalidStatus):
        status = exc.response.status_code
        if status in (401, 403) or (400 <= status < 500 and status not in (408, 429)):
            return _refusal(status, f"HTTP {status} on the Live handshake", model)
        return LiveFailure("live_dropped", f"HTTP {status} on the Live handshake", False)
    if isinstance(exc, (ssl.SSLCertVerificationError, websockets.InvalidURI)):  # config, not luck
        return LiveFailure("live_unavailable", f"cannot reach Gemini Live: {exc}", True)
    return LiveFailure("live_dropped", f"connection lost ({type(exc).__name__}: {exc})", False)


def _refusal(code: int | None, reason: str, model: str) -> LiveFailure:
    lowered = reason.lower()
    if code in (401, 403) or any(w in lowered for w in ("api key", "unauthenticated", "permission")):
        return LiveFailure("live_auth_failed",
                           f"Gemini Live refused the API key ({reason or code}). Check GOOGLE_API_KEY.", True)
    if code == 404 or ("models/" in lowered and ("not found" in lowered or "not supported" in lowered)):
        return LiveFailure("live_model_not_found",
                           f"Gemini Live has no live model {model!r} ({reason or code}). Check LIVE_MODEL.", True)
    return LiveFailure("live_rejected", f"Gemini Live refused the session ({code}: {reason})", True)
