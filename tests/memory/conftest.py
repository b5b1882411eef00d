"""Memory tests: the real store (mem0 over the test's Postgres, the local MiniLM), no fakes of our own code."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from allin.db.pool import make_pool
from allin.knowledge.embeddings import get_local_embedder
from allin.memory import MemoryStore, make_memory_store


@pytest.fixture
async def pool(settings, db_url) -> AsyncIterator[AsyncConnectionPool]:
    p = make_pool(db_url, settings, min_size=0, max_size=4)
    await p.open()
    yield p
    await p.close()


@pytest.fixture
async def memory(settings, pool, db_url) -> AsyncIterator[MemoryStore]:
    """The offline store, as the app builds it."""
    store = make_memory_store(settings, pool, db_url=db_url, embedder=get_local_embedder())
    yield store
    await store.aclose()

