"""`/ws`: authenticate with `hello`, then text turns (and voice) with streamed frames.

One reader loop per connection, one writer task draining a bounded queue
(backpressure: a full queue pauses the producer; a client too slow to read is
closed). Turns run as tasks that outlive the socket, so a turn whose client
disconnects still completes and is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from loguru import logger
from starlette.websockets import WebSocketState

from allin.chats import store
from allin.users import User, authenticate
from api.state import Resources
from api.ws import protocol as p

router = APIRouter()
OUTBOX_FRAMES = 512
CLOSE_TIMEOUT_S = 1.0


@dataclass
class ActiveTurn:
    task: asyncio.Task
    turn_owner: int  # id() of the connection that started it


@dataclass
class WsHub:
    """Per-process registry: running turns by chat (one at a time per chat) and a rate limiter."""

    turns: dict[str, ActiveTurn] = field(default_factory=dict)
    # A sliding-window counter, not limits' moving window: with in-memory storage the moving window
    # prunes every user's events after each hit, one worker-thread hop per user (13% of a busy
    # server's CPU in bench/ws_load.py); the counter keeps two numbers per user and no thread.
    limiter: SlidingWindowCounterRateLimiter = field(
        default_factory=lambda: SlidingWindowCounterRateLimiter(MemoryStorage()))
    connections: set = field(default_factory=set)


def hub(res: Resources) -> WsHub:
    if "ws_hub" not in res.extras:
        res.extras["ws_hub"] = WsHub()
    return res.extras["ws_hub"]


def origin_allowed(ws: WebSocket, allowed: list[str]) -> bool:
    origin = ws.headers.get("origin")
    if not origin:
        return True  # not a browser: the token still has to be right
    if origin in allowed:
        return True
    host = ws.headers.get("host", "")
    return urlsplit(origin).netloc == host


class Connection:
    def __init__(self, ws: WebSocket, res: Resources):
        self.ws = ws
        self.res = res
        self.settings = res.settings
        self.hub = hub(res)
        self.outbox: asyncio.Queue[dict | bytes | None] = asyncio.Queue(OUTBOX_FRAMES)
        self.user: User | None = None
        self.chat: dict | None = None
        self.closed = False
        self.last_seen = time.monotonic()
        self.voice: Any = None  # the voice session, created on the first audio frame
        self._queued_token: dict | None = None  # the last frame queued, while it is a token still waiting

    # -- sending ------------------------------------------------------------------
    async def send(self, frame: dict | bytes) -> None:
        """Queue a frame; waits when the queue is full (backpressure), drops once closed.

        A token behind another of the same turn still in the queue joins it: a client that reads
        slower than the model writes gets fewer, longer `token` frames, not a longer queue.
        """
        if self.closed:
            return
        is_token = isinstance(frame, dict) and frame.get("type") == "token"
        last = self._queued_token
        if is_token and last is not None and last.get("turn_id") == frame.get("turn_id"):
            last["text"] += frame["text"]
            return
        self._queued_token = None  # from here on it is no longer the last frame queued
        if is_token:
            frame = dict(frame)  # ours to extend while it waits
        await self.outbox.put(frame)
        if is_token:
            self._queued_token = frame

    async def writer(self) -> None:
        while True:
            frame = await self.outbox.get()
            if frame is self._queued_token:
                self._queued_token = None  # taken: it is written as it is now
            try:
                if frame is None or not await self._write(frame):
                    return
            finally:
                self.outbox.task_done()  # after the write, so flush() means "on the wire"

    async def _write(self, frame: dict | bytes) -> bool:
        """Send one frame; False once the connection is unusable."""
        timeout = self.settings.ws_send_timeout_s
        try:
            async with asyncio.timeout(timeout):  # not wait_for: that wraps every frame in a task of its own
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_json(frame)
        except asyncio.TimeoutError:
            logger.warning("closing a client too slow to read its frames")
            await self.close(p.CLOSE_SLOW_CONSUMER, "client too slow to read")
            return False
        except Exception:  # noqa: BLE001 - the socket is gone
            self.closed = True
            return False
        return True

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) until every queued frame has been handed to the socket."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.outbox.join(), timeout)

    async def close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        self.release()
        # Bounded: to a client that stopped reading, even the close frame cannot be written.
        with contextlib.suppress(Exception):
            if self.ws.application_state != WebSocketState.DISCONNECTED:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self.ws.close(code, reason[:120])

    def release(self) -> None:
        """Closed: drop what is queued, so nothing stays blocked on a full outbox (a turn's frames,
        a pong) once no writer will take it; later sends return at once."""
        self.closed = True
        while not self.outbox.empty():
            self.outbox.get_nowait()
            self.outbox.task_done()

    # -- receiving ----------------------------------------------------------------
    async def receive(self, timeout: float) -> dict:
        message = await asyncio.wait_for(self.ws.receive(), timeout)
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        self.last_seen = time.monotonic()
        return message

    async def authenticate(self) -> bool:
        try:
            message = await self.receive(self.settings.ws_auth_timeout_s)
        except asyncio.TimeoutError:
            await self.close(p.CLOSE_AUTH_TIMEOUT, "send a hello frame first")
            return False
        text = message.get("text")
        try:
            frame = p.parse_client_frame(text) if text is not None else None
        except p.FrameError as exc:
            await self.ws.send_json(p.error_frame(exc.code, exc.message, exc.frame_id))
            await self.close(p.CLOSE_UNAUTHORIZED, "the first frame must be hello")
            return False
        if not isinstance(frame, p.Hello):
            await self.ws.send_json(p.error_frame("unauthorized", "the first frame must be hello with a token"))
            await self.close(p.CLOSE_UNAUTHORIZED, "the first frame must be hello")
            return False
        async with self.res.pool.connection() as conn:
            user = await authenticate(conn, frame.token)
            if user is None:
                await self.ws.send_json(p.error_frame("unauthorized", "invalid or revoked token", frame.id))
                await self.close(p.CLOSE_UNAUTHORIZED, "invalid token")
                return False
            if frame.chat_id is not None:
                chat = await store.get_chat(conn, user.id, frame.chat_id)
                if chat is None:
                    # Same answer whether the chat is missing or someone else's: nothing leaks.
                    await self.ws.send_json(p.error_frame("chat_not_found", "no such chat", frame.id))
                    await self.close(p.CLOSE_CHAT_NOT_FOUND, "chat not found")
                    return False
                resumed = True
                await store.log_event(conn, chat["id"], user.id, "resume", {"via": "ws"})
            else:
                chat = await store.create_chat(conn, user.id)
                resumed = False
            turns = await store.recent_turns(conn, user.id, chat["id"], 1)
        self.user, self.chat = user, chat
        ready = {"type": "ready", "chat_id": str(chat["id"]), "resumed": resumed, "user": user.name,
                 "mode": self.settings.mode, "last_turn_id": str(turns[-1]["id"]) if turns else None,
                 "turn_running": str(chat["id"]) in self.hub.turns}
        if frame.id:
            ready["reply_to"] = frame.id
        await self.send(ready)
        return True

    async def serve(self) -> None:
        idle = self.settings.ws_idle_timeout_s
        while not self.closed:
            try:
                message = await self.receive(idle)
            except asyncio.TimeoutError:
                await self.send(p.error_frame("idle_timeout", f"no frame for {idle:g} s; closing"))
                await asyncio.sleep(0.05)
                await self.close(p.CLOSE_IDLE, "idle")
                return
            if message.get("bytes") is not None:
                await self.on_audio_bytes(message["bytes"])
                continue
            raw = message.get("text")
            if raw is None:
                continue
            try:
                frame = p.parse_client_frame(raw)
            except p.FrameError as exc:
                await self.send(p.error_frame(exc.code, exc.message, exc.frame_id))
                continue
            await self.dispatch(frame)

    async def dispatch(self, frame: Any) -> None:
        if isinstance(frame, p.Ping):
            await self.send({"type": "pong", **({"reply_to": frame.id} if frame.id else {})})
        elif isinstance(frame, p.Text):
            await self.start_turn(frame)
        elif isinstance(frame, p.Interrupt):
            await self.interrupt(frame.id)
        elif isinstance(frame, p.Hello):
            await self.send(p.error_frame("already_authenticated", "hello was already accepted", frame.id))
        elif isinstance(frame, (p.Audio, p.AudioEnd)):
            await self.on_audio_frame(frame)

    # -- turns ----------------------------------------------------------------------
    async def start_turn(self, frame: p.Text, *, modality: str = "text", audio_ref: str | None = None,
                         tap: Callable[[dict], Awaitable[None]] | None = None,
                         **run_options: Any) -> asyncio.Task | None:
        """Start a turn unless one is running in this chat or the user is over the rate limit.

        Voice turns come through here too (`modality="voice"`), so one registry
        guards text and voice alike. `tap` sees every frame the runner emits,
        after it was queued for the client (the voice session speaks the
        tokens); `run_options` go to `TurnRunner.run` (the voice turn's ids and
        its answer's recording). Returns the turn's task, or None when refused.
        """
        assert self.user is not None and self.chat is not None
        chat_key = str(self.chat["id"])
        if chat_key in self.hub.turns:
            await self.send(p.error_frame("turn_in_progress", "wait for the current answer or interrupt it", frame.id))
            return None
        limit = RateLimitItemPerMinute(self.settings.turns_per_minute)
        if not await self.hub.limiter.hit(limit, "turns", str(self.user.id)):
            await self.send(p.error_frame("rate_limited", f"at most {self.settings.turns_per_minute} turns a minute",
                                          frame.id))
            return None
        if chat_key in self.hub.turns:  # another connection of this chat started one meanwhile
            await self.send(p.error_frame("turn_in_progress", "wait for the current answer or interrupt it", frame.id))
            return None
        runner = self.res.extras["runner"]
        reply_to = frame.id

        async def emit(out: dict) -> None:
            if reply_to:
                out = {**out, "reply_to": reply_to}
            await self.send(out)
            if tap is not None:
                await tap(out)

        task = asyncio.create_task(
            runner.run(user_id=self.user.id, chat=self.chat, text=frame.text, emit=emit, modality=modality,
                       client_id=frame.id, attachment_ids=tuple(str(a) for a in frame.attachments),
                       audio_ref=audio_ref, after_turn_in_background=True, **run_options),
            name=f"turn-{chat_key}",
        )
        self.hub.turns[chat_key] = ActiveTurn(task, id(self))
        task.add_done_callback(lambda t, key=chat_key: self._turn_done(key, t))
        return task

    def _turn_done(self, key: str, task: asyncio.Task) -> None:
        active = self.hub.turns.get(key)
        if active is not None and active.task is task:
            del self.hub.turns[key]
        if not task.cancelled() and task.exception() is not None:
            logger.opt(exception=task.exception()).error("turn task failed")
            # The runner reports its own failures; this is the net under it: never leave a client waiting.
            asyncio.get_running_loop().create_task(
                self.send(p.error_frame("internal_error", "The turn failed unexpectedly. Please try again.")))

    async def cancel_turn(self, frame_id: str | None = None) -> bool:
        """Cancel this chat's running turn (its partial answer is stored as interrupted); False if none."""
        assert self.chat is not None
        key = str(self.chat["id"])
        active = self.hub.turns.get(key)
        if active is None:
            return False
        active.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await active.task
        if self.hub.turns.get(key) is active:
            del self.hub.turns[key]
        await self.send({"type": "turn_complete", "status": "interrupted",
                         **({"reply_to": frame_id} if frame_id else {})})
        return True

    async def interrupt(self, frame_id: str | None) -> None:
        # Speech stops first: audio still held by the server must not follow the acknowledgement.
        speaking = self.voice is not None and self.voice.interrupt()
        if await self.cancel_turn(frame_id):
            return
        if speaking:
            await self.send({"type": "turn_complete", "status": "interrupted",
                             **({"reply_to": frame_id} if frame_id else {})})
            return
        await self.send(p.error_frame("no_turn", "nothing to interrupt", frame_id))

    # -- voice (filled in by the voice module) ---------------------------------------
    async def on_audio_bytes(self, data: bytes) -> None:
        await self.on_audio_frame(data)

    async def on_audio_frame(self, frame: Any) -> None:
        handler = self.res.extras.get("voice_handler")
        if handler is None:
            await self.send(p.error_frame("voice_unavailable", "voice is not available on this server"))
            return
        await handler(self, frame)


@router.websocket("/ws")
async def websocket_endpoint(ws: WebSocket) -> None:
    res: Resources = ws.app.state.res
    allowed = [*res.settings.cors_origins, res.settings.base_url]
    if not origin_allowed(ws, allowed):
        await ws.close(p.CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
        return
    await ws.accept()
    conn = Connection(ws, res)
    writer = asyncio.create_task(conn.writer(), name="ws-writer")
    h = hub(res)
    h.connections.add(conn)
    res.metrics.ws_connections.inc()
    try:
        if await conn.authenticate():
            serving = asyncio.create_task(conn.serve(), name="ws-serve")
            # The writer ends early only when the socket is unusable (gone, or a client too slow to
            # read): then stop serving too, rather than reading frames whose answers cannot be sent.
            await asyncio.wait({serving, writer}, return_when=asyncio.FIRST_COMPLETED)
            if not serving.done():
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
            else:
                serving.result()
    except WebSocketDisconnect:
        pass
    except Exception as exc:  # noqa: BLE001
        logger.opt(exception=exc).error("websocket error")
        await conn.close(1011, "internal error")
    finally:
        conn.release()
        h.connections.discard(conn)
        res.metrics.ws_connections.dec()
        with contextlib.suppress(asyncio.QueueFull):
            conn.outbox.put_nowait(None)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
        if conn.voice is not None:
            with contextlib.suppress(Exception):
                await conn.voice.close()


async def close_all(res: Resources) -> None:
    """Graceful shutdown: let running turns finish briefly, then close sockets with 'going away'."""
    h = hub(res)
    pending = [t.task for t in h.turns.values()]
    if pending:
        await asyncio.wait(pending, timeout=10)
    for conn in list(h.connections):
        await conn.flush(timeout=2)  # the last answer reaches the client before the close
        await conn.close(p.CLOSE_GOING_AWAY, "server shutting down")
