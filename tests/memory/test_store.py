"""MemoryStore offline: mem0 on the test's Postgres with the local MiniLM, statements kept verbatim."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from psycopg.rows import dict_row


async def remember(memory, user, text, turn_id=None):
    return await memory.remember_turn(user.id, text, "Noted.", turn_id=turn_id or uuid.uuid4())


async def test_a_statement_is_recalled_by_a_related_question_and_not_by_unrelated_ones(memory, users):
    ids = await remember(memory, users.alice, "Hi! I'm on the payments team. How do I deploy?")
    assert len(ids) == 1
    assert await memory.recall(users.alice.id, "which team am I on?") == ["I'm on the payments team."]
    # Below the relevance threshold: the memory does not ride along with every answer.
    assert await memory.recall(users.alice.id, "How fast should code reviews be?") == []
    assert await memory.recall(users.alice.id, "how do I deploy to production?") == []


async def test_questions_and_requests_store_nothing(memory, users):
    for text in ("which team am I on?", "Run the tests for me", "How fast should code reviews be?"):
        assert await remember(memory, users.alice, text) == []
    assert await memory.list(users.alice.id) == []


async def test_about_me_questions_get_everything_newest_first(memory, users):
    await remember(memory, users.alice, "I'm on the payments team.")
    await remember(memory, users.alice, "My manager is Dana Levi.")
    assert await memory.recall(users.alice.id, "What do you know about me?") == [
        "My manager is Dana Levi.", "I'm on the payments team."]


async def test_the_same_turn_twice_writes_once_even_concurrently(memory, users, db_url):
    turn = uuid.uuid4()
    first, second = await asyncio.gather(
        remember(memory, users.alice, "I'm on the payments team.", turn),
        remember(memory, users.alice, "I'm on the payments team.", turn),
    )
    assert sorted([len(first), len(second)]) == [0, 1]
    assert await remember(memory, users.alice, "I'm on the payments team.", turn) == []  # a later retry
    assert [m["text"] for m in await memory.list(users.alice.id)] == ["I'm on the payments team."]
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        row = await (await conn.execute("SELECT * FROM memory_turns WHERE turn_id = %s", (str(turn),))).fetchone()
    assert row["status"] == "done" and [str(i) for i in row["memory_ids"]] == (first or second)


async def test_a_fact_repeated_in_another_chat_is_kept_once(memory, users):
    await remember(memory, users.alice, "I'm on the payments team.")
    assert await remember(memory, users.alice, "i'm on the payments team") == []
    assert len(await memory.list(users.alice.id)) == 1


async def test_a_stale_claim_of_a_crashed_attempt_is_taken_over(memory, users, db_url):
    turn = str(uuid.uuid4())
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO memory_turns (turn_id, user_id, claimed_at) "
                           "VALUES (%s, %s, now() - interval '1 hour')", (turn, users.alice.id))
    assert len(await remember(memory, users.alice, "I'm on the payments team.", turn)) == 1
    # A fresh claim (an attempt still running elsewhere) is left alone.
    other = str(uuid.uuid4())
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO memory_turns (turn_id, user_id) VALUES (%s, %s)", (other, users.alice.id))
    assert await remember(memory, users.alice, "My manager is Dana.", other) == []


async def test_users_see_and_delete_only_their_own_memories(memory, users):
    [alice_id] = await remember(memory, users.alice, "I'm on the payments team.")
    await remember(memory, users.bob, "I'm on the search team.")

    assert [m["text"] for m in await memory.list(users.bob.id)] == ["I'm on the search team."]
    assert await memory.recall(users.bob.id, "which team am I on?") == ["I'm on the search team."]
    assert not await memory.delete(users.bob.id, alice_id)  # another user's id: as if unknown
    assert not await memory.delete(users.alice.id, uuid.uuid4())
    assert not await memory.delete(users.alice.id, "not-a-uuid")
    assert [m["id"] for m in await memory.list(users.alice.id)] == [alice_id]

    assert await memory.delete(users.alice.id, alice_id)
    assert await memory.list(users.alice.id) == []
    assert await memory.recall(users.alice.id, "which team am I on?") == []
    assert len(await memory.list(users.bob.id)) == 1


async def test_delete_all_counts_and_leaves_other_users_alone(memory, users):
    await remember(memory, users.alice, "I'm on the payments team. My manager is Dana Levi.")
    await remember(memory, users.bob, "I'm on the search team.")
    assert await memory.delete_all(users.alice.id) == 2
    assert await memory.delete_all(users.alice.id) == 0
    assert await memory.list(users.alice.id) == []
    assert await memory.recall(users.alice.id, "who is my manager?") == []
    assert [m["text"] for m in await memory.list(users.bob.id)] == ["I'm on the search team."]


async def test_listing_shows_text_and_times(memory, users):
    await remember(memory, users.alice, "I'm on the payments team.")
    [item] = await memory.list(users.alice.id)
    assert set(item) == {"id", "text", "created_at", "updated_at"}
    uuid.UUID(item["id"])
    assert item["created_at"] is not None and item["created_at"].tzinfo is not None
    assert item["updated_at"] >= item["created_at"]


@pytest.mark.parametrize("blank", [None, "", "  "])
async def test_every_method_refuses_to_run_without_a_user(memory, blank):
    with pytest.raises(ValueError, match="user_id"):
        await memory.remember_turn(blank, "I'm on the payments team.", "", turn_id=uuid.uuid4())
    with pytest.raises(ValueError, match="user_id"):
        await memory.recall(blank, "which team am I on?")
    with pytest.raises(ValueError, match="user_id"):
        await memory.list(blank)
    with pytest.raises(ValueError, match="user_id"):
        await memory.delete(blank, uuid.uuid4())
    with pytest.raises(ValueError, match="user_id"):
        await memory.delete_all(blank)


async def test_a_turn_id_is_required_for_writes(memory, users):
    with pytest.raises(ValueError, match="turn_id"):
        await memory.remember_turn(users.alice.id, "I'm on the payments team.", "", turn_id=None)


async def test_deleting_a_user_deletes_their_memories(memory, users, db_url):
    await remember(memory, users.bob, "I'm on the search team.")
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("DELETE FROM users WHERE id = %s", (users.bob.id,))
        cur = await conn.execute("SELECT count(*) FROM memories")
        assert (await cur.fetchone())[0] == 0


async def test_facts_written_about_the_user_are_recalled_by_first_person_questions(memory, users):
    """Gemini's facts read "User works on ..." (mem0's prompt); questions say "I"."""
    engine = await memory._engine()
    await engine.add("User works on the payments team", user_id=str(users.alice.id), infer=False)
    await engine.add("User's manager is Dana Levi", user_id=str(users.alice.id), infer=False)
    assert await memory.recall(users.alice.id, "Which team am I on?") == ["User works on the payments team"]
    assert await memory.recall(users.alice.id, "Who is my manager?") == ["User's manager is Dana Levi"]
    assert await memory.recall(users.alice.id, "How fast should code reviews be?") == []


async def test_a_user_without_memories_costs_no_search_and_a_new_memory_is_found_at_once(memory, users):
    """Most turns are by users with nothing remembered: recall answers from one indexed probe (mem0
    is not even loaded). A memory written here is recalled on the very next turn."""
    assert await memory.recall(users.alice.id, "which team am I on?") == []
    assert memory._mem0 is None  # noqa: SLF001 - nothing was searched
    await remember(memory, users.alice, "I'm on the payments team.")
    assert await memory.recall(users.alice.id, "which team am I on?") == ["I'm on the payments team."]
    await memory.delete_all(users.alice.id)
    assert await memory.recall(users.alice.id, "which team am I on?") == []


async def test_another_replicas_first_memory_is_recalled_within_the_ttl(settings, pool, db_url, users):
    from dataclasses import replace

    from allin.knowledge.embeddings import get_local_embedder
    from allin.memory import MemoryOptions, make_memory_store

    options = replace(MemoryOptions.from_settings(settings), none_ttl_s=0.5)
    here = make_memory_store(settings, pool, db_url=db_url, embedder=get_local_embedder(), options=options)
    there = make_memory_store(settings, pool, db_url=db_url, embedder=get_local_embedder(), options=options)
    try:
        assert await here.recall(users.bob.id, "who is my manager?") == []
        await remember(there, users.bob, "My manager is Dana Levi.")
        assert await here.recall(users.bob.id, "who is my manager?") == []  # "none" is trusted a moment
        await asyncio.sleep(0.6)
        assert await here.recall(users.bob.id, "who is my manager?") == ["My manager is Dana Levi."]
    finally:
        await here.aclose()
        await there.aclose()
