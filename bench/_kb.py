"""Shared set-up for the knowledge benches: a migrated Postgres, a pool, a real user."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpus"

from psycopg_pool import AsyncConnectionPool  # noqa: E402

from allin.db.migrate import migrate_url  # noqa: E402
from allin.db.pool import CONNECTION_KWARGS  # noqa: E402
from allin.knowledge.embeddings import MINILM_DIM  # noqa: E402


@contextlib.asynccontextmanager
async def database(url: str | None = None) -> AsyncIterator[str]:
    """`url` (or DATABASE_URL) as is, else a throwaway cluster from the bundled Postgres."""
    url = url or os.environ.get("DATABASE_URL")
    if url:
        await migrate_url(url, embedding_dim=MINILM_DIM)
        yield url
        return
    from tests.support.pg import PgCluster

    tmp = Path(tempfile.mkdtemp(prefix="allinbench", dir="/tmp"))
    cluster = PgCluster(tmp / "data")
    cluster.init()
    with (tmp / "data" / "postgresql.conf").open("a") as f:
        f.write("shared_buffers = 512MB\nmax_wal_size = 4GB\n")
    cluster.start()
    try:
        url = cluster.url()
        await migrate_url(url, embedding_dim=MINILM_DIM)
        yield url
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.asynccontextmanager
async def pool(url: str, size: int = 4) -> AsyncIterator[AsyncConnectionPool]:
    p = AsyncConnectionPool(url, min_size=1, max_size=size, kwargs=dict(CONNECTION_KWARGS), open=False)
    await p.open()
    try:
        yield p
    finally:
        await p.close()


async def make_user(p: AsyncConnectionPool, name: str = "bench") -> UUID:
    async with p.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO users (name, role, token_hash) VALUES (%s, 'user', %s)"
            " ON CONFLICT (name) DO UPDATE SET role = 'user' RETURNING id",
            (name, secrets.token_hex(16)))
        return (await cur.fetchone())["id"]
