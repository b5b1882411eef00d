"""Versioned, idempotent schema migrations.

Plain SQL files in `migrations/`, applied in name order, each in its own
transaction, recorded in `schema_migrations`. An advisory lock makes
concurrent starts (several replicas) apply them once. SQL may use
`{embedding_dim}`, filled from settings, because pgvector columns carry
their dimension.
"""

from __future__ import annotations

from importlib import resources

import psycopg
from loguru import logger

from allin.db.pool import connect_once

_LOCK_KEY = 0x616C6C696E  # "allin"


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("allin.db") / "migrations"
    files = sorted((f.name, f.read_text(encoding="utf-8")) for f in folder.iterdir() if f.name.endswith(".sql"))
    return files


async def migrate(conn: psycopg.AsyncConnection, *, embedding_dim: int) -> list[str]:
    """Apply pending migrations on `conn` (autocommit); return the versions applied."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {row["version"] if isinstance(row, dict) else row[0] for row in await cur.fetchall()}
        for name, sql in migration_files():
            version = name.removesuffix(".sql")
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql.replace("{embedding_dim}", str(int(embedding_dim))))
                await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            logger.info("applied migration {}", version)
            applied.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


async def setup_checkpointer_tables(conn: psycopg.AsyncConnection) -> None:
    """LangGraph's checkpoint tables (its own idempotent migrations)."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY + 1,))
    try:
        await AsyncPostgresSaver(conn).setup()
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY + 1,))


async def migrate_url(url: str, *, embedding_dim: int) -> list[str]:
    conn = await connect_once(url)
    try:
        applied = await migrate(conn, embedding_dim=embedding_dim)
        await setup_checkpointer_tables(conn)
        return applied
    finally:
        await conn.close()
