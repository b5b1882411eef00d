"""Embeddings of chat turns, for semantic history search.

Turns are stored first and embedded afterwards (a turn's own question and
answer after it, and in batches by anyone who calls `embed_pending_turns` to
catch up), so a slow or missing embedder never delays an answer.
"""

from __future__ import annotations

import asyncio
from typing import Protocol
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
