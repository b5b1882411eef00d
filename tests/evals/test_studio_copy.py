"""`allin studio-copy`: a stored chat becomes a LangGraph Studio thread (against a real `langgraph dev`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.pg import free_port

REPO = Path(__file__).resolve().parents[2]
LANGGRAPH = REPO / ".venv" / "bin" / "langgraph"
ALLIN = str(Path(sys.executable).parent / "allin")
DROPPED_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "LANGSMITH_API_KEY",
               "LANGCHAIN_API_KEY", "DATABASE_URL", "TEST_DATABASE_URL")


def _env(db_url: str, data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(DATABASE_URL=db_url, ALLIN_DATA_DIR=str(data_dir / "data"), LANGSMITH_TRACING="false",
               LOG_LEVEL="WARNING", HOME=str(data_dir))
    return env


@pytest.fixture
def studio(db_url: str, data_dir: Path, tmp_path: Path) -> Iterator[str]:
    """`langgraph dev` on a free port (another suite may hold 2024), stopped through its process group."""
    if not LANGGRAPH.exists():
        pytest.skip(f"{LANGGRAPH} not installed (langgraph-cli[inmem])")
    port = free_port()
    log = tmp_path / "langgraph-dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(LANGGRAPH), "dev", "--no-browser", "--port", str(port), "--no-reload", "--config", "langgraph.json"],
            cwd=REPO, env=_env(db_url, data_dir), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


async def _chat_with_turns(settings, user_id, texts: list[str]) -> str:
    """A chat answered by the real graph on the app's Postgres checkpointer (offline)."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from allin.chats import store
    from allin.db.pool import make_pool
    from graphs.assistant.graph import build_graph
    from graphs.assistant.runner import TurnRunner
    from graphs.assistant.services import ServiceDeps

    pool = make_pool(settings.database_url, settings, min_size=1, max_size=4)
    await pool.open()
    try:
        graph = build_graph(ServiceDeps(settings, pool)).compile(checkpointer=AsyncPostgresSaver(pool))
        runner = TurnRunner(graph, pool, settings=settings)
        async with pool.connection() as conn:
            chat = await store.create_chat(conn, user_id, title="Replay me")
        for text in texts:
            assert (await runner.run(user_id=user_id, chat=chat, text=text)).status == "complete"
        return str(chat["id"])
    finally:
        await pool.close()


def _copy(chat_id: str, url: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([ALLIN, "studio-copy", chat_id, "--url", url], capture_output=True, text=True, env=env,
                          cwd=env["HOME"], timeout=120)


@pytest.mark.slow
async def test_copies_a_checkpointed_chat_turn_by_turn(studio, settings, users, db_url, data_dir):
    from langgraph_sdk import get_client

    from tests.graph_gemini.conftest import stored_turns

    chat_id = await _chat_with_turns(settings, users.alice.id, ["Who are you?", "Thanks, that helps!"])
    done = _copy(chat_id, studio, _env(db_url, data_dir))
    assert done.returncode == 0, done.stderr
    thread_id = done.stdout.strip().splitlines()[-1]
    assert "copied 4 messages (2 turns, from the checkpoint)" in done.stdout
    assert f'"user_id": "{users.alice.id}"' in done.stdout

    client = get_client(url=studio)
    thread = await client.threads.get(thread_id)
    assert thread["metadata"]["copied_from_chat"] == chat_id and thread["metadata"]["source"] == "checkpoint"
    state = await client.threads.get_state(thread_id)
    messages = state["values"]["messages"]
    turns = await stored_turns(db_url, chat_id)
    assert [(m["type"], m["content"]) for m in messages] == [
        ("human" if t["role"] == "user" else "ai", t["content"]) for t in turns]
    assert messages[0]["id"] == str(turns[0]["id"])  # message ids still map to stored turns
    assert state["next"] == []  # at rest: the next input starts a new turn
    history = await client.threads.get_history(thread_id)
    assert [len(h["values"]["messages"]) for h in history] == [4, 2]  # one checkpoint per turn, to step through


@pytest.mark.slow
async def test_a_chat_without_a_thread_is_copied_from_its_turns(studio, settings, users, db_url, data_dir):
    import psycopg
    from langgraph_sdk import get_client
    from psycopg.rows import dict_row

    from allin.chats import store

    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        chat = await store.create_chat(conn, users.bob.id, title="Imported")
        await store.add_turn(conn, user_id=users.bob.id, chat_id=chat["id"], role="user", content="How fast?")
        await store.add_turn(conn, user_id=users.bob.id, chat_id=chat["id"], role="assistant", content="Within a day.")
    done = _copy(str(chat["id"]), studio, _env(db_url, data_dir))
    assert done.returncode == 0, done.stderr
    assert "from the turns" in done.stdout
    state = await get_client(url=studio).threads.get_state(done.stdout.strip().splitlines()[-1])
    assert [(m["type"], m["content"]) for m in state["values"]["messages"]] == [("human", "How fast?"),
                                                                                ("ai", "Within a day.")]


async def test_unknown_chat_and_unreachable_server_fail_clearly(db_url, data_dir, users):
    import psycopg
    from psycopg.rows import dict_row

    from allin.chats import store

    env = _env(db_url, data_dir)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        chat = await store.create_chat(conn, users.bob.id)
        await store.add_turn(conn, user_id=users.bob.id, chat_id=chat["id"], role="user", content="hello")
    done = _copy(str(chat["id"]), f"http://127.0.0.1:{free_port()}", env)
    assert done.returncode == 1 and "could not write to the LangGraph server" in done.stderr
    assert "Traceback" not in done.stderr
    done = _copy("00000000-0000-0000-0000-000000000000", "http://127.0.0.1:1", env)
    assert done.returncode == 1 and "no chat 00000000-0000-0000-0000-000000000000" in done.stderr
    done = _copy("not-a-uuid", "http://127.0.0.1:1", env)
    assert done.returncode == 2 and "not a chat id" in done.stderr


async def test_a_chat_longer_than_its_thread_is_read_from_its_turns(settings, users, db_url):
    """The thread keeps only the exchanges the model still sees; a copy still gets the whole chat."""
    import psycopg
    from psycopg.rows import dict_row

    from graphs.studio_copy import read_chat

    short = settings.model_copy(update={"history_max_turns": 1})
    chat_id = await _chat_with_turns(short, users.alice.id, ["Who are you?", "What is a CL?", "Thanks!"])
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        chat = await read_chat(conn, chat_id)
    assert chat.source == "turns"
    assert [m.type for m in chat.messages] == ["human", "ai"] * 3
    assert chat.messages[0].content == "Who are you?" and chat.messages[4].content == "Thanks!"

    whole = await _chat_with_turns(settings, users.alice.id, ["Who are you?", "Thanks!"])
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        chat = await read_chat(conn, whole)
    assert chat.source == "checkpoint" and len(chat.messages) == 4
