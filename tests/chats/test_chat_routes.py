"""The chat REST routes over HTTP, on a real Postgres: success paths and bad input."""

from __future__ import annotations

import psycopg
import pytest

from allin.chats import store
from tests.chats.helpers import make_chat, missing_id


async def start(client, user, **body) -> dict:
    r = await client.post("/chat/start", json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()


# --- start / end / config -----------------------------------------------------------------------------

async def test_start_returns_the_new_chat(client, users):
    chat = await start(client, users.alice, title="Onboarding", settings={"answer_style": "concise", "top_k": 4})
    assert chat["title"] == "Onboarding" and chat["title_auto"] is False
    assert chat["settings"] == {"answer_style": "concise", "top_k": 4}
    assert chat["status"] == "active" and chat["chat_id"] and chat["created_at"]
    untitled = await start(client, users.alice)
    assert untitled["title"] == "New chat" and untitled["title_auto"] is True and untitled["settings"] == {}


@pytest.mark.parametrize("body", [
    {"title": "x" * 201},
    {"title": "   "},
    {"settings": {"top_k": 0}},
    {"settings": {"top_k": 21}},
    {"settings": {"retrieval_mode": "web"}},
    {"settings": {"answer_style": "verbose"}},
    {"settings": {"temperature": 0.2}},
    {"settings": {"language": "x" * 40}},
    {"owner": "bob"},
])
async def test_start_rejects_bad_bodies(client, users, body):
    r = await client.post("/chat/start", json=body, headers=users.alice.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"


async def test_routes_need_a_token(client, users):
    assert (await client.post("/chat/start", json={})).status_code == 401
    assert (await client.get("/chat/history")).status_code == 401
    assert (await client.get("/chat/search", params={"q": "x"})).status_code == 401


async def test_end_keeps_the_chat_readable_and_resume_reopens_it(client, users):
    chat = await start(client, users.alice)
    r = await client.post("/chat/end", json={"chat_id": chat["chat_id"]}, headers=users.alice.headers)
    assert r.status_code == 200 and r.json()["status"] == "ended"
    detail = (await client.get(f"/chat/history/{chat['chat_id']}", headers=users.alice.headers)).json()
    assert detail["chat"]["status"] == "ended"
    assert [e["kind"] for e in detail["events"]] == ["start", "end"]
    resumed = (await client.post(f"/chat/history/{chat['chat_id']}/resume", headers=users.alice.headers)).json()
    assert resumed["chat"]["status"] == "active"
    assert (await client.post("/chat/end", json={"chat_id": missing_id()}, headers=users.alice.headers)).status_code == 404
    assert (await client.post("/chat/end", json={"chat_id": "nope"}, headers=users.alice.headers)).status_code == 422


async def test_config_merges_validated_settings(client, users):
    chat = await start(client, users.alice, settings={"answer_style": "detailed"})
    r = await client.post("/chat/config", headers=users.alice.headers, json={
        "chat_id": chat["chat_id"], "settings": {"retrieval_mode": "files", "voice": True, "top_k": 20,
                                                 "language": "pt-BR"}})
    assert r.status_code == 200, r.text
    assert r.json()["settings"] == {"answer_style": "detailed", "retrieval_mode": "files", "voice": True,
                                    "top_k": 20, "language": "pt-BR"}
    # null returns a field to the server default
    r = await client.post("/chat/config", headers=users.alice.headers,
                          json={"chat_id": chat["chat_id"], "settings": {"answer_style": None}})
    assert "answer_style" not in r.json()["settings"]
    for bad in ({"top_k": 50}, {"voice": "loud"}, {"retrieval_mode": "everything"}, {"unknown": 1},
                {"language": "not a language!"}):
        r = await client.post("/chat/config", headers=users.alice.headers,
                              json={"chat_id": chat["chat_id"], "settings": bad})
        assert r.status_code == 422, bad
    r = await client.post("/chat/config", headers=users.alice.headers, json={"chat_id": missing_id(), "settings": {}})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    kinds = [e["kind"] for e in (await client.get(f"/chat/history/{chat['chat_id']}",
                                                  headers=users.alice.headers)).json()["events"]]
    assert kinds.count("config") == 2


# --- history list -----------------------------------------------------------------------------------------

async def test_history_lists_newest_first_with_preview_and_counts(client, users, conn):
    older = await make_chat(conn, users.alice, title="Older", exchanges=[("How do reviews work?", "Reviews...")])
    newer = await make_chat(conn, users.alice, exchanges=[
        ("Where is the style guide?", "In the wiki."), ("And the lint config?", "x" * 500)])
    await make_chat(conn, users.bob, title="Bob's")
    r = await client.get("/chat/history", headers=users.alice.headers)
    assert r.status_code == 200
    body = r.json()
    assert [c["chat_id"] for c in body["items"]] == [str(newer["id"]), str(older["id"])]
    assert body["next_cursor"] is None
    first = body["items"][0]
    assert first["turn_count"] == 4 and first["user_turn_count"] == 2
    assert first["preview"] == "x" * 160 and first["preview_role"] == "assistant"
    assert body["items"][1]["title"] == "Older" and body["items"][1]["preview"] == "Reviews..."


async def test_history_pagination_walks_every_chat_once(client, users, conn):
    made = {str((await make_chat(conn, users.alice, title=f"chat {i}"))["id"]) for i in range(23)}
    # Equal timestamps must not lose or repeat chats: the id breaks ties.
    await conn.execute("UPDATE chats SET updated_at = '2025-01-01T00:00:00Z' WHERE title IN ('chat 3','chat 4','chat 5')")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        r = await client.get("/chat/history", params=params, headers=users.alice.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 5
        seen += [c["chat_id"] for c in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23 and set(seen) == made


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "many"}, {"cursor": "garbage!"},
                                    {"cursor": "WyJub3QtYS1kYXRlIiwgIngiXQ"}, {"cursor": "c" * 201}])
async def test_history_rejects_bad_pagination(client, users, params):
    r = await client.get("/chat/history", params=params, headers=users.alice.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] in ("validation_error", "invalid_cursor")


# --- one chat -------------------------------------------------------------------------------------------

async def test_detail_has_turns_in_order_and_events(client, users, conn):
    chat = await make_chat(conn, users.alice, title="Deploys")
    q = await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user",
                             content="How do I deploy?", modality="voice", audio_ref="audio/1.wav")
    citations = [{"n": 1, "document_id": missing_id(), "title": "Runbook", "file": "runbook.pdf", "page": 3,
                  "section": None, "snippet": "Deploy with make deploy."}]
    code = [{"language": "python", "code": "print(2)", "stdout": "2\n", "stderr": "", "outcome": "ok",
             "duration_ms": 12}]
    a = await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="assistant",
                             content="Run make deploy [1].", reply_to=q["id"], citations=citations, code=code,
                             route="knowledge")
    r = await client.get(f"/chat/history/{chat['id']}", headers=users.alice.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["chat"]["title"] == "Deploys"
    turns = body["turns"]
    assert [(t["turn_id"], t["role"]) for t in turns] == [(str(q["id"]), "user"), (str(a["id"]), "assistant")]
    assert turns[0]["modality"] == "voice" and turns[0]["has_audio"] is True and "audio_ref" not in turns[0]
    assert turns[1]["citations"] == citations and turns[1]["code"] == code and turns[1]["reply_to"] == str(q["id"])
    assert turns[1]["status"] == "complete" and turns[1]["created_at"]
    assert [e["kind"] for e in body["events"]] == ["start"]
    assert (await client.get(f"/chat/history/{missing_id()}", headers=users.alice.headers)).status_code == 404
    assert (await client.get("/chat/history/not-a-uuid", headers=users.alice.headers)).status_code == 422


async def test_a_voice_turns_recording_plays_back_for_its_owner_only(client, users, conn, settings):
    from allin.storage import make_storage

    chat = await make_chat(conn, users.alice, title="Voice")
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)
    key = f"audio/{chat['id']}/q.wav"
    await make_storage(settings).put(key, wav)
    q = await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user",
                             content="How do I deploy?", modality="voice", audio_ref=key)
    silent = await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="assistant",
                                  content="Run make deploy.", reply_to=q["id"])
    r = await client.get(f"/chat/turns/{q['id']}/audio", headers=users.alice.headers)
    assert r.status_code == 200 and r.content == wav and r.headers["content-type"] == "audio/wav"
    assert (await client.get(f"/chat/turns/{q['id']}/audio", headers=users.bob.headers)).status_code == 404
    assert (await client.get(f"/chat/turns/{silent['id']}/audio", headers=users.alice.headers)).status_code == 404
    await make_storage(settings).delete(key)  # the file went missing: 404, not 500
    assert (await client.get(f"/chat/turns/{q['id']}/audio", headers=users.alice.headers)).status_code == 404


