"""Connections that stop talking: a silent newcomer, an idle client, a peer that died without closing.

Each runs a real uvicorn with the production options (api.server.uvicorn_config) and short limits.
The dead peer is a raw TCP socket that completes the WebSocket handshake, says hello and then never
reads again, as a laptop that lost its network does: only the server's protocol pings can find it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time

import websockets
from websockets.exceptions import ConnectionClosed

from tests.conftest import serve_in_thread
from tests.ops.test_metrics_scrape import scrape, value
from tests.support.ws_client import hello, recv_json


async def closed_with(ws, timeout: float) -> tuple[int | None, list[dict]]:
    """Frames received until the server closes, and the close code."""
    frames = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else None), frames


async def test_a_connection_that_never_says_hello_is_closed(settings, users):
    with serve_in_thread(settings.model_copy(update={"ws_auth_timeout_s": 0.5})) as server:
        async with websockets.connect(server.ws_url) as ws:
            started = time.monotonic()
            code, frames = await closed_with(ws, timeout=10)
        assert code == 4408 and frames == []
        assert time.monotonic() - started < 5


async def test_an_idle_connection_is_told_and_closed_and_app_pings_keep_another_open(settings, users):
    with serve_in_thread(settings.model_copy(update={"ws_idle_timeout_s": 1.0})) as server:
        async with websockets.connect(server.ws_url) as idle, websockets.connect(server.ws_url) as busy:
            await hello(idle, users.alice.token)
            await hello(busy, users.bob.token)

            async def keep_pinging() -> list[dict]:
                pongs = []
                for n in range(8):  # 2.4 s: well past the idle limit
                    await busy.send(json.dumps({"type": "ping", "id": f"p{n}"}))
                    pongs.append(await recv_json(busy, timeout=5))
                    await asyncio.sleep(0.3)
                return pongs

            pinging = asyncio.create_task(keep_pinging())
            code, frames = await closed_with(idle, timeout=10)
            pongs = await pinging
            assert code == 4000
            assert [f["code"] for f in frames] == ["idle_timeout"] and "1 s" in frames[0]["message"]
            assert pongs == [{"type": "pong", "reply_to": f"p{n}"} for n in range(8)]
            # The kept connection still answers questions.
            await busy.send(json.dumps({"type": "text", "text": "Who are you?", "id": "q"}))
            while (frame := await recv_json(busy))["type"] not in ("turn_complete", "error"):
                pass
            assert frame["type"] == "turn_complete"


def server_opcodes(data: bytes) -> list[int]:
    """The opcodes of the (unmasked) frames a server sent, in order; a cut-off last frame is left out."""
    opcodes, at = [], 0
    while at + 2 <= len(data):
        length, header = data[at + 1] & 0x7F, 2
        if length == 126:
            length, header = int.from_bytes(data[at + 2:at + 4], "big"), 4
        elif length == 127:
            length, header = int.from_bytes(data[at + 2:at + 10], "big"), 10
        if at + header + length > len(data):
            break
        opcodes.append(data[at] & 0x0F)
        at += header + length
    return opcodes


async def _raw_ws_hello(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client that completes the handshake and sends hello by hand (no library to answer pings)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert status.startswith(b"HTTP/1.1 101"), status
    payload = json.dumps({"type": "hello", "token": token}).encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    await writer.drain()
    return reader, writer


async def test_a_peer_that_stopped_answering_pings_is_dropped(settings, users):
    interval = 0.5
    # The idle limit is far away: only the protocol pings (and their timeout) can close the dead peer.
    with serve_in_thread(settings.model_copy(update={"ws_ping_interval_s": interval,
                                                     "ws_idle_timeout_s": 300})) as server:
        async with websockets.connect(server.ws_url) as alive:  # answers pings (the library does)
            await hello(alive, users.bob.token)
            reader, writer = await _raw_ws_hello(server.port, users.alice.token)
            await asyncio.sleep(0.3)
            assert value(scrape(server.url), "allin_ws_connections") == 2
            # Stop reading, as a vanished peer does; wait for the ping, its timeout and the close.
            started = time.monotonic()
            await asyncio.sleep(2 * interval + 1.0)
            received, hung_up = b"", False
            while not hung_up and time.monotonic() - started < 10:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), 1)
                except asyncio.TimeoutError:
                    continue
                received += chunk
                hung_up = chunk == b""  # EOF: the server closed the TCP connection
            writer.close()
            assert hung_up, "the dead peer was still connected after 10 s"
            assert 0x9 in server_opcodes(received)  # protocol pings reached the dead peer, unanswered
            assert value(scrape(server.url), "allin_ws_connections") == 1
            # The live one is untouched.
            await alive.send(json.dumps({"type": "ping", "id": "still"}))
            assert await recv_json(alive) == {"type": "pong", "reply_to": "still"}
