"""FakeGemini: the server's state, the control API tests use, and its thread."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from .script import Entry, Journal, Reply, Script
from .server import build_app, file_record
from .wire import model_id, now, parse_duration, stamp

if TYPE_CHECKING:
    from .live import LiveSession

CERTS = Path(__file__).parent / "certs"
DEFAULT_KEY = "fake-gemini-key-for-tests"
DEFAULT_FILE_TTL = timedelta(hours=48)


class FakeGemini:
    """A TLS Gemini API look-alike on 127.0.0.1, run in a background thread."""

    def __init__(self, api_key: str = DEFAULT_KEY) -> None:
        self.api_key = api_key
        self.cert_file = CERTS / "cert.pem"
        self.key_file = CERTS / "key.pem"
        self.file_ttl = DEFAULT_FILE_TTL  # lifetime given to new uploads
        self.script = Script()
        self.log = Journal()
        self.files: dict[str, dict] = {}  # id -> File JSON
        self.uploads: dict[str, dict] = {}  # upload id -> pending resumable upload
        self.caches: dict[str, dict] = {}  # id -> CachedContent JSON
        self.live_sessions: dict[int, LiveSession] = {}  # open Live sockets by number
        self.listed_models = ["gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro",
                              "gemini-live-2.5-flash-preview", "gemini-embedding-001"]
        self.epoch = 0  # bumped by reset(): in-flight delays drop their script
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> FakeGemini:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self), ssl_certfile=str(self.cert_file), ssl_keyfile=str(self.key_file),
            log_level="warning", access_log=False, lifespan="off", ws="websockets-sansio",
            timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="fake-gemini", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake Gemini server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._close_live(1001, "server shutting down")
            # Idle keep-alive TLS connections would hold a graceful shutdown.
            self._server.should_exit = self._server.force_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def reset(self) -> None:
        """Forget script, journal, files, caches; close open Live sessions."""
        self.epoch += 1
        self._close_live(1001, "test finished")
        self.script.clear()
        self.log.clear()
        self.files.clear()
        self.uploads.clear()
        self.caches.clear()
        self.file_ttl = DEFAULT_FILE_TTL

    async def sleep(self, seconds: float, epoch: int) -> bool:
        """Sleep in slices; False when a reset or shutdown happened meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if epoch != self.epoch or (self._server and self._server.should_exit):
                return False
            await asyncio.sleep(min(left, 0.05))
        return epoch == self.epoch

    # --- script ------------------------------------------------------------------------

    def enqueue(self, reply: Reply, kind: str | None = None) -> None:
        """Queue a reply; `kind` defaults to the reply's own (generate, live, embed...)."""
        self.script.enqueue(reply, kind)

    def push_live(self, reply: Reply, session: int | None = None, timeout: float = 10) -> None:
        """Send an event (GoAway, SessionResumptionUpdate, Transcript, Close...) now,
        to one open Live session or to all of them."""
        targets = [self.live_sessions[session]] if session else list(self.live_sessions.values())
        if not targets:
            raise AssertionError("no open Live session to push to")
        for target in targets:
            asyncio.run_coroutine_threadsafe(target.push(reply), target.loop).result(timeout)

    def _close_live(self, code: int, reason: str) -> None:
        for target in list(self.live_sessions.values()):
            try:
                asyncio.run_coroutine_threadsafe(target.close(code, reason), target.loop).result(5)
            except Exception:  # noqa: BLE001 - a socket or loop already gone is fine here
                pass
        self.live_sessions.clear()

    # --- journal -------------------------------------------------------------------------

    @property
    def journal(self) -> list[Entry]:
        return self.log.entries()

    def requests(self, kind: str | None = None, frame: str | None = None) -> list[Entry]:
        return self.log.entries(kind, frame)

    def last_request(self, kind: str = "generate", frame: str | None = None) -> Entry:
        entries = self.log.entries(kind, frame)
        if not entries:
            raise AssertionError(f"fake Gemini received no {kind} request"
                                 + (f" with a {frame} frame" if frame else ""))
        return entries[-1]

    def system_text(self, kind: str = "generate") -> str:
        """System instruction of the last request of this kind (Live: its setup)."""
        return self.last_request(kind, "setup" if kind == "live" else None).system_text

    def texts(self, kind: str = "generate") -> list[str]:
        return self.last_request(kind).texts

    def tools(self, kind: str = "generate") -> list[dict]:
        return self.last_request(kind, "setup" if kind == "live" else None).tools

    def file_uris(self, kind: str = "generate") -> list[str]:
        return self.last_request(kind).file_uris

    def live_setups(self) -> list[dict]:
        return [e.body for e in self.log.entries("live", "setup")]

    def live_frames(self, session: int | None = None, frame: str | None = None) -> list[Entry]:
        session = session or self.last_session()
        return [e for e in self.log.entries("live", frame) if e.session == session]

    def last_session(self) -> int:
        setups = self.log.entries("live", "setup")
        if not setups:
            raise AssertionError("fake Gemini saw no Live session")
        return setups[-1].session or 0

    def live_audio(self, session: int | None = None) -> bytes:
        """All PCM audio the client streamed in one Live session (default: the last)."""
        return b"".join(e.audio for e in self.live_frames(session, "realtimeInput"))

    def tool_responses(self, session: int | None = None) -> list[dict]:
        return [r for e in self.live_frames(session, "toolResponse")
                for r in e.body.get("functionResponses", [])]

    # --- files and caches ----------------------------------------------------------------

    def add_file(self, data: bytes, mime: str, display_name: str | None = None) -> dict:
        file_id = secrets.token_hex(6)
        created = now()
        self.files[file_id] = file_record(file_id, data, mime, display_name, self.base_url,
                                          created, created + self.file_ttl)
        return self.files[file_id]

    def file(self, name: str) -> dict | None:
        """A stored, unexpired file by id, `files/<id>` or uri; expired ones are dropped."""
        file_id = name.rstrip("/").rsplit("/", 1)[-1]
        record = self.files.get(file_id)
        if record and record["expirationTime"] <= stamp(now()):
            self.files.pop(file_id, None)
            return None
        return record

    def expire_file(self, name: str) -> None:
        """Make a file expire now, as if its 48 h had passed."""
        file_id = name.rstrip("/").rsplit("/", 1)[-1]
        if file_id not in self.files:
            raise KeyError(name)
        self.files[file_id]["expirationTime"] = stamp(now() - timedelta(microseconds=1))

    def add_cache(self, body: dict, model: str, tokens: int) -> dict:
        cache_id = secrets.token_hex(6)
        created = now()
        self.caches[cache_id] = {
            "name": f"cachedContents/{cache_id}", "model": f"models/{model_id(model)}",
            "createTime": stamp(created), "updateTime": stamp(created),
            "usageMetadata": {"totalTokenCount": tokens},
        } | ({"displayName": body["displayName"]} if body.get("displayName") else {})
        self.set_cache_expiry(cache_id, body)
        return self.caches[cache_id]

    def set_cache_expiry(self, cache_id: str, body: dict) -> None:
        cache = self.caches[cache_id]
        expires = (datetime.fromisoformat(body["expireTime"]) if body.get("expireTime")
                   else now() + parse_duration(body.get("ttl") or "3600s"))
        cache["expireTime"] = stamp(expires)
        cache["updateTime"] = stamp(now())

    def cache(self, cache_id: str) -> dict | None:
        record = self.caches.get(cache_id)
        if record and record["expireTime"] <= stamp(now()):
            self.caches.pop(cache_id, None)
            return None
        return record

    def __repr__(self) -> str:
        return f"FakeGemini({self.base_url!r})"


def running(**kwargs: Any) -> FakeGemini:
    """Start a FakeGemini (for use outside pytest); call .stop() when done."""
    return FakeGemini(**kwargs).start()