async def test_resume_returns_recent_turns_and_effective_settings(client, users, conn, settings):
    chat = await make_chat(conn, users.alice, exchanges=[(f"question {i}", f"answer {i}") for i in range(15)])
    await store.update_chat(conn, users.alice.id, chat["id"], settings={"answer_style": "concise", "voice": True})
    r = await client.post(f"/chat/history/{chat['id']}/resume", params={"limit": 4}, headers=users.alice.headers)
    assert r.status_code == 200
    body = r.json()
    assert [t["content"] for t in body["recent_turns"]] == ["question 13", "answer 13", "question 14", "answer 14"]
    assert body["settings"] == {"retrieval_mode": settings.retrieval_mode, "answer_style": "concise", "voice": True,
                                "top_k": settings.top_k, "language": None}
    default = (await client.post(f"/chat/history/{chat['id']}/resume", headers=users.alice.headers)).json()
    assert len(default["recent_turns"]) == 20
    events = await store.list_events(conn, users.alice.id, chat["id"])
    assert [e["kind"] for e in events].count("resume") == 2
    assert (await client.post(f"/chat/history/{chat['id']}/resume", params={"limit": 0},
                              headers=users.alice.headers)).status_code == 422
    assert (await client.post(f"/chat/history/{missing_id()}/resume", headers=users.alice.headers)).status_code == 404


