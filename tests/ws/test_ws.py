"""/ws with a real WebSocket client (the `websockets` library) against uvicorn on a free port."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets

from tests.conftest import LiveServer
from tests.support.ws_client import collect_turn, hello, recv_json


async def test_full_turn_streams_tokens_then_message_then_complete(live_server: LiveServer, users):
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        assert ready["type"] == "ready" and ready["resumed"] is False and ready["reply_to"] == "h1"
        await ws.send(json.dumps({"type": "text", "text": "Who are you?", "id": "q1"}))
        frames = await collect_turn(ws)
    kinds = [f["type"] for f in frames]
    assert kinds[-2:] == ["message", "turn_complete"]
    tokens = [f for f in frames if f["type"] == "token"]
    assert len(tokens) > 3
    assert all(f["reply_to"] == "q1" for f in frames)
    message = frames[-2]
    assert "".join(t["text"] for t in tokens) == message["content"]
    assert "Allin" in message["content"] and "Team 8" in message["content"]
    # Stored: the user turn and the answer.
    r = httpx.get(f"{live_server.url}/chat/history/{ready['chat_id']}", headers=users.alice.headers)
    if r.status_code == 200:
        turns = r.json()["turns"]
        assert [t["role"] for t in turns] == ["user", "assistant"]


async def test_bad_frames_get_error_and_connection_stays_open(live_server, users):
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ws.send("not json")
        assert (await recv_json(ws))["code"] == "bad_json"
        await ws.send(json.dumps({"type": "dance", "id": "x"}))
        err = await recv_json(ws)
        assert err["code"] == "unknown_type" and err["reply_to"] == "x"
        await ws.send(json.dumps({"type": "text", "id": "y"}))
        err = await recv_json(ws)
        assert err["code"] == "bad_frame" and "text" in err["message"]
        await ws.send(json.dumps({"type": "ping", "id": "p"}))
        assert await recv_json(ws) == {"type": "pong", "reply_to": "p"}


async def test_wrong_token_is_refused(live_server, users):
    async with websockets.connect(live_server.ws_url) as ws:
        err = await hello(ws, "allin_nope")
        assert err["code"] == "unauthorized"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == 4401


async def test_first_frame_must_be_hello(live_server):
    async with websockets.connect(live_server.ws_url) as ws:
        await ws.send(json.dumps({"type": "text", "text": "hi"}))
        assert (await recv_json(ws))["code"] == "unauthorized"
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()


async def test_another_users_chat_id_leaks_nothing(live_server, users):
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        await ws.send(json.dumps({"type": "text", "text": "my secret plan is pineapple"}))
        await collect_turn(ws)
    async with websockets.connect(live_server.ws_url) as ws:
        err = await hello(ws, users.bob.token, chat_id=ready["chat_id"])
        assert err == {"type": "error", "code": "chat_not_found", "message": "no such chat", "reply_to": "h1"}
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == 4404
    # A random id gives exactly the same answer.
    async with websockets.connect(live_server.ws_url) as ws:
        assert (await hello(ws, users.bob.token, chat_id=str(uuid.uuid4())))["code"] == "chat_not_found"


async def test_oversize_frame_closes_only_that_connection(live_server, users):
    big = "x" * (live_server.app.state.res.settings.ws_max_frame_kb * 1024 + 10)
    async with websockets.connect(live_server.ws_url, max_size=None) as other:
        await hello(other, users.bob.token)
        async with websockets.connect(live_server.ws_url, max_size=None) as ws:
            await hello(ws, users.alice.token)
            await ws.send(json.dumps({"type": "text", "text": big}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1009
        await other.send(json.dumps({"type": "ping"}))
        assert (await recv_json(other))["type"] == "pong"


async def test_second_text_while_running_is_refused_and_interrupt_stops_it(live_server, users):
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ws.send(json.dumps({"type": "text", "text": "Who are you and what can you do?", "id": "a"}))
        await ws.send(json.dumps({"type": "text", "text": "again", "id": "b"}))
        seen = []
        while True:
            f = await recv_json(ws)
            seen.append(f)
            if f.get("reply_to") == "b":
                break
        assert seen[-1]["code"] == "turn_in_progress"
        await ws.send(json.dumps({"type": "interrupt", "id": "i"}))
        while True:
            f = await recv_json(ws)
            if f.get("reply_to") == "i" or f["type"] == "turn_complete":
                break
        # The chat stays usable.
        await ws.send(json.dumps({"type": "text", "text": "hello", "id": "c"}))
        frames = await collect_turn(ws)
        assert frames[-1]["type"] == "turn_complete"


async def test_reconnect_resumes_the_chat(live_server, users):
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        await ws.send(json.dumps({"type": "text", "text": "Who are you?"}))
        done = await collect_turn(ws)
    async with websockets.connect(live_server.ws_url) as ws:
        again = await hello(ws, users.alice.token, chat_id=ready["chat_id"])
        assert again["type"] == "ready" and again["resumed"] is True and again["chat_id"] == ready["chat_id"]
        assert again["last_turn_id"] == done[-1]["turn_id"]


async def test_origin_is_checked(live_server, users):
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(live_server.ws_url, origin="http://evil.example"):
            pass
    async with websockets.connect(live_server.ws_url, origin=live_server.url) as ws:
        assert (await hello(ws, users.alice.token))["type"] == "ready"


async def test_the_chat_is_named_after_the_answer_and_the_next_question_need_not_wait(live_server, users):
    """Naming (a model call with Gemini) and turn embeddings run after `turn_complete`, not before it."""
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        await ws.send(json.dumps({"type": "text", "text": "How do I write a good commit message?", "id": "q1"}))
        first = await collect_turn(ws)
        assert first[-1]["type"] == "turn_complete"
        # Straight away: a second question is taken, not refused as `turn_in_progress`.
        await ws.send(json.dumps({"type": "text", "text": "Who are you?", "id": "q2"}))
        frames: list[dict] = []
        while not (any(f["type"] == "turn_complete" and f.get("reply_to") == "q2" for f in frames)
                   and any(f["type"] == "chat" for f in frames)):  # in either order
            frames.append(await recv_json(ws, timeout=15))
    assert not [f for f in frames if f["type"] == "error"], frames
    named = [f for f in frames if f["type"] == "chat"]
    assert len(named) == 1 and named[0]["chat_id"] == ready["chat_id"]
    assert "Commit" in named[0]["title"] and named[0]["topics"]
    r = httpx.get(f"{live_server.url}/chat/history/{ready['chat_id']}", headers=users.alice.headers)
    assert r.json()["chat"]["title"] == named[0]["title"]


async def test_turns_over_the_per_user_rate_limit_are_refused_across_connections(settings, users):
    from tests.conftest import serve_in_thread

    with serve_in_thread(settings.model_copy(update={"turns_per_minute": 2})) as server:
        async with websockets.connect(server.ws_url) as ws, websockets.connect(server.ws_url) as other:
            await hello(ws, users.alice.token)
            await hello(other, users.alice.token)  # the same user in another chat
            await ws.send(json.dumps({"type": "text", "text": "Who are you?", "id": "a"}))
            assert (await collect_turn(ws))[-1]["type"] == "turn_complete"
            await other.send(json.dumps({"type": "text", "text": "Who are you?", "id": "b"}))
            assert (await collect_turn(other))[-1]["type"] == "turn_complete"
            await ws.send(json.dumps({"type": "text", "text": "Who are you?", "id": "c"}))
            refused = await collect_turn(ws)
            assert refused[-1]["type"] == "error" and refused[-1]["code"] == "rate_limited", refused
            assert refused[-1]["reply_to"] == "c"
            # Another user is not affected, and the refused connection still answers.
            async with websockets.connect(server.ws_url) as bob:
                await hello(bob, users.bob.token)
                await bob.send(json.dumps({"type": "text", "text": "Who are you?", "id": "d"}))
                assert (await collect_turn(bob))[-1]["type"] == "turn_complete"
            await ws.send(json.dumps({"type": "ping", "id": "p"}))
            while (frame := await recv_json(ws))["type"] == "chat":  # a title may still come in between
                pass
            assert frame["type"] == "pong"


async def test_a_question_resent_with_the_same_id_is_not_stored_twice(live_server, users):
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        await ws.send(json.dumps({"type": "text", "text": "Who are you?", "id": "same"}))
        assert (await collect_turn(ws))[-1]["type"] == "turn_complete"
        await ws.send(json.dumps({"type": "text", "text": "Who are you?", "id": "same"}))
        again = await collect_turn(ws)
        err = again[-1]
        assert err["type"] == "error" and err["code"] == "duplicate_id" and err["reply_to"] == "same", again
        assert "history" in err["message"] and "database" not in err["message"]
        # A new id is a new question.
        await ws.send(json.dumps({"type": "text", "text": "Who are you?", "id": "other"}))
        assert (await collect_turn(ws))[-1]["type"] == "turn_complete"
    r = httpx.get(f"{live_server.url}/chat/history/{ready['chat_id']}", headers=users.alice.headers)
    assert [t["role"] for t in r.json()["turns"]] == ["user", "assistant", "user", "assistant"]
