"""Untrusted text stays text: documents, answers, titles and search snippets never become markup."""

from __future__ import annotations

import re

import httpx
import psycopg
import pytest

from tests.e2e.conftest import ask, login, screenshot

pytestmark = pytest.mark.e2e

NASTY_TITLE = 'Pager <b>guide</b><img src=y onerror="window.allinXss=\'title\'">'
NASTY_TEXT = (
    'The incident pager rotation <img src=x onerror="window.allinXss=\'img\'"> changes owner every Monday at noon. '
    "<script>window.allinXss='script'</script> The incident pager rotation list lives in the on-call runbook. "
    "[Open the runbook](javascript:window.allinXss='link') before your first incident pager rotation shift."
)


@pytest.fixture
async def nasty_doc(settings) -> str:
    """A document whose title and text are HTML/JS, stored with real embeddings like any other."""
    from allin.knowledge.embeddings import get_local_embedder
    from allin.knowledge.store import replace_chunks, upsert_document
    from allin.knowledge.types import Chunk

    chunks = [Chunk(ord=0, kind="text", content=NASTY_TEXT, page=1, section="On-call <i>rotation</i>")]
    vectors = get_local_embedder().embed([c.content for c in chunks])
    async with await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True,
                                                     row_factory=psycopg.rows.dict_row) as conn:
        doc_id = await upsert_document(conn, path="oncall/pager.md", title=NASTY_TITLE, sha256=None,
                                       mime="text/markdown", size_bytes=len(NASTY_TEXT))
        await replace_chunks(conn, doc_id, chunks, vectors, title=NASTY_TITLE, pages=1, embedding_model="local")
    return str(doc_id)


async def assert_inert(page) -> None:
    """No element was made from the markup, and no handler or script ran."""
    assert await page.evaluate("window.allinXss") is None
    injected = await page.locator(
        "#messages img, #messages script, #messages b, #messages i, #messages iframe, "
        "#search-results img, #search-results script, #search-results b, #cite-tip img, #cite-tip b"
    ).count()
    assert injected == 0
    hrefs = await page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    assert not [h for h in hrefs if h.lower().startswith("javascript:")]


async def test_markup_in_a_document_shows_as_text_in_the_answer(browser, live_server, users, nasty_doc):
    page = await browser.new_page()
    await login(page, live_server, users.alice.token)
    answer = await ask(page, "When does the incident pager rotation change owner?")
    body = await answer.locator(".msg-body").inner_text()
    # The literal characters are visible…
    assert '<img src=x onerror="window.allinXss=\'img\'">' in body
    await assert_inert(page)
    # …in the citation's tooltip too (title and snippet), and in its accessible name.
    chip = answer.locator(".msg-body .cite").first
    await chip.hover()
    tip = page.locator("#cite-tip")
    await tip.wait_for(state="visible")
    assert "<b>guide</b>" in await tip.inner_text()
    assert "<b>guide</b>" in (await chip.get_attribute("aria-label") or "")
    await screenshot(page, "08-markup-as-text")
    await assert_inert(page)

    # The search snippet keeps only <mark>: the server escapes, the page still trusts nothing else.
    await page.locator("#search-input").fill("pager rotation")
    hit = page.locator("#search-results .result").first
    await hit.wait_for()
    assert await hit.locator("mark").count() >= 1
    await assert_inert(page)

    # After a reload the stored answer is rendered from history, just as safely.
    await page.reload()
    await page.locator(".msg-assistant .msg-body").filter(has_text="<script>").first.wait_for()
    await assert_inert(page)
    browser.assert_no_js_errors()


async def test_a_chat_title_with_markup_stays_text(browser, live_server, users):
    r = httpx.post(f"{live_server.url}/chat/start", headers=users.alice.headers,
                   json={"title": '<img src=z onerror="window.allinXss=\'chat\'">Plans'})
    assert r.status_code == 201
    page = await browser.new_page()
    await login(page, live_server, users.alice.token)
    item = page.locator("#chat-list .chat-item .chat-title").first
    await item.wait_for()
    assert (await item.inner_text()).startswith("<img src=z")
    await item.click()
    await page.locator("#chat-title").filter(has_text="<img src=z").wait_for()
    assert await page.evaluate("window.allinXss") is None
    assert await page.locator("#sidebar img, #chat-title img").count() == 0
    browser.assert_no_js_errors()


