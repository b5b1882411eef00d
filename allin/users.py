"""Users and their bearer tokens. Only a SHA-256 of each token is stored.

Tokens are 256-bit random strings, so a fast hash is enough (no password
stretching needed); lookups go by hash and the final check is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import psycopg

Role = Literal["admin", "user"]
TOKEN_PREFIX = "allin_"


@dataclass(frozen=True)
class User:
    id: UUID
    name: str
    role: Role
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class UserExists(Exception):
    pass


class UserNotFound(Exception):
    pass


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _user(row: dict) -> User:
    return User(id=row["id"], name=row["name"], role=row["role"], created_at=row["created_at"])


async def authenticate(conn: psycopg.AsyncConnection, token: str) -> User | None:
    if not token or len(token) > 200:
        return None
    digest = hash_token(token)
    cur = await conn.execute(
        "SELECT id, name, role, created_at, token_hash FROM users WHERE token_hash = %s AND revoked_at IS NULL",
        (digest,),
    )
    row = await cur.fetchone()
    if row is None or not hmac.compare_digest(row["token_hash"], digest):
        return None
    return _user(row)


async def create_user(conn: psycopg.AsyncConnection, name: str, role: Role = "user") -> tuple[User, str]:
    token = new_token()
    try:
        cur = await conn.execute(
            "INSERT INTO users (name, role, token_hash) VALUES (%s, %s, %s) RETURNING id, name, role, created_at",
            (name, role, hash_token(token)),
        )
    except psycopg.errors.UniqueViolation:
        raise UserExists(name) from None
    return _user(await cur.fetchone()), token


async def list_users(conn: psycopg.AsyncConnection, *, include_revoked: bool = False) -> list[dict]:
    cur = await conn.execute(
        "SELECT id, name, role, created_at, rotated_at, revoked_at FROM users"
        + ("" if include_revoked else " WHERE revoked_at IS NULL")
        + " ORDER BY created_at, name"
    )
    return await cur.fetchall()


async def get_user(conn: psycopg.AsyncConnection, *, name: str | None = None, user_id: UUID | None = None) -> User:
    if user_id is not None:
        cur = await conn.execute("SELECT id, name, role, created_at FROM users WHERE id = %s AND revoked_at IS NULL", (user_id,))
    else:
        cur = await conn.execute("SELECT id, name, role, created_at FROM users WHERE name = %s AND revoked_at IS NULL", (name,))
    row = await cur.fetchone()
    if row is None:
        raise UserNotFound(str(name or user_id))
    return _user(row)


async def rotate_token(conn: psycopg.AsyncConnection, *, name: str | None = None, user_id: UUID | None = None) -> tuple[User, str]:
    """A new token for the user; the old one stops working at once. Also re-enables a revoked user."""
    token = new_token()
    where, arg = ("id = %s", user_id) if user_id is not None else ("name = %s", name)
    cur = await conn.execute(
        f"UPDATE users SET token_hash = %s, rotated_at = now(), revoked_at = NULL WHERE {where}"
        " RETURNING id, name, role, created_at",
        (hash_token(token), arg),
    )
    row = await cur.fetchone()
    if row is None:
        raise UserNotFound(str(name or user_id))
    return _user(row), token


async def revoke(conn: psycopg.AsyncConnection, *, name: str | None = None, user_id: UUID | None = None) -> User:
    """Disable the user's token; their chats stay (an admin may rotate to re-enable)."""
    where, arg = ("id = %s", user_id) if user_id is not None else ("name = %s", name)
    # The token hash is replaced so even a leaked old token can never match again.
    cur = await conn.execute(
        f"UPDATE users SET revoked_at = now(), token_hash = %s WHERE {where} AND revoked_at IS NULL"
        " RETURNING id, name, role, created_at",
        ("revoked:" + secrets.token_hex(16), arg),
    )
    row = await cur.fetchone()
    if row is None:
        raise UserNotFound(str(name or user_id))
    return _user(row)


async def count_users(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute("SELECT count(*) AS n FROM users")
    return (await cur.fetchone())["n"]


async def ensure_first_admin(conn: psycopg.AsyncConnection) -> str | None:
    """On a fresh database, create the `admin` user and return its token (else None).

    The advisory lock keeps two replicas starting together from both creating one.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7261)")
        if await count_users(conn):
            return None
        _, token = await create_user(conn, "admin", "admin")
        return token
