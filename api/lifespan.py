"""Startup and shutdown: the database, migrations, the first admin, background monitors."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator

import psycopg
from fastapi import FastAPI
from loguru import logger

from allin.db.migrate import migrate, setup_checkpointer_tables
from allin.db.pool import connect_once, make_pool, resolve_database_url
from allin.users import ensure_first_admin
from api.state import Resources

DB_CHECK_INTERVAL_S = 0.5


async def _prepare_database(res: Resources) -> None:
    """Migrate and make sure an admin exists; safe to call again until it succeeds."""
    conn = await connect_once(res.db_url, timeout=2)
    try:
        await migrate(conn, embedding_dim=res.settings.embedding_dim)
        await setup_checkpointer_tables(conn)
        token = await ensure_first_admin(conn)
    finally:
        await conn.close()
    res.migrated = True
    if token:
        res.login_token = token
        # stdout, like Jupyter: the one place a person (or `make run`) sees the first login link.
        print(
            f"\nAllin is ready. Open this link to sign in as admin (shown once):\n"
            f"    {res.settings.base_url}/?token={token}\n",
            file=sys.stdout,
            flush=True,
        )
    else:
        print(
            f"\nAllin is ready at {res.settings.base_url}/ "
            "(lost your login link? run: allin users rotate admin)\n",
            file=sys.stdout,
            flush=True,
        )


async def _watch_database(res: Resources) -> None:
    """Keep `db_ok` fresh with a dedicated connection, so /health never waits on a busy pool."""
    conn: psycopg.AsyncConnection | None = None
    while True:
        ok = False
        try:
            if not res.migrated:
                await _prepare_database(res)
            if conn is None or conn.closed:
                conn = await connect_once(res.db_url, timeout=1)
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel and hang shutdown.
            async with asyncio.timeout(1.0):
                await conn.execute("SELECT 1")
            ok = True
        except (Exception, asyncio.TimeoutError) as exc:  # noqa: BLE001 - any failure means "down"
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            conn = None
            if res.db_ok:
                logger.warning("database unreachable: {}", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if ok and not res.db_ok:
            if res.db_checked_at:
                logger.info("database reachable again")
            if res.pool is not None:
                # Replace connections broken during the outage now rather than on first use.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await res.pool.check()
        res.db_ok, res.db_checked_at = ok, time.time()
        res.metrics.db_up.set(1 if ok else 0)
        if res.pool is not None:
            stats = res.pool.get_stats()
            res.metrics.db_pool_size.labels("size").set(stats.get("pool_size", 0))
            res.metrics.db_pool_size.labels("available").set(stats.get("pool_available", 0))
        await asyncio.sleep(DB_CHECK_INTERVAL_S)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    res: Resources = app.state.res
    settings = res.settings
    res.db_url = await asyncio.to_thread(resolve_database_url, settings)
    res.pool = make_pool(res.db_url, settings)
    await res.pool.open(wait=False)
    try:
        await _prepare_database(res)
        res.db_ok, res.db_checked_at = True, time.time()
    except Exception as exc:  # noqa: BLE001 - the watcher keeps trying; /ready says 503 meanwhile
        logger.error("database not ready at startup ({}); will keep retrying", str(exc).splitlines()[0])
    watcher = asyncio.create_task(_watch_database(res), name="db-watch")
    for start in app.state.on_startup:
        await start(res)
    try:
        yield
    finally:
        for stop in reversed(app.state.on_shutdown):
            with contextlib.suppress(Exception):
                await stop(res)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await res.pool.close(timeout=5)
