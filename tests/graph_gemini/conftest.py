"""Fixtures for the assistant end to end: Gemini mode against the fake server, and offline.

`gemini_mode(settings, fake)` turns the shared `settings` into keyed settings
aimed at the fake Gemini server; a test module that overrides `settings` with
it gets the real app (`app`, `client`, `live_server`) in Gemini mode.
`knowledge` ingests the eng-practices "Speed of Code Reviews" PDF into the
test's database with the local embedder (embeddings stay local when keyed).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from pydantic import SecretStr

from allin.config import Settings

SPEED_DOC = "eng-practices/pdf/review_reviewer_speed.pdf"


def gemini_mode(settings: Settings, fake, **update) -> Settings:
    """The same settings, keyed and pointed at the fake Gemini server."""
    return settings.model_copy(update={
        "google_api_key": SecretStr(fake.api_key),
        "google_gemini_base_url": fake.base_url,
        **update,
    })


@pytest.fixture(scope="session")
def speed_doc(corpus: Path):
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
async def knowledge(db_url: str, speed_doc) -> dict:
    """The speed doc in this test's database: {"id", "file", "title"}."""
    from allin.knowledge.store import replace_chunks, upsert_document

    path, digest, document, vectors, model = speed_doc
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        doc_id = await upsert_document(conn, path=path.name, title=document.title, sha256=digest,
                                       mime=document.mime, size_bytes=path.stat().st_size)
        await replace_chunks(conn, doc_id, document.chunks, vectors, title=document.title, pages=document.pages,
                             embedding_model=model)
    return {"id": str(doc_id), "file": path.name, "title": document.title}


async def stored_turns(db_url: str, chat_id: str) -> list[dict]:
    """The chat's stored turns, oldest first (read straight from Postgres)."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        cur = await conn.execute("SELECT * FROM chat_turns WHERE chat_id = %s ORDER BY seq",
                                 (chat_id,))
        return await cur.fetchall()
