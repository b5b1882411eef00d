"""The admin screens (knowledge upload and sync, documents, system prompt) and attachments."""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.async_api import expect

from tests.e2e.conftest import ask, login, screenshot

pytestmark = pytest.mark.e2e

SPEED_PDF = "eng-practices/pdf/review_reviewer_speed.pdf"


async def test_admin_screens_are_for_admins_only_and_degrade_gracefully(browser, live_server, users):
    page = await browser.new_page()
    await login(page, live_server, users.alice.token)
    await expect(page.locator("#nav-admin")).to_be_hidden()
    await page.goto(f"{live_server.url}/#/admin")
    await page.wait_for_selector("#app:not([hidden])")
    await expect(page.locator("#chat-view")).to_be_visible()
    await expect(page.locator("#admin-view")).to_be_hidden()
    assert httpx.get(f"{live_server.url}/admin/users", headers=users.alice.headers).status_code == 403

    admin = await browser.new_page()
    await login(admin, live_server, users.admin.token)
    await admin.locator("#nav-admin").click()
    await expect(admin.locator("#admin-view")).to_be_visible()
    for heading in ("Knowledge files", "Documents", "System prompt"):
        await expect(admin.get_by_role("heading", name=heading)).to_be_visible()
    # Whatever the server has, each section says something: its data or a clear message.
    await expect(admin.locator(".card p.muted[role=status]").first).not_to_be_empty()
    await expect(admin.locator(".prompt-form [role=status]")).not_to_have_text("")
    await screenshot(admin, "13-admin")
    # Back to the chat.
    await admin.locator(".brand").click()
    await expect(admin.locator("#chat-view")).to_be_visible()
    browser.assert_no_js_errors()


async def test_admin_uploads_a_pdf_syncs_and_sees_it_ingested(browser, live_server, users, corpus):
    page = await browser.new_page()
    await login(page, live_server, users.admin.token)
    await page.goto(f"{live_server.url}/#/admin")
    await page.locator("#kb-files").set_input_files(str(corpus / SPEED_PDF))
    await page.locator(".upload-item.done").wait_for(timeout=30_000)
    await page.locator("#sync-btn").click()
    await expect(page.locator("#sync-text")).to_contain_text("Done", timeout=120_000)
    progress = page.locator("#sync-progress")
    assert await progress.get_attribute("value") == await progress.get_attribute("max")
    row = page.locator(".docs-table tbody tr").filter(has_text="review_reviewer_speed")
    await row.wait_for()
    await expect(row.locator(".pill")).to_have_text("ready")
    await screenshot(page, "14-admin-synced")

    # Any user now gets answers cited from it.
    chat = await browser.new_page()
    await login(chat, live_server, users.alice.token)
    answer = await ask(chat, "How fast should code reviews be?")
    await answer.locator(".msg-body .cite").first.wait_for()
    browser.assert_no_js_errors()


async def test_sync_shows_per_file_errors(browser, live_server, users, corpus, settings):
    # A broken and an encrypted PDF next to a good file: the sync reports each failure, and goes on.
    for name in ("empty.pdf", "password-example.pdf"):
        (settings.knowledge_path / name).write_bytes((corpus / "wild-pdfs" / name).read_bytes())
    page = await browser.new_page()
    await login(page, live_server, users.admin.token)
    await page.goto(f"{live_server.url}/#/admin")
    await page.locator("#sync-btn").click()
    await expect(page.locator("#sync-text")).to_contain_text("failed", timeout=120_000)
    failed = page.locator(".results-table tr.failed")
    await expect(failed).to_have_count(2)
    assert "password" in (await failed.filter(has_text="password-example.pdf").inner_text()).lower() or \
        "encrypt" in (await failed.filter(has_text="password-example.pdf").inner_text()).lower()
    browser.assert_no_js_errors()


async def test_admin_edits_the_system_prompt_and_rolls_back(browser, live_server, users):
    page = await browser.new_page()
    await login(page, live_server, users.admin.token)
    await page.goto(f"{live_server.url}/#/admin")
    editor = page.locator("#prompt-text")
    await expect(editor).not_to_have_value("")
    original = await editor.input_value()
    await editor.fill(original + "\n\nAlways greet new engineers by name.")
    await page.locator("#prompt-note").fill("greet by name")
    await page.get_by_role("button", name="Save as new version").click()
    await page.locator(".toast").filter(has_text="Saved").wait_for()
    versions = page.locator(".versions .version")
    await expect(versions.filter(has_text="greet by name")).to_have_count(1)
    await expect(page.locator(".version.active")).to_contain_text("greet by name")
    await screenshot(page, "15-admin-prompt")

    rollback = page.locator(".version:not(.active) button").filter(has_text="Roll back")
    await rollback.first.click()
    await page.locator("#dialog").get_by_role("button", name="Roll back").click()
    await page.locator(".toast").filter(has_text="active again").wait_for()
    await expect(editor).not_to_have_value(original + "\n\nAlways greet new engineers by name.")
    browser.assert_no_js_errors()


async def test_a_log_file_is_attached_to_a_question(browser, live_server, users, tmp_path):
    log = tmp_path / "deploy.log"
    log.write_text("2026-11-20 12:00:01 ERROR deploy failed: database migration 0042 timed out\n")
    page = await browser.new_page()
    sent: list[dict] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda p: sent.append(json.loads(p)) if isinstance(p, str) else None))
    await login(page, live_server, users.alice.token)
    await page.locator("#attach-input").set_input_files(str(log))
    chip = page.locator("#attach-list .file-chip").filter(has_text="deploy.log")
    await chip.wait_for()
    await expect(chip).not_to_have_class("file-chip uploading")
    await ask(page, "Why did the deploy in the attached log fail?")
    text_frame = next(f for f in sent if f["type"] == "text")
    assert len(text_frame["attachments"]) == 1
    await expect(page.locator(".msg-user .msg-files")).to_contain_text("deploy.log")
    await expect(page.locator("#attach-list")).to_be_hidden()
    await screenshot(page, "17-attachment")
    browser.assert_no_js_errors()
