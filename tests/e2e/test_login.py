"""Signing in: the `/?token=` login link, the paste-a-token form, signing out, the admin link."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import login, screenshot

pytestmark = pytest.mark.e2e


async def test_login_link_moves_token_to_storage_and_out_of_the_url(browser, live_server, users):
    page = await browser.new_page()
    await login(page, live_server, users.alice.token)
    # The token left the address bar (and history) and lives in localStorage.
    assert page.url == f"{live_server.url}/"
    assert "token" not in page.url
    assert await page.evaluate("localStorage.getItem('allin.token')") == users.alice.token
    await page.locator("#user-name").filter(has_text="alice").wait_for()
    # Not an admin: no admin link.
    assert await page.locator("#nav-admin").is_hidden()
    await page.locator("#empty .empty-title").filter(has_text="alice").wait_for()
    await screenshot(page, "01-signed-in-empty")
    # A reload keeps the session without the token in the URL.
    await page.reload()
    await page.wait_for_selector("#app:not([hidden])")
    # Sign out clears the token and shows the sign-in form.
    await page.locator("#signout-btn").click()
    await page.wait_for_selector("#signin:not([hidden])")
    assert await page.evaluate("localStorage.getItem('allin.token')") is None
    browser.assert_no_js_errors()


async def test_sign_in_form_accepts_a_pasted_token_and_rejects_a_wrong_one(browser, live_server, users):
    page = await browser.new_page()
    await page.goto(live_server.url + "/")
    await page.wait_for_selector("#signin:not([hidden])")
    await screenshot(page, "00-sign-in")
    await page.locator("#signin-token").fill("allin_not-a-real-token")
    await page.locator("#signin-form button[type=submit]").click()
    await page.locator("#signin-error").filter(has_text="not accepted").wait_for()
    assert await page.evaluate("localStorage.getItem('allin.token')") is None
    await page.locator("#signin-token").fill(users.admin.token)
    await page.locator("#signin-token").press("Enter")
    await page.wait_for_selector("#app:not([hidden])")
    # The admin sees the admin link.
    await page.locator("#nav-admin").wait_for(state="visible")
    browser.assert_no_js_errors()


async def test_a_revoked_token_in_storage_falls_back_to_the_sign_in_form(browser, live_server, users):
    page = await browser.new_page()
    await page.goto(f"{live_server.url}/?token=allin_revoked-or-wrong")
    await page.wait_for_selector("#signin:not([hidden])")
    await page.locator("#signin-error").filter(has_text="not accepted").wait_for()
    assert "token" not in page.url
    assert await page.evaluate("localStorage.getItem('allin.token')") is None
    browser.assert_no_js_errors()
