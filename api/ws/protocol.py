"""Client frames, validated by schema; server frames are plain dicts built here."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

MAX_TEXT_CHARS = 16_000


def _no_nul(value: str) -> str:
    # Stored strings (the question, the client id) go to Postgres, whose text cannot hold U+0000.
    if "\x00" in value:
        raise ValueError("may not contain NUL (U+0000) characters")
    return value


ClientId = Annotated[str, Field(max_length=64), AfterValidator(_no_nul)]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: ClientId | None = None


class Hello(_Frame):
    type: Literal["hello"]
    token: Annotated[str, Field(min_length=1, max_length=200)]
    chat_id: UUID | None = None


class Text(_Frame):
    type: Literal["text"]
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS), AfterValidator(_no_nul)]
    attachments: Annotated[list[UUID], Field(max_length=5)] = []


class Audio(_Frame):
    type: Literal["audio"]
    data: Annotated[str, Field(max_length=1_400_000)]  # base64 of ≤ ~1 MB of PCM16


class AudioEnd(_Frame):
    type: Literal["audio_end"]


class Interrupt(_Frame):
    type: Literal["interrupt"]


class Ping(_Frame):
    type: Literal["ping"]


ClientFrame = Annotated[Union[Hello, Text, Audio, AudioEnd, Interrupt, Ping], Field(discriminator="type")]
_adapter: TypeAdapter[Any] = TypeAdapter(ClientFrame)


class FrameError(ValueError):
    def __init__(self, code: str, message: str, frame_id: str | None = None):
        super().__init__(message)
        self.code, self.message, self.frame_id = code, message, frame_id


def _reply_id(value: Any) -> str | None:
    """The frame's id to answer an error with; None when it cannot be sent back as UTF-8 text.

    JSON escapes can spell a lone surrogate ("\\ud800"), which no text frame can carry back:
    echoing it would fail the send and close the socket with 1011.
    """
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def parse_client_frame(raw: str) -> Hello | Text | Audio | AudioEnd | Interrupt | Ping:
    """Parse one JSON text frame, or raise FrameError naming the problem."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        # ValueError, not only JSONDecodeError: an integer over Python's 4,300-digit limit raises a plain one.
        raise FrameError("bad_json", "frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise FrameError("bad_frame", "frame must be a JSON object")
    frame_id = _reply_id(data.get("id"))
    kind = data.get("type")
    if not isinstance(kind, str):
        raise FrameError("bad_frame", "frame needs a string 'type'", frame_id)
    if kind not in {"hello", "text", "audio", "audio_end", "interrupt", "ping"}:
        raise FrameError("unknown_type", f"unknown frame type {kind[:40]!r}", frame_id)
    try:
        return _adapter.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"][1:]) or "frame"
        raise FrameError("bad_frame", f"{kind}: {where}: {err['msg']}", frame_id) from None


def error_frame(code: str, message: str, reply_to: str | None = None) -> dict:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if reply_to:
        frame["reply_to"] = reply_to
    return frame


# Close codes (also in docs/websocket.md).
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_CHAT_NOT_FOUND = 4404
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_IDLE = 4000
CLOSE_SLOW_CONSUMER = 4001
