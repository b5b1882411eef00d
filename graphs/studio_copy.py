"""Copy a stored chat into a LangGraph Studio thread, to replay and step through it there.

`langgraph dev` runs the exported graph (graphs/studio.py) with its own
persistence, not the app's Postgres. This reads a chat's messages from the
app's checkpointed thread (thread_id = chat id), or from its stored turns
when the thread no longer holds the whole chat, and writes them into a new Studio thread with
langgraph-sdk: one state update per turn, as if `synthesize` had produced
it, so Studio's history shows every turn and any of them can be forked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

GRAPH_ID = "assistant"  # langgraph.json


@dataclass
class StoredChat:
    chat_id: str
    user_id: str
    title: str
    messages: list[BaseMessage]
    source: str  # "checkpoint" | "turns"


class ChatNotFound(LookupError):
    pass


async def read_chat(conn: psycopg.AsyncConnection, chat_id: UUID | str) -> StoredChat:
    """The chat's conversation as the assistant graph saw it (operator tool: any user's chat)."""
    cur = await conn.execute("SELECT id, user_id, title FROM chats WHERE id = %s", (str(chat_id),))
    chat = await cur.fetchone()
    if chat is None:
        raise ChatNotFound(str(chat_id))
    saved = await AsyncPostgresSaver(conn).aget_tuple({"configurable": {"thread_id": str(chat_id)}})  # type: ignore[arg-type]
    messages = list(((saved.checkpoint.get("channel_values") or {}).get("messages") or []) if saved else [])
    source = "checkpoint"
    cur = await conn.execute(
        "SELECT id, role, content FROM chat_turns WHERE chat_id = %s AND status <> 'pending' ORDER BY seq",
        (str(chat_id),))
    turns = await cur.fetchall()
    # The thread keeps only the exchanges the model still sees (history_max_turns): once it has let
    # go of the chat's first turn, the stored turns are the whole conversation.
    if not messages or (turns and messages[0].id != str(turns[0]["id"])):
        messages = [(HumanMessage if t["role"] == "user" else AIMessage)(content=t["content"], id=str(t["id"]))
                    for t in turns]
        source = "turns"
    return StoredChat(str(chat["id"]), str(chat["user_id"]), chat["title"], messages, source)


def message_json(message: BaseMessage) -> dict[str, Any]:
    """A message as the LangGraph server's `add_messages` reads it back."""
    out: dict[str, Any] = {"type": message.type, "content": message.content, "id": message.id}
    if message.additional_kwargs:
        out["additional_kwargs"] = message.additional_kwargs
    return out


def turns_of(messages: list[BaseMessage]) -> list[list[BaseMessage]]:
    """Messages grouped per turn: each group starts at a human message."""
    groups: list[list[BaseMessage]] = []
    for message in messages:
        if isinstance(message, HumanMessage) or not groups:
            groups.append([])
        groups[-1].append(message)
    return groups


async def copy_to_studio(chat: StoredChat, url: str, *, graph_id: str = GRAPH_ID) -> dict[str, Any]:
    """A new Studio thread holding the chat; returns {thread_id, turns, messages, source}."""
    from langgraph_sdk import get_client

    client = get_client(url=url)
    thread = await client.threads.create(graph_id=graph_id, metadata={
        "copied_from_chat": chat.chat_id, "title": chat.title, "source": chat.source, "user_id": chat.user_id})
    turns = turns_of(chat.messages)
    for group in turns:
        await client.threads.update_state(thread["thread_id"], {"messages": [message_json(m) for m in group]},
                                          as_node="synthesize")
    return {"thread_id": thread["thread_id"], "turns": len(turns), "messages": len(chat.messages),
            "source": chat.source}
