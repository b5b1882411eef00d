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


DEFAULT_TITLE = "New chat"


class MissingUser(ValueError):
    """Raised when a per-user query is attempted without the user id."""


def _need(user_id: UUID | str | None) -> UUID | str:
    if not user_id:
        raise MissingUser("a user id is required for chat queries")
    return user_id


async def create_chat(conn: psycopg.AsyncConnection, user_id: UUID | str, *, title: str | None = None,
                      settings: dict | None = None, forked_from: dict | None = None,
                      chat_id: UUID | None = None, title_auto: bool | None = None,
                      topics: list[str] | None = None) -> dict:
    """A new chat. `title_auto` defaults to "no title given" (automatic titles may replace it)."""
    cur = await conn.execute(
        f"INSERT INTO chats (id, user_id, title, title_auto, settings, forked_from, topics)"
        f" VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {CHAT_COLUMNS}",
        (chat_id or uuid.uuid4(), _need(user_id), title or DEFAULT_TITLE,
         (title is None) if title_auto is None else title_auto, Jsonb(settings or {}),
         Jsonb(forked_from) if forked_from else None, list(topics or [])),
    )
    chat = await cur.fetchone()
    await log_event(conn, chat["id"], user_id, "fork" if forked_from else "start", forked_from or {})
    return chat


async def get_chat(conn: psycopg.AsyncConnection, user_id: UUID | str, chat_id: UUID | str) -> dict | None:
    cur = await conn.execute(f"SELECT {CHAT_COLUMNS} FROM chats WHERE id = %s AND user_id = %s",
                             (chat_id, _need(user_id)))
    return await cur.fetchone()


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
    # One statement: the chat's updated_at moves with the insert (two round trips per turn fewer).
    cur = await conn.execute(
        f"""WITH c AS (UPDATE chats SET updated_at = now() WHERE id = %s AND user_id = %s RETURNING id, user_id)
            INSERT INTO chat_turns (id, chat_id, user_id, role, content, modality, status, reply_to, client_id,
                citations, code, attachments, route, prompt_version, audio_ref, error)
            SELECT %s, c.id, c.user_id, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM c
            RETURNING {TURN_COLUMNS}""",
        (chat_id, _need(user_id), turn_id or uuid.uuid4(), role, content, modality, status, reply_to, client_id,
         Jsonb(citations or []), Jsonb(code) if code else None, Jsonb(attachments or []), route, prompt_version,
         audio_ref, error),
    )
    row = await cur.fetchone()
    if row is None:
        raise LookupError("chat not found")
    return row


async def unanswered_user_turns(conn: psycopg.AsyncConnection, *, older_than_s: float, limit: int = 100) -> list[dict]:
    """User turns (of the last week) that no reply answers, older than `older_than_s`: what a process that
    died mid-turn left behind. Every turn that ends, in any way, stores a reply, so nothing else matches."""
    cur = await conn.execute(
        f"""SELECT {TURN_COLUMNS}, user_id FROM chat_turns u
            WHERE u.role = 'user' AND u.created_at < now() - make_interval(secs => %s)
              AND u.created_at > now() - interval '7 days'
              AND NOT EXISTS (SELECT 1 FROM chat_turns a WHERE a.reply_to = u.id)
            ORDER BY u.seq LIMIT %s""",
        (older_than_s, limit),
    )
    return await cur.fetchall()


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


# --- listing, lookups and forks -------------------------------------------------------------

PREVIEW_CHARS = 160


async def list_chats(conn: psycopg.AsyncConnection, user_id: UUID | str, *, limit: int,
                     after: tuple[datetime, UUID] | None = None) -> list[dict]:
    """The user's chats, most recently updated first, with the last message's preview and turn counts.

    Keyset pagination on (updated_at, id): `after` is the last row of the previous page.
    """
    cur = await conn.execute(
        f"""SELECT {", ".join("c." + col for col in CHAT_COLUMNS.split(", "))},
                   left(last.content, %(preview)s) AS preview, last.role AS preview_role,
                   coalesce(n.total, 0) AS turn_count, coalesce(n.questions, 0) AS user_turn_count
            FROM chats c
            LEFT JOIN LATERAL (SELECT t.content, t.role FROM chat_turns t WHERE t.chat_id = c.id
                               ORDER BY t.seq DESC LIMIT 1) last ON true
            LEFT JOIN LATERAL (SELECT count(*) AS total, count(*) FILTER (WHERE t.role = 'user') AS questions
                               FROM chat_turns t WHERE t.chat_id = c.id) n ON true
            WHERE c.user_id = %(uid)s
              AND (%(after_ts)s::timestamptz IS NULL OR (c.updated_at, c.id) < (%(after_ts)s, %(after_id)s::uuid))
            ORDER BY c.updated_at DESC, c.id DESC
            LIMIT %(limit)s""",
        {"uid": _need(user_id), "preview": PREVIEW_CHARS, "limit": limit,
         "after_ts": after[0] if after else None, "after_id": after[1] if after else None},
    )
    return await cur.fetchall()


