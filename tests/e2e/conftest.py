"""Browser fixtures: Debian's Chromium driven by Playwright (no browser downloads), one fresh profile per test.

The app under test is the real one (`live_server`: uvicorn on a free port, offline mode, a fresh
database). Screenshots land in `test-output/e2e/` (gitignored) so a person can look at them.
"""

from __future__ import annotations

import asyncio
import shutil
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
