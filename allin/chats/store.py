"""Chat records in Postgres. Functions take the owner's id; a chat of another user is "not found"."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

CHAT_COLUMNS = "id, user_id, title, title_auto, status, settings, topics, forked_from, created_at, updated_at"
TURN_COLUMNS = (
    "id, seq, chat_id, role, content, modality, status, reply_to, client_id, audio_ref, citations, code,"
    " attachments, route, prompt_version, error, created_at"
)


class MissingUser(ValueError):
    """Raised when a per-user query is attempted without the user id."""


def _need(user_id: UUID | str | None) -> UUID | str:
    if not user_id:
        raise MissingUser("a user id is required for chat queries")
    return user_id


async def create_chat(conn: psycopg.AsyncConnection, user_id: UUID | str, *, title: str | None = None,
                      settings: dict | None = None, forked_from: dict | None = None,
                      chat_id: UUID | None = None) -> dict:
    cur = await conn.execute(
        f"INSERT INTO chats (id, user_id, title, title_auto, settings, forked_from) VALUES (%s, %s, %s, %s, %s, %s)"
        f" RETURNING {CHAT_COLUMNS}",
        (chat_id or uuid.uuid4(), _need(user_id), title or "New chat", title is None, Jsonb(settings or {}),
         Jsonb(forked_from) if forked_from else None),
    )
    chat = await cur.fetchone()
    await log_event(conn, chat["id"], user_id, "fork" if forked_from else "start", forked_from or {})
    return chat


async def get_chat(conn: psycopg.AsyncConnection, user_id: UUID | str, chat_id: UUID | str) -> dict | None:
    cur = await conn.execute(f"SELECT {CHAT_COLUMNS} FROM chats WHERE id = %s AND user_id = %s",
                             (chat_id, _need(user_id)))
    return await cur.fetchone()


async def touch_chat(conn: psycopg.AsyncConnection, user_id: UUID | str, chat_id: UUID | str) -> None:
    await conn.execute("UPDATE chats SET updated_at = now() WHERE id = %s AND user_id = %s", (chat_id, _need(user_id)))


async def update_chat(conn: psycopg.AsyncConnection, user_id: UUID | str, chat_id: UUID | str,
                      **fields: Any) -> dict | None:
    allowed = {"title", "title_auto", "status", "settings", "topics"}
    sets, values = [], []
    for key, value in fields.items():
        if key not in allowed:
            raise ValueError(f"cannot update {key}")
        sets.append(f"{key} = %s")
        values.append(Jsonb(value) if key == "settings" else value)
    cur = await conn.execute(
        f"UPDATE chats SET {', '.join(sets)}, updated_at = now() WHERE id = %s AND user_id = %s RETURNING {CHAT_COLUMNS}",
        (*values, chat_id, _need(user_id)),
    )
    return await cur.fetchone()


async def delete_chat(conn: psycopg.AsyncConnection, user_id: UUID | str, chat_id: UUID | str) -> bool:
    cur = await conn.execute("DELETE FROM chats WHERE id = %s AND user_id = %s RETURNING id", (chat_id, _need(user_id)))
    return await cur.fetchone() is not None


async def add_turn(conn: psycopg.AsyncConnection, *, user_id: UUID | str, chat_id: UUID | str, role: str,
                   content: str, modality: str = "text", status: str = "complete", reply_to: UUID | None = None,
                   client_id: str | None = None, citations: list | None = None, code: list | None = None,
                   attachments: list | None = None, route: str | None = None, prompt_version: int | None = None,
                   audio_ref: str | None = None, error: str | None = None, turn_id: UUID | None = None) -> dict:
    cur = await conn.execute(
        f"""INSERT INTO chat_turns (id, chat_id, user_id, role, content, modality, status, reply_to, client_id,
                citations, code, attachments, route, prompt_version, audio_ref, error)
            SELECT %s, c.id, c.user_id, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s
            FROM chats c WHERE c.id = %s AND c.user_id = %s
            RETURNING {TURN_COLUMNS}""",
        (turn_id or uuid.uuid4(), role, content, modality, status, reply_to, client_id, Jsonb(citations or []),
         Jsonb(code) if code else None, Jsonb(attachments or []), route, prompt_version, audio_ref, error,
         chat_id, _need(user_id)),
    )
    row = await cur.fetchone()
    if row is None:
        raise LookupError("chat not found")
    await touch_chat(conn, user_id, chat_id)
    return row


async def find_user_turn_by_client_id(conn: psycopg.AsyncConnection, user_id: UUID | str, chat_id: UUID | str,
                                      client_id: str) -> dict | None:
    cur = await conn.execute(
        f"SELECT {TURN_COLUMNS} FROM chat_turns WHERE chat_id = %s AND user_id = %s AND client_id = %s AND role = 'user'",
        (chat_id, _need(user_id), client_id),
    )
    return await cur.fetchone()


async def list_turns(conn: psycopg.AsyncConnection, user_id: UUID | str, chat_id: UUID | str, *,
                     after_seq: int | None = None, limit: int = 1000) -> list[dict]:
    cur = await conn.execute(
        f"SELECT {TURN_COLUMNS} FROM chat_turns WHERE chat_id = %s AND user_id = %s AND seq > %s"
        " ORDER BY seq LIMIT %s",
        (chat_id, _need(user_id), after_seq or 0, limit),
    )
    return await cur.fetchall()


async def recent_turns(conn: psycopg.AsyncConnection, user_id: UUID | str, chat_id: UUID | str, n: int) -> list[dict]:
    cur = await conn.execute(
        f"SELECT * FROM (SELECT {TURN_COLUMNS} FROM chat_turns WHERE chat_id = %s AND user_id = %s"
        " ORDER BY seq DESC LIMIT %s) t ORDER BY seq",
        (chat_id, _need(user_id), n),
    )
    return await cur.fetchall()


async def log_event(conn: psycopg.AsyncConnection, chat_id: UUID | str, user_id: UUID | str, kind: str,
                    details: dict | None = None) -> None:
    await conn.execute(
        "INSERT INTO chat_events (chat_id, user_id, kind, details) VALUES (%s, %s, %s, %s)",
        (chat_id, _need(user_id), kind, Jsonb(details or {})),
    )


async def list_events(conn: psycopg.AsyncConnection, user_id: UUID | str, chat_id: UUID | str) -> list[dict]:
    cur = await conn.execute(
        "SELECT kind, details, created_at FROM chat_events WHERE chat_id = %s AND user_id = %s ORDER BY id",
        (chat_id, _need(user_id)),
    )
    return await cur.fetchall()


def iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None
