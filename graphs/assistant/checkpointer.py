"""The Postgres checkpointer for the app's pool.

langgraph-checkpoint-postgres 3.x runs every saver call under one `asyncio.Lock`,
even when the saver holds a connection pool (upstream issue
langchain-ai/langgraph#7259, fix proposed in #7269): every chat of a replica
then waits for every other chat's checkpoint writes, one database round trip
at a time. On a pool each call takes a connection of its own, so calls may
overlap; a semaphore bounds them to part of the pool, leaving connections for
the turns, search and memory that share it.
"""

from __future__ import annotations

import asyncio

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import AsyncConnectionPool


def pooled_checkpointer(pool: AsyncConnectionPool, *, max_concurrent: int | None = None) -> AsyncPostgresSaver:
    """An AsyncPostgresSaver on `pool` whose calls run concurrently (at most `max_concurrent`,
    default half the pool). The pool needs autocommit, dict rows and no prepared statements."""
    saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
    saver.lock = asyncio.Semaphore(max_concurrent or max(1, pool.max_size // 2))  # type: ignore[assignment]
    return saver
