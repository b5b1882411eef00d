"""Hybrid retrieval: Postgres full-text and pgvector results fused by reciprocal rank.

Only documents the caller may see are searched (team-wide, or listing them).
"""

from __future__ import annotations

import itertools
import re
import time
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
    -- `tsq` (all of them) ranks; the `pairs` and `anchors` parameters only pick which chunks
    -- get ranked (see _candidate_queries): on a big corpus an OR of common words matches most
    -- chunks. They are compared as parameters, not as columns of q, so the planner estimates
    -- their matches from the tsv statistics: a bitmap over a rare word's chunks, a plain scan
    -- that stops at the cap when most chunks match.
    SELECT nullif(replace(plainto_tsquery('english', %(text)s)::text, '&', '|'), '')::tsquery AS tsq
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
        WHERE c.tsv @@ %(pairs)s::tsquery AND {_VISIBLE}{_FILTERS}
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
          AND c.tsv @@ %(anchors)s::tsquery AND {_VISIBLE}{_FILTERS}
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
# Full text ranks at most this many matching chunks (exact below it): fetching a chunk and ranking
# its tsvector costs ~5 us, so this bounds the text branch (100k chunks in bench/search.py: 4000 ->
# 1000 took p95 from ~40 to ~27 ms under load). Past it, the first matches found are ranked; the
# candidates come from the question's rarest words (_anchor_lexemes), so these are telling ones.
FTS_RANK_CAP = 1000
# Lexeme frequencies come from ANALYZE (pg_stats.most_common_elems of chunks.tsv); they move
# slowly, so one read per process and database every few minutes is plenty.
LEXEME_STATS_TTL_S = 300.0

# (host, port, dbname) -> (read at, estimated rows per listed lexeme, rows for an unlisted one)
_lexeme_stats: dict[tuple, tuple[float, dict[str, float], float]] = {}


async def _lexeme_rows(conn: psycopg.AsyncConnection) -> tuple[dict[str, float], float] | None:
    """Estimated chunks containing each common lexeme, and an upper bound for the others; None
    before the first ANALYZE of chunks (then nothing is pruned). Cached LEXEME_STATS_TTL_S."""
    key = (conn.info.host, conn.info.port, conn.info.dbname)
    cached = _lexeme_stats.get(key)
    if cached and time.monotonic() - cached[0] < LEXEME_STATS_TTL_S:
        return (cached[1], cached[2]) if cached[1] else None
    cur = await conn.execute(
        "SELECT s.most_common_elems::text::text[] AS lexemes, s.most_common_elem_freqs AS freqs,"
        " greatest(c.reltuples, 0) AS n"
        " FROM pg_class c JOIN pg_stats s ON s.schemaname = c.relnamespace::regnamespace::text"
        "  AND s.tablename = c.relname AND s.attname = 'tsv'"
        " WHERE c.oid = 'chunks'::regclass", prepare=False)
    row = await cur.fetchone()
    if not row or not row["lexemes"] or not row["n"]:
        _lexeme_stats[key] = (time.monotonic(), {}, 0.0)
        return None
    # most_common_elem_freqs: one fraction of rows per element, then min, max and null fraction;
    # a lexeme missing from the list is rarer than the least common listed one.
    n, freqs = row["n"], row["freqs"]
    rows = {lex: f * n for lex, f in zip(row["lexemes"], freqs)}
    _lexeme_stats[key] = (time.monotonic(), rows, freqs[-3] * n)
    return rows, freqs[-3] * n


def forget_lexeme_stats() -> None:
    """Drop the cached lexeme frequencies: after a bulk load and ANALYZE (the benches) they are stale."""
    _lexeme_stats.clear()


def _anchor_lexemes(lexemes: list[str], stats: tuple[dict[str, float], float] | None) -> list[str]:
    """The question's rarest lexemes, as many as together match about FTS_RANK_CAP chunks (at least one).

    A common word ("code" in a code-review guide) says little about which chunk answers, yet
    its posting list is most of the table: scanning it is what made full text slow, and the
    chunks it brings in push the telling ones past FTS_RANK_CAP. On a small knowledge base
    every lexeme fits and nothing is pruned."""
    if not stats:
        return lexemes
    rows, unlisted = stats

    def estimate(lex: str) -> float:  # lexemes here are as a tsquery quotes them ('' for ')
        return rows.get(lex.replace("''", "'"), unlisted)

    anchors, total = [], 0.0
    for lex in sorted(lexemes, key=estimate):
        total += estimate(lex)
        if anchors and total > FTS_RANK_CAP:
            break
        anchors.append(lex)
    return [lex for lex in lexemes if lex in anchors]  # question order: stable queries


def _candidate_queries(lexemes: list[str], anchors: list[str]) -> tuple[str | None, str | None]:
    """(pairs, anchors) as tsquery text: chunks with an anchor and one more of the question's
    lexemes (one lexeme: itself), and the fallback, chunks with any anchor.

    GIN walks only the anchors' posting lists (every match needs one) and probes the others."""
    quoted = [f"'{lex}'" for lex in lexemes]
    anchored = {f"'{lex}'" for lex in anchors}
    any_anchor = " | ".join(q for q in quoted if q in anchored) or None
    if len(quoted) < 2:
        return any_anchor, any_anchor
    pairs = [f"({a} & {b})" for a, b in itertools.combinations(quoted, 2) if a in anchored or b in anchored]
    return " | ".join(pairs), any_anchor


async def _question_lexemes(conn: psycopg.AsyncConnection, text: str) -> list[str]:
    """The question's distinct lexemes (at most MAX_PAIR_LEXEMES), as they appear in a tsquery."""
    # The same round trip sets the session's HNSW scan mode: iterative scans keep filtered vector
    # search (access lists) from coming back short.
    cur = await conn.execute(
        "SELECT plainto_tsquery('english', %s)::text AS q, set_config('hnsw.iterative_scan', 'relaxed_order', false)",
        (text,), prepare=False)
    return list(dict.fromkeys(_LEXEME.findall((await cur.fetchone())["q"])))[:MAX_PAIR_LEXEMES]


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
    lexemes = await _question_lexemes(conn, text[:2000])
    anchors = _anchor_lexemes(lexemes, await _lexeme_rows(conn) if len(lexemes) > 1 else None)
    pairs, any_anchor = _candidate_queries(lexemes, anchors)
    params = {
        "uid": str(user_id), "text": text[:2000], "pairs": pairs, "anchors": any_anchor, "cap": FTS_RANK_CAP,
        "vec": np.asarray(vector, dtype=np.float32),
        "pool": candidates, "limit": limit, "k": RRF_K, "kt": TEXT_RRF_K, "wv": vector_weight, "wt": text_weight,
        "doc": str(document_id) if document_id else None, "kind": kind,
    }
    cur = await conn.execute(_HYBRID_SQL, params, prepare=False)
    return [Hit(**row) for row in await cur.fetchall()]
