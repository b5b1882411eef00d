"""The conversation in a real browser: streamed, cited answers; sources; chats, search, rename,
delete, export; code runs; feedback; resume after a reload; interrupt."""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.async_api import expect

from tests.e2e.conftest import ask, login, screenshot

pytestmark = pytest.mark.e2e

SPEED_PDF = "eng-practices/pdf/review_reviewer_speed.pdf"


def record_frames(page) -> list[dict]:
    """Every JSON frame the page receives on /ws, in order."""
    frames: list[dict] = []

    def on_socket(ws):
        def on_frame(payload):
            if isinstance(payload, str):
                try:
                    frames.append(json.loads(payload))
                except ValueError:
                    pass
        ws.on("framereceived", on_frame)

    page.on("websocket", on_socket)
    return frames


@pytest.fixture
async def speed_doc(live_server, users, corpus) -> str:
    """The "Speed of Code Reviews" PDF, uploaded and ingested the way an admin does it."""
    pdf = corpus / SPEED_PDF
    async with httpx.AsyncClient(base_url=live_server.url, headers=users.admin.headers, timeout=120) as api:
        r = await api.post("/admin/knowledge/files", files={"file": (pdf.name, pdf.read_bytes(), "application/pdf")})
    assert r.status_code == 201 and r.json()["status"] == "ready", r.text
    return r.json()["id"]


async def test_question_streams_a_markdown_answer_with_citation_chips(browser, live_server, users, speed_doc):
    page = await browser.new_page()
    frames = record_frames(page)
    await login(page, live_server, users.alice.token)
    answer = await ask(page, "How fast should code reviews be?")

    tokens = [f for f in frames if f["type"] == "token"]
    message = next(f for f in frames if f["type"] == "message")
    assert len(tokens) > 3, "the answer should arrive as a stream of token frames"
    assert message["citations"], "the offline model cites the ingested document"
    body = (await answer.locator(".msg-body").inner_text()).strip()
    # What the page shows is the streamed text, rendered (citation markers became chips).
    first_sentence = message["content"].split("[")[0].strip()[:40]
    assert first_sentence and first_sentence in body

    chip = answer.locator(".msg-body .cite").first
    await chip.wait_for()
    cited = message["citations"][0]
    label = await chip.get_attribute("aria-label")
    assert cited["title"] in label and f"page {cited['page']}" in label
    # Hover and keyboard focus show the title and page.
    tip = page.locator("#cite-tip")
    await chip.focus()
    await tip.wait_for(state="visible")
    assert await chip.get_attribute("aria-describedby") == "cite-tip"
    await page.locator("#composer-input").focus()
    await tip.wait_for(state="hidden")
    await chip.hover()
    await tip.wait_for(state="visible")
    assert cited["title"] in await tip.inner_text() and f"page {cited['page']}" in await tip.inner_text()
    await screenshot(page, "02-cited-answer")
    # The sources are listed under the answer (by the model's own list or the page's row), not twice.
    assert cited["title"] in await answer.inner_text()
    assert await answer.locator(".sources").count() <= 1
    # The answer was stored; its turn id is on the node (feedback and search use it).
    assert await answer.get_attribute("data-turn-id") == message["turn_id"]
    browser.assert_no_js_errors()


async def test_citation_chip_opens_the_cited_page_of_the_source(browser, live_server, users, speed_doc):
    page = await browser.new_page()
    frames = record_frames(page)
    await login(page, live_server, users.alice.token)
    answer = await ask(page, "How fast should code reviews be?")
    citations = next(f for f in frames if f["type"] == "message")["citations"]
    chip = answer.locator(".msg-body .cite").last
    n = int(await chip.get_attribute("data-n"))
    cited = next(c for c in citations if c["n"] == n)
    async with page.expect_popup() as popup_info:
        await chip.click()
    popup = await popup_info.value
    # Fetched with the bearer token, opened as a blob URL of our origin, at the cited page.
    await popup.wait_for_url("blob:**", timeout=15_000)
    assert popup.url.startswith(f"blob:{live_server.url}/")
    assert popup.url.endswith(f"#page={cited['page']}")
    await popup.wait_for_load_state()
    await popup.wait_for_timeout(1500)  # the PDF viewer draws after load
    await screenshot(popup, "03-source-opened")
    browser.assert_no_js_errors()


