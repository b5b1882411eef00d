"""A chat's LangGraph thread (thread_id = chat id): branch it at a turn for a fork, delete it.

Human messages carry their user turn's id, so a stored turn can be found in
the thread's checkpoint history. A fork writes the messages that came before
the chosen turn into the new chat's thread, renamed to the copied turns' ids.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage


def thread_config(chat_id: UUID | str) -> dict:
    return {"configurable": {"thread_id": str(chat_id)}}


async def messages_before(graph: Any, chat_id: UUID | str, turn_id: UUID | str) -> list[BaseMessage] | None:
    """The thread's messages in the checkpoint just before the human message `turn_id` was added.

    Walks the checkpoint history newest first: the first checkpoint (going back) that no longer holds
    the message is the one its run started from. None when the thread never held it.
    """
    target = str(turn_id)
    seen = False
    async for snapshot in graph.aget_state_history(thread_config(chat_id)):
        messages = list((snapshot.values or {}).get("messages") or [])
        if any(m.id == target for m in messages):
            seen = True
        elif seen:
            return messages
    return [] if seen else None


def _renamed(message: BaseMessage, id_map: dict[UUID, UUID]) -> BaseMessage:
    try:
        new_id = id_map.get(UUID(str(message.id)))
    except ValueError:
        new_id = None
    return message.model_copy(update={"id": str(new_id)}) if new_id else message


def messages_from_turns(turns: list[dict]) -> list[BaseMessage]:
    """A thread history rebuilt from stored turns (when the original thread has lost them)."""
    out: list[BaseMessage] = []
    for turn in turns:
        cls = HumanMessage if turn["role"] == "user" else AIMessage
        out.append(cls(content=turn["content"], id=str(turn["id"])))
    return out


async def branch_thread(graph: Any, *, from_chat: UUID, to_chat: UUID, turn_id: UUID,
                        id_map: dict[UUID, UUID], copied_turns: list[dict]) -> str:
    """Seed `to_chat`'s thread with `from_chat`'s history before `turn_id`; say where it came from.

    Written as if `synthesize` produced it, so the thread is at rest (next node END) and the next
    turn starts from START like any other.
    """
    earlier = await messages_before(graph, from_chat, turn_id)
    source = "checkpoint"
    if earlier is None:
        earlier, source = messages_from_turns(copied_turns), "turns"
    else:
        earlier = [_renamed(m, id_map) for m in earlier]
    if earlier:
        await graph.aupdate_state(thread_config(to_chat), {"messages": earlier}, as_node="synthesize")
    return source


async def delete_thread(graph: Any, chat_id: UUID | str) -> None:
    checkpointer = getattr(graph, "checkpointer", None)
    if checkpointer is not None and hasattr(checkpointer, "adelete_thread"):
        await checkpointer.adelete_thread(str(chat_id))
