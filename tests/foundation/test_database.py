"""The schema lives in a real Postgres with pgvector, and migrations are idempotent."""

import asyncio

import psycopg
import pytest

from allin.db.migrate import migrate_url
from allin.db.pool import make_pool, ping


async def test_pgvector_and_checkpointer_tables_exist(db_url):
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        (version,) = await cur.fetchone()
        assert version.count(".") == 2
        cur = await conn.execute("SELECT '[1,2,3]'::vector <=> '[1,2,3]'::vector")
        assert (await cur.fetchone())[0] == pytest.approx(0.0)
        cur = await conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        tables = {r[0] for r in await cur.fetchall()}
    assert {"users", "chats", "chat_turns", "documents", "chunks", "prompts", "jobs"} <= tables
    assert {"checkpoints", "checkpoint_writes", "checkpoint_blobs", "checkpoint_migrations"} <= tables


async def test_migrations_are_idempotent(db_url):
    assert await migrate_url(db_url, embedding_dim=384) == []


async def test_vector_columns_follow_the_embedding_dimension(db_url):
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
        )
        assert (await cur.fetchone())[0] == "vector(384)"


async def test_pool_ping(db_url, settings):
    pool = make_pool(db_url, settings)
    await pool.open(wait=True)
    try:
        assert await ping(pool)
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT 1 AS one")
            assert (await cur.fetchone()) == {"one": 1}  # dict_row, as the app expects
    finally:
        await pool.close()


async def test_pool_replaces_a_connection_the_server_closed(db_url, settings):
    """The checkout check skips the round trip for healthy connections but still notices a dead one."""
    pool = make_pool(db_url, settings, min_size=1, max_size=1)
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            pid = (await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone())["pid"]
        with psycopg.connect(db_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        await asyncio.sleep(0.2)  # the termination notice reaches the idle connection's socket
        async with pool.connection() as conn:  # no error: the dead one was dropped, a new one made
            new_pid = (await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone())["pid"]
        assert new_pid != pid
    finally:
        await pool.close()


def test_sync_pool_check_replaces_a_connection_the_server_closed(db_url):
    """The same check for synchronous pools (mem0's)."""
    import time

    from psycopg_pool import ConnectionPool

    from allin.db.pool import check_if_suspect_sync

    with ConnectionPool(db_url, min_size=1, max_size=1, kwargs={"autocommit": True},
                        check=check_if_suspect_sync) as pool:
        with pool.connection() as conn:
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        with pool.connection() as conn:  # healthy: the same connection again
            assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
        with psycopg.connect(db_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        time.sleep(0.2)
        with pool.connection() as conn:
            assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] != pid
