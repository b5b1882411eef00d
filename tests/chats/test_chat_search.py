"""GET /chat/search: full text + embeddings fused by rank, safe snippets, the caller's turns only."""

from __future__ import annotations

import numpy as np
import pytest

from allin.chats import store
from allin.chats.embedding import embed_pending_turns
from allin.chats.search import search_turns
from tests.chats.helpers import make_chat


async def _embed_all(app, embedder) -> None:
    while await embed_pending_turns(app.state.res.pool, embedder, limit=50):
        pass


async def test_snippets_are_escaped_html_with_marks(client, users, conn, app, embedder):
    chat = await make_chat(conn, users.alice, title="XSS")
    hostile = 'Try <script>alert("x")</script> & the \ue000fake\ue001 marker before the pelican release <b>now</b>'
    await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user", content=hostile)
    await _embed_all(app, embedder)
    r = await client.get("/chat/search", params={"q": "pelican"}, headers=users.alice.headers)
    assert r.status_code == 200
    [hit] = r.json()["items"]
    snippet = hit["snippet"]
    assert "<mark>pelican</mark>" in snippet
    assert "&lt;script&gt;" in snippet and "&amp;" in snippet and "&lt;b&gt;" in snippet
    # The only tags are our marks; the private-use markers typed by the user were dropped.
    assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0
    assert "\ue000" not in snippet and "\ue001" not in snippet and "<mark>fake" not in snippet
    assert hit["chat_title"] == "XSS" and hit["role"] == "user" and hit["chat_id"] == str(chat["id"])
    assert hit["score"] > 0 and hit["created_at"]


async def test_snippets_keep_code_intact(client, users, conn):
    chat = await make_chat(conn, users.alice)
    code = "if (a<b && c>d) { pelican(); } <img src=x onerror=alert(1)>"
    await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user", content=code)
    [hit] = (await client.get("/chat/search", params={"q": "pelican"}, headers=users.alice.headers)).json()["items"]
    assert hit["snippet"] == ("if (a&lt;b &amp;&amp; c&gt;d) { <mark>pelican</mark>(); } "
                              "&lt;img src=x onerror=alert(1)&gt;")


async def test_full_text_and_embeddings_are_fused(client, users, conn, app, embedder):
    await make_chat(conn, users.alice, title="k8s", exchanges=[
        ("How do I get access to the kubernetes cluster?", "Ask in #infra for a kubeconfig."),
    ])
    await make_chat(conn, users.alice, title="lunch", exchanges=[("Where do people eat lunch?", "At the canteen.")])
    await _embed_all(app, embedder)
    # A typo: full text finds nothing, the embeddings still find the kubernetes question.
    r = await client.get("/chat/search", params={"q": "kubernets cluster acess"}, headers=users.alice.headers)
    items = r.json()["items"]
    assert items and items[0]["chat_title"] == "k8s" and items[0]["role"] == "user"
    assert "lunch" not in {i["chat_title"] for i in items[:1]}
    # Full text with web-search syntax: a quoted phrase and an excluded word.
    r = await client.get("/chat/search", params={"q": '"kubernetes cluster" -canteen'}, headers=users.alice.headers)
    top = r.json()["items"][0]
    assert top["chat_title"] == "k8s" and "<mark>kubernetes</mark>" in top["snippet"]
    hits = await search_turns(conn, user_id=users.alice.id, text="canteen", vector=embedder.embed_query("canteen"))
    assert hits[0].chat_title == "lunch" and hits[0].text_rank == 1 and hits[0].vector_rank == 1


async def test_full_text_alone_without_an_embedder(conn, users):
    await make_chat(conn, users.alice, exchanges=[("What is the walrus operator?", "It assigns inside expressions.")])
    hits = await search_turns(conn, user_id=users.alice.id, text="walrus", vector=None)
    assert [h.role for h in hits] == ["user"] and hits[0].vector_rank is None and "<mark>walrus</mark>" in hits[0].snippet
    with pytest.raises(ValueError):
        await search_turns(conn, user_id="", text="walrus", vector=None)


async def test_limit_and_ranking(client, users, conn, app, embedder):
    for i in range(30):
        await make_chat(conn, users.alice, exchanges=[(f"note {i} about the flamingo service", f"answer {i}")])
    await make_chat(conn, users.alice, title="best", exchanges=[("flamingo flamingo service outage flamingo", "ok")])
    await _embed_all(app, embedder)
    r = await client.get("/chat/search", params={"q": "flamingo outage", "limit": 7}, headers=users.alice.headers)
    items = r.json()["items"]
    assert len(items) == 7
    assert items[0]["chat_title"] == "best"
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    assert len({i["turn_id"] for i in items}) == 7


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   "}, {"q": "x" * 501}, {"q": "ok", "limit": 0},
                                    {"q": "ok", "limit": 101}, {"q": "ok", "limit": "all"}])
