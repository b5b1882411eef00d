"""One real app under uvicorn for a whole fuzz module (its own fresh database and users).

The shared `live_server` fixture is per test; schemathesis makes one test per operation,
and starting the app (and a database) for each would cost most of the run.
Schemathesis' own ASGI transport is no help here: it opens a new Starlette TestClient per
request, which runs the app's lifespan (pool, migrations, models) around every call.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
import pytest

from allin.config import Settings
from tests.conftest import (
    LiveServer,
    TestUser,
    Users,
    _with_db,
    create_database,
    drop_database,
    serve_in_thread,
    short_tmpdir,
)


@dataclass
class Seeded:
    """Alice's chat with one exchange: real ids for the fuzzer to aim at (beyond the 404 paths)."""

    chat_id: uuid.UUID
    question_id: uuid.UUID
    answer_id: uuid.UUID


async def _populate(db_url: str) -> tuple[Users, Seeded]:
    from allin.chats import store
    from allin.users import create_user

    connect = psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=psycopg.rows.dict_row)
    async with await connect as conn:
        made = {}
        for name, role in (("admin", "admin"), ("alice", "user"), ("bob", "user")):
            user, token = await create_user(conn, name, role)  # type: ignore[arg-type]
            made[name] = TestUser(user.id, name, token)
        alice = made["alice"].id
        chat = await store.create_chat(conn, alice, title="Code reviews")
        question = await store.add_turn(conn, user_id=alice, chat_id=chat["id"], role="user",
                                        content="How fast should code reviews be?")
        answer = await store.add_turn(conn, user_id=alice, chat_id=chat["id"], role="assistant",
                                      content="Within one business day [1].", reply_to=question["id"])
    return Users(**made), Seeded(chat["id"], question["id"], answer["id"])


@pytest.fixture(scope="module")
def fuzz_env(admin_db_url: str, template_db: str) -> Iterator[tuple[Settings, Users, Seeded]]:
    """A fresh database, data dirs and users for this module alone."""
    name = create_database(admin_db_url, template_db)
    db_url = _with_db(admin_db_url, name)
    data_dir = short_tmpdir("alf")
    (data_dir / "knowledge").mkdir()
    settings = Settings(
        _env_file=None,
        database_url=db_url,
        ALLIN_DATA_DIR=data_dir / "data",
        ALLIN_KNOWLEDGE_DIR=data_dir / "knowledge",
        google_api_key=None,
        log_level="WARNING",
    )
    # A thread of its own: asyncio.run must not replace pytest-asyncio's session loop.
    with ThreadPoolExecutor(1) as pool:
        users, seeded = pool.submit(asyncio.run, _populate(db_url)).result()
    try:
        yield settings, users, seeded
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        drop_database(admin_db_url, name)


@pytest.fixture(scope="module")
def fuzz_users(fuzz_env) -> Users:
    return fuzz_env[1]


@pytest.fixture(scope="module")
def fuzz_seeded(fuzz_env) -> Seeded:
    return fuzz_env[2]


@pytest.fixture(scope="module")
def fuzz_server(fuzz_env) -> Iterator[LiveServer]:
    """The real app (lifespan on) under uvicorn in a thread, for the whole module."""
    with serve_in_thread(fuzz_env[0]) as server:
        yield server

