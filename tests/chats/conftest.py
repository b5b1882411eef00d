"""Chat tests: the app with a small deterministic embedder and the after-turn hook wired as the lead wires it."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.chats.helpers import TrigramEmbedder


@pytest.fixture
def embedder() -> TrigramEmbedder:
    return TrigramEmbedder()


@pytest.fixture
async def app(settings, users, embedder):
    from api.app import create_app

    application = create_app(settings, embedder=embedder)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def conn(db_url) -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as c:
        yield c
