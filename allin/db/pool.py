"""The one async connection pool the app shares (built in the lifespan, never at import)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from allin.config import Settings
from allin.db.embedded import start_embedded

# The LangGraph saver needs autocommit (its setup uses CREATE INDEX CONCURRENTLY)
# and no server-side prepared statements (they break behind poolers like PgBouncer).
CONNECTION_KWARGS = {"autocommit": True, "prepare_threshold": None, "row_factory": dict_row}


def resolve_database_url(settings: Settings) -> str:
    """DATABASE_URL when set, else the embedded server (started on demand)."""
    return settings.database_url or start_embedded(settings.data_path)


def describe_url(url: str) -> str:
    """A URL for people to read: kind and place, never the password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host and "host=" in parts.query:
        return f"embedded/unix socket ({parts.query.split('host=')[1].split('&')[0]})"
    return f"postgresql://{parts.username or ''}@{host}:{parts.port or 5432}{parts.path}"


def make_pool(url: str, settings: Settings, *, min_size: int | None = None, max_size: int | None = None) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        url,
        min_size=settings.db_pool_min if min_size is None else min_size,
        max_size=settings.db_pool_max if max_size is None else max_size,
        kwargs={**CONNECTION_KWARGS, "connect_timeout": 3},
        timeout=settings.db_timeout_s,
        # Validate a connection on checkout so a restarted database is noticed at once.
        check=AsyncConnectionPool.check_connection,
        open=False,
        name="allin",
    )


async def ping(pool: AsyncConnectionPool, timeout: float = 1.5) -> bool:
    """True when the database answers within `timeout` seconds."""
    async def _q() -> None:
        async with pool.connection(timeout=timeout) as conn:
            await conn.execute("SELECT 1")

    try:
        await asyncio.wait_for(_q(), timeout)
        return True
    except (asyncio.TimeoutError, psycopg.Error, Exception):
        return False


async def connect_once(url: str, timeout: float = 3.0) -> psycopg.AsyncConnection:
    """A single connection outside the pool (CLI, migrations, startup checks)."""
    return await psycopg.AsyncConnection.connect(url, connect_timeout=max(1, int(timeout)), **CONNECTION_KWARGS)
