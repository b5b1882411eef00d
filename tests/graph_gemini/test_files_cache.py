"""Files mode with a Gemini context cache: the system prompt and the files cached once, named by later turns."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import websockets
from psycopg.rows import dict_row

from allin.knowledge import gemini_cache
from tests.graph_gemini.helpers import hello
from tests.graph_gemini.test_files_mode import ask_knowledge, settings, synced, processed, upload_starts  # noqa: F401


@pytest.fixture(autouse=True)
def small_floor(monkeypatch):
    """The two sample documents are ~2k tokens: lower the floor so they count as worth caching."""
    monkeypatch.setattr(gemini_cache, "MIN_CACHE_TOKENS", 100)


def cache_creates(fake) -> list:
    return [e for e in fake.requests("caches") if e.method == "POST"]


def cache_renewals(fake) -> list:
    return [e for e in fake.requests("caches") if e.method == "PATCH"]


def cached_answers(fake) -> list:
    return [e for e in fake.requests("generate") if e.stream and (e.body or {}).get("cachedContent")]


async def cache_row(db_url: str) -> dict | None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        return await (await conn.execute("SELECT * FROM gemini_caches")).fetchone()


async def test_the_files_are_cached_once_and_later_answers_name_the_cache(
        live_server, users, synced, fake_gemini, db_url):
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ask_knowledge(ws, fake_gemini)
        await ask_knowledge(ws, fake_gemini)

    [create] = cache_creates(fake_gemini)  # one cache for both turns
    assert "Allin, from Team 8" in create.system_text
    assert len(create.file_uris) == 2 and len(upload_starts(fake_gemini)) == 2
    row = await cache_row(db_url)
    assert row and fake_gemini.cache(row["name"].split("/")[-1]) is not None
    answers = cached_answers(fake_gemini)
    assert len(answers) == 2 and {a.body["cachedContent"] for a in answers} == {row["name"]}
    for answer in answers:  # what the cache holds is not sent again
        assert answer.file_uris == [] and not answer.system_text
        assert "<question>" in "\n".join(answer.texts)


async def test_a_cache_near_its_end_is_renewed_and_a_vanished_one_replaced(
        live_server, users, synced, fake_gemini, db_url):
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ask_knowledge(ws, fake_gemini)
        first = await cache_row(db_url)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await conn.execute("UPDATE gemini_caches SET expires_at = %s",
                               (datetime.now(timezone.utc) + timedelta(minutes=5),))
        await ask_knowledge(ws, fake_gemini)
        assert len(cache_renewals(fake_gemini)) == 1 and len(cache_creates(fake_gemini)) == 1
        renewed = await cache_row(db_url)
        assert renewed["name"] == first["name"] and renewed["expires_at"] > datetime.now(timezone.utc) + timedelta(minutes=30)

        # Gone remotely before its time: that turn is answered without it, the next one makes a new cache.
        fake_gemini.caches.clear()
        await ask_knowledge(ws, fake_gemini)
        assert await cache_row(db_url) is None
        await ask_knowledge(ws, fake_gemini)
    assert len(cache_creates(fake_gemini)) == 2
    assert (await cache_row(db_url))["name"] != first["name"]
