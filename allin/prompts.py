"""Prompt texts: files in `prompts/` by default, database versions (admin edits) on top.

The active database version of a prompt wins over the file; rollback makes an
older version active again. Reads are cheap (one indexed row), so every turn
sees an edit at once, on every replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import psycopg

IDENTITY_PHRASE = "Allin, from Team 8"


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str
    version: int  # 0 = the file shipped with the code


@cache
def file_prompt(name: str) -> str:
    return (resources.files("prompts") / f"{name}.md").read_text(encoding="utf-8")


async def active_prompt(conn: psycopg.AsyncConnection | None, name: str = "system") -> Prompt:
    if conn is not None:
        cur = await conn.execute("SELECT version, text FROM prompts WHERE name = %s AND active", (name,))
        row = await cur.fetchone()
        if row is not None:
            return Prompt(name, row["text"], row["version"])
    return Prompt(name, file_prompt(name), 0)
