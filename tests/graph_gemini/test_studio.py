"""LangGraph Studio: `langgraph dev` serves graphs/studio.py from langgraph.json, and a run works.

The server is a real subprocess in the repository root, offline, with the lazy
dependencies pointed at this test's database through the environment (as a
developer's .env would). The client is langgraph-sdk, as Studio's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from tests.fake_gemini import Json, Text
from tests.graph_gemini.helpers import answer_calls, classify_calls
from tests.support.pg import free_port

REPO = Path(__file__).resolve().parents[2]
LANGGRAPH = REPO / ".venv" / "bin" / "langgraph"
START_TIMEOUT_S = 120
# Variables that would make the server keyed, traced, or aimed at another database.
DROPPED_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "LANGSMITH_API_KEY",
               "LANGCHAIN_API_KEY", "DATABASE_URL", "TEST_DATABASE_URL")


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to the server's own process group (it started it), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextmanager
def langgraph_dev(db_url: str, data_dir: Path, log: Path, **extra_env: str) -> Iterator[str]:
    """`langgraph dev` on a free port in the repository root; yields its URL, stops it after."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(DATABASE_URL=db_url, ALLIN_DATA_DIR=str(data_dir / "data"),
               ALLIN_KNOWLEDGE_DIR=str(data_dir / "knowledge"), LANGSMITH_TRACING="false",
               LANGCHAIN_TRACING_V2="false", LOG_LEVEL="WARNING", **extra_env)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(LANGGRAPH), "dev", "--no-browser", "--port", str(port), "--no-reload", "--config", "langgraph.json"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev did not start in {START_TIMEOUT_S}s:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield url
    finally:
        _stop(proc)
        print(log.read_text()[-3000:], file=sys.stderr)  # shown only when the test fails
    assert proc.returncode == 0, f"langgraph dev did not stop cleanly ({proc.returncode})"


@pytest.fixture
def studio(db_url: str, data_dir: Path, tmp_path: Path) -> Iterator[str]:
    """Offline: no key anywhere in the server's environment."""
    if not LANGGRAPH.exists():
        pytest.skip(f"{LANGGRAPH} not installed (langgraph-cli[inmem])")
    with langgraph_dev(db_url, data_dir, tmp_path / "langgraph-dev.log") as url:
        yield url


@pytest.mark.slow
async def test_studio_runs_the_assistant_graph(studio, users, knowledge):
    client = get_client(url=studio)
    [assistant] = await client.assistants.search(graph_id="assistant")
    thread = await client.threads.create()
    thread_id = thread["thread_id"]
    context = {"user_id": str(users.alice.id), "chat_id": thread_id}

    await client.runs.wait(thread_id, assistant["assistant_id"], context=context,
                           input={"messages": [{"role": "user", "content": "Who are you?"}]})
    state = await client.threads.get_state(thread_id)
    values = state["values"]
    assert values["route"] == "identity"
    answer = values["messages"][-1]
    assert answer["type"] == "ai" and "Allin" in answer["content"] and "Team 8" in answer["content"]

    # The context reaches the nodes: retrieval runs as this user and the answer cites the document.
    await client.runs.wait(thread_id, assistant["assistant_id"], context=context,
                           input={"messages": [{"role": "user", "content": "How fast should code reviews be?"}]})
    values = (await client.threads.get_state(thread_id))["values"]
    assert values["route"] == "knowledge"
    assert [m["type"] for m in values["messages"]] == ["human", "ai", "human", "ai"]
    assert "One business day is the maximum time" in values["messages"][-1]["content"]
    assert values["citations"] and values["citations"][0]["file"] == knowledge["file"]



@pytest.mark.slow
async def test_studio_in_gemini_mode(db_url, data_dir, tmp_path, users, fake_gemini):
    """Keyed through the server's environment (as a developer's .env): the graph calls Gemini."""
    if not LANGGRAPH.exists():
        pytest.skip(f"{LANGGRAPH} not installed (langgraph-cli[inmem])")
    fake_gemini.enqueue(Json({"route": "identity", "reason": "scripted"}))
    fake_gemini.enqueue(Text("I'm Allin, from Team 8.", chunks=["I'm Allin, ", "from Team 8."]))
    keyed = {"GOOGLE_API_KEY": fake_gemini.api_key, "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
             "SSL_CERT_FILE": str(fake_gemini.cert_file)}
    with langgraph_dev(db_url, data_dir, tmp_path / "langgraph-dev.log", **keyed) as url:
        client = get_client(url=url)
        thread_id = (await client.threads.create())["thread_id"]
        await client.runs.wait(thread_id, "assistant", context={"user_id": str(users.alice.id), "chat_id": thread_id},
                               input={"messages": [{"role": "user", "content": "Who are you?"}]})
        values = (await client.threads.get_state(thread_id))["values"]
    assert values["route"] == "identity"
    assert values["messages"][-1]["content"] == "I'm Allin, from Team 8."
    [classify], [answer] = classify_calls(fake_gemini), answer_calls(fake_gemini)
    assert classify.body["generationConfig"]["responseMimeType"] == "application/json"
    assert answer.stream and "<question>\nWho are you?\n</question>" in "\n".join(answer.texts)


IMPORT_CHECK = """
import sys, threading
before = threading.active_count()
import graphs.studio as studio
assert threading.active_count() == before, "threads started at import"
assert studio.graph.checkpointer is None, "langgraph dev brings its own persistence"
heavy = [m for m in ("langchain_google_genai", "onnxruntime", "tools.sandbox") if m in sys.modules]
print("ok", sorted(studio.graph.builder.nodes), heavy)
"""


def test_studio_module_imports_without_side_effects(tmp_path):
    """No settings read, no database, no models at import: an unreachable DATABASE_URL does not matter."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", IMPORT_CHECK], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ['classify', 'code_execute', 'recall', 'retrieve', 'synthesize'] []"), done.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written (no embedded database, no data dir)


async def test_lazy_deps_start_from_any_node(db_url, data_dir, tmp_path, monkeypatch, users):
    """A Studio replay can begin mid-graph: the first call, whichever it is, sets everything up."""
    from graphs.assistant.context import Context
    from graphs.assistant.services import LazyServiceDeps

    for name in DROPPED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("ALLIN_DATA_DIR", str(data_dir / "data"))
    monkeypatch.chdir(tmp_path)  # no developer .env
    deps = LazyServiceDeps()
    with pytest.raises(RuntimeError, match="not initialised"):
        deps.chat_model()
    ctx = Context(user_id=str(users.alice.id), chat_id="c1")
    try:
        [run] = await deps.run_code("run this\n```python\nprint(6 * 7)\n```", [], ctx)
        assert run.stdout == "42\n" and run.outcome == "ok"
        assert await deps.recall("anything", ctx) == []
        assert "Allin, from Team 8" in (await deps.system_prompt()).text
        assert deps.settings.database_url == db_url and deps.max_model_retries == deps.settings.model_max_retries
    finally:
        if deps._initialised:
            await deps._pool.close()
