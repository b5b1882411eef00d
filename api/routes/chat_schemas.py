"""Request and response bodies of the chat routes. Every string has a max_length; ids are UUIDs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from allin.chats.store import PREVIEW_CHARS

TITLE_MAX = 200
MESSAGE_MAX = 8000      # one edited question (fork)
QUERY_MAX = 500         # a search query
COMMENT_MAX = 2000      # a feedback comment

NO_NUL = r"^[^\x00]*$"  # Postgres text cannot hold U+0000: refused here (422) rather than failing in storage
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX, pattern=NO_NUL)]
Message = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MESSAGE_MAX,
                                           pattern=NO_NUL)]


class ChatSettings(BaseModel):
    """Per-chat preferences. Unset fields follow the server's defaults."""

    model_config = ConfigDict(extra="forbid")

    retrieval_mode: Literal["chunks", "files"] | None = None
    answer_style: Literal["concise", "normal", "detailed"] | None = None
    # Strict: the schema says boolean/integer, so 0, "yes" or 5.0 are refused rather than coerced.
    voice: StrictBool | None = None
    top_k: StrictInt | None = Field(default=None, ge=1, le=20)
    language: str | None = Field(default=None, min_length=2, max_length=35,
                                 pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$",
                                 description="BCP 47 tag, e.g. en or pt-BR")

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class EffectiveSettings(BaseModel):
    """What a turn in this chat will use: the chat's settings over the server's defaults."""

    retrieval_mode: Literal["chunks", "files"]
    answer_style: Literal["concise", "normal", "detailed"]
    voice: bool
    top_k: int
    language: str | None = None


# --- requests ------------------------------------------------------------------------------------

class ChatStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title | None = None
    settings: ChatSettings | None = None


class ChatRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chat_id: UUID


class ChatConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chat_id: UUID
    settings: ChatSettings = Field(description="Merged into the chat's settings; send null for a field to reset it.")


class ChatRename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title


class ChatFork(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turn_id: UUID = Field(description="A user turn of the chat: the fork starts with it, edited.")
    text: Message


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: Literal[1, -1]
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=COMMENT_MAX,
                                              pattern=NO_NUL)] | None = None


# --- responses -----------------------------------------------------------------------------------

class ChatPublic(BaseModel):
    chat_id: UUID
    title: str
    title_auto: bool
    status: Literal["active", "ended"]
    settings: dict[str, Any]
    topics: list[str]
    forked_from: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime


class ChatListItem(ChatPublic):
    preview: str | None = Field(default=None, max_length=PREVIEW_CHARS, description="Start of the last message")
    preview_role: Literal["user", "assistant"] | None = None
    turn_count: int
    user_turn_count: int


class FeedbackPublic(BaseModel):
    turn_id: UUID
    rating: Literal[1, -1]
    comment: str | None = None
    created_at: datetime


class TurnPublic(BaseModel):
    turn_id: UUID
    chat_id: UUID
    role: Literal["user", "assistant"]
    content: str
    modality: Literal["text", "voice"]
    status: Literal["pending", "complete", "interrupted", "error"]
    reply_to: UUID | None = None
    citations: list[dict[str, Any]] = []
    code: list[dict[str, Any]] | None = None
    attachments: list[Any] = []
    route: str | None = None
    error: str | None = None
    has_audio: bool = False
    created_at: datetime
    feedback: FeedbackPublic | None = None


class EventPublic(BaseModel):
    kind: str
    details: dict[str, Any]
    created_at: datetime


class ChatDetail(BaseModel):
    chat: ChatPublic
    turns: list[TurnPublic]
    events: list[EventPublic]


class ChatResume(BaseModel):
    chat: ChatPublic
    recent_turns: list[TurnPublic]
    settings: EffectiveSettings


class ChatForked(BaseModel):
    chat: ChatPublic
    turns: list[TurnPublic]
    answered: bool = Field(description="Whether the edited question was answered in the new chat.")


class SearchHit(BaseModel):
    chat_id: UUID
    chat_title: str
    turn_id: UUID
    role: Literal["user", "assistant"]
    snippet: str = Field(description="Safe HTML: escaped text, matches wrapped in <mark>…</mark>")
    score: float
    created_at: datetime


class SearchResults(BaseModel):
    items: list[SearchHit]


# --- rows to bodies ------------------------------------------------------------------------------

def chat_public(row: dict) -> ChatPublic:
    return ChatPublic(chat_id=row["id"], **{k: row[k] for k in (
        "title", "title_auto", "status", "settings", "topics", "forked_from", "created_at", "updated_at")})


def chat_list_item(row: dict) -> ChatListItem:
    return ChatListItem(**chat_public(row).model_dump(), preview=row["preview"], preview_role=row["preview_role"],
                        turn_count=row["turn_count"], user_turn_count=row["user_turn_count"])


def turn_public(row: dict, feedback: dict | None = None) -> TurnPublic:
    return TurnPublic(
        turn_id=row["id"], chat_id=row["chat_id"], role=row["role"], content=row["content"],
        modality=row["modality"], status=row["status"], reply_to=row["reply_to"],
        citations=row["citations"] or [], code=row["code"], attachments=row["attachments"] or [],
        route=row["route"], error=row["error"], has_audio=bool(row["audio_ref"]), created_at=row["created_at"],
        feedback=FeedbackPublic(**feedback) if feedback else None,
    )
