"""Automatic chat titles and topics (offline keywords; Gemini structured output against the fake)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from allin.chats import store
from allin.chats.after_turn import after_turn
from allin.chats.titles import keywords, offline_title_and_topics, title_and_topics
from api.assistant import drain_after_turns
from tests.chats.helpers import make_chat


@pytest.mark.parametrize(("question", "title"), [
    ("How do I request access to the staging database?", "Request Access Staging Database"),
    ("hey, what's the process for deploying the payments API to production?",
     "Process Deploying Payments API Production"),
    ("Can you explain how our CI/CD pipeline handles gRPC services and node.js builds in k8s clusters?",
     "CI/CD Pipeline Handles gRPC Services Node.js"),
    ("What is the release schedule?", "Release Schedule"),
])
def test_offline_titles(question, title):
    named = offline_title_and_topics(question)
    assert named is not None and named.title == title
    assert 1 <= len(named.title.split()) <= 6


def test_short_questions_borrow_what_the_answer_keeps_saying():
    named = offline_title_and_topics("Releases?", "Releases ship every Tuesday [1]. A Tuesday release freezes at noon.")
    assert named.title == "Releases Tuesday"
    named = offline_title_and_topics("On-call rota?", "See the rota page.")
    assert named.title == "On-call Rota"


def test_topics_rank_question_keywords_by_the_answer():
    named = offline_title_and_topics("How do reviewers handle large changes and flaky tests?",
                                     "Flaky tests are quarantined. Flaky tests get a ticket. Large changes are split.")
    assert named.topics[0] == "flaky" and set(named.topics) <= {"reviewers", "handle", "large", "changes", "flaky", "tests"}
    assert len(named.topics) == 3


def test_nothing_to_name():
    assert offline_title_and_topics("hi!") is None
    assert offline_title_and_topics("thanks, ok") is None
    assert keywords("the the [1] and of") == []


async def test_title_and_topics_offline_when_no_key():
    named = await title_and_topics(SimpleNamespace(gemini_enabled=False), "Where are the onboarding docs?", "")
    assert named.title == "Onboarding Docs"


@pytest.mark.gemini
async def test_title_and_topics_with_gemini(fake_gemini):
    from allin.config import Settings
    from tests.fake_gemini.script import Json

    settings = Settings(_env_file=None)
    fake_gemini.enqueue(Json({"title": '"Staging Database Access."', "topics": ["Access", "staging db", ""]}))
    named = await title_and_topics(settings, "How do I get into the staging DB?", "Ask #infra.")
    assert named.title == "Staging Database Access" and named.topics == ["access", "staging db"]
    request = fake_gemini.last_request("generate")
    assert "How do I get into the staging DB?" in " ".join(request.texts)


@pytest.mark.gemini
async def test_gemini_failure_falls_back_to_keywords(fake_gemini):
    from allin.config import Settings
    from tests.fake_gemini.script import Json

    settings = Settings(_env_file=None, model_max_retries=0)
    fake_gemini.enqueue(Json({"wrong": "shape"}))
    named = await title_and_topics(settings, "Where are the onboarding docs?", "")
    assert named.title == "Onboarding Docs"


async def test_after_turn_titles_only_automatic_chats_on_early_questions(app, conn, users, embedder):
    pool = app.state.res.pool

    async def exchange(chat, question, answer="It is documented [1]."):
        q = await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user", content=question)
        a = await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="assistant", content=answer)
        result = SimpleNamespace(user_turn_id=q["id"], turn_id=a["id"], question=question, content=answer,
                                 status="complete")
        await after_turn(app.state.res, chat, result)

    auto = await make_chat(conn, users.alice)
    await exchange(auto, "hello")                          # small talk: nothing to name yet
    assert (await store.get_chat(conn, users.alice.id, auto["id"]))["title"] == "New chat"
    await exchange(auto, "How do I rotate my API token?")  # the first question with keywords names it
    named = await store.get_chat(conn, users.alice.id, auto["id"])
    assert named["title"] == "Rotate API Token" and named["topics"]
    await exchange(auto, "Where is the lunch menu?")       # later questions do not rename it
    assert (await store.get_chat(conn, users.alice.id, auto["id"]))["title"] == "Rotate API Token"

    manual = await make_chat(conn, users.alice, title="Mine")
    await exchange(manual, "How do I rotate my API token?")
    assert (await store.get_chat(conn, users.alice.id, manual["id"]))["title"] == "Mine"

    # Embeddings of the user's turns were stored along the way (in batches, just after each answer).
    await drain_after_turns(app.state.res)
    cur = await conn.execute("SELECT count(*) AS n FROM chat_turns WHERE embedding IS NULL")
    assert (await cur.fetchone())["n"] == 0
    # A bare pool works too (no settings: offline titles; no embedder: no embeddings).
    bare = await make_chat(conn, users.alice)
    q = await store.add_turn(conn, user_id=users.alice.id, chat_id=bare["id"], role="user",
                             content="Which linter do we use?")
    await after_turn(pool, bare, SimpleNamespace(user_turn_id=q["id"], content="ruff", status="complete"))
    assert (await store.get_chat(conn, users.alice.id, bare["id"]))["title"] == "Linter"


async def test_after_turn_embeds_its_exchange_and_catches_up_on_turns_left_behind(app, conn, users, embedder):
    """After a turn only its own question and answer are embedded (no query for pending turns); a
    turn that ended without after-turn work (interrupted) is embedded by the periodic catch-up."""
    from allin.chats.after_turn import CATCH_UP_EVERY

    chat = await make_chat(conn, users.alice, title="Mine")

    async def exchange(question: str) -> None:
        q = await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user", content=question)
        a = await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="assistant", content="ok")
        await after_turn(app.state.res, chat, SimpleNamespace(user_turn_id=q["id"], turn_id=a["id"], question=question,
                                                              content="ok", status="complete"))
        await drain_after_turns(app.state.res)

    async def unembedded() -> list[str]:
        cur = await conn.execute("SELECT content FROM chat_turns WHERE embedding IS NULL AND chat_id = %s", (chat["id"],))
        return [r["content"] for r in await cur.fetchall()]

    await exchange("first question")
    await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user", content="cut short")
    for i in range(CATCH_UP_EVERY - 1):
        await exchange(f"question {i}")
        assert await unembedded() == ["cut short"]
    await exchange("the catch-up turn")
    assert await unembedded() == []


async def test_turns_finishing_together_are_embedded_in_one_batch(app, conn, users, embedder):
    """Exchanges handed over close together share one embedder call and one UPDATE; a failed batch
    leaves its turns for the catch-up and says whose they were."""
    from allin.chats.embedding import TurnEmbeddingBatcher

    calls: list[int] = []

    class Counting:
        def embed(self, texts):
            calls.append(len(texts))
            return embedder.embed(texts)

        def embed_query(self, text):
            return embedder.embed_query(text)

    chat = await make_chat(conn, users.alice, title="Mine")
    turns = [await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user", content=f"q{i}")
             for i in range(6)]
    batcher = TurnEmbeddingBatcher(app.state.res.pool, Counting(), linger_s=0.05)
    for i in range(0, 6, 2):
        batcher.submit(users.alice.id, [(turns[i]["id"], f"q{i}"), (turns[i + 1]["id"], f"q{i + 1}")])
    await batcher.drain()
    assert calls == [6]
    cur = await conn.execute("SELECT count(*) AS n FROM chat_turns WHERE chat_id = %s AND embedding IS NULL",
                             (chat["id"],))
    assert (await cur.fetchone())["n"] == 0

    class Broken(Counting):
        def embed(self, texts):
            raise RuntimeError("model gone")

    failed: list[set] = []
    late = await store.add_turn(conn, user_id=users.bob.id, chat_id=(await make_chat(conn, users.bob))["id"],
                                role="user", content="late")
    broken = TurnEmbeddingBatcher(app.state.res.pool, Broken(), linger_s=0.01, on_failure=failed.append)
    broken.submit(users.bob.id, [(late["id"], "late")])
    await broken.drain()
    assert failed == [{users.bob.id}]
    cur = await conn.execute("SELECT embedding IS NULL AS missing FROM chat_turns WHERE id = %s", (late["id"],))
    assert (await cur.fetchone())["missing"]
