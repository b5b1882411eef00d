"""Prompt texts: files in `prompts/` by default, database versions (admin edits) on top.

The active database version of a prompt wins over the file; rollback makes an
older version active again (version 0 = the file shipped with the code).
`current_prompt` is what turns read: the active prompt, kept for up to
PROMPT_MAX_AGE_S per process (a turn used to spend one of its few database
round trips on it). An edit is seen at once by the process that made it and
within that time by every other replica.
"""

from __future__ import annotations

import re
import time
import weakref
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from uuid import UUID

import psycopg

IDENTITY_PHRASE = "Allin, from Team 8"
FILE_VERSION = 0
# A system prompt rides along with every model call: a cap keeps a paste accident from
# multiplying the cost (and latency) of every turn. The shipped prompt is ~2,400 chars.
PROMPT_MAX_CHARS = 20_000
PROMPT_MAX_AGE_S = 1.0


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str
    version: int  # 0 = the file shipped with the code


class PromptInvalid(ValueError):
    """A prompt text an admin may not activate; `code` is stable, the message fit to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PromptVersionNotFound(LookupError):
    pass


@cache
def file_prompt(name: str) -> str:
    return (resources.files("prompts") / f"{name}.md").read_text(encoding="utf-8")


async def active_prompt(conn: psycopg.AsyncConnection | None, name: str = "system") -> Prompt:
    if conn is not None:
        cur = await conn.execute("SELECT version, text FROM prompts WHERE name = %s AND active", (name,))
        row = await cur.fetchone()
        if row is not None:
            return Prompt(name, row["text"], row["version"])
    return Prompt(name, file_prompt(name), FILE_VERSION)


# pool (one per database) -> name -> (monotonic time read, prompt)
_recent: weakref.WeakKeyDictionary[Any, dict[str, tuple[float, Prompt]]] = weakref.WeakKeyDictionary()


async def current_prompt(pool: Any, name: str = "system", *, max_age_s: float = PROMPT_MAX_AGE_S) -> Prompt:
    """The active prompt, read from `pool`'s database at most `max_age_s` ago (None: the file)."""
    if pool is None:
        return await active_prompt(None, name)
    recent = _recent.setdefault(pool, {})
    seen = recent.get(name)
    now = time.monotonic()
    if seen is not None and now - seen[0] < max_age_s:
        return seen[1]
    async with pool.connection() as conn:
        prompt = await active_prompt(conn, name)
    recent[name] = (now, prompt)
    return prompt


def forget_current_prompt(name: str | None = None) -> None:
    """This process changed the active prompt: its next turn reads it again."""
    for recent in list(_recent.values()):
        if name is None:
            recent.clear()
        else:
            recent.pop(name, None)


def validate_prompt_text(text: str, *, name: str = "system", max_chars: int = PROMPT_MAX_CHARS) -> str:
    """The text to store (line endings normalised), or PromptInvalid saying what is wrong."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise PromptInvalid("prompt_empty", "The prompt is empty; write the instructions Allin should follow.")
    if len(text) > max_chars:
        raise PromptInvalid("prompt_too_long",
                            f"The prompt has {len(text):,} characters; the limit is {max_chars:,}.")
    # The identity is not negotiable (DESIGN "Identity"): an edit may reword anything else.
    if name == "system" and IDENTITY_PHRASE.lower() not in " ".join(text.split()).lower():
        raise PromptInvalid("prompt_identity_missing",
                            f'The prompt must keep Allin\'s identity: include the words "{IDENTITY_PHRASE}".')
    return text


async def list_prompt_versions(conn: psycopg.AsyncConnection, name: str = "system") -> list[dict]:
    """Stored versions, newest first, with their author's name (text left out: fetch one to read it)."""
    cur = await conn.execute(
        """SELECT p.version, p.active, p.note, p.created_at, length(p.text) AS chars, u.name AS author
           FROM prompts p LEFT JOIN users u ON u.id = p.author_id
           WHERE p.name = %s ORDER BY p.version DESC""",
        (name,),
    )
    return await cur.fetchall()


async def get_prompt_version(conn: psycopg.AsyncConnection, version: int, name: str = "system") -> Prompt:
    if version == FILE_VERSION:
        return Prompt(name, file_prompt(name), FILE_VERSION)
    cur = await conn.execute("SELECT text FROM prompts WHERE name = %s AND version = %s", (name, version))
    row = await cur.fetchone()
    if row is None:
        raise PromptVersionNotFound(version)
    return Prompt(name, row["text"], version)


async def _lock(conn: psycopg.AsyncConnection, name: str) -> None:
    # Two admins saving at once (on two replicas) must not both flip `active`: serialise per prompt name.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('allin.prompts:' || %s))", (name,))


async def save_prompt_version(conn: psycopg.AsyncConnection, text: str, *, author_id: UUID | str | None,
                              note: str | None = None, name: str = "system",
                              max_chars: int = PROMPT_MAX_CHARS) -> Prompt:
    """Validate and store `text` as a new version, and make it the active one."""
    text = validate_prompt_text(text, name=name, max_chars=max_chars)
    async with conn.transaction():
        await _lock(conn, name)
        await conn.execute("UPDATE prompts SET active = false WHERE name = %s AND active", (name,))
        cur = await conn.execute(
            "INSERT INTO prompts (name, text, note, author_id, active) VALUES (%s, %s, %s, %s, true) RETURNING version",
            (name, text, note, author_id),
        )
        version = (await cur.fetchone())["version"]
    forget_current_prompt(name)
    return Prompt(name, text, version)


async def activate_prompt_version(conn: psycopg.AsyncConnection, version: int, name: str = "system") -> Prompt:
    """Roll back (or forward) to `version`; 0 makes the shipped file the active prompt again."""
    async with conn.transaction():
        await _lock(conn, name)
        prompt = await get_prompt_version(conn, version, name)
        await conn.execute("UPDATE prompts SET active = false WHERE name = %s AND active", (name,))
        if version != FILE_VERSION:
            await conn.execute("UPDATE prompts SET active = true WHERE name = %s AND version = %s", (name, version))
    forget_current_prompt(name)
    return prompt


def prompt_sections(text: str) -> list[str]:
    """The prompt's top-level Markdown headings, in order (shown next to versions to compare them)."""
    return [m.group(1).strip() for m in re.finditer(r"^#\s+(.+)$", text, re.MULTILINE)]