async def test_rename_stops_automatic_titles(client, users, conn):
    chat = await make_chat(conn, users.alice)
    r = await client.patch(f"/chat/history/{chat['id']}", json={"title": "  My deploy notes  "},
                           headers=users.alice.headers)
    assert r.status_code == 200
    assert r.json()["title"] == "My deploy notes" and r.json()["title_auto"] is False
    assert not await store.set_auto_title(conn, users.alice.id, chat["id"], title="Auto", topics=[])
    assert (await store.get_chat(conn, users.alice.id, chat["id"]))["title"] == "My deploy notes"
    events = await store.list_events(conn, users.alice.id, chat["id"])
    assert events[-1]["kind"] == "rename" and events[-1]["details"] == {"title": "My deploy notes",
                                                                        "previous": "New chat"}
    for body in ({"title": ""}, {"title": "t" * 201}, {}, {"title": "ok", "status": "ended"}):
        r = await client.patch(f"/chat/history/{chat['id']}", json=body, headers=users.alice.headers)
        assert r.status_code == 422, body
    assert (await client.patch(f"/chat/history/{missing_id()}", json={"title": "x"},
                               headers=users.alice.headers)).status_code == 404


async def test_delete_removes_chat_turns_and_thread(client, users, conn, app):
    from langchain_core.messages import HumanMessage

    chat = await make_chat(conn, users.alice, exchanges=[("hello", "hi")])
    graph = app.state.res.extras["graph"]
    await graph.aupdate_state({"configurable": {"thread_id": str(chat["id"])}},
                              {"messages": [HumanMessage("hello", id=missing_id())]}, as_node="synthesize")
    cur = await conn.execute("SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", (str(chat["id"]),))
    assert (await cur.fetchone())["n"] > 0
    r = await client.delete(f"/chat/history/{chat['id']}", headers=users.alice.headers)
    assert r.status_code == 204 and r.content == b""
    assert await store.get_chat(conn, users.alice.id, chat["id"]) is None
    cur = await conn.execute("SELECT count(*) AS n FROM chat_turns WHERE chat_id = %s", (chat["id"],))
    assert (await cur.fetchone())["n"] == 0
    cur = await conn.execute("SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", (str(chat["id"]),))
    assert (await cur.fetchone())["n"] == 0
    assert (await client.delete(f"/chat/history/{chat['id']}", headers=users.alice.headers)).status_code == 404


