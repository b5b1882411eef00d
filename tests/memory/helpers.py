"""A /ws client for memory tests (the real `websockets` library) and a poll for background memory writes."""

from __future__ import annotations

import asyncio
import json
import time

import httpx


async def recv_json(ws, timeout: float = 60) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def hello(ws, token: str, chat_id: str | None = None) -> dict:
    await ws.send(json.dumps({"type": "hello", "token": token} | ({"chat_id": chat_id} if chat_id else {})))
    ready = await recv_json(ws)
    assert ready["type"] == "ready", ready
    return ready


async def ask(ws, text: str, timeout: float = 60) -> dict:
    """Send a text turn; the `message` frame that answers it (fails on an error frame)."""
    await ws.send(json.dumps({"type": "text", "text": text, "id": "q"}))
    message = None
    while True:
        frame = await recv_json(ws, timeout)
        assert frame["type"] != "error", frame
        if frame["type"] == "message":
            message = frame
        if frame["type"] == "turn_complete":
            assert message is not None
            return message


async def memories_of(base_url: str, headers: dict, *, at_least: int = 1, timeout: float = 30) -> list[dict]:
    """GET /memory until it lists `at_least` items (memory is written in the background after a turn)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as http:
        while True:
            r = await http.get("/memory")
            assert r.status_code == 200, r.text
            items = r.json()["items"]
            if len(items) >= at_least or time.monotonic() > deadline:
                return items
            await asyncio.sleep(0.1)
