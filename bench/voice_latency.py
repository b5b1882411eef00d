"""Offline voice latency through the real server: end of speech (`audio_end` sent) → first audio back.

    .venv/bin/python bench/voice_latency.py [--utterances 22] [--database-url URL] [--json]

Starts the app under uvicorn on a free port (its own Postgres from the
bundled wheel unless --database-url), ingests the eng-practices PDFs from
../shared/corpus, creates a user, then for each utterance (questions about
code review, spoken by the local TTS and resampled to 16 kHz) opens /ws,
streams the speech in real time as 20 ms binary frames, sends `audio_end`
and waits for the first audio frame of the answer; it then interrupts the
playback (the rest of the answer is not needed) and moves on. One warm-up
utterance (models loading) is timed apart.

Per utterance, from the client's clock (all after `audio_end`):
  stt      → the final user transcript (VAD flush + Whisper)
  answer   → the first answer token (turn stored, classify, retrieve, synthesize;
             the offline answerer writes its whole answer before the first token)
  speech   → the first audio frame (first sentence complete + TTS + send)
Also: the CPU time the server process spent in that window (what the work
costs, apart from waiting for a core on a shared machine), and the real-time
factors of the STT and TTS engines measured in this process.
Target: p50 end → first audio <= 800 ms on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("MEM0_TELEMETRY", "False")

TARGET_P50_MS = 800
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "eng-practices" / "pdf"
QUESTIONS = [
    "How fast should code reviews be?",
    "What should I look for in a code review?",
    "How small should a change list be?",
    "How do I write a good change description?",
    "What do I do when a reviewer pushes back?",
    "How should I handle review comments?",
    "What is the standard of code review?",
    "How do I navigate a change in review?",
    "How should I write review comments?",
    "What counts as an emergency?",
    "Why should code reviews be fast?",
    "Should I interrupt my work to do a review?",
    "What if the author disagrees with me?",
    "Should I approve a change with small issues?",
    "How do I review the tests in a change?",
    "What is a nit in a code review?",
    "How do I split a large change?",
    "What should the first line of a change description say?",
    "Should I say something nice in a review?",
    "How long should a review take?",
    "When can code review be skipped?",
    "Who should review my change?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def start_server(settings):
    import uvicorn

    from api.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None, access_log=False,
                            lifespan="on", ws_max_size=settings.ws_max_frame_kb * 1024)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    return app, server, thread


async def ingest(db_url: str) -> tuple[int, int]:
    """The eng-practices PDFs into the knowledge tables (as a sync would); returns (documents, chunks)."""
    import psycopg
    from psycopg.rows import dict_row

    from allin.knowledge.embeddings import get_local_embedder
    from allin.knowledge.pipeline import process_files
    from allin.knowledge.store import replace_chunks, upsert_document

    paths = sorted(CORPUS.glob("*.pdf"))
    embedder = get_local_embedder()
    results = await asyncio.to_thread(lambda: list(process_files(paths, ocr=None, embedder=embedder,
                                                                 max_bytes=50 << 20)))
    docs = chunks = 0
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        for r in results:
            if not r.ok:
                continue
            doc_id = await upsert_document(conn, path=r.path.name, title=r.document.title, sha256=r.sha256,
                                           mime=r.document.mime, size_bytes=r.path.stat().st_size)
            chunks += await replace_chunks(conn, doc_id, r.document.chunks, r.vectors, title=r.document.title,
                                           pages=r.document.pages, embedding_model=embedder.name)
            docs += 1
    return docs, chunks


async def make_user(db_url: str) -> str:
    import psycopg
    from psycopg.rows import dict_row

    from allin.users import create_user

    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        _, token = await create_user(conn, "bench", "user")
    return token


async def one_utterance(ws_url: str, token: str, pcm: bytes, *, realtime: bool) -> dict:
    import websockets

    async with websockets.connect(ws_url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "hello", "token": token}))
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready", ready
        step = 640  # 20 ms of 16 kHz PCM16
        started = time.perf_counter()
        for i, start in enumerate(range(0, len(pcm), step)):
            await ws.send(pcm[start : start + step])
            if realtime:
                await asyncio.sleep(max(0.0, started + (i + 1) * 0.02 - time.perf_counter()))
        await ws.send(json.dumps({"type": "audio_end", "id": "end"}))
        t_end, cpu_end = time.perf_counter(), time.process_time()
        marks: dict[str, float] = {}
        text = ""
        while True:
            message = await asyncio.wait_for(ws.recv(), 60)
            now = time.perf_counter()
            if isinstance(message, bytes):
                marks["audio"], cpu_audio = now, time.process_time()
                break
            frame = json.loads(message)
            kind = frame["type"]
            if kind == "transcript" and frame["role"] == "user" and frame["final"]:
                marks["transcript"], text = now, frame["text"]
            elif kind == "token" and "token" not in marks:
                marks["token"] = now
            elif kind == "error":
                raise RuntimeError(f"server error: {frame}")
        await ws.send(json.dumps({"type": "interrupt", "id": "stop"}))
        while True:  # until speech is over (the final assistant transcript)
            message = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(message, str):
                frame = json.loads(message)
                if frame["type"] == "transcript" and frame["role"] == "assistant" and frame["final"]:
                    break
    return {
        "first_audio_ms": (marks["audio"] - t_end) * 1000,
        "cpu_ms": (cpu_audio - cpu_end) * 1000,
        "stt_ms": (marks["transcript"] - t_end) * 1000,
        "answer_ms": (marks["token"] - marks["transcript"]) * 1000,
        "speech_ms": (marks["audio"] - marks["token"]) * 1000,
        "heard": text,
    }


def node_means(app) -> dict[str, float]:
    """Mean time per graph node (ms) over every turn the server ran, from its Prometheus histogram."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for metric in app.state.res.metrics.node_latency.collect():
        for sample in metric.samples:
            node = sample.labels.get("node")
            if sample.name.endswith("_sum"):
                sums[node] = sample.value
            elif sample.name.endswith("_count"):
                counts[node] = sample.value
    return {node: round(sums[node] / counts[node] * 1000, 1) for node in sums if counts.get(node)}


