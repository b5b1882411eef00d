"""The full-text side of hybrid search: chunks sharing two of the question's words are ranked first;
any single word is the fallback; bounded work on a big corpus still finds the best chunk."""

from __future__ import annotations

import uuid

import numpy as np
import psycopg
import pytest

from allin.knowledge import search
from allin.knowledge.search import hybrid_search
from allin.knowledge.store import ensure_vector_types


@pytest.fixture
async def conn(db_url):
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True,
                                                     row_factory=psycopg.rows.dict_row) as c:
        await ensure_vector_types(c)
        yield c


async def add_chunks(conn, texts: list[str]) -> dict[str, int]:
    doc = uuid.uuid4()
    await conn.execute("INSERT INTO documents (id, path, title, status) VALUES (%s, %s, 'Doc', 'ready')",
                       (doc, f"d/{doc}.md"))
    ids = {}
    rng = np.random.default_rng(1)
    for i, text in enumerate(texts):
        v = rng.standard_normal(384).astype(np.float32)
        row = await (await conn.execute(
            "INSERT INTO chunks (document_id, ord, kind, content, embedding) VALUES (%s, %s, 'text', %s, %s)"
            " RETURNING id", (doc, i, text, v / np.linalg.norm(v)))).fetchone()
        ids[text] = row["id"]
    return ids


async def text_hits(conn, question: str, **kw) -> list[str]:
    hits = await hybrid_search(conn, user_id=uuid.uuid4(), text=question, vector=np.ones(384, np.float32),
                               vector_weight=0.0, limit=5, **kw)
    return [h.content for h in hits if h.text_rank is not None]


async def test_two_shared_words_outrank_one_and_one_word_is_the_fallback(conn):
    await add_chunks(conn, [
        "Deploys happen on Tuesdays.",
        "Rollbacks are rare.",
        "A rollback of a deploy takes five minutes.",
        "Lunch is at noon.",
    ])
    assert (await text_hits(conn, "How long does a deploy rollback take?"))[0] == \
        "A rollback of a deploy takes five minutes."
    assert await text_hits(conn, "lunch?") == ["Lunch is at noon."]
    assert await text_hits(conn, "When are the deploys?") == [
        "Deploys happen on Tuesdays.", "A rollback of a deploy takes five minutes."]
    assert await text_hits(conn, "what is the?") == []  # stop words only: no full-text query at all


async def test_on_a_big_corpus_only_a_bounded_number_of_chunks_is_ranked(conn, monkeypatch):
    monkeypatch.setattr(search, "FTS_RANK_CAP", 50)
    filler = [f"Review note {i}: keep changes small." for i in range(300)]
    ids = await add_chunks(conn, [*filler, "Review latency: answer a review within one business day."])
    hits = await text_hits(conn, "How fast should a review answer come, in business days?")
    # The chunk with most of the words wins even though 300 others share one word with it.
    assert hits[0] == "Review latency: answer a review within one business day."
    plan = await (await conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) SELECT 1")).fetchone()
    assert plan and ids


async def test_common_words_do_not_pick_the_chunks_that_get_ranked(conn, monkeypatch):
    # 300 chunks share the question's two common words; one shares its three rare ones, last in
    # the table. Ranking only the first FTS_RANK_CAP matches of "any two words" would never reach
    # it: the rare words (frequencies from ANALYZE) pick the candidates, all words rank them.
    monkeypatch.setattr(search, "FTS_RANK_CAP", 50)
    monkeypatch.setattr(search, "_lexeme_stats", {})
    filler = [f"Review the code of module {i}: keep changes small." for i in range(300)]
    await add_chunks(conn, [*filler, "Check thread safety: look for deadlocks in concurrent code."])
    await conn.execute("ANALYZE chunks")
    question = "How should I review code for thread safety and deadlocks?"

    lexemes = await search._question_lexemes(conn, question)
    anchors = search._anchor_lexemes(lexemes, await search._lexeme_rows(conn))
    assert sorted(anchors) == ["deadlock", "safeti", "thread"]
    hits = await text_hits(conn, question)
    assert hits[0] == "Check thread safety: look for deadlocks in concurrent code."


async def test_without_statistics_every_word_picks_candidates(conn, monkeypatch):
    monkeypatch.setattr(search, "_lexeme_stats", {})
    await add_chunks(conn, ["Deploys happen on Tuesdays."])  # never analysed: no lexeme frequencies
    assert await search._lexeme_rows(conn) is None
    lexemes = await search._question_lexemes(conn, "When are deploys on Tuesday?")
    assert search._anchor_lexemes(lexemes, None) == lexemes
    assert search._candidate_queries(lexemes, lexemes) == ("('deploy' & 'tuesday')", "'deploy' | 'tuesday'")
