"""Long-term memory: what each user told Allin about themselves, recalled in later chats (mem0)."""

from __future__ import annotations

import functools
from typing import Any

from psycopg_pool import AsyncConnectionPool

from allin.config import Settings
from allin.memory.options import MemoryOptions
from allin.memory.store import MemoryStore

__all__ = ["MemoryOptions", "MemoryStore", "make_memory_store"]


def make_memory_store(settings: Settings, pool: AsyncConnectionPool, *, db_url: str, embedder: Any,
                      options: MemoryOptions | None = None) -> MemoryStore:
    """The store for these settings: Gemini extracts facts when keyed, statements are kept verbatim offline.

    Instant: mem0 itself is built by `store.open()` or on first use (see `allin.memory.engine`
    for why its environment is set there and not at import).
    """
    from allin.memory.engine import build_mem0

    options = options or MemoryOptions.from_settings(settings)
    factory = functools.partial(build_mem0, settings, db_url=db_url, embedder=embedder, options=options)
    return MemoryStore(pool, factory, infer=settings.gemini_enabled, options=options)
