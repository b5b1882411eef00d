"""The page's /ws client recovers from dropped sockets and resumes the same chat.

The server here closes sockets idle for 3 s (close code 4000), far sooner than the page's
20 s heartbeat: a socket dropped while an answer is still coming is reopened at once (the answer
is fetched once stored); a quiet one is reopened when next needed.
"""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.async_api import expect

from allin.config import Settings
from tests.e2e.conftest import ask, login

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ws_idle_timeout_s": 3.0})


async def test_dropped_socket_reconnects_to_the_same_chat(browser, live_server, users):
    page = await browser.new_page()
    received: list[dict] = []
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda p: received.append(json.loads(p)) if isinstance(p, str) else None))
    await login(page, live_server, users.alice.token)
    # A slow code run outlasts the 3 s idle limit: the socket drops mid-turn, the page reconnects
    # at once and shows the answer when it is stored.
    answer = await ask(page, "```python\nimport time\ntime.sleep(4)\nprint('still here')\n```")
    await expect(answer.locator(".code-stdout")).to_have_text("still here\n")
    chat_id = await page.evaluate("localStorage.getItem('allin.chat')")
    readies = [f for f in received if f["type"] == "ready"]
    assert len(readies) >= 2 and readies[-1]["chat_id"] == chat_id and readies[-1]["resumed"] is True
    assert any(f["type"] == "error" and f["code"] == "idle_timeout" for f in received)

    # Quiet now: the dropped socket stays closed (no reconnect storm) until the next question.
    status = page.locator("#conn-status")
    await expect(status).to_have_attribute("data-state", "idle", timeout=10_000)
    await page.wait_for_timeout(1000)
    await expect(status).to_have_attribute("data-state", "idle")
    await ask(page, "Who are you?")
    turns = httpx.get(f"{live_server.url}/chat/history/{chat_id}", headers=users.alice.headers).json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert await page.locator(".msg-assistant").count() == 2
    assert [f for f in received if f["type"] == "ready"][-1]["resumed"] is True
    browser.assert_no_js_errors()