async def test_second_chat_then_search_opens_the_first_at_the_matching_turn(browser, live_server, users):
    page = await browser.new_page()
    await login(page, live_server, users.alice.token)
    await ask(page, "Who reviews the flamingo service changes?")
    first_chat = await page.evaluate("localStorage.getItem('allin.chat')")
    assert first_chat

    await page.locator("#new-chat-btn").click()
    await page.locator("#empty").wait_for(state="visible")
    await ask(page, "Who are you?")
    second_chat = await page.evaluate("localStorage.getItem('allin.chat')")
    assert second_chat and second_chat != first_chat
    # Both chats are listed, newest first, the open one marked current.
    items = page.locator("#chat-list .chat-item")
    await expect(items).to_have_count(2)
    assert await items.nth(0).get_attribute("data-chat-id") == second_chat
    assert await items.nth(1).get_attribute("data-chat-id") == first_chat
    assert await items.nth(0).locator(".chat-open").get_attribute("aria-current") == "true"

    await page.locator("#search-input").fill("flamingo")
    hit = page.locator("#search-results .result").first
    await hit.wait_for()
    assert await hit.get_attribute("data-chat-id") == first_chat
    # The snippet's <mark> is the only markup that survives.
    assert (await hit.locator("mark").first.inner_text()).lower() == "flamingo"
    await screenshot(page, "04-search-results")
    await hit.click()
    highlighted = page.locator(".msg.highlight")
    await highlighted.wait_for()
    assert "flamingo" in (await highlighted.inner_text()).lower()
    assert await page.evaluate("localStorage.getItem('allin.chat')") == first_chat
    listed = page.locator(f'#chat-list .chat-item[data-chat-id="{first_chat}"] .chat-title')
    assert await page.locator("#chat-title").inner_text() == await listed.inner_text()
    await screenshot(page, "05-search-opened-chat")
    browser.assert_no_js_errors()


async def test_rename_export_and_delete_a_chat(browser, live_server, users):
    page = await browser.new_page()
    await login(page, live_server, users.alice.token)
    await ask(page, "Who are you?")
    chat_id = await page.evaluate("localStorage.getItem('allin.chat')")
    item = page.locator(f'#chat-list .chat-item[data-chat-id="{chat_id}"]')
    await item.wait_for()

    # Rename through the item's menu and the dialog.
    await item.hover()
    await item.locator(".chat-menu-btn").click()
    await item.get_by_role("menuitem", name="Rename").click()
    field = page.locator("#dialog input")
    await field.fill("Onboarding questions")
    await screenshot(page, "06-rename-dialog")
    await field.press("Enter")
    await item.locator(".chat-title").filter(has_text="Onboarding questions").wait_for()
    await page.locator("#chat-title").filter(has_text="Onboarding questions").wait_for()
    stored = httpx.get(f"{live_server.url}/chat/history/{chat_id}", headers=users.alice.headers).json()
    assert stored["chat"]["title"] == "Onboarding questions"

    # Export as Markdown: a download with the conversation in it.
    await item.locator(".chat-menu-btn").click()
    async with page.expect_download() as download_info:
        await item.get_by_role("menuitem", name="Export as Markdown").click()
    download = await download_info.value
    assert download.suggested_filename.endswith(".md")
    text = open(await download.path(), encoding="utf-8").read()  # noqa: ASYNC230 - a small local file
    assert "Who are you?" in text

    # Delete, confirmed in the dialog: gone from the list and from the server; a new chat opens.
    await item.locator(".chat-menu-btn").click()
    await item.get_by_role("menuitem", name="Delete").click()
    await page.locator("#dialog").get_by_role("button", name="Delete").click()
    await item.wait_for(state="detached")
    assert httpx.get(f"{live_server.url}/chat/history/{chat_id}", headers=users.alice.headers).status_code == 404
    await page.locator("#empty").wait_for(state="visible")
    assert await page.evaluate("localStorage.getItem('allin.chat')") is None
    browser.assert_no_js_errors()


async def test_code_snippet_runs_and_shows_code_output_and_outcome(browser, live_server, users):
    page = await browser.new_page()
    frames = record_frames(page)
    await login(page, live_server, users.alice.token)
    answer = await ask(page, "```python\nprint(6*7)\n```")
    run = answer.locator(".code-run")
    await run.wait_for()
    assert (await run.locator(".code-stdout").inner_text()).strip() == "42"
    assert "print" in await run.locator(".code-block code").inner_text()
    assert "ran fine" in await run.locator(".outcome-badge").inner_text()
    # Highlighted: `print` is a call token; nothing outside spans and text.
    assert await run.locator(".code-block .tok-fn").first.inner_text() == "print"
    code_frames = [f for f in frames if f["type"] == "code"]
    assert code_frames and code_frames[0]["outcome"] == "ok"
    await screenshot(page, "07-code-run")
    # After a reload the stored run is shown the same way.
    await page.reload()
    await page.locator(".code-run .code-stdout").filter(has_text="42").wait_for()
    browser.assert_no_js_errors()


