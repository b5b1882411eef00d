"""Embeddings of chat turns, for semantic history search.

Turns are stored first and embedded afterwards (a turn's own question and
answer after it, and in batches by anyone who calls `embed_pending_turns` to
catch up), so a slow or missing embedder never delays an answer.

`TurnEmbeddingBatcher` gathers the exchanges that finish close together:
they share one embedder call and one UPDATE (at 50 turns a second, one
statement and one thread hop instead of a dozen; MiniLM also runs a batch
faster than its texts one by one).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

import numpy as np
from loguru import logger
from psycopg_pool import AsyncConnectionPool

from allin.knowledge.store import ensure_vector_types

# MiniLM reads at most 256 word pieces; more text only costs tokenizer time.
EMBED_CHARS = 2000


class TextEmbedder(Protocol):
    def embed(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised float32 row per text."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """One L2-normalised float32 vector."""
        ...


async def embed_pending_turns(pool: AsyncConnectionPool, embedder: TextEmbedder, user_id: UUID | str | None = None,
                              limit: int = 256) -> int:
    """Embed up to `limit` turns that have no embedding yet (newest first); return how many were stored.

    With `user_id`, only that user's turns (what runs after one of their turns); without, anyone's
    (a background catch-up). Embedding runs in a worker thread: it is CPU work.
    """
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, left(content, %s) AS content FROM chat_turns"
            " WHERE embedding IS NULL AND (%s::uuid IS NULL OR user_id = %s::uuid) ORDER BY seq DESC LIMIT %s",
            (EMBED_CHARS, str(user_id) if user_id else None, str(user_id) if user_id else None, limit),
        )
        rows = await cur.fetchall()
    if not rows:
        return 0
    stored = await embed_turns(pool, embedder, [(row["id"], row["content"]) for row in rows])
    logger.debug("embedded {} chat turns", stored)
    return stored


async def embed_turns(pool: AsyncConnectionPool, embedder: TextEmbedder,
                      turns: list[tuple[UUID | str, str | None]]) -> int:
    """Embed these (turn id, text) pairs and store the vectors of those still without one."""
    if not turns:
        return 0
    texts = [(text or " ")[:EMBED_CHARS] for _, text in turns]
    vectors = np.asarray(await asyncio.to_thread(embedder.embed, texts), dtype=np.float32)
    if vectors.shape[0] != len(turns):
        raise ValueError(f"embedder returned {vectors.shape[0]} vectors for {len(turns)} texts")
    async with pool.connection() as conn:
        await ensure_vector_types(conn)
        # One statement for all of them; `embedding IS NULL` again: a concurrent run may have stored them.
        cur = await conn.execute(
            "UPDATE chat_turns t SET embedding = v.embedding"
            " FROM unnest(%s::uuid[], %b::vector[]) AS v(id, embedding)"  # %b: vectors sent binary, not as text
            " WHERE t.id = v.id AND t.embedding IS NULL",
            ([turn_id for turn_id, _ in turns], list(vectors)),
        )
    return cur.rowcount


class TurnEmbeddingBatcher:
    """Embeds submitted turns in the background, in batches: what arrives within `linger_s` of the
    first waiting turn (or while the previous batch runs) goes in one call, up to `max_batch` turns.

    Best effort, as the after-turn step always was: a failed batch is logged, its turns stay without
    an embedding, and `on_failure` gets their users so their next turn catches up. `drain` waits for
    what was submitted (shutdown, tests).
    """

    def __init__(self, pool: AsyncConnectionPool, embedder: TextEmbedder, *, linger_s: float = 0.2,
                 max_batch: int = 128, on_failure: Callable[[set[Any]], None] | None = None) -> None:
        self.pool = pool
        self.embedder = embedder
        self.linger_s = linger_s
        self.max_batch = max_batch
        self.on_failure = on_failure
        self._waiting: deque[tuple[Any, list[tuple[UUID | str, str | None]]]] = deque()  # (user id, turns)
        self._worker: asyncio.Task | None = None

    def submit(self, user_id: Any, turns: list[tuple[UUID | str, str | None]]) -> None:
        if not turns:
            return
        self._waiting.append((user_id, turns))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="turn-embeddings")

    async def _run(self) -> None:
        await asyncio.sleep(self.linger_s)
        while self._waiting:
            batch: list[tuple[Any, list]] = []
            size = 0
            while self._waiting and (not batch or size + len(self._waiting[0][1]) <= self.max_batch):
                user_turns = self._waiting.popleft()
                batch.append(user_turns)
                size += len(user_turns[1])
            try:
                await embed_turns(self.pool, self.embedder, [turn for _, turns in batch for turn in turns])
            except Exception as exc:  # noqa: BLE001 - the turns stay unembedded; catch-up finds them
                logger.warning("could not embed {} chat turns: {}", size, exc)
                if self.on_failure is not None:
                    self.on_failure({user for user, _ in batch})

    async def drain(self, timeout: float | None = None) -> None:
        worker = self._worker
        if worker is not None and not worker.done():
            await asyncio.wait({worker}, timeout=timeout)
