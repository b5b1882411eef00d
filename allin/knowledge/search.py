"""Hybrid retrieval: Postgres full-text and pgvector results fused by reciprocal rank.

Only documents the caller may see are searched (team-wide, or listing them).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from uuid import UUID

import numpy as np
import psycopg

from allin.knowledge.store import ensure_vector_types

RRF_K = 60  # the usual constant: damps the head of each list so both lists matter
# Full text ORs a question's words, so its top ranks are noisier than the vector's:
# a larger k flattens them. On bench/retrieval_eval.py hybrid hit@1 0.79 -> 0.82, MRR 0.88 -> 0.90.
TEXT_RRF_K = 2 * RRF_K


@dataclass
class Hit:
    chunk_id: int
    document_id: UUID
    title: str
    path: str
    kind: str
    page: int | None
    section: str | None
    line_start: int | None
    line_end: int | None
    content: str
    score: float
    vector_rank: int | None
    text_rank: int | None


_VISIBLE = "d.status = 'ready' AND (d.allowed_users IS NULL OR %(uid)s::uuid = ANY(d.allowed_users))"
_FILTERS = (
    " AND (%(doc)s::uuid IS NULL OR c.document_id = %(doc)s::uuid)"
    " AND (%(kind)s::text IS NULL OR c.kind = %(kind)s::text)"
)

_HYBRID_SQL = f"""
WITH q AS (
    -- OR the question's lexemes: natural questions rarely contain every word of the answer.
    -- `pairs` (any two of them) is what is ranked first: on a big corpus an OR of common words
    -- matches most chunks, and ranking them all is what made full text slow.
    SELECT nullif(replace(plainto_tsquery('english', %(text)s)::text, '&', '|'), '')::tsquery AS tsq,
           %(pairs)s::tsquery AS pairs
),
vec AS (
    SELECT c.id, row_number() OVER (ORDER BY c.embedding <=> %(vec)s) AS r
    FROM chunks c JOIN documents d ON d.id = c.document_id
    WHERE {_VISIBLE}{_FILTERS}
    ORDER BY c.embedding <=> %(vec)s
    LIMIT %(pool)s
),
fts_pairs AS (
    -- ts_rank (term frequency, normalised by 1 + log(length)) rather than ts_rank_cd: cover
    -- density rewards lexemes near each other, which an OR of a question's words rarely has;
    -- on bench/retrieval_eval.py it lifts full-text hit@1 from 0.50 to 0.68, hybrid from 0.71 to 0.79.
    SELECT id, row_number() OVER (ORDER BY rank DESC, id) AS r FROM (
        SELECT c.id, ts_rank(c.tsv, q.tsq, 1) AS rank
        FROM chunks c JOIN documents d ON d.id = c.document_id, q
        WHERE q.pairs IS NOT NULL AND c.tsv @@ q.pairs AND {_VISIBLE}{_FILTERS}
        LIMIT %(cap)s
    ) m ORDER BY rank DESC, id LIMIT %(pool)s
),
fts_any AS (
    -- Fewer than `pool` chunks share two of the words (a small corpus, a short question):
    -- after those, the chunks with any one of them.
    SELECT id, (SELECT count(*) FROM fts_pairs) + row_number() OVER (ORDER BY rank DESC, id) AS r FROM (
        SELECT c.id, ts_rank(c.tsv, q.tsq, 1) AS rank
        FROM chunks c JOIN documents d ON d.id = c.document_id, q
        WHERE (SELECT count(*) FROM fts_pairs) < %(pool)s
          AND q.tsq IS NOT NULL AND c.tsv @@ q.tsq AND {_VISIBLE}{_FILTERS}
          AND c.id NOT IN (SELECT id FROM fts_pairs)
        LIMIT %(cap)s
    ) m ORDER BY rank DESC, id LIMIT %(pool)s
),
fts AS (
    SELECT * FROM (SELECT * FROM fts_pairs UNION ALL SELECT * FROM fts_any) f ORDER BY r LIMIT %(pool)s
),
fused AS (
    SELECT coalesce(vec.id, fts.id) AS id, vec.r AS vr, fts.r AS tr,
           %(wv)s * coalesce(1.0 / (%(k)s + vec.r), 0) + %(wt)s * coalesce(1.0 / (%(kt)s + fts.r), 0) AS score
    FROM vec FULL OUTER JOIN fts ON vec.id = fts.id
)
SELECT c.id AS chunk_id, c.document_id, d.title, d.path, c.kind, c.page, c.section, c.line_start, c.line_end,
       c.content, f.score, f.vr AS vector_rank, f.tr AS text_rank
FROM fused f JOIN chunks c ON c.id = f.id JOIN documents d ON d.id = c.document_id
ORDER BY f.score DESC, c.id
LIMIT %(limit)s
"""


_LEXEME = re.compile(r"'((?:[^']|'')*)'")
MAX_PAIR_LEXEMES = 8  # 28 pairs: enough for a question, bounded for the planner
# Full text ranks at most this many matching chunks (exact below it). Past it, on a big knowledge
# base, a question made of its most common words would otherwise rank most of it (bench/search.py);
# the vector branch still searches everything.
FTS_RANK_CAP = 4000


async def _pairs_query(conn: psycopg.AsyncConnection, text: str) -> str | None:
    """A tsquery matching chunks with at least two of the question's lexemes (one lexeme: itself)."""
    cur = await conn.execute("SELECT plainto_tsquery('english', %s)::text AS q", (text,), prepare=False)
    quoted = list(dict.fromkeys(f"'{m}'" for m in _LEXEME.findall((await cur.fetchone())["q"])))[:MAX_PAIR_LEXEMES]
    if len(quoted) < 2:
        return quoted[0] if quoted else None
    return " | ".join(f"({a} & {b})" for a, b in itertools.combinations(quoted, 2))


async def hybrid_search(
    conn: psycopg.AsyncConnection,
    *,
    user_id: UUID | str,
    text: str,
    vector: np.ndarray,
    limit: int = 6,
    candidates: int = 40,
    document_id: UUID | None = None,
    kind: str | None = None,
    vector_weight: float = 1.0,
    text_weight: float = 1.0,
) -> list[Hit]:
    """Top `limit` chunks by RRF over `candidates` from each retriever.

    Set a weight to 0 for a single retriever (the evaluation compares all three).
    """
    if not user_id:
        raise ValueError("user_id is required: retrieval is always scoped to a caller")
    await ensure_vector_types(conn)
    # Iterative HNSW scans keep filtered vector search (access lists) from coming back short.
    await conn.execute("SET hnsw.iterative_scan = relaxed_order")
    pairs = await _pairs_query(conn, text[:2000])
    params = {
        "uid": str(user_id), "text": text[:2000], "pairs": pairs, "cap": FTS_RANK_CAP, "vec": np.asarray(vector, dtype=np.float32),
        "pool": candidates, "limit": limit, "k": RRF_K, "kt": TEXT_RRF_K, "wv": vector_weight, "wt": text_weight,
        "doc": str(document_id) if document_id else None, "kind": kind,
    }
    cur = await conn.execute(_HYBRID_SQL, params, prepare=False)
    return [Hit(**row) for row in await cur.fetchall()]
