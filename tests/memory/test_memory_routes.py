"""GET /memory, DELETE /memory/{id}, DELETE /memory: the caller's memories only; others' ids are 404."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
async def seeded(app, users) -> dict:
    """Alice: two memories, Bob: one (written through the app's own store)."""
    memory = app.state.res.extras["memory"]
    await memory.remember_turn(users.alice.id, "I'm on the payments team.", "", turn_id=uuid.uuid4())
    await memory.remember_turn(users.alice.id, "My manager is Dana Levi.", "", turn_id=uuid.uuid4())
    await memory.remember_turn(users.bob.id, "I'm on the search team.", "", turn_id=uuid.uuid4())
    return {name: await memory.list(getattr(users, name).id) for name in ("alice", "bob")}


async def test_get_lists_only_the_callers_memories_newest_first(client, users, seeded):
    r = await client.get("/memory", headers=users.alice.headers)
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["text"] for i in items] == ["My manager is Dana Levi.", "I'm on the payments team."]
    assert set(items[0]) == {"id", "text", "created_at", "updated_at"}
    r = await client.get("/memory", headers=users.bob.headers)
    assert [i["text"] for i in r.json()["items"]] == ["I'm on the search team."]


async def test_delete_one_is_204_for_the_owner_and_404_for_anyone_else(client, users, seeded):
    alices = seeded["alice"][0]["id"]
    assert (await client.delete(f"/memory/{alices}", headers=users.bob.headers)).status_code == 404
    r = await client.delete(f"/memory/{uuid.uuid4()}", headers=users.alice.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert len((await client.get("/memory", headers=users.alice.headers)).json()["items"]) == 2

    assert (await client.delete(f"/memory/{alices}", headers=users.alice.headers)).status_code == 204
    assert (await client.delete(f"/memory/{alices}", headers=users.alice.headers)).status_code == 404
    left = (await client.get("/memory", headers=users.alice.headers)).json()["items"]
    assert [i["id"] for i in left] == [seeded["alice"][1]["id"]]


async def test_delete_all_empties_only_the_callers_memories(client, users, seeded):
    assert (await client.delete("/memory", headers=users.alice.headers)).status_code == 204
    assert (await client.get("/memory", headers=users.alice.headers)).json()["items"] == []
    assert len((await client.get("/memory", headers=users.bob.headers)).json()["items"]) == 1
    assert (await client.delete("/memory", headers=users.alice.headers)).status_code == 204  # nothing left: fine


async def test_memory_routes_need_a_token(client):
    assert (await client.get("/memory")).status_code == 401
    assert (await client.delete("/memory")).status_code == 401
    assert (await client.delete(f"/memory/{uuid.uuid4()}")).status_code == 401
