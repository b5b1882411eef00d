"""Voice over /ws: a real server (uvicorn), a real `websockets` client, the real offline engines.

Test speech is made offline by the packaged TTS voice and resampled to the
16 kHz the protocol takes; the knowledge fixture ingests the eng-practices
"Speed of Code Reviews" PDF into the test database so answers are grounded.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from allin.config import Settings
from allin.voice.audio import to_input_rate
from allin.voice.stt import LocalSTT
from allin.voice.tts import LocalTTS

QUESTION = "How fast should code reviews be?"
SPEED_DOC = "eng-practices/pdf/review_reviewer_speed.pdf"
MAX_UTTERANCE_S = 5.0  # short, so the too-long case stays quick


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"voice_max_utterance_s": MAX_UTTERANCE_S})


@pytest.fixture(scope="session")
def tts() -> LocalTTS:
    engine = LocalTTS(engines=("hibari",))
    engine.load()
    return engine


@pytest.fixture(scope="session")
def stt() -> LocalSTT:
    engine = LocalSTT()
    engine.load()
    return engine


@pytest.fixture(scope="session")
def say(tts: LocalTTS) -> Callable[[str], bytes]:
    """Text -> PCM16 mono 16 kHz spoken by the packaged voice (what a client would send)."""

    @functools.cache
    def speak(text: str) -> bytes:
        return to_input_rate(tts.synthesize(text), tts.rate)

    return speak


def words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() or c.isspace() else " " for c in text).split()


def word_recall(expected: str, heard: str) -> float:
    want, got = words(expected), set(words(heard))
    return sum(w in got for w in want) / len(want)


# --- knowledge -----------------------------------------------------------------------------


def pgvector_works() -> str | None:
    """None when pgvector computes a 384-d distance here, else why not.

    Checked on a throwaway cluster: where the extension's build uses CPU
    instructions this machine lacks, the backend dies (SIGILL) and Postgres
    restarts every connection, which must not hit the session's test cluster.
    """
    import shutil
    import tempfile

    from tests.support.pg import PgCluster

    root = Path(tempfile.mkdtemp(prefix="alvp", dir="/tmp"))
    cluster = PgCluster(root / "d")
    try:
        cluster.init()
        cluster.start()
        vec = "[" + ",".join(["0.05"] * 384) + "]"
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(f"SELECT '{vec}'::vector <=> '{vec}'::vector").fetchone()
        return None
    except psycopg.OperationalError as exc:
        return f"pgvector crashed computing a 384-d distance on this CPU ({str(exc).splitlines()[0]})"
    finally:
        try:
            cluster.stop("immediate")
        except Exception:  # noqa: BLE001 - best effort
            pass
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def vector_search_ok() -> None:
    problem = pgvector_works()
    if problem:
        pytest.skip(problem + ": grounded answers cannot be tested on this machine")


@pytest.fixture(scope="session")
def speed_doc(corpus: Path, vector_search_ok: None):
    """The extracted and embedded speed-of-reviews PDF (CPU work done once per session)."""
    from allin.knowledge.embeddings import get_local_embedder
    from allin.knowledge.pipeline import process_file, sha256_file

    path = corpus / SPEED_DOC
    if not path.is_file():
        pytest.skip(f"{path} not found")
    embedder = get_local_embedder()
    document, vectors = process_file(path, ocr=None, embedder=embedder, max_bytes=50 << 20)
    return path, sha256_file(path), document, vectors, embedder.name


@pytest.fixture
async def knowledge(db_url: str, speed_doc) -> str:
    """The speed doc in this test's database; returns its stored path."""
    from allin.knowledge.store import replace_chunks, upsert_document

    path, digest, document, vectors, model = speed_doc
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        doc_id = await upsert_document(conn, path=path.name, title=document.title, sha256=digest,
                                       mime=document.mime, size_bytes=path.stat().st_size)
        await replace_chunks(conn, doc_id, document.chunks, vectors, title=document.title, pages=document.pages,
                             embedding_model=model)
    return path.name


# --- a voice client ------------------------------------------------------------------------------


@dataclass
class Heard:
    """Everything the server sent during one exchange, in order."""

    frames: list[dict] = field(default_factory=list)  # JSON frames
    audio: list[bytes] = field(default_factory=list)  # audio chunks (binary or decoded JSON)
    binary_frames: int = 0
    json_audio_frames: int = 0
    first_audio_at: float | None = None
    order: list[str] = field(default_factory=list)  # frame kinds as they came ("binary" for audio bytes)

    def of(self, kind: str, **match) -> list[dict]:
        return [f for f in self.frames if f["type"] == kind and all(f.get(k) == v for k, v in match.items())]

    @property
    def audio_bytes(self) -> bytes:
        return b"".join(self.audio)


async def hello(ws, token: str, chat_id: str | None = None) -> dict:
    frame = {"type": "hello", "token": token}
    if chat_id:
        frame["chat_id"] = chat_id
    await ws.send(json.dumps(frame))
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def send_speech(ws, pcm: bytes, *, chunk_ms: int = 20, as_json: bool = False, end_id: str | None = "end",
                      end: bool = True) -> float:
    """Stream PCM16 16 kHz in chunks (as fast as the socket takes them), then audio_end; returns when it was sent."""
    step = 16_000 * 2 * chunk_ms // 1000
    for start in range(0, len(pcm), step):
        chunk = pcm[start : start + step]
        if as_json:
            await ws.send(json.dumps({"type": "audio", "data": base64.b64encode(chunk).decode()}))
        else:
            await ws.send(chunk)
    if end:
        await ws.send(json.dumps({"type": "audio_end", **({"id": end_id} if end_id else {})}))
    return time.perf_counter()


async def receive(ws, heard: Heard, timeout: float) -> dict | bytes:
    message = await asyncio.wait_for(ws.recv(), timeout)
    if isinstance(message, bytes):
        heard.binary_frames += 1
        heard.audio.append(message)
        heard.order.append("binary")
        heard.first_audio_at = heard.first_audio_at or time.perf_counter()
        return message
    frame = json.loads(message)
    heard.frames.append(frame)
    heard.order.append(frame["type"])
    if frame["type"] == "audio":
        heard.json_audio_frames += 1
        heard.audio.append(base64.b64decode(frame["data"], validate=True))
        heard.first_audio_at = heard.first_audio_at or time.perf_counter()
    return frame


async def until(ws, heard: Heard, done: Callable[[dict | bytes], bool], timeout: float = 60) -> Heard:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out; frames so far: {[f.get('type') for f in heard.frames]}")
        item = await receive(ws, heard, left)
        if done(item):
            return heard


def spoken_end(item: dict | bytes) -> bool:
    """The answer's speech is over: the final assistant transcript."""
    return isinstance(item, dict) and item.get("type") == "transcript" and item.get("role") == "assistant" \
        and item.get("final") is True


def is_error(code: str) -> Callable[[dict | bytes], bool]:
    return lambda item: isinstance(item, dict) and item.get("type") == "error" and item.get("code") == code
