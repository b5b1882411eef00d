"""Scripted replies and the request journal of the fake Gemini server.

A test queues replies (`fake.enqueue(Text("hi"))`); each request of the
reply's kind pops the oldest one, and falls back to a deterministic default
when the queue is empty. Every request and Live frame lands in the journal.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

# Script kinds: which requests pop a queued reply.
KINDS = ("generate", "embed", "count_tokens", "upload", "files", "caches", "live")


def split_words(text: str) -> list[str]:
    """Default stream chunking: one chunk per word, trailing spaces kept."""
    return re.findall(r"\s*\S+\s*", text) or [text]


# --- replies -----------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Base of scripted replies; `default_kind` is the queue it goes to."""

    default_kind: ClassVar[str] = "generate"


@dataclass(frozen=True)
class Text(Reply):
    """Model text. `chunks` sets the stream chunks (default: one per word), sent `chunk_delay_s` apart."""

    text: str
    chunks: list[str] | None = None
    finish_reason: str = "STOP"
    chunk_delay_s: float = 0.0

    def parts(self) -> list[dict]:
        return [{"text": self.text}]

    def stream_chunks(self) -> list[list[dict]]:
        return [[{"text": c}] for c in (self.chunks or split_words(self.text))]


def Json(value: Any, chunks: list[str] | None = None) -> Text:  # noqa: N802 (reads like the others)
    """Structured output: `value` serialised as the JSON text of the reply."""
    return Text(json.dumps(value), chunks)


@dataclass(frozen=True)
class CodeExecution(Reply):
    """The code-execution tool's parts: executableCode, codeExecutionResult, text."""

    code: str
    output: str = ""
    text: str = ""
    outcome: str = "OUTCOME_OK"
    language: str = "PYTHON"
    finish_reason: str = "STOP"

    def parts(self) -> list[dict]:
        parts = [
            {"executableCode": {"language": self.language, "code": self.code}},
            {"codeExecutionResult": {"outcome": self.outcome, "output": self.output}},
        ]
        return parts + ([{"text": self.text}] if self.text else [])

    def stream_chunks(self) -> list[list[dict]]:
        head = [[p] for p in self.parts()[:2]]
        return head + ([[{"text": c}] for c in split_words(self.text)] if self.text else [])


@dataclass(frozen=True)
class FunctionCall(Reply):
    """REST: a `functionCall` part. Live: a `toolCall` (see ToolCall)."""

    name: str
    args: dict = field(default_factory=dict)
    id: str | None = None
    finish_reason: str = "STOP"

    def call(self) -> dict:
        return {"name": self.name, "args": self.args} | ({"id": self.id} if self.id else {})

    def parts(self) -> list[dict]:
        return [{"functionCall": self.call()}]

    def stream_chunks(self) -> list[list[dict]]:
        return [self.parts()]


@dataclass(frozen=True)
class ToolCall(FunctionCall):
    """Live: send `toolCall`, wait for the client's tool_response, go on."""

    default_kind: ClassVar[str] = "live"
    timeout: float = 30.0


@dataclass(frozen=True)
class Parts(Reply):
    """Raw candidate parts, for anything the helpers above do not cover."""

    items: list[dict] = field(default_factory=list)
    finish_reason: str = "STOP"

    def parts(self) -> list[dict]:
        return list(self.items)

    def stream_chunks(self) -> list[list[dict]]:
        return [[p] for p in self.items]


STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
DEFAULT_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}


@dataclass(frozen=True)
class Error(Reply):
    """An error reply in Google's shape. Live: closes the socket (1011, or `code` >= 1000)."""

    code: int = 500
    message: str | None = None
    status: str | None = None
    retry_delay: str | None = None  # 429: adds a RetryInfo detail, e.g. "20s"

    def body(self) -> dict:
        error = {
            "code": self.code,
            "message": self.message or DEFAULT_MESSAGES.get(self.code, f"Error {self.code}"),
            "status": self.status or STATUS_NAMES.get(self.code, "UNKNOWN"),
        }
        if self.retry_delay:
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": self.retry_delay}
            ]
        return {"error": error}


@dataclass(frozen=True)
class Delay(Reply):
    """Sleep, then answer with the next queued reply (or the default)."""

    seconds: float


@dataclass(frozen=True)
class Embedding(Reply):
    """Explicit embedding vectors, one per requested text."""

    default_kind: ClassVar[str] = "embed"
    vectors: list[list[float]] = field(default_factory=list)


# Live-only replies.


@dataclass(frozen=True)
class Audio(Reply):
    """Live: PCM16 model audio. Length: `duration_ms`, or 50 ms per character of `text`.

    `text` is the output transcription, `input_text` overrides the input one;
    transcriptions are sent only when the setup asked for them.
    """

    default_kind: ClassVar[str] = "live"
    text: str = ""
    duration_ms: int | None = None
    rate: int = 24000
    chunk_ms: int = 100
    input_text: str | None = None


@dataclass(frozen=True)
class Transcript(Reply):
    """Live event: explicit input/output transcription messages (always sent)."""

    default_kind: ClassVar[str] = "live"
    input: str | None = None
    output: str | None = None