async def test_reload_resumes_the_open_chat_and_feedback_is_stored(browser, live_server, users):
    page = await browser.new_page()
    await login(page, live_server, users.alice.token)
    answer = await ask(page, "Who are you?")
    chat_id = await page.evaluate("localStorage.getItem('allin.chat')")
    turn_id = await answer.get_attribute("data-turn-id")

    frames = record_frames(page)
    await page.reload()
    await page.locator(f'.msg-assistant[data-turn-id="{turn_id}"]').wait_for()
    await expect(page.locator("#conn-status")).to_have_attribute("data-state", "open")
    ready = next(f for f in frames if f["type"] == "ready")
    assert ready["chat_id"] == chat_id and ready["resumed"] is True
    assert await page.locator(".msg-user").count() == 1

    # Thumbs down with a comment, stored per answer.
    answer = page.locator(f'.msg-assistant[data-turn-id="{turn_id}"]')
    await answer.get_by_role("button", name="Not helpful").click()
    comment = answer.locator(".feedback-form input")
    await comment.wait_for()
    await comment.fill("Too short")
    await comment.press("Enter")
    await page.locator(".toast").filter(has_text="Thanks").wait_for()
    stored = httpx.get(f"{live_server.url}/chat/history/{chat_id}", headers=users.alice.headers).json()
    turn = next(t for t in stored["turns"] if t["turn_id"] == turn_id)
    assert turn["feedback"]["rating"] == -1 and turn["feedback"]["comment"] == "Too short"
    assert await answer.get_by_role("button", name="Not helpful").get_attribute("aria-pressed") == "true"

    # A follow-up goes to the same chat.
    await ask(page, "What can you do?")
    stored = httpx.get(f"{live_server.url}/chat/history/{chat_id}", headers=users.alice.headers).json()
    assert [t["role"] for t in stored["turns"]] == ["user", "assistant", "user", "assistant"]
    browser.assert_no_js_errors()


async def test_escape_interrupts_a_running_answer(browser, live_server, users):
    page = await browser.new_page()
    await login(page, live_server, users.alice.token)
    box = page.locator("#composer-input")
    await box.fill("```python\nimport time\ntime.sleep(8)\nprint('slow')\n```")
    await box.press("Enter")
    stop = page.locator("#stop-btn")
    await stop.wait_for(state="visible")
    await page.keyboard.press("Escape")
    status = page.locator(".msg-assistant .msg-status")
    await status.filter(has_text="Stopped").wait_for(timeout=15_000)
    await stop.wait_for(state="hidden")
    assert await page.locator("#send-btn").is_visible()
    browser.assert_no_js_errors()


async def test_chat_list_is_newest_first_and_loads_more_pages(browser, live_server, users):
    with httpx.Client(base_url=live_server.url, headers=users.alice.headers) as api:
        ids = [api.post("/chat/start", json={"title": f"Chat number {i}"}).json()["chat_id"] for i in range(34)]
    page = await browser.new_page()
    await login(page, live_server, users.alice.token)
    items = page.locator("#chat-list .chat-item")
    await expect(items).to_have_count(30)
    assert await items.first.get_attribute("data-chat-id") == ids[-1]
    more = page.locator("#load-more")
    await expect(more).to_be_visible()
    await more.click()
    await expect(items).to_have_count(34)
    await expect(more).to_be_hidden()
    assert await items.last.get_attribute("data-chat-id") == ids[0]
    # Bob sees none of them.
    other = await browser.new_page()
    await page.evaluate("localStorage.clear()")
    await login(other, live_server, users.bob.token)
    await expect(other.locator("#chat-list-status")).to_have_text("No chats yet. Ask something to start one.")
    browser.assert_no_js_errors()


async def test_a_voice_question_plays_back_from_the_history(browser, live_server, users, settings):
    import io
    import wave

    import psycopg

    from allin.chats import store
    from allin.storage import make_storage

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(bytes(6400))
    async with await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True,
                                                     row_factory=psycopg.rows.dict_row) as conn:
        chat = await store.create_chat(conn, users.alice.id, title="Spoken")
        key = f"audio/{chat['id']}/q.wav"
        await make_storage(settings).put(key, buf.getvalue())
        q = await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user",
                                 content="How do I deploy?", modality="voice", audio_ref=key)
        await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="assistant",
                             content="Run make deploy.", reply_to=q["id"])
    page = await browser.new_page()
    await login(page, live_server, users.alice.token)
    await page.evaluate(f"localStorage.setItem('allin.chat', '{chat['id']}')")
    await page.reload()
    question = page.locator(f'.msg-user[data-turn-id="{q["id"]}"]')
    await question.wait_for()
    async with page.expect_response(lambda r: r.url.endswith(f"/chat/turns/{q['id']}/audio")) as played:
        await question.get_by_role("button", name="Play your recording").click()
    response = await played.value
    assert response.status == 200 and response.headers["content-type"] == "audio/wav"
    assert await page.locator(".toast").filter(has_text="Could not play").count() == 0
    browser.assert_no_js_errors()
