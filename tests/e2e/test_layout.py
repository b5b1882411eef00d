"""Narrow screens and keyboard use: the sidebar behind a menu button, Enter/Shift+Enter, focus, labels."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import ask, login, screenshot

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


async def test_phone_layout_hides_the_sidebar_behind_the_menu_button(browser, live_server, users):
    page = await browser.new_page(viewport=PHONE)
    await login(page, live_server, users.alice.token)
    sidebar = page.locator("#sidebar")
    menu = page.locator("#menu-btn")
    await expect(menu).to_be_visible()
    await expect(sidebar).to_be_hidden()
    await expect(menu).to_have_attribute("aria-expanded", "false")
    await ask(page, "Who are you?")
    # Nothing is wider than the screen.
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await screenshot(page, "09-phone-chat")

    await menu.click()
    await expect(sidebar).to_be_visible()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await expect(page.locator("#search-input")).to_be_focused()
    await expect(page.locator("#chat-list .chat-item")).to_have_count(1)
    await screenshot(page, "10-phone-sidebar")
    # Esc closes it and gives focus back to the menu button; so does choosing a chat.
    await page.keyboard.press("Escape")
    await expect(sidebar).to_be_hidden()
    await expect(menu).to_be_focused()
    await menu.click()
    await page.locator("#chat-list .chat-open").first.click()
    await expect(sidebar).to_be_hidden()
    browser.assert_no_js_errors()


async def test_keyboard_enter_sends_shift_enter_adds_a_line_and_controls_are_labelled(browser, live_server, users):
    page = await browser.new_page()
    await login(page, live_server, users.alice.token)
    box = page.locator("#composer-input")
    await box.focus()
    await page.keyboard.type("Who")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("are you?")
    assert await box.input_value() == "Who\nare you?"
    await page.keyboard.press("Enter")
    await page.locator(".msg-assistant .msg-actions:not([hidden])").wait_for()
    assert await box.input_value() == ""
    user_text = await page.locator(".msg-user .msg-body").inner_text()
    assert "Who" in user_text and "are you?" in user_text
    # The live region announced the end of the answer.
    await expect(page.locator("#live")).to_have_text("Answer complete.")
    # Dark mode follows the system setting.
    await page.emulate_media(color_scheme="dark")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(20, 22, 24)"
    await screenshot(page, "16-dark-mode")
    await page.emulate_media(color_scheme="light")
    # Every button has an accessible name; focus is visible (an outline) when tabbing.
    unnamed = await page.eval_on_selector_all(
        "button:not([hidden])",
        "els => els.filter(b => b.offsetParent !== null && !(b.getAttribute('aria-label') || b.textContent.trim()))"
        ".map(b => b.outerHTML.slice(0, 80))")
    assert unnamed == []
    await box.focus()
    await page.keyboard.press("Tab")
    await expect(page.locator("#mic-btn")).to_be_focused()
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    browser.assert_no_js_errors()
