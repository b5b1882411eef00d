"""Search over one user's chat history: full text and embeddings, fused by reciprocal rank.

Snippets come from Postgres' `ts_headline` with the matched words marked.
They are returned as safe HTML: the text is escaped first, and only then are
the markers turned into `<mark>` tags, so a turn that contains markup can
never inject it into the page that shows the results. Angle brackets are
swapped for placeholders before `ts_headline` sees the text: its parser
would otherwise drop anything that looks like a tag (`a<b && c>d` loses
`<b && c>`), which mangles code.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import numpy as np
import psycopg

from allin.knowledge.store import ensure_vector_types

RRF_K = 60  # the usual constant: damps the head of each list so both lists matter
# Hamming shortlist size per wanted neighbour: 5x kept recall@30 at 0.99 against exact search (bench data).
SHORTLIST_PER_CANDIDATE = 5
# Private-use code points, removed from the text before ts_headline, so only we can put them there:
# the match markers (set by ts_headline) and stand-ins for < and > (set by the query's translate()).
_START, _STOP, _LT, _GT = "\ue000", "\ue001", "\ue002", "\ue003"
_TRANSLATE_FROM, _TRANSLATE_TO = "<>" + _START + _STOP + _LT + _GT, _LT + _GT
_HEADLINE_OPTIONS = f"StartSel={_START}, StopSel={_STOP}, MaxWords=35, MinWords=15"


@dataclass
class TurnHit:
    chat_id: UUID
    chat_title: str
    turn_id: UUID
    role: str
    snippet: str  # safe HTML: escaped text with <mark>…</mark> around matches
    score: float
    created_at: datetime
    text_rank: int | None
    vector_rank: int | None


_SEARCH_SQL = """
WITH q AS (SELECT websearch_to_tsquery('english', %(text)s) AS tsq),
-- Ranking is CPU per match: a word that occurs in thousands of turns ranks only the latest matches.
fts_matches AS MATERIALIZED (
    SELECT t.id, t.seq, t.tsv FROM chat_turns t, q
    WHERE t.user_id = %(uid)s AND t.tsv @@ q.tsq
    ORDER BY t.seq DESC
    LIMIT %(rank_cap)s
),
fts AS (
    SELECT m.id, row_number() OVER (ORDER BY ts_rank_cd(m.tsv, q.tsq) DESC, m.seq DESC) AS r
    FROM fts_matches m, q
    ORDER BY r
    LIMIT %(pool)s
),
-- Semantic: the user's turns by Hamming distance of their binary-quantised embeddings (an
-- index-only scan of the user's entries), then a shortlist reranked by exact cosine distance.
-- The distance cut comes last, so unrelated turns drop out without changing what is ranked.
vec_shortlist AS MATERIALIZED (
    SELECT t.id FROM chat_turns t
    WHERE %(vec)s::vector IS NOT NULL AND t.user_id = %(uid)s AND t.embedding_bits IS NOT NULL
      AND bit_length(t.embedding_bits) = vector_dims(%(vec)s::vector)
    ORDER BY t.embedding_bits <~> binary_quantize(%(vec)s::vector)
    LIMIT %(shortlist)s
),
vec_nearest AS MATERIALIZED (
    SELECT t.id, t.embedding <=> %(vec)s::vector AS d
    FROM vec_shortlist s JOIN chat_turns t ON t.id = s.id
    WHERE t.embedding IS NOT NULL
    ORDER BY d
    LIMIT %(pool)s
),
vec AS (
    SELECT id, row_number() OVER (ORDER BY d, id) AS r FROM vec_nearest WHERE d < %(max_distance)s
),
fused AS (
    SELECT coalesce(fts.id, vec.id) AS id, fts.r AS tr, vec.r AS vr,
           coalesce(1.0 / (%(k)s + fts.r), 0) + coalesce(1.0 / (%(k)s + vec.r), 0) AS score
    FROM fts FULL OUTER JOIN vec ON fts.id = vec.id
    ORDER BY score DESC, id
    LIMIT %(limit)s
)
SELECT t.chat_id, c.title AS chat_title, t.id AS turn_id, t.role, t.created_at, f.score::float8 AS score,
       f.tr AS text_rank, f.vr AS vector_rank,
       ts_headline('english', translate(left(t.content, 20000), %(tr_from)s, %(tr_to)s), q.tsq, %(options)s)
           AS headline
FROM fused f
JOIN chat_turns t ON t.id = f.id AND t.user_id = %(uid)s
JOIN chats c ON c.id = t.chat_id AND c.user_id = %(uid)s, q
ORDER BY f.score DESC, t.seq DESC
"""


def safe_snippet(headline: str) -> str:
    """Escape everything, then turn our markers (which escaping leaves alone) into <mark> tags."""
    escaped = html.escape(headline, quote=True)
    return (escaped.replace(_LT, "&lt;").replace(_GT, "&gt;")
            .replace(_START, "<mark>").replace(_STOP, "</mark>"))


async def search_turns(conn: psycopg.AsyncConnection, *, user_id: UUID | str, text: str,
                       vector: np.ndarray | None, limit: int = 20, candidates: int = 30,
                       max_distance: float = 0.75, rank_cap: int = 1000) -> list[TurnHit]:
    """The user's turns that best match `text` (and `vector`, when given), best first.

    Each retriever proposes `candidates` turns. `max_distance` (cosine) keeps semantically
    unrelated turns out: without it every query would return the nearest turns, however far.
    Full-text ranking looks at the `rank_cap` most recent matching turns.
    """
    if not user_id:
        raise ValueError("user_id is required: chat search is always scoped to one user")
    if vector is not None:
        await ensure_vector_types(conn)
    params = {
        "uid": str(user_id), "text": text, "pool": max(candidates, limit), "limit": limit, "k": RRF_K,
        "rank_cap": max(rank_cap, candidates), "shortlist": SHORTLIST_PER_CANDIDATE * max(candidates, limit),
        "vec": np.asarray(vector, dtype=np.float32) if vector is not None else None,
        "max_distance": max_distance, "tr_from": _TRANSLATE_FROM, "tr_to": _TRANSLATE_TO,
        "options": _HEADLINE_OPTIONS,
    }
    cur = await conn.execute(_SEARCH_SQL, params, prepare=False)
    return [
        TurnHit(chat_id=row["chat_id"], chat_title=row["chat_title"], turn_id=row["turn_id"], role=row["role"],
                snippet=safe_snippet(row["headline"]), score=row["score"], created_at=row["created_at"],
                text_rank=row["text_rank"], vector_rank=row["vector_rank"])
        for row in await cur.fetchall()
    ]
