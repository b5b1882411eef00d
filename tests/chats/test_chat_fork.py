"""POST /chat/history/{id}/fork with real turns through the app's runner (offline models, real MiniLM):
the fork holds the turns before the chosen question, then the edited question and its answer; its
LangGraph thread holds only that branch; the original chat and thread are untouched."""

from __future__ import annotations

import pytest

from allin.chats import store
from api.assistant import drain_after_turns
from api.chat_threads import thread_config
from tests.chats.helpers import make_chat, missing_id

QUESTIONS = [
    "How should I write a commit message?",
    "Who reviews changes to the payments service?",
    "What is the release schedule?",
]
EDITED = "How do I write a good pull request description?"


@pytest.fixture(scope="session")
def local_embedder():
    from allin.knowledge.embeddings import get_local_embedder

    return get_local_embedder()


@pytest.fixture
def embedder(local_embedder):
    return local_embedder


@pytest.fixture
async def chat_with_turns(client, users, conn, app) -> dict:
    r = await client.post("/chat/start", json={"settings": {"answer_style": "concise"}}, headers=users.alice.headers)
    chat = await store.get_chat(conn, users.alice.id, r.json()["chat_id"])
    runner = app.state.res.extras["runner"]
    for text in QUESTIONS:
        result = await runner.run(user_id=users.alice.id, chat=chat, text=text)
        assert result.status == "complete", result
    return chat


async def _thread_messages(app, chat_id) -> list[tuple[str, str, str]]:
    state = await app.state.res.extras["graph"].aget_state(thread_config(chat_id))
    return [(m.type, m.id, m.content) for m in state.values.get("messages", [])]


