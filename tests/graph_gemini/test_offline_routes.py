"""Offline mode through the real app and /ws: each route answers as it should.

No key: the local classifier routes, the extractive model answers, the local
sandbox runs code the user wrote, retrieval is hybrid search over Postgres.
"""

from __future__ import annotations

import websockets

from tests.graph_gemini.conftest import stored_turns
from tests.graph_gemini.helpers import ask, hello, of


async def test_identity_code_and_knowledge_routes(live_server, users, knowledge, db_url):
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        who = await ask(ws, "Who are you?", frame_id="who")
        code = await ask(ws, "run this\n```python\nprint(sum(i * i for i in range(10)))\n```", frame_id="code")
        know = await ask(ws, "How fast should code reviews be?", frame_id="know")

    for frames in (who, code, know):
        assert frames[-1]["type"] == "turn_complete", frames[-1]
        message = of(frames, "message")[0]
        assert "".join(f["text"] for f in of(frames, "token")) == message["content"]

    answer = of(who, "message")[0]["content"]
    assert "Allin" in answer and "Team 8" in answer
    assert of(who, "code") == [] and of(who, "message")[0]["citations"] == []

    [run] = of(code, "code")
    assert run["language"] == "python" and run["outcome"] == "ok" and run["stdout"] == "285\n"
    assert "285" in of(code, "message")[0]["content"]

    message = of(know, "message")[0]
    assert "One business day is the maximum time it should take to respond to a code review request" in message["content"]
    assert message["citations"], "a grounded answer cites its passages"
    for citation in message["citations"]:
        assert citation["document_id"] == knowledge["id"] and citation["file"] == knowledge["file"]
        assert isinstance(citation["page"], int) and citation["page"] >= 1
        assert f"[{citation['n']}]" in message["content"]

    turns = await stored_turns(db_url, ready["chat_id"])
    replies = [t for t in turns if t["role"] == "assistant"]
    assert [t["route"] for t in replies] == ["identity", "code", "knowledge"]
    assert all(t["status"] == "complete" for t in replies)
    assert replies[1]["code"][0]["stdout"] == "285\n" and replies[1]["code"][0]["outcome"] == "ok"
    assert replies[2]["citations"] == message["citations"]
