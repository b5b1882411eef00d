"""Per-user isolation: bob gets 404 (never 403) on every route that takes one of alice's ids,
nothing of alice's changes, and search never returns another user's words."""

from __future__ import annotations

import pytest

from allin.chats import store
from tests.chats.helpers import make_chat


@pytest.fixture
async def alice_chat(conn, users) -> dict:
    chat = await make_chat(conn, users.alice, title="Alice's secrets",
                           exchanges=[("What is the zanzibar rollout plan?", "The zanzibar rollout starts Monday.")])
    turns = await store.list_turns(conn, users.alice.id, chat["id"])
    return {"chat": chat, "user_turn": turns[0], "answer": turns[1]}


def _requests(ids: dict) -> list[tuple[str, str, dict]]:
    chat_id = str(ids["chat"]["id"])
    return [
        ("POST", "/chat/end", {"json": {"chat_id": chat_id}}),
        ("POST", "/chat/config", {"json": {"chat_id": chat_id, "settings": {"top_k": 3}}}),
        ("GET", f"/chat/history/{chat_id}", {}),
        ("POST", f"/chat/history/{chat_id}/resume", {}),
        ("PATCH", f"/chat/history/{chat_id}", {"json": {"title": "pwned"}}),
        ("GET", f"/chat/history/{chat_id}/export", {"params": {"format": "json"}}),
        ("GET", f"/chat/history/{chat_id}/export", {"params": {"format": "md"}}),
        ("POST", f"/chat/history/{chat_id}/fork", {"json": {"turn_id": str(ids["user_turn"]["id"]), "text": "mine"}}),
        ("POST", f"/chat/turns/{ids['answer']['id']}/feedback", {"json": {"rating": -1}}),
        ("DELETE", f"/chat/history/{chat_id}", {}),
    ]


async def test_bob_gets_404_on_every_route_with_alices_ids(client, users, conn, alice_chat):
    for method, path, kwargs in _requests(alice_chat):
        r = await client.request(method, path, headers=users.bob.headers, **kwargs)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "not_found"
        assert "zanzibar" not in r.text and "secrets" not in r.text
    # Nothing of alice's changed, and bob made nothing.
    chat = await store.get_chat(conn, users.alice.id, alice_chat["chat"]["id"])
    assert chat["title"] == "Alice's secrets" and chat["status"] == "active" and chat["settings"] == {}
    assert [e["kind"] for e in await store.list_events(conn, users.alice.id, chat["id"])] == ["start"]
    cur = await conn.execute("SELECT count(*) AS n FROM feedback")
    assert (await cur.fetchone())["n"] == 0
    cur = await conn.execute("SELECT count(*) AS n FROM chats WHERE user_id = %s", (users.bob.id,))
    assert (await cur.fetchone())["n"] == 0
    # Alice still can do all of it.
    r = await client.get(f"/chat/history/{chat['id']}", headers=users.alice.headers)
    assert r.status_code == 200 and "zanzibar" in r.text


async def test_bob_cannot_fork_his_chat_from_alices_turn(client, users, conn, alice_chat):
    bobs = await make_chat(conn, users.bob, exchanges=[("hello", "hi")])
    r = await client.post(f"/chat/history/{bobs['id']}/fork", headers=users.bob.headers,
                          json={"turn_id": str(alice_chat["user_turn"]["id"]), "text": "copy her history"})
    assert r.status_code == 404
    cur = await conn.execute("SELECT count(*) AS n FROM chats WHERE user_id = %s", (users.bob.id,))
    assert (await cur.fetchone())["n"] == 1


async def test_history_lists_only_the_callers_chats(client, users, conn, alice_chat):
    await make_chat(conn, users.bob, title="Bob's chat")
    items = (await client.get("/chat/history", headers=users.bob.headers)).json()["items"]
    assert [c["title"] for c in items] == ["Bob's chat"]


async def test_search_never_returns_another_users_turns(client, users, conn, app, embedder):
    from allin.chats.embedding import embed_pending_turns

    await make_chat(conn, users.alice, exchanges=[("Where is the quokka deploy script?",
                                                   "The quokka script lives in tools/deploy.")])
    await make_chat(conn, users.bob, exchanges=[("Is quokka the staging cluster?", "Yes, quokka is staging.")])
    assert await embed_pending_turns(app.state.res.pool, embedder) == 4
    for user, own, other in ((users.alice, "deploy", "staging"), (users.bob, "staging", "deploy")):
        # Full-text and semantic: the shared word, a near miss only the embeddings catch, the other's words.
        for q in ("quokka", "quoka", other, f"quokka {other}"):
            r = await client.get("/chat/search", params={"q": q}, headers=user.headers)
            assert r.status_code == 200
            items = r.json()["items"]
            chats = {i["chat_id"] for i in items}
            mine = {str(c["id"]) for c in await store.list_chats(conn, user.id, limit=10)}
            assert chats <= mine, (user.name, q, items)
            assert other not in " ".join(i["snippet"] for i in items).lower()
        r = await client.get("/chat/search", params={"q": "quokka"}, headers=user.headers)
        assert len(r.json()["items"]) == 2 and own in " ".join(i["snippet"] for i in r.json()["items"])
