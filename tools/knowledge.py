"""The knowledge-search tool the graph's `retrieve` node (and the live-voice model) call."""

from __future__ import annotations

import asyncio
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from allin.knowledge.search import Hit, hybrid_search
from allin.models.context import Passage


def hits_to_passages(hits: list[Hit]) -> list[Passage]:
    return [
        Passage(
            n=i,
            document_id=str(h.document_id),
            title=h.title,
            file=h.path,
            content=h.content,
            page=h.page,
            section=h.section if h.section else (f"lines {h.line_start}-{h.line_end}" if h.line_start else None),
            kind=h.kind,
            score=round(float(h.score), 5),
        )
        for i, h in enumerate(hits, start=1)
    ]


async def search_knowledge(
    pool: AsyncConnectionPool,
    embedder,
    query: str,
    *,
    user_id: UUID | str,
    top_k: int = 6,
) -> list[Passage]:
    """Passages the user may see, best first, numbered for citation."""
    if not query.strip():
        return []
    # Embedding is CPU work (~10 ms); keep it off the event loop.
    vector = await asyncio.to_thread(embedder.embed_query, query)
    async with pool.connection() as conn:
        hits = await hybrid_search(conn, user_id=user_id, text=query, vector=vector, limit=top_k)
    return hits_to_passages(hits)
