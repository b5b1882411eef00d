"""The one async connection pool the app shares (built in the lifespan, never at import)."""

from __future__ import annotations

import asyncio
import select
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

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


def make_pool(url: str, settings: Settings, *, min_size: int | None = None, max_size: int | None = None,
              name: str = "allin", **connection_options: str) -> AsyncConnectionPool:
    """`connection_options`: server settings for every connection (e.g. synchronous_commit="off")."""
    options = " ".join(f"-c {key}={value}" for key, value in connection_options.items())
    return AsyncConnectionPool(
        url,
        min_size=settings.db_pool_min if min_size is None else min_size,
        max_size=settings.db_pool_max if max_size is None else max_size,
        kwargs={**CONNECTION_KWARGS, "connect_timeout": 3, **({"options": options} if options else {})},
        timeout=settings.db_timeout_s,
        # Validate a connection on checkout so a restarted database is noticed at once.
        check=check_if_suspect,
        open=False,
        name=name,
    )


async def check_if_suspect(conn: psycopg.AsyncConnection) -> None:
    """The pool's checkout check, without a round trip in the usual case.

    An idle connection has nothing to read unless the server closed it (restart,
    crash, terminated backend: an error message and/or EOF are waiting on the
    socket); only then is the server asked. The plain check cost a round trip
    per checkout, about a third of a turn's statements.
    """
    if _server_spoke(conn):
        await AsyncConnectionPool.check_connection(conn)


def check_if_suspect_sync(conn: psycopg.Connection) -> None:
    """`check_if_suspect` for synchronous pools (mem0's)."""
    if _server_spoke(conn):
        ConnectionPool.check_connection(conn)


def _server_spoke(conn: psycopg.Connection | psycopg.AsyncConnection) -> bool:
    """Something (an error, EOF) is waiting on an idle connection's socket."""
    if conn.closed:
        raise psycopg.OperationalError("connection closed")
    poller = select.poll()  # not select.select: past 1,024 open sockets (WebSockets) it cannot take the fd
    poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


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