async def get_turn(conn: psycopg.AsyncConnection, user_id: UUID | str, turn_id: UUID | str) -> dict | None:
    cur = await conn.execute(f"SELECT {TURN_COLUMNS} FROM chat_turns WHERE id = %s AND user_id = %s",
                             (turn_id, _need(user_id)))
    return await cur.fetchone()


async def count_turns(conn: psycopg.AsyncConnection, user_id: UUID | str, chat_id: UUID | str,
                      role: str | None = None) -> int:
    cur = await conn.execute(
        "SELECT count(*) AS n FROM chat_turns WHERE chat_id = %s AND user_id = %s AND (%s::text IS NULL OR role = %s)",
        (chat_id, _need(user_id), role, role),
    )
    return int((await cur.fetchone())["n"])


async def copy_turns(conn: psycopg.AsyncConnection, user_id: UUID | str, *, from_chat: UUID | str,
                     to_chat: UUID | str, before_seq: int) -> dict[UUID, UUID]:
    """Copy the turns of `from_chat` that come before `before_seq` into `to_chat`, in order.

    Copies get new ids (returned as old id -> new id); replies point at the copies; embeddings and
    timestamps are kept, so search finds the fork's history without re-embedding. Client message
    ids are not copied: they belong to the original sends.
    """
    cur = await conn.execute(
        "SELECT id, reply_to FROM chat_turns WHERE chat_id = %s AND user_id = %s AND seq < %s ORDER BY seq",
        (from_chat, _need(user_id), before_seq),
    )
    rows = await cur.fetchall()
    mapping = {row["id"]: uuid.uuid4() for row in rows}
    if not rows:
        return mapping
    async with conn.cursor() as c:
        await c.executemany(
            """INSERT INTO chat_turns (id, chat_id, user_id, role, content, modality, status, reply_to, audio_ref,
                    citations, code, attachments, route, prompt_version, error, created_at, embedding)
               SELECT %s, d.id, t.user_id, t.role, t.content, t.modality, t.status, %s, t.audio_ref,
                    t.citations, t.code, t.attachments, t.route, t.prompt_version, t.error, t.created_at, t.embedding
               FROM chat_turns t JOIN chats d ON d.id = %s AND d.user_id = t.user_id
               WHERE t.id = %s AND t.user_id = %s""",
            [(mapping[row["id"]], mapping.get(row["reply_to"]), to_chat, row["id"], user_id) for row in rows],
        )
    return mapping


async def set_auto_title(conn: psycopg.AsyncConnection, user_id: UUID | str, chat_id: UUID | str, *,
                         title: str, topics: list[str]) -> bool:
    """Set an automatic title and topics, unless the user has named the chat meanwhile."""
    cur = await conn.execute(
        "UPDATE chats SET title = %s, topics = %s WHERE id = %s AND user_id = %s AND title_auto RETURNING id",
        (title, topics, chat_id, _need(user_id)),
    )
    return await cur.fetchone() is not None


# --- feedback ----------------------------------------------------------------------------------

async def upsert_feedback(conn: psycopg.AsyncConnection, user_id: UUID | str, turn_id: UUID | str, *,
                          rating: int, comment: str | None) -> dict | None:
    """Store (or replace) the user's rating of one of their turns; None when the turn is not theirs."""
    cur = await conn.execute(
        """INSERT INTO feedback (turn_id, user_id, rating, comment)
           SELECT t.id, t.user_id, %s, %s FROM chat_turns t WHERE t.id = %s AND t.user_id = %s
           ON CONFLICT (turn_id) DO UPDATE SET rating = EXCLUDED.rating, comment = EXCLUDED.comment,
               created_at = now()
           RETURNING turn_id, rating, comment, created_at""",
        (rating, comment, turn_id, _need(user_id)),
    )
    return await cur.fetchone()


async def feedback_for_chat(conn: psycopg.AsyncConnection, user_id: UUID | str,
                            chat_id: UUID | str) -> dict[UUID, dict]:
    cur = await conn.execute(
        """SELECT f.turn_id, f.rating, f.comment, f.created_at FROM feedback f
           JOIN chat_turns t ON t.id = f.turn_id
           WHERE t.chat_id = %s AND t.user_id = %s AND f.user_id = t.user_id""",
        (chat_id, _need(user_id)),
    )
    return {row["turn_id"]: row for row in await cur.fetchall()}


def iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None