@dataclass(frozen=True)
class Interrupted(Reply):
    """Live barge-in: `partial_ms` of audio, then (after new client input when
    `wait_for_input`) `interrupted: true` and, if `turn_complete`, turnComplete."""

    default_kind: ClassVar[str] = "live"
    partial_ms: int = 200
    wait_for_input: bool = True
    timeout: float = 10.0
    turn_complete: bool = True


@dataclass(frozen=True)
class GoAway(Reply):
    """Live event: `goAway`; closes the socket (1000) after `close_after` s if set."""

    default_kind: ClassVar[str] = "live"
    time_left: str = "5s"
    close_after: float | None = None


@dataclass(frozen=True)
class SessionResumptionUpdate(Reply):
    """Live event: a resumption update (handle generated when None)."""

    default_kind: ClassVar[str] = "live"
    handle: str | None = None
    resumable: bool = True


@dataclass(frozen=True)
class Close(Reply):
    """Live: close the socket with this code and reason."""

    default_kind: ClassVar[str] = "live"
    code: int = 1011
    reason: str = "Internal error."


class Script:
    """FIFO queues of replies, one per kind; thread-safe (tests and server)."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()

    def enqueue(self, reply: Reply, kind: str | None = None) -> None:
        kind = kind or reply.default_kind
        if kind not in KINDS:
            raise ValueError(f"unknown script kind {kind!r}; one of {KINDS}")
        with self._lock:
            self._queues[kind].append(reply)

    def pop(self, kind: str) -> Reply | None:
        with self._lock:
            queue = self._queues[kind]
            return queue.popleft() if queue else None

    def pending(self, kind: str) -> list[Reply]:
        with self._lock:
            return list(self._queues[kind])

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()


# --- journal -----------------------------------------------------------------


def _texts(contents: list[dict] | None) -> list[str]:
    return [p["text"] for c in contents or [] for p in c.get("parts", []) if "text" in p]


def _contents(body: Any) -> list[dict]:
    body = body if isinstance(body, dict) else {}
    return body.get("contents") or body.get("turns") or []


def texts_of(body: Any) -> list[str]:
    """Text parts of a body's contents/turns, or a Live realtime text."""
    text = body.get("text") if isinstance(body, dict) else None
    return _texts(_contents(body)) + ([text] if isinstance(text, str) else [])


def system_text(body: Any) -> str:
    body = body if isinstance(body, dict) else {}
    return "\n".join(_texts([body.get("systemInstruction") or {}]))


def file_uris(body: Any) -> list[str]:
    return [p["fileData"]["fileUri"] for c in _contents(body) for p in c.get("parts", [])
            if "fileData" in p]


def decode_b64(data: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not."""
    data = data.replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


@dataclass
class Entry:
    """One REST request or one Live client frame, as the server received it."""

    kind: str  # generate | embed | count_tokens | upload | files | caches | models | live
    method: str  # HTTP method, or "WS" for Live frames
    path: str
    model: str | None  # bare id, e.g. "gemini-2.5-flash"
    headers: dict[str, str]  # the headers of interest, lower-cased names
    body: Any  # parsed JSON with keys normalised to camelCase; Live: the frame's payload
    raw: Any  # parsed JSON exactly as sent (casing untouched)
    query: dict[str, str] = field(default_factory=dict)
    frame: str | None = None  # Live: setup | clientContent | realtimeInput | toolResponse
    session: int | None = None  # Live: session number
    time: float = field(default_factory=time.time)

    @property
    def stream(self) -> bool:
        return ":streamGenerateContent" in self.path

    @property
    def system_text(self) -> str:
        return system_text(self.body)

    @property
    def contents(self) -> list[dict]:
        return _contents(self.body)

    @property
    def texts(self) -> list[str]:
        return texts_of(self.body)

    @property
    def tools(self) -> list[dict]:
        return (self.body.get("tools") if isinstance(self.body, dict) else None) or []

    @property
    def file_uris(self) -> list[str]:
        return file_uris(self.body)

    @property
    def audio(self) -> bytes:
        """PCM bytes carried by a Live realtimeInput frame."""
        body = self.body if isinstance(self.body, dict) else {}
        blobs = ([body["audio"]] if "audio" in body else []) + body.get("mediaChunks", [])
        return b"".join(decode_b64(b["data"]) for b in blobs if "audio" in b.get("mimeType", "audio"))


class Journal:
    """Append-only, thread-safe list of entries."""

    def __init__(self) -> None:
        self._entries: list[Entry] = []
        self._lock = threading.Lock()
        self._sessions = itertools.count(1)

    def add(self, entry: Entry) -> Entry:
        with self._lock:
            self._entries.append(entry)
        return entry

    def next_session(self) -> int:
        return next(self._sessions)

    def entries(self, kind: str | None = None, frame: str | None = None) -> list[Entry]:
        with self._lock:
            return [
                e for e in self._entries
                if (kind is None or e.kind == kind) and (frame is None or e.frame == frame)
            ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
