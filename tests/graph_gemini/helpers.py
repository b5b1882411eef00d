"""A small /ws client for these tests (the real `websockets` library)."""

from __future__ import annotations

from tests.support import ws_client
from tests.support.ws_client import recv_json  # noqa: F401 - re-exported for these tests


async def hello(ws, token: str, chat_id: str | None = None) -> dict:
    ready = await ws_client.hello(ws, token, chat_id=chat_id)
    assert ready["type"] == "ready", ready
    return ready


async def ask(ws, text: str, frame_id: str = "q", timeout: float = 60) -> list[dict]:
    """Send a text turn; the frames answering it, up to turn_complete or error."""
    return await ws_client.ask(ws, text, frame_id=frame_id, timeout=timeout)


def of(frames: list[dict], kind: str) -> list[dict]:
    return [f for f in frames if f["type"] == kind]


# The fake's journal holds every Gemini call of the app, after-turn work included (chat titles,
# memory extraction): pick a turn's calls by what they are, not by their position.

def classify_calls(fake) -> list:
    """Route classification: the router's instructions as systemInstruction."""
    return [e for e in fake.requests("generate") if e.system_text.startswith("You route messages")]


def code_calls(fake) -> list:
    """Code execution: the only calls that carry tools."""
    return [e for e in fake.requests("generate") if e.tools]


def answer_calls(fake) -> list:
    """The streamed answers: the system prompt as systemInstruction, no tools."""
    return [e for e in fake.requests("generate")
            if e.stream and not e.tools and "Allin, from Team 8" in e.system_text]
