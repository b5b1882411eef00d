"""BOLA sweep: every operation that takes an id, discovered from the app, called by bob with alice's ids.

Alice's objects are made through the real API (a /ws turn, uploads, admin calls) on the real server.
Bob then gets 404 on every user operation (exactly what an unknown id gets, so he cannot even learn
the object exists) and 403 on every admin one, and no response carries a word of alice's. Alice
herself then gets past the ownership check with the same requests, so the 404s are about ownership,
not about a malformed request.

A new id-taking route fails `test_every_id_param_has_a_factory` until someone teaches FACTORIES how
to make an object for it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import websockets

from tests.security.sweep import Operation, operations, request_kwargs, websocket_paths

if TYPE_CHECKING:  # (imported at run time, pytest would try to collect TestUser as a test class)
    from tests.conftest import LiveServer, TestUser, Users

SECRET = "zanzibar"  # every object of alice's carries it; no response to bob may


@dataclass
class World:
    """The live server, the users, and the objects made so far: ids[owner][param] = [id, ...]."""

    server: LiveServer
    users: Users
    http: httpx.AsyncClient
    ids: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    chats: dict[str, str] = field(default_factory=dict)

    async def chat(self, owner: TestUser) -> str:
        """One chat with one real turn over /ws (memoized per owner)."""
        if owner.name not in self.chats:
            async with websockets.connect(self.server.ws_url) as ws:
                await ws.send(json.dumps({"type": "hello", "token": owner.token}))
                ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert ready["type"] == "ready", ready
                word = SECRET if owner.name == "alice" else "quokka"
                await ws.send(json.dumps({"type": "text", "text": f"I'm on the {word} team."}))
                while (frame := json.loads(await asyncio.wait_for(ws.recv(), 60)))["type"] != "turn_complete":
                    assert frame["type"] != "error", frame
            r = await self.http.patch(f"/chat/history/{ready['chat_id']}", headers=owner.headers,
                                      json={"title": f"{owner.name}'s {word} plan"})
            assert r.status_code == 200, r.text
            self.chats[owner.name] = ready["chat_id"]
        return self.chats[owner.name]


# --- factories: param name -> ids of objects `owner` has (made through the API) -----------------


async def _chat_ids(w: World, owner: TestUser) -> list[str]:
    return [await w.chat(owner)]


async def _turn_ids(w: World, owner: TestUser) -> list[str]:
    r = await w.http.get(f"/chat/history/{await w.chat(owner)}", headers=owner.headers)
    turns = r.json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant"], turns
    return [t["turn_id"] for t in turns]  # a user turn and an answer


async def _memory_ids(w: World, owner: TestUser) -> list[str]:
    await w.chat(owner)
    deadline = time.monotonic() + 30  # memory is written in the background after the turn
    while not (items := (await w.http.get("/memory", headers=owner.headers)).json()["items"]):
        assert time.monotonic() < deadline, "no memory was written after the turn"
        await asyncio.sleep(0.1)
    return [i["id"] for i in items]


async def _document_ids(w: World, owner: TestUser) -> list[str]:
    """A knowledge document the admin uploads and restricts to `owner`."""
    word = SECRET if owner.name == "alice" else "quokka"
    body = f"# {owner.name} only\n\nThe {word} rollout plan starts on Monday at 10:00.\n".encode()
    r = await w.http.post("/admin/knowledge/files", headers=w.users.admin.headers,
                          files={"file": (f"{owner.name}-plan.md", body, "text/markdown")})
    assert r.status_code == 201 and r.json()["status"] == "ready", r.text
    doc = r.json()["id"]
    r = await w.http.put(f"/admin/knowledge/documents/{doc}/access", headers=w.users.admin.headers,
                         json={"users": [owner.name]})
    assert r.status_code == 200 and r.json()["restricted"], r.text
    return [doc]


async def _job_ids(w: World, owner: TestUser) -> list[str]:
    r = await w.http.post("/admin/sync_knowledge", headers=w.users.admin.headers)
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    deadline = time.monotonic() + 60
    while (await w.http.get(f"/admin/sync_knowledge/{job}", headers=w.users.admin.headers)).json()["status"] in (
            "queued", "running"):
        assert time.monotonic() < deadline, "the sync job did not finish"
        await asyncio.sleep(0.1)
    return [job]


async def _user_ids(w: World, owner: TestUser) -> list[str]:
    """A user of the admin's making (not alice: rotating or revoking her would end the sweep)."""
    r = await w.http.post("/admin/users", headers=w.users.admin.headers, json={"name": f"victim-{owner.name}"})
    assert r.status_code == 201, r.text
    return [r.json()["id"]]


