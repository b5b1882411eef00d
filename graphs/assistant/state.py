"""Graph state. Plain dicts and messages only, so checkpoints stay msgpack-serialisable."""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

Route = Literal["knowledge", "code", "chat", "identity"]


class InputState(TypedDict):
    """What a caller sends: the new user message(s)."""

    messages: Annotated[list[AnyMessage], add_messages]


class State(InputState, total=False):
    # Per-turn results; each turn's classify resets them so nothing leaks across turns.
    route: Route
    passages: list[dict]      # Passage fields (allin.models.context.Passage)
    files: list[dict]         # AttachedFile fields: documents given whole as Gemini files (files mode)
    code_runs: list[dict]     # CodeRun fields
    memories: list[str]
    attachments: list[str]    # text extracted from files attached to this turn
    citations: list[dict]     # the citations the answer actually used
    prompt_version: int
    error: str | None
