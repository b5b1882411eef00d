"""The memory write hangs on the TurnRunner's after-turn callback, keyed by the user turn."""

from __future__ import annotations

import uuid

from allin.chats import store as chat_store


async def _chat(app, user) -> dict:
    async with app.state.res.pool.connection() as conn:
        return await chat_store.create_chat(conn, user.id)


async def test_a_completed_turn_is_remembered_once_even_if_its_after_turn_work_runs_again(app, users):
    res = app.state.res
    runner, memory = res.extras["runner"], res.extras["memory"]
    chat = await _chat(app, users.alice)

    result = await runner.run(user_id=users.alice.id, chat=chat, text="btw, I'm on the payments team.")
    assert result.status == "complete"
    await runner.on_turn_done(chat, result)  # a retried after-turn step: the same user turn again
    await memory.drain()
    assert [m["text"] for m in await memory.list(users.alice.id)] == ["I'm on the payments team."]

    # The next turn, in another chat, gets the memory through the graph's recall step.
    other = await _chat(app, users.alice)
    answer = await runner.run(user_id=users.alice.id, chat=other, text="Which team am I on?")
    assert "payments team" in answer.content


async def test_whatever_was_on_the_after_turn_hook_still_runs(app, users):
    """start_memory chains the memory write in front of an existing on_turn_done (titles, embeddings)."""
    from api.memory import remember_then

    res = app.state.res
    seen: list[uuid.UUID] = []

    async def titles(chat, result):
        seen.append(result.user_turn_id)

    runner = res.extras["runner"]
    runner.on_turn_done = remember_then(res, res.extras["memory"], titles)
    chat = await _chat(app, users.bob)
    result = await runner.run(user_id=users.bob.id, chat=chat, text="I'm on the search team.")
    await res.extras["memory"].drain()
    assert seen == [result.user_turn_id]
    assert [m["text"] for m in await res.extras["memory"].list(users.bob.id)] == ["I'm on the search team."]


async def test_failed_turns_are_not_remembered(app, users):
    from graphs.assistant.runner import TurnResult

    res = app.state.res
    chat = await _chat(app, users.alice)
    async with res.pool.connection() as conn:
        turn = await chat_store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user",
                                         content="I'm on the payments team.")
    failed = TurnResult(user_turn_id=turn["id"], turn_id=uuid.uuid4(), status="error", content="")
    await res.extras["on_turn_done"](chat, failed)
    await res.extras["memory"].drain()
    assert await res.extras["memory"].list(users.alice.id) == []