# Creation order matters: documents exist before the sync job scans the folder.
FACTORIES: dict[str, Callable[[World, TestUser], Awaitable[list[str]]]] = {
    "chat_id": _chat_ids,
    "turn_id": _turn_ids,
    "memory_id": _memory_ids,
    "document_id": _document_ids,
    "job_id": _job_ids,
    "user_id": _user_ids,
}


# Operations whose owner check cannot pass with the objects above: the reason, and who covers it.
# (Bob's side of the sweep still runs for them.)
NO_OWNER_CONTROL = {
    "GET /chat/turns/{turn_id}/audio": "only voice turns have a recording (making one needs local STT); "
                                       "the owner's download belongs to the voice tests",
}


def _swept(app) -> list[Operation]:
    return [op for op in operations(app) if op.id_params]


def test_every_id_param_has_a_factory(app) -> None:
    ops = _swept(app)
    found = {p.name for op in ops for p in op.id_params}
    assert found - set(FACTORIES) == set(), (
        f"new id parameters {sorted(found - set(FACTORIES))}: add a factory to FACTORIES so the BOLA sweep covers them")
    # The sweep really found the id-taking surface (guards against a discovery that finds nothing).
    assert {"chat_id", "turn_id", "memory_id", "document_id"} <= found and len(ops) >= 15
    # /ws takes a chat id in its hello frame, out of OpenAPI's sight: tests/ws/test_ws.py covers it
    # (test_another_users_chat_id_leaks_nothing); fail here if another WebSocket route appears.
    assert websocket_paths(app) == ["/ws"]


async def _make(w: World, owner: TestUser, names: set[str]) -> dict[str, list[str]]:
    mine = w.ids.setdefault(owner.name, {})
    for name in FACTORIES:
        if name in names and name not in mine:
            mine[name] = await FACTORIES[name](w, owner)
    return mine


def _bob_requests(op: Operation, alices: dict[str, list[str]], bobs: dict[str, list[str]]):
    """Each id alone set to each of alice's objects, the others bob's own (so only that id is foreign)."""
    names = [p.name for p in op.id_params]
    for target in names:
        for value in alices[target]:
            yield {n: (value if n == target else (bobs.get(n) or alices[n])[0]) for n in names}


async def test_bob_gets_404_for_every_id_of_alices(live_server: LiveServer, users: Users) -> None:
    app = live_server.app
    spec = app.openapi()
    ops = _swept(app)
    needed = {p.name for op in ops for p in op.id_params}
    # Bob's own objects only for operations with several ids (his chat with her turn, ...).
    bob_needed = {p.name for op in ops if not op.admin and len(op.id_params) > 1 for p in op.id_params}
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        w = World(live_server, users, http)
        alices = await _make(w, users.alice, needed)
        bobs = await _make(w, users.bob, bob_needed)
        before = (await http.get(f"/chat/history/{alices['chat_id'][0]}", headers=users.alice.headers)).json()

        checked = 0
        for op in ops:
            for ids in _bob_requests(op, alices, bobs):
                url, kwargs = request_kwargs(op, ids, spec)
                r = await http.request(op.method, url, headers=users.bob.headers, **kwargs)
                want = 403 if op.admin else 404
                assert r.status_code == want, (str(op), ids, r.status_code, r.text)
                assert r.json()["error"]["code"] == ("forbidden" if op.admin else "not_found"), (str(op), r.text)
                assert SECRET not in r.text.lower(), (str(op), r.text)
                checked += 1
        assert checked >= 15

        # Nothing of alice's changed (title, settings, status, turns), and bob made nothing from it.
        after = (await http.get(f"/chat/history/{alices['chat_id'][0]}", headers=users.alice.headers)).json()
        assert after["chat"] == before["chat"] and after["turns"] == before["turns"]
        assert len((await http.get("/memory", headers=users.alice.headers)).json()["items"]) == len(alices["memory_id"])
        bob_chats = (await http.get("/chat/history", headers=users.bob.headers)).json()["items"]
        assert [c["chat_id"] for c in bob_chats] == bobs.get("chat_id", [])
        assert SECRET not in json.dumps(bob_chats)

        # The owner (the admin, for admin routes) gets past the ownership check with the same requests;
        # deletions last so every object is still there for the others.
        for op in sorted(ops, key=lambda o: o.method == "DELETE"):
            if str(op) in NO_OWNER_CONTROL:
                continue
            owner = users.admin if op.admin else users.alice
            names = [p.name for p in op.id_params]
            statuses = []
            for values in itertools.product(*(alices[n] for n in names)):
                url, kwargs = request_kwargs(op, dict(zip(names, values, strict=True)), spec)
                statuses.append((await http.request(op.method, url, headers=owner.headers, **kwargs)).status_code)
            assert all(s < 500 for s in statuses) and any(s < 300 for s in statuses), (str(op), statuses)
