"""A few lines of the /ws protocol for tests that use a real WebSocket client."""

from __future__ import annotations

import asyncio
import json


async def recv_json(ws, timeout=30):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def hello(ws, token, chat_id=None, frame_id="h1"):
    frame = {"type": "hello", "token": token, "id": frame_id}
    if chat_id:
        frame["chat_id"] = chat_id
    await ws.send(json.dumps(frame))
    return await recv_json(ws)


async def collect_turn(ws, timeout=60):
    """Frames until turn_complete (or error)."""
    frames = []
    while True:
        f = await recv_json(ws, timeout)
        frames.append(f)
        if f["type"] in ("turn_complete", "error"):
            return frames


async def ask(ws, text, frame_id=None, timeout=60):
    frame = {"type": "text", "text": text}
    if frame_id:
        frame["id"] = frame_id
    await ws.send(json.dumps(frame))
    return await collect_turn(ws, timeout)