RENDER = """async ([source, citations]) => {
  const { renderMarkdown } = await import('/static/js/markdown.js');
  const byN = new Map(citations.map((n) => [n, n]));
  const box = document.createElement('div');
  box.append(renderMarkdown(source, { citation: (n) => {
    if (!byN.has(n)) return null;
    const chip = document.createElement('button'); chip.className = 'chip'; chip.textContent = String(n); return chip;
  }}));
  const tags = [...box.querySelectorAll('*')].map((e) => e.tagName.toLowerCase());
  const links = [...box.querySelectorAll('a')].map((a) => a.getAttribute('href'));
  return { html: box.innerHTML, text: box.textContent, tags, links, chips: box.querySelectorAll('.chip').length };
}"""


async def test_markdown_renderer_builds_only_safe_elements(browser, live_server):
    page = await browser.new_page()
    await page.goto(live_server.url + "/")
    source = "\n".join([
        "# Title <script>window.allinXss='h'</script>",
        "Plain **bold** *it* `code <b>` ~~gone~~ and [ok](https://example.com/a?b=1) and"
        " [bad](javascript:window.allinXss='md') and <img src=x onerror=\"window.allinXss='raw'\"> [1] [7].",
        "",
        "- one",
        "  - nested [2]",
        "- two",
        "",
        "1. first",
        "2. second",
        "",
        "| a | b |",
        "|---|:-:|",
        "| <i>x</i> | y |",
        "",
        "> quoted <svg onload=alert(1)>",
        "",
        "See https://example.org/path). Then:",
        "```html",
        "<script>window.allinXss='fence'</script>",
    ])
    out = await page.evaluate(RENDER, [source, [1, 2]])
    assert await page.evaluate("window.allinXss") is None
    allowed = {"h3", "p", "strong", "em", "code", "del", "a", "button", "br", "ul", "ol", "li", "div", "table",
               "thead", "tbody", "tr", "th", "td", "blockquote", "pre"}
    assert set(out["tags"]) <= allowed, set(out["tags"]) - allowed
    assert out["links"] == ["https://example.com/a?b=1", "https://example.org/path"]
    assert out["chips"] == 2  # [1] and [2] are known sources; [7] stays text
    assert "[7]" in out["text"]
    assert "<img src=x onerror=" in out["text"] and "<script>window.allinXss='fence'</script>" in out["text"]
    assert "bad (javascript:" in out["text"]
    assert "<script" not in out["html"] and "<img" not in out["html"] and "<svg" not in out["html"]
    assert re.search(r"<ul><li>one<ul><li>nested <button", out["html"])
    assert "<ol><li>first</li><li>second</li></ol>" in out["html"]
    assert '<td class="align-center">y</td>' in out["html"]
    # An unclosed fence (an answer still streaming) renders as code.
    assert out["html"].endswith("</code></pre>")
    browser.assert_no_js_errors()


SNIPPET = """async (snippet) => {
  const { snippetNodes } = await import('/static/js/sidebar.js');
  const box = document.createElement('div');
  box.append(snippetNodes(snippet));
  return { html: box.innerHTML, text: box.textContent, tags: [...box.querySelectorAll('*')].map((e) => e.tagName) };
}"""


async def test_search_snippets_keep_only_mark(browser, live_server):
    page = await browser.new_page()
    await page.goto(live_server.url + "/")
    out = await page.evaluate(SNIPPET, 'a &lt;b&gt; <mark>hit</mark> <img src=x onerror="window.allinXss=1"><b>raw</b> &amp;')
    assert out["tags"] == ["MARK"]
    assert out["text"] == 'a <b> hit <img src=x onerror="window.allinXss=1"><b>raw</b> &'
    assert await page.evaluate("window.allinXss") is None
    browser.assert_no_js_errors()