async def test_fork_from_the_first_question(client, users, conn, app, chat_with_turns):
    chat_id = chat_with_turns["id"]
    original_turns = await store.list_turns(conn, users.alice.id, chat_id)
    original_thread = await _thread_messages(app, chat_id)
    assert [t["content"] for t in original_turns if t["role"] == "user"] == QUESTIONS
    assert [m[0] for m in original_thread] == ["human", "ai"] * 3
    first = original_turns[0]

    r = await client.post(f"/chat/history/{chat_id}/fork", json={"turn_id": str(first["id"]), "text": EDITED},
                          headers=users.alice.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    fork_id = body["chat"]["chat_id"]
    assert body["answered"] is True and fork_id != str(chat_id)
    assert body["chat"]["forked_from"] == {"chat_id": str(chat_id), "turn_id": str(first["id"])}
    assert body["chat"]["settings"] == {"answer_style": "concise"}

    # Stored turns: the edited question and its answer, nothing of the original's later turns.
    turns = await store.list_turns(conn, users.alice.id, fork_id)
    assert [(t["role"], t["status"]) for t in turns] == [("user", "complete"), ("assistant", "complete")]
    assert turns[0]["content"] == EDITED and turns[1]["reply_to"] == turns[0]["id"]
    assert [t["turn_id"] for t in body["turns"]] == [str(t["id"]) for t in turns]
    # The thread holds only the edited branch, keyed by the fork's own turn ids.
    thread = await _thread_messages(app, fork_id)
    assert [(kind, content) for kind, _, content in thread][:1] == [("human", EDITED)]
    assert [m[0] for m in thread] == ["human", "ai"] and thread[0][1] == str(turns[0]["id"])
    assert thread[1][2] == turns[1]["content"]
    assert not any(q in str(thread) for q in QUESTIONS)

    # The original is unchanged, and both chats record the fork.
    assert await store.list_turns(conn, users.alice.id, chat_id) == original_turns
    assert await _thread_messages(app, chat_id) == original_thread
    kinds = [e["kind"] for e in await store.list_events(conn, users.alice.id, chat_id)]
    assert kinds == ["start", "fork"]
    fork_events = await store.list_events(conn, users.alice.id, fork_id)
    assert fork_events[0]["kind"] == "fork" and fork_events[0]["details"]["chat_id"] == str(chat_id)

    # After the answer: an automatic title from the edited question, and embedded turns.
    fork = await store.get_chat(conn, users.alice.id, fork_id)
    assert fork["title_auto"] is True and "Pull" in fork["title"] and "Description" in fork["title"]
    assert fork["topics"]
    await drain_after_turns(app.state.res)  # turn embeddings are written in batches, just after the answer
    cur = await conn.execute("SELECT count(*) AS n FROM chat_turns WHERE chat_id = %s AND embedding IS NULL",
                             (fork_id,))
    assert (await cur.fetchone())["n"] == 0


async def test_fork_from_a_later_question_keeps_the_earlier_exchange(client, users, conn, app, chat_with_turns):
    chat_id = chat_with_turns["id"]
    original_turns = await store.list_turns(conn, users.alice.id, chat_id)
    original_thread = await _thread_messages(app, chat_id)
    second = original_turns[2]
    assert second["content"] == QUESTIONS[1]

    r = await client.post(f"/chat/history/{chat_id}/fork", json={"turn_id": str(second["id"]), "text": EDITED},
                          headers=users.alice.headers)
    assert r.status_code == 201, r.text
    fork_id = r.json()["chat"]["chat_id"]
    turns = await store.list_turns(conn, users.alice.id, fork_id)
    assert [t["content"] for t in turns[:3]] == [QUESTIONS[0], original_turns[1]["content"], EDITED]
    assert len(turns) == 4 and turns[3]["role"] == "assistant"
    # Copies: new ids, same words and times, replies pointing at the copies.
    assert {t["id"] for t in turns}.isdisjoint({t["id"] for t in original_turns})
    assert turns[0]["created_at"] == original_turns[0]["created_at"] and turns[1]["reply_to"] == turns[0]["id"]

    thread = await _thread_messages(app, fork_id)
    assert [(kind, content) for kind, _, content in thread[:3]] == [
        ("human", QUESTIONS[0]), ("ai", original_thread[1][2]), ("human", EDITED)]
    assert len(thread) == 4 and thread[0][1] == str(turns[0]["id"]) and thread[2][1] == str(turns[2]["id"])
    assert QUESTIONS[1] not in str(thread) and QUESTIONS[2] not in str(thread)
    assert await _thread_messages(app, chat_id) == original_thread
    assert r.json()["chat"]["title"].endswith("(fork)")

    # The fork's turn ids map back into its thread, so it can be forked in turn.
    r = await client.post(f"/chat/history/{fork_id}/fork", json={"turn_id": str(turns[2]["id"]),
                                                                 "text": "And a branch name?"},
                          headers=users.alice.headers)
    assert r.status_code == 201, r.text
    again = await _thread_messages(app, r.json()["chat"]["chat_id"])
    assert [(kind, content) for kind, _, content in again[:3]] == [
        ("human", QUESTIONS[0]), ("ai", original_thread[1][2]), ("human", "And a branch name?")]


async def test_fork_rejects_bad_requests(client, users, conn, chat_with_turns):
    chat_id = chat_with_turns["id"]
    turns = await store.list_turns(conn, users.alice.id, chat_id)
    url = f"/chat/history/{chat_id}/fork"
    r = await client.post(url, json={"turn_id": str(turns[1]["id"]), "text": "x"}, headers=users.alice.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_a_user_turn"
    other = await make_chat(conn, users.alice, exchanges=[("elsewhere", "yes")])
    [other_q, _] = await store.list_turns(conn, users.alice.id, other["id"])
    r = await client.post(url, json={"turn_id": str(other_q["id"]), "text": "x"}, headers=users.alice.headers)
    assert r.status_code == 404
    for body in ({"turn_id": str(turns[0]["id"]), "text": ""}, {"turn_id": str(turns[0]["id"]), "text": "x" * 8001},
                 {"turn_id": "nope", "text": "x"}, {"text": "x"}):
        assert (await client.post(url, json=body, headers=users.alice.headers)).status_code == 422, body
    r = await client.post(f"/chat/history/{missing_id()}/fork", json={"turn_id": str(turns[0]["id"]), "text": "x"},
                          headers=users.alice.headers)
    assert r.status_code == 404
    cur = await conn.execute("SELECT count(*) AS n FROM chats WHERE user_id = %s", (users.alice.id,))
    assert (await cur.fetchone())["n"] == 2  # no half-made forks


async def test_fork_rebuilds_the_thread_from_turns_when_the_checkpoints_are_gone(client, users, conn, app,
                                                                                 chat_with_turns):
    chat_id = chat_with_turns["id"]
    turns = await store.list_turns(conn, users.alice.id, chat_id)
    await app.state.res.extras["graph"].checkpointer.adelete_thread(str(chat_id))
    r = await client.post(f"/chat/history/{chat_id}/fork", json={"turn_id": str(turns[4]["id"]), "text": EDITED},
                          headers=users.alice.headers)
    assert r.status_code == 201, r.text
    fork_turns = await store.list_turns(conn, users.alice.id, r.json()["chat"]["chat_id"])
    thread = await _thread_messages(app, r.json()["chat"]["chat_id"])
    assert [m[2] for m in thread[:5]] == [t["content"] for t in fork_turns[:5]]
    assert [m[1] for m in thread[:5]] == [str(t["id"]) for t in fork_turns[:5]]
    assert thread[4][2] == EDITED
