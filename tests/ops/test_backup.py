"""`allin backup` / `allin restore`: everything the product keeps in Postgres survives a round trip.

A user, a chat with turns, a LangGraph checkpoint and a document with an embedded
chunk are dumped with pg_dump -Fc and restored into a fresh database (and over a
changed one); every table must come back equal, row for row.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
import psycopg
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import START, MessagesState, StateGraph

from allin.chats import store as chats
from allin.db.backup import BackupError, backup, find_tool, libpq_target, restore
from allin.db.pool import CONNECTION_KWARGS
from allin.knowledge import store as knowledge
from allin.knowledge.types import Chunk
from allin.users import create_user
from tests.conftest import _with_db, drop_database, short_tmpdir
from tests.support.pg import free_port

ALLIN = str(Path(sys.executable).parent / "allin")


@pytest.fixture
def tmp() -> Iterator[Path]:
    d = short_tmpdir("albk")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def empty_db_url(admin_db_url: str) -> Iterator[str]:
    """A brand-new database with no schema at all (what a restore lands in after a rebuild)."""
    name = "r_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield _with_db(admin_db_url, name)
    drop_database(admin_db_url, name)


def echo_graph(saver: AsyncPostgresSaver):
    async def answer(state: MessagesState) -> dict:
        return {"messages": [AIMessage(f"echo: {state['messages'][-1].content}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    return builder.compile(checkpointer=saver)


async def populate(url: str) -> dict:
    """What a working install holds: a user, a chat and its turns, a checkpoint, a document with a vector."""
    async with await psycopg.AsyncConnection.connect(url, **CONNECTION_KWARGS) as conn:
        user, _token = await create_user(conn, "rosa", "admin")
        chat = await chats.create_chat(conn, user.id, title="How do reviews work?", settings={"answer_style": "short"})
        q = await chats.add_turn(conn, user_id=user.id, chat_id=chat["id"], role="user", content="How fast should reviews be?")
        await chats.add_turn(conn, user_id=user.id, chat_id=chat["id"], role="assistant", reply_to=q["id"],
                             content="Within one business day [1].",
                             citations=[{"n": 1, "file": "speed.md", "page": None, "snippet": "One business day"}])
        graph = echo_graph(AsyncPostgresSaver(conn))
        config = {"configurable": {"thread_id": str(chat["id"])}}
        await graph.ainvoke({"messages": [HumanMessage("How fast should reviews be?")]}, config)
        doc_id = await knowledge.upsert_document(conn, path="eng/speed.md", title="Speed of Code Reviews",
                                                 sha256="ab" * 32, mime="text/markdown", size_bytes=7154)
        vector = np.random.default_rng(7).standard_normal(384).astype(np.float32)
        vector /= np.linalg.norm(vector)
        chunk = Chunk(ord=0, kind="text", content="One business day is the maximum time to respond.",
                      section="How Fast Should Code Reviews Be?", line_start=40, line_end=44)
        await knowledge.replace_chunks(conn, doc_id, [chunk], vector[None, :], title="Speed of Code Reviews",
                                       pages=None, embedding_model="minilm-int8")
    return {"user_id": user.id, "chat_id": chat["id"], "doc_id": doc_id, "vector": vector, "config": config}


def snapshot(url: str) -> dict[str, list[str]]:
    """Every row of every table in the public schema, as sorted JSON text (vectors and bytes included)."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1")]
        rows = {t: sorted(r[0] for r in conn.execute(f'SELECT to_jsonb(t)::text FROM "{t}" t')) for t in tables}
        rows["_indexes"] = sorted(r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"))
        rows["_extensions"] = sorted(r[0] for r in conn.execute("SELECT extname FROM pg_extension"))
    return rows


async def assert_usable(url: str, data: dict) -> None:
    """The restored database works for the product, not just compares equal."""
    async with await psycopg.AsyncConnection.connect(url, **CONNECTION_KWARGS) as conn:
        state = await echo_graph(AsyncPostgresSaver(conn)).aget_state(data["config"])
        assert [m.content for m in state.values["messages"]] == [
            "How fast should reviews be?", "echo: How fast should reviews be?"]
        turns = await chats.list_turns(conn, data["user_id"], data["chat_id"])
        assert [t["role"] for t in turns] == ["user", "assistant"]
        assert turns[1]["citations"][0]["file"] == "speed.md"
        # Identity sequences came back too: a new turn numbers after the old ones.
        new = await chats.add_turn(conn, user_id=data["user_id"], chat_id=data["chat_id"], role="user", content="more")
        assert new["seq"] > turns[-1]["seq"]
        await knowledge.ensure_vector_types(conn)
        cur = await conn.execute("SELECT embedding FROM chunks")
        assert np.array_equal(np.asarray((await cur.fetchone())["embedding"]), data["vector"])  # bit for bit
        cur = await conn.execute("SELECT content, embedding <=> %s AS d FROM chunks ORDER BY d LIMIT 1",
                                 (data["vector"],))
        hit = await cur.fetchone()
        assert hit["content"].startswith("One business day") and hit["d"] < 1e-6
        cur = await conn.execute("SELECT id FROM chunks WHERE tsv @@ plainto_tsquery('english', 'business day')")
        assert await cur.fetchone() is not None


async def test_round_trip_into_a_fresh_database(db_url: str, empty_db_url: str, tmp: Path):
    data = await populate(db_url)
    before = snapshot(db_url)
    assert len(before["checkpoints"]) >= 2 and len(before["chunks"]) == 1 and len(before["chat_turns"]) == 2

    result = await backup(db_url, tmp / "allin.dump")
    assert result.path.read_bytes()[:5] == b"PGDMP" and result.size_bytes > 10_000
    assert not list(tmp.glob(".*partial")), "no partial file is left behind"

    seconds = await restore(empty_db_url, result.path)
    assert snapshot(empty_db_url) == before
    await assert_usable(empty_db_url, data)
    assert result.seconds < 30 and seconds < 30


async def test_restore_cleans_a_changed_database(db_url: str, tmp: Path):
    data = await populate(db_url)
    before = snapshot(db_url)
    dump = (await backup(db_url, tmp / "allin.dump")).path
    with psycopg.connect(db_url, autocommit=True) as conn:  # what happens after the backup
        conn.execute("DELETE FROM chats")
        conn.execute("UPDATE documents SET title = 'changed'")
        conn.execute("INSERT INTO users (name, role, token_hash) VALUES ('later', 'user', 'x')")
        conn.execute("CREATE TABLE scratch (x int)")  # not in the dump: restore leaves it alone
    await restore(db_url, dump)
    after = snapshot(db_url)
    assert after.pop("scratch") == []
    assert after == before
    await assert_usable(db_url, data)


async def test_a_failed_restore_changes_nothing(db_url: str, tmp: Path):
    await populate(db_url)
    before = snapshot(db_url)
    bad = tmp / "truncated.dump"
    good = (await backup(db_url, tmp / "allin.dump")).path.read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(BackupError, match="pg_restore failed"):
        await restore(db_url, bad)
    assert snapshot(db_url) == before
    # A table made after the backup that uses pgvector: --clean cannot drop the extension under it.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE later_vectors (v vector(3))")
    before = snapshot(db_url)
    with pytest.raises(BackupError, match="restore into an empty database"):
        await restore(db_url, tmp / "allin.dump")
    assert snapshot(db_url) == before


async def test_clear_errors(tmp: Path):
    not_a_dump = tmp / "notes.txt"
    not_a_dump.write_text("hello")
    with pytest.raises(BackupError, match="not a pg_dump custom-format archive"):
        await restore("postgresql://postgres@127.0.0.1:1/x", not_a_dump)
    with pytest.raises(BackupError, match=r"^cannot reach the database at postgresql://postgres@127\.0\.0\.1"):
        await backup(f"postgresql://postgres@127.0.0.1:{free_port()}/x", tmp / "x.dump")
    with pytest.raises(BackupError, match="pg_nonesuch not found"):
        await find_tool("pg_nonesuch", 17)
    with pytest.raises(BackupError, match="pg_dump 99 or newer is needed"):
        await find_tool("pg_dump", 99)


def test_password_goes_to_the_environment_not_the_command_line():
    target, env = libpq_target("postgresql://app:s3cr%40t@db.example.com:25060/allin?sslmode=require")
    assert "s3cr" not in target and env["PGPASSWORD"] == "s3cr@t"
    assert "host=db.example.com" in target and "port=25060" in target and "sslmode=require" in target
    target, env = libpq_target("postgresql://postgres:@/postgres?host=/tmp/alx/pg")
    assert "host=/tmp/alx/pg" in target and "PGPASSWORD" not in env


# --- the command line, as an operator runs it --------------------------------------------------

def run_cli(*args: str, env: dict, timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([ALLIN, *args], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=env["HOME"], input=stdin)


@pytest.fixture
def cli_env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GEMINI_", "ALLIN_", "DATABASE_URL"))}
    env.update(ALLIN_DATA_DIR=str(tmp / "data"), HOME=str(tmp), LOG_LEVEL="WARNING")
    return env


async def test_cli_backup_and_restore_over_tcp(db_url: str, empty_db_url: str, tmp: Path, cli_env: dict):
    data = await populate(db_url)
    dump = tmp / "b" / "allin.dump"
    done = run_cli("backup", str(dump), env={**cli_env, "DATABASE_URL": db_url})
    assert done.returncode == 0, done.stderr
    assert "backed up PostgreSQL" in done.stdout and dump.exists()

    refused = run_cli("restore", str(dump), env={**cli_env, "DATABASE_URL": empty_db_url}, stdin="")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    done = run_cli("restore", str(dump), "--yes", env={**cli_env, "DATABASE_URL": empty_db_url})
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stdout
    assert snapshot(empty_db_url) == snapshot(db_url)
    await assert_usable(empty_db_url, data)


def test_cli_unreachable_database_is_one_line(tmp: Path, cli_env: dict):
    env = {**cli_env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    done = run_cli("backup", str(tmp / "x.dump"), env=env)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot reach the database")
    missing = run_cli("restore", str(tmp / "nope.dump"), "--yes", env=env)
    assert missing.returncode == 1 and "no backup file" in missing.stderr


@pytest.mark.slow  # the embedded server's first start (initdb, migrations) takes ~10 s here
def test_cli_backup_of_the_embedded_database(tmp: Path, cli_env: dict, empty_db_url: str):
    """The default install: Unix-socket URL (`?host=`) to the wheel's server, dumped by the wheel's pg_dump."""
    created = run_cli("users", "create", "embedded-user", env=cli_env)
    assert created.returncode == 0, created.stderr
    dump = tmp / "embedded.dump"
    done = run_cli("backup", str(dump), env=cli_env)
    assert done.returncode == 0, done.stderr
    # ...and it restores into a server elsewhere (here: the TCP test server).
    done = run_cli("restore", str(dump), "-y", env={**cli_env, "DATABASE_URL": empty_db_url})
    assert done.returncode == 0, done.stderr
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT role FROM users WHERE name = 'embedded-user'").fetchone() == ("user",)
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] >= 1
