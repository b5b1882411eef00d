"""A client that stops reading: the server's queue for it stays bounded and it is closed, others go on."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import time

import websockets

from tests.conftest import serve_in_thread
from tests.support.ws_client import collect_turn, hello


def _masked_text_frame(payload: bytes) -> bytes:
    """One client→server text frame (clients must mask)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _open_reader_that_never_reads(port: int, token: str) -> socket.socket:
    """A WebSocket opened by hand on a socket with a tiny receive buffer, so the server's writes back up."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # before connect: sets the TCP window
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    sock.sendall(_masked_text_frame(json.dumps({"type": "hello", "token": token}).encode()))
    return sock


async def test_a_client_that_stops_reading_is_dropped_and_others_are_served(settings, users):
    """Backpressure: its frames queue up to a bound, a send then waits WS_SEND_TIMEOUT_S, and the
    server lets the connection go (close 4001 if that frame can still be written at all)."""
    from api.ws.endpoint import OUTBOX_FRAMES, hub

    with serve_in_thread(settings.model_copy(update={"ws_send_timeout_s": 1.0})) as server:
        connections = hub(server.app.state.res).connections
        sock = _open_reader_that_never_reads(server.port, users.alice.token)
        sock.setblocking(False)
        pings = _masked_text_frame(json.dumps({"type": "ping", "id": "p" * 40}).encode()) * 50
        deadline = time.monotonic() + 60
        most_queued = 0
        while connections or not most_queued:  # until the server has let it go
            assert time.monotonic() < deadline, f"still held; {most_queued} frames queued at most"
            most_queued = max([most_queued, *(c.outbox.qsize() for c in connections)])
            with contextlib.suppress(BlockingIOError, OSError):  # full: the server stopped reading too
                sock.send(pings)
            await asyncio.sleep(0.01)
        sock.close()
        assert 0 < most_queued <= OUTBOX_FRAMES  # bounded, never more
        # Another client is answered.
        async with websockets.connect(server.ws_url) as ws:
            await hello(ws, users.bob.token)
            await ws.send(json.dumps({"type": "text", "text": "Who are you?", "id": "q"}))
            assert (await collect_turn(ws))[-1]["type"] == "turn_complete"
