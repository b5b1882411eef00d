"""The connection's outbox: token frames waiting behind a slow socket are joined, nothing else is."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from allin.config import Settings
from api.ws.endpoint import Connection


class GatedSocket:
    """Stands in for starlette's WebSocket: each send waits until the test opens the gate."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.gate = asyncio.Event()

    async def send_json(self, frame: dict) -> None:
        await self.gate.wait()
        self.sent.append(frame)

    async def send_bytes(self, data: bytes) -> None:
        await self.gate.wait()
        self.sent.append({"bytes": data})


async def test_tokens_queued_behind_a_slow_write_are_joined_in_order():
    ws = GatedSocket()
    conn = Connection(ws, SimpleNamespace(settings=Settings(_env_file=None), extras={}))  # type: ignore[arg-type]
    writer = asyncio.create_task(conn.writer())
    token = {"type": "token", "turn_id": "t1", "reply_to": "q1"}
    await conn.send({**token, "text": "The "})
    await asyncio.sleep(0)  # the writer takes it and waits on the socket
    for word in ("answer ", "is ", "42."):
        await conn.send({**token, "text": word})
    await conn.send({"type": "message", "content": "The answer is 42.", "turn_id": "t1"})
    await conn.send({**token, "text": "Next ", "turn_id": "t2"})
    await conn.send({**token, "text": "one", "turn_id": "t2"})
    await conn.send({"type": "pong"})
    await conn.send({**token, "text": "after pong", "turn_id": "t2"})
    ws.gate.set()
    await conn.flush(2)
    await conn.send(None)  # type: ignore[arg-type] - the writer's stop signal
    await writer
    assert ws.sent == [
        {**token, "text": "The "},
        {**token, "text": "answer is 42."},
        {"type": "message", "content": "The answer is 42.", "turn_id": "t1"},
        {**token, "text": "Next one", "turn_id": "t2"},
        {"type": "pong"},
        {**token, "text": "after pong", "turn_id": "t2"},
    ]