# --- feedback ----------------------------------------------------------------------------------------------

async def test_feedback_upserts_on_answers(client, users, conn):
    chat = await make_chat(conn, users.alice, exchanges=[("How do I deploy?", "Use make deploy.")])
    q, a = await store.list_turns(conn, users.alice.id, chat["id"])
    r = await client.post(f"/chat/turns/{a['id']}/feedback", json={"rating": -1, "comment": "outdated"},
                          headers=users.alice.headers)
    assert r.status_code == 200 and r.json()["rating"] == -1 and r.json()["comment"] == "outdated"
    r = await client.post(f"/chat/turns/{a['id']}/feedback", json={"rating": 1}, headers=users.alice.headers)
    assert r.json()["rating"] == 1 and r.json()["comment"] is None
    cur = await conn.execute("SELECT rating, user_id FROM feedback WHERE turn_id = %s", (a["id"],))
    assert await cur.fetchall() == [{"rating": 1, "user_id": users.alice.id}]
    detail = (await client.get(f"/chat/history/{chat['id']}", headers=users.alice.headers)).json()
    assert detail["turns"][1]["feedback"]["rating"] == 1 and detail["turns"][0]["feedback"] is None
    for body in ({"rating": 0}, {"rating": 5}, {"rating": "up"}, {"rating": 1, "comment": "c" * 2001}, {}):
        r = await client.post(f"/chat/turns/{a['id']}/feedback", json=body, headers=users.alice.headers)
        assert r.status_code == 422, body
    r = await client.post(f"/chat/turns/{q['id']}/feedback", json={"rating": 1}, headers=users.alice.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_an_answer"
    r = await client.post(f"/chat/turns/{missing_id()}/feedback", json={"rating": 1}, headers=users.alice.headers)
    assert r.status_code == 404
    r = await client.post("/chat/turns/123/feedback", json={"rating": 1}, headers=users.alice.headers)
    assert r.status_code == 422


async def test_store_refuses_queries_without_a_user(conn):
    with pytest.raises(store.MissingUser):
        await store.list_chats(conn, None, limit=5)  # type: ignore[arg-type]
    with pytest.raises(store.MissingUser):
        await store.get_turn(conn, "", missing_id())


async def test_database_cascades_are_in_place(db_url, users):
    # The feedback of a deleted chat's turns goes with it (no orphan rows to leak later).
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True,
                                                     row_factory=psycopg.rows.dict_row) as c:
        chat = await make_chat(c, users.alice, exchanges=[("q", "a")])
        _, a = await store.list_turns(c, users.alice.id, chat["id"])
        await store.upsert_feedback(c, users.alice.id, a["id"], rating=1, comment=None)
        await store.delete_chat(c, users.alice.id, chat["id"])
        cur = await c.execute("SELECT count(*) AS n FROM feedback")
        assert (await cur.fetchone())["n"] == 0