def engine_rtfs(utterances: list[bytes]) -> dict:
    """Real-time factors of the engines the server uses, measured here (median over the utterances)."""
    from allin.voice.stt import LocalSTT
    from allin.voice.tts import LocalTTS

    stt, tts = LocalSTT(), LocalTTS()
    stt.load()
    tts.load()
    stt_rtf = []
    for pcm in utterances:
        started = time.perf_counter()
        stt.transcribe(pcm)
        stt_rtf.append((time.perf_counter() - started) / (len(pcm) / 32_000))
    tts_rtf = []
    for sentence in ["One business day is the maximum time it should take to respond to a code review request.",
                     "If you are in the middle of a focused task, don't interrupt yourself to do a code review.",
                     "The sources are in the chat."] * 3:
        started = time.perf_counter()
        audio = tts.synthesize(sentence)
        tts_rtf.append((time.perf_counter() - started) / (len(audio) / 2 / tts.rate))
    return {"stt_rtf_p50": statistics.median(stt_rtf), "tts_rtf_p50": statistics.median(tts_rtf),
            "stt_engine": "faster-whisper tiny.en int8", "tts_engine": tts.engine}


async def run(args) -> dict:
    from allin.config import Settings
    from allin.voice.audio import to_input_rate
    from allin.voice.tts import LocalTTS

    if not CORPUS.is_dir():
        raise SystemExit(f"corpus not found at {CORPUS}")
    root = Path(tempfile.mkdtemp(prefix="alvb", dir="/tmp"))
    # Removed at exit, after the embedded Postgres (registered later, so stopped first) is down.
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    (root / "knowledge").mkdir()
    settings = Settings(_env_file=None, database_url=args.database_url, ALLIN_DATA_DIR=root / "data",
                        ALLIN_KNOWLEDGE_DIR=root / "knowledge", google_api_key=None, log_level="WARNING",
                        port=free_port(), turns_per_minute=10_000)
    voice = LocalTTS()
    questions = (QUESTIONS * ((args.utterances // len(QUESTIONS)) + 1))[: args.utterances]
    speech = {q: to_input_rate(voice.synthesize(q), voice.rate) for q in dict.fromkeys(questions)}
    app, server, thread = start_server(settings)
    try:
        db_url = app.state.res.db_url
        docs, chunks = await ingest(db_url)
        token = await make_user(db_url)
        ws_url = f"ws://127.0.0.1:{settings.port}/ws"
        cold = await one_utterance(ws_url, token, speech[questions[0]], realtime=True)
        load_before = os.getloadavg()[0]
        results = []
        for q in questions:
            r = await one_utterance(ws_url, token, speech[q], realtime=not args.fast)
            r["question"] = q
            results.append(r)
        nodes = node_means(app)
    finally:
        server.should_exit = True
        thread.join(20)
    rtfs = engine_rtfs(list(speech.values()))
    first = [r["first_audio_ms"] for r in results]
    recall = [sum(w in r["heard"].lower() for w in r["question"].lower().rstrip("?").split())
              / len(r["question"].split()) for r in results]
    return {
        "utterances": len(results), "documents": docs, "chunks": chunks, "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "first_audio_p50_ms": statistics.median(first), "first_audio_p95_ms": pct(first, 0.95),
        "first_audio_min_ms": min(first), "first_audio_max_ms": max(first),
        "stt_p50_ms": statistics.median(r["stt_ms"] for r in results),
        "answer_p50_ms": statistics.median(r["answer_ms"] for r in results),
        "speech_p50_ms": statistics.median(r["speech_ms"] for r in results),
        "cpu_p50_ms": statistics.median(r["cpu_ms"] for r in results),
        "load_avg_1m_before": load_before,
        "cold_first_audio_ms": cold["first_audio_ms"],
        "transcript_word_recall_mean": statistics.mean(recall),
        "graph_node_mean_ms": nodes, "target_p50_ms": TARGET_P50_MS, **rtfs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=len(QUESTIONS))
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--fast", action="store_true", help="send the speech as fast as possible, not in real time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.utterances = max(20, args.utterances)
    out = asyncio.run(run(args))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"voice latency over /ws: {out['utterances']} utterances, {out['documents']} documents "
          f"({out['chunks']} chunks) ingested, {out['cpus']} CPUs, load average {out['load_avg_1m_before']:.1f} "
          f"before / {out['load_avg_1m']:.1f} after (above {out['cpus']} the figures include waiting for a core)")
    print(f"  end of speech -> first audio: p50 {out['first_audio_p50_ms']:.0f} ms, p95 "
          f"{out['first_audio_p95_ms']:.0f} ms (min {out['first_audio_min_ms']:.0f}, max "
          f"{out['first_audio_max_ms']:.0f}); target p50 <= {TARGET_P50_MS} ms")
    print(f"  of which (p50): stt {out['stt_p50_ms']:.0f} ms, answer {out['answer_p50_ms']:.0f} ms, "
          f"first sentence spoken {out['speech_p50_ms']:.0f} ms")
    print(f"  CPU time of the server process in that window (p50, all threads, Postgres not included): "
          f"{out['cpu_p50_ms']:.0f} ms")
    print("  graph nodes (mean ms, every turn): " + ", ".join(f"{k} {v:.0f}" for k, v in out["graph_node_mean_ms"].items()))
    print(f"  cold first utterance (models loading): {out['cold_first_audio_ms']:.0f} ms")
    print(f"  STT real-time factor p50 {out['stt_rtf_p50']:.3f} ({out['stt_engine']}); "
          f"TTS {out['tts_rtf_p50']:.3f} ({out['tts_engine']})")
    print(f"  transcript word recall (mean) {out['transcript_word_recall_mean']:.2f}")


if __name__ == "__main__":
    main()
