"""What the assistant graph itself costs per text turn: LangGraph + the Postgres checkpointer.

    .venv/bin/python bench/turn_overhead.py [--turns 300] [--threads 30] [--dev-turns 90] [--no-dev]
        [--durability sync|async|exit] [--no-async-commit] [--no-pooled-saver] [--database-url URL] [--fast-pg]
        [--profile FILE.html]

The model answers a fixed short text at once (a LangChain fake chat model,
streamed word by word) and classification, search, memory and prompts are
trivial in-memory functions, so what is left is the graph: its nodes, the
runner's stream modes (`messages` + `updates`), and checkpoints written to
Postgres with the app's durability (LANGGRAPH_DURABILITY, `exit`: one checkpoint
per turn, at its end) by an AsyncPostgresSaver on a pool, as api/assistant.py
builds it; then, as the baseline in the same run, with `sync` (a checkpoint
after every node). Variants: --durability; --pooled-saver (calls
of different chats overlap, graphs/assistant/checkpointer.py); --async-commit
(the saver's commits skip the WAL flush wait).

Two measurements per target:
- latency: turns one at a time, round-robin over the threads (each thread's
  history grows as in a chat): p50/p95 per turn, and this process's CPU per
  turn, which stays meaningful on a busy machine where wall times do not;
- throughput: every thread at once, each running its turns in order (as
  many users would): turns/s.

Postgres: DATABASE_URL / --database-url when given, else a private server from
the wheel (tests/support/pg.py) with production durability (fsync and
synchronous_commit on; --fast-pg turns them off as the test suite does).

The same graph is then served by `langgraph dev` (the in-memory LangGraph
server Studio talks to) from this file and driven through langgraph-sdk
`runs.wait`; the throughputs are printed side by side with their ratio. Its
in-memory queue polls for new runs every 0.5 s, which bounds its one-at-a-time
latency, not its throughput.

Target: p50 <= 15 ms and p95 <= 40 ms per turn on the Postgres checkpointer.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage  # noqa: E402

from allin.config import Settings  # noqa: E402
from allin.models.context import Passage  # noqa: E402
from allin.prompts import Prompt, file_prompt  # noqa: E402
from graphs.assistant.context import Context  # noqa: E402
from graphs.assistant.graph import build_graph  # noqa: E402

TARGET_P50_MS = 15
TARGET_P95_MS = 40
QUESTION = "How fast should code reviews be?"
ANSWER = "Reviews should get a first response within one business day [1]."
PASSAGE = Passage(n=1, document_id="d1", title="Speed of Code Reviews", file="review_reviewer_speed.pdf",
                  content="One business day is the maximum time it should take to respond to a code review request.",
                  page=1, section="How Fast Should Code Reviews Be?")


class InstantModel(GenericFakeChatModel):
    """Streams a fixed answer word by word at once, natively async like the Gemini client (the base
    class's default async stream would hop to a worker thread for every token)."""

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
        for chunk in self._stream(messages, stop=stop, **kwargs):
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


class InstantDeps:
    """AssistantDeps with no work in them: the knowledge route, one passage, an instant model."""

    history_max_tokens = 6000
    history_max_turns = 20
    max_model_retries = 3

    def __init__(self) -> None:
        self._model = InstantModel(messages=itertools.repeat(AIMessage(ANSWER)))
        self._prompt = Prompt("system", file_prompt("system"), 0)

    async def classify(self, text, history):
        return "knowledge"

    async def search(self, query, ctx):
        return [PASSAGE]

    async def run_code(self, text, history, ctx):
        return []

    async def recall(self, query, ctx):
        return []

    async def attachment_texts(self, ctx):
        return []

    async def system_prompt(self):
        return self._prompt

    def chat_model(self):
        return self._model


# The benchmark graph as `langgraph dev` loads it (compiled once, like graphs/studio.py; no I/O).
studio_graph = build_graph(InstantDeps()).compile(name="bench")


# --- measuring -------------------------------------------------------------------------------------------

Turn = Callable[[str, int], Awaitable[None]]


@dataclass
class Figures:
    latencies: list[float]  # s per turn, one at a time
    cpu_per_turn: float  # s of this process's CPU per turn, same turns
    rate: float  # turns/s with every thread at once

    def line(self) -> str:
        ms = [v * 1000 for v in self.latencies]
        return (f"p50 {percentile(ms, 0.5):.1f} ms  p95 {percentile(ms, 0.95):.1f} ms  "
                f"mean {statistics.fmean(ms):.1f} ms  max {max(ms):.1f} ms; CPU here {self.cpu_per_turn * 1000:.1f} "
                f"ms/turn; {len(ms) / sum(self.latencies):.1f} turns/s one at a time, {self.rate:.1f} turns/s "
                "with all threads at once")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(turn: Turn, threads: list[str], turns: int, *, warmup: Callable[[int], Awaitable[None]],
                  profile: str | None = None) -> Figures:
    for i in range(5):
        await warmup(i)
    profiler = None
    if profile:
        from pyinstrument import Profiler  # optional: pip install pyinstrument

        profiler = Profiler(async_mode="enabled")
        profiler.start()
    latencies = []
    cpu_started = time.process_time()
    for i in range(turns):  # one at a time, round-robin over the threads
        started = time.perf_counter()
        await turn(threads[i % len(threads)], i)
        latencies.append(time.perf_counter() - started)
    cpu = (time.process_time() - cpu_started) / turns
    if profiler:
        profiler.stop()
        Path(profile).write_text(profiler.output_html())
        Path(profile).with_suffix(".txt").write_text(profiler.output_text(unicode=True, color=False))

    per_thread = max(1, turns // len(threads))

    async def chat(thread: str) -> None:
        for i in range(per_thread):
            await turn(thread, turns + i)

    started = time.perf_counter()
    await asyncio.gather(*(chat(t) for t in threads))
    rate = per_thread * len(threads) / (time.perf_counter() - started)
    return Figures(latencies, cpu, rate)


# --- the app's way: compiled graph + AsyncPostgresSaver on a pool ----------------------------------------


async def run_direct(url: str, turns: int, threads: int, durability: str, profile: str | None,
                     async_commit: bool = False, pooled_saver: bool = False, token_mode: str = "custom") -> Figures:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg_pool import AsyncConnectionPool

    from graphs.assistant.checkpointer import pooled_checkpointer

    from allin.db.migrate import migrate_url
    from allin.db.pool import CONNECTION_KWARGS

    await migrate_url(url, embedding_dim=384)
    # async_commit: the saver's commits do not wait for the WAL flush (a Postgres crash may lose the
    # last fraction of a second of checkpoints; an app crash loses nothing).
    kwargs = {**CONNECTION_KWARGS, **({"options": "-c synchronous_commit=off"} if async_commit else {})}
    async with AsyncConnectionPool(url, kwargs=kwargs, min_size=4, max_size=threads + 2, open=False) as pool:
        # As api/assistant.py builds it, or (pooled_saver) with calls that overlap (see checkpointer.py).
        saver = pooled_checkpointer(pool) if pooled_saver else AsyncPostgresSaver(pool)
        graph = build_graph(InstantDeps()).compile(checkpointer=saver, name="bench")
        ids = [str(uuid.uuid4()) for _ in range(threads)]

        async def turn(thread: str, i: int) -> None:
            tokens = 0
            async for mode, _ in graph.astream(  # as graphs/assistant/runner.py runs it
                {"messages": [HumanMessage(f"{QUESTION} ({i})", id=str(uuid.uuid4()))]},
                {"configurable": {"thread_id": thread}}, context=Context(user_id="bench", chat_id=thread),
                stream_mode=[token_mode, "updates"], durability=durability,
            ):
                tokens += mode == token_mode
            assert tokens > 0

        figures = await measure(turn, ids, turns, warmup=lambda i: turn(str(uuid.uuid4()), i), profile=profile)
        state = await graph.aget_state({"configurable": {"thread_id": ids[0]}})
        assert state.values["messages"][-1].content == ANSWER
    return figures


# --- langgraph dev -------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"langgraph dev exited ({proc.returncode}); see {log}")
            try:
                if (await http.get(f"{url}/ok", timeout=2)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"langgraph dev did not start; see {log}")
            await asyncio.sleep(0.3)


async def run_dev(turns: int, threads: int) -> Figures:
    from langgraph_sdk import get_client

    out = REPO / "bench" / "out"  # git-ignored; the server keeps its .langgraph_api there too
    out.mkdir(parents=True, exist_ok=True)
    config = out / "langgraph.bench.json"
    config.write_text(json.dumps({"dependencies": ["../.."], "graphs": {"bench": "../turn_overhead.py:studio_graph"},
                                  "python_version": "3.11"}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_"))}
    env.update(LANGSMITH_TRACING="false", LANGCHAIN_TRACING_V2="false")
    log = out / "langgraph-dev.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "langgraph"), "dev", "--no-browser", "--no-reload", "--port", str(port),
             "--n-jobs-per-worker", str(max(10, threads)), "--config", config.name],
            cwd=out, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, proc, log)
        client = get_client(url=url)
        ids = [(await client.threads.create())["thread_id"] for _ in range(threads)]
        warm = (await client.threads.create())["thread_id"]

        async def turn(thread: str, i: int) -> None:
            result = await client.runs.wait(
                thread, "bench", input={"messages": [{"role": "user", "content": f"{QUESTION} ({i})"}]},
                context={"user_id": "bench", "chat_id": thread},
            )
            assert result["messages"][-1]["content"] == ANSWER, result

        return await measure(turn, ids, turns, warmup=lambda i: turn(warm, i))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # the process group of the server this run started
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


# --- main ------------------------------------------------------------------------------------------------


def own_postgres(fast: bool):
    from tests.support.pg import PgCluster

    root = Path(tempfile.mkdtemp(prefix="albench", dir="/tmp"))
    cluster = PgCluster(root / "d")
    cluster.init()
    if not fast:  # the test cluster turns durability off; a benchmark wants production's defaults
        with (cluster.data_dir / "postgresql.conf").open("a") as f:
            f.write("\nfsync = on\nsynchronous_commit = on\nfull_page_writes = on\n")
    cluster.start()
    return cluster, root


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--threads", type=int, default=30)
    parser.add_argument("--dev-turns", type=int, default=90, help="turns through langgraph dev")
    parser.add_argument("--no-dev", action="store_true", help="skip the langgraph dev measurement")
    parser.add_argument("--durability", choices=["sync", "async", "exit"],
                        default=Settings.model_fields["langgraph_durability"].default)
    parser.add_argument("--no-baseline", action="store_true", help="skip the durability=sync baseline run")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--fast-pg", action="store_true", help="own Postgres with fsync/synchronous_commit off")
    # Defaults are the app's (CHECKPOINT_ASYNC_COMMIT=true, api/assistant.py's pooled saver);
    # --no-async-commit --no-pooled-saver measure the baseline they replaced.
    parser.add_argument("--async-commit", action=argparse.BooleanOptionalAction, default=True,
                        help="the checkpointer's connections use synchronous_commit=off (the app's default)")
    parser.add_argument("--pooled-saver", action=argparse.BooleanOptionalAction, default=True,
                        help="graphs/assistant/checkpointer.pooled_checkpointer, as the app uses it")
    parser.add_argument("--profile", help="write a pyinstrument profile of the one-at-a-time turns (HTML + .txt)")
    parser.add_argument("--token-stream", choices=["custom", "messages"], default="custom",
                        help="how tokens reach the caller: the runner's custom events, or LangGraph's messages mode")
    args = parser.parse_args()

    cluster = root = None
    url = args.database_url
    if not url:
        cluster, root = own_postgres(args.fast_pg)
        url = cluster.url()
    pg = "DATABASE_URL" if args.database_url else f"own server ({'fsync off' if args.fast_pg else 'fsync on'})"
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}; "
          f"Postgres: {pg}; durability={args.durability}"
          f"{'; checkpointer synchronous_commit=off' if args.async_commit else ''}"
          f"; saver: {'pooled_checkpointer' if args.pooled_saver else 'AsyncPostgresSaver with its one lock'}")
    try:
        direct = await run_direct(url, args.turns, args.threads, args.durability, args.profile, args.async_commit,
                                  args.pooled_saver, args.token_stream)
        baseline = None
        if args.durability != "sync" and not args.no_baseline:
            baseline = await run_direct(url, args.turns, args.threads, "sync", None, args.async_commit,
                                        args.pooled_saver, args.token_stream)
    finally:
        if cluster is not None:
            cluster.stop("fast")
            shutil.rmtree(root, ignore_errors=True)
    print(f"app graph + Postgres checkpointer, {args.turns} turns over {args.threads} threads: {direct.line()}")
    p50, p95 = percentile(direct.latencies, 0.5) * 1000, percentile(direct.latencies, 0.95) * 1000
    ok = p50 <= TARGET_P50_MS and p95 <= TARGET_P95_MS
    print(f"target p50 <= {TARGET_P50_MS} ms, p95 <= {TARGET_P95_MS} ms: {'met' if ok else 'MISSED'}")
    if baseline is not None:
        print(f"baseline, durability=sync (a checkpoint per node): {baseline.line()}")
        b50 = percentile(baseline.latencies, 0.5) * 1000
        print(f"ratio p50 sync / {args.durability}: {b50 / p50:.2f}x; CPU per turn "
              f"{baseline.cpu_per_turn / direct.cpu_per_turn:.2f}x")

    if not args.no_dev:
        dev = await run_dev(args.dev_turns, min(args.threads, args.dev_turns))
        print(f"langgraph dev (in-memory server, runs.wait over HTTP), {args.dev_turns} turns: {dev.line()}")
        seq = (len(direct.latencies) / sum(direct.latencies)) / (len(dev.latencies) / sum(dev.latencies))
        print(f"ratio app graph / langgraph dev: {seq:.1f}x one at a time, {direct.rate / dev.rate:.1f}x "
              "with all threads at once")
    print(f"load average now {os.getloadavg()[0]:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