async def test_search_rejects_bad_queries(client, users, params):
    r = await client.get("/chat/search", params=params, headers=users.alice.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"


async def test_stopword_only_query_is_not_an_error(client, users, conn):
    await make_chat(conn, users.alice, exchanges=[("the", "a")])
    r = await client.get("/chat/search", params={"q": "the and of"}, headers=users.alice.headers)
    assert r.status_code == 200


async def test_embed_pending_turns_in_batches_per_user(app, conn, users, embedder):
    await make_chat(conn, users.alice, exchanges=[(f"a{i}", f"b{i}") for i in range(3)])
    await make_chat(conn, users.bob, exchanges=[("c", "d")])
    pool = app.state.res.pool
    assert await embed_pending_turns(pool, embedder, user_id=users.bob.id) == 2
    assert await embed_pending_turns(pool, embedder, user_id=users.bob.id) == 0
    assert await embed_pending_turns(pool, embedder, limit=4) == 4
    assert await embed_pending_turns(pool, embedder) == 2
    assert await embed_pending_turns(pool, embedder) == 0
    cur = await conn.execute("SELECT content, embedding::text AS e FROM chat_turns WHERE content = 'a1'")
    row = await cur.fetchone()
    stored = np.array([float(x) for x in row["e"].strip("[]").split(",")], dtype=np.float32)
    assert np.allclose(stored, embedder.embed_query("a1"), atol=1e-6)


async def test_quantised_embeddings_follow_the_embedding(app, conn, users, embedder):
    chat = await make_chat(conn, users.alice, exchanges=[("first question", "first answer")])
    await _embed_all(app, embedder)
    cur = await conn.execute("SELECT bool_and(embedding_bits = binary_quantize(embedding)) AS same,"
                             " count(embedding_bits) AS n FROM chat_turns")
    assert await cur.fetchone() == {"same": True, "n": 2}
    # Copies (forks) carry them too; clearing the embedding clears them.
    other = await store.create_chat(conn, users.alice.id)
    turns = await store.list_turns(conn, users.alice.id, chat["id"])
    await store.copy_turns(conn, users.alice.id, from_chat=chat["id"], to_chat=other["id"],
                           before_seq=turns[-1]["seq"] + 1)
    cur = await conn.execute("SELECT count(embedding_bits) AS n FROM chat_turns WHERE chat_id = %s", (other["id"],))
    assert (await cur.fetchone())["n"] == 2
    await conn.execute("UPDATE chat_turns SET embedding = NULL WHERE chat_id = %s", (chat["id"],))
    cur = await conn.execute("SELECT count(embedding_bits) AS n FROM chat_turns WHERE chat_id = %s", (chat["id"],))
    assert (await cur.fetchone())["n"] == 0


async def test_semantic_ranking_matches_exact_cosine(app, conn, users, embedder):
    words = ["deploy", "review", "staging", "database", "cluster", "token", "lint", "release", "incident",
             "oncall", "budget", "pipeline", "cache", "schema", "gateway", "metrics", "alerts", "backup"]
    rng = np.random.default_rng(3)
    chat = await store.create_chat(conn, users.alice.id)
    texts = [" ".join(rng.choice(words, size=4, replace=False)) for _ in range(400)]
    for text in texts:
        await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user", content=text)
    await _embed_all(app, embedder)
    cur = await conn.execute("SELECT id, content FROM chat_turns WHERE user_id = %s", (users.alice.id,))
    rows = await cur.fetchall()
    matrix = embedder.embed([r["content"] for r in rows])
    recalls = []
    for query in ("deploy staging cluster", "review token lint", "incident alerts metrics"):
        vector = embedder.embed_query(query)
        # A query of words that no turn contains: only the embeddings can answer.
        hits = await search_turns(conn, user_id=users.alice.id, text="zzqx", vector=vector, limit=10,
                                  max_distance=2.0)
        assert [h.vector_rank for h in hits] == list(range(1, 11)) and all(h.text_rank is None for h in hits)
        exact = {rows[i]["id"] for i in np.argsort(-(matrix @ vector))[:10]}
        recalls.append(len(exact & {h.turn_id for h in hits}) / 10)
    assert np.mean(recalls) >= 0.9, recalls
