"""Long-term memory in the app: built at startup, fed after each completed turn, closed at shutdown.

`start_memory` runs before `start_assistant` so the assistant's recall step
gets `res.extras["memory"]`. It also hangs the memory write on the turn
runner's `on_turn_done`, in front of whatever after-turn work is already
there (`allin.chats.after_turn` when wired in `create_app`): both run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from allin.chats import store as chat_store
from allin.memory import MemoryOptions, MemoryStore, make_memory_store
from api.state import Resources

AfterTurn = Callable[[dict, Any], Awaitable[Any]]  # returns what changed on the chat (a dict) or None


async def start_memory(res: Resources) -> None:
    settings = res.settings
    options = MemoryOptions.from_settings(settings)
    if not options.enabled or res.pool is None:
        return
    try:
        embedder = res.extras.get("embedder_override")
        if embedder is None:
            from allin.knowledge.embedder_choice import get_embedder

            embedder = get_embedder(settings)
        # mem0 itself is imported on first use (MemoryStore.open says why not here).
        memory = make_memory_store(settings, res.pool, db_url=res.db_url, embedder=embedder, options=options)
    except Exception as exc:  # noqa: BLE001 - the assistant works without memory
        logger.error("long-term memory is off: {}", exc)
        return
    res.extras["memory"] = memory
    res.extras["on_turn_done"] = remember_then(res, memory, res.extras.get("on_turn_done"))


async def stop_memory(res: Resources) -> None:
    memory: MemoryStore | None = res.extras.get("memory")
    if memory is not None:
        await memory.aclose()


def remember_then(res: Resources, memory: MemoryStore, after: AfterTurn | None) -> AfterTurn:
    """The runner's after-turn callback: schedule the memory write, then run `after` (if any)."""

    async def on_turn_done(chat: dict, result: Any) -> Any:
        try:
            await remember_turn_of(res, memory, chat, result)
        except Exception as exc:  # noqa: BLE001 - memory is best effort; titles etc. still run
            logger.warning("could not schedule the memory write: {}", exc)
        return await after(chat, result) if after is not None else None

    return on_turn_done


async def remember_turn_of(res: Resources, memory: MemoryStore, chat: dict, result: Any) -> None:
    """Start remembering the user's side of a completed turn (in the background), keyed by the user turn."""
    if getattr(result, "status", "complete") != "complete" or res.pool is None:
        return
    user_id = chat["user_id"]
    question = getattr(result, "question", "")
    if not question:  # a result made elsewhere: read the stored words
        async with res.pool.connection() as conn:
            turn = await chat_store.get_turn(conn, user_id, result.user_turn_id)
        question = (turn or {}).get("content") or ""
    if not question:
        return
    memory.remember_later(user_id, question, result.content or "", turn_id=result.user_turn_id)
