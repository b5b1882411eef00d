"""The web client's routes: `/` and `/static/...` open and CSP-clean, `GET /me` behind the bearer.

These run in-process (no browser); the browser tests are in tests/e2e.
"""

from __future__ import annotations

import re

from tests.conftest import REPO

STATIC = REPO / "api" / "static"


async def test_page_is_open_and_has_no_inline_script_or_style(client):
    r = await client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    html = r.text
    # Every <script> is an external same-origin module; no style attributes, <style> blocks or handlers.
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all(not body.strip() and 'type="module"' in attrs for attrs, body in scripts)
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", html, re.I)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)


async def test_static_assets_are_served_with_the_right_types(client):
    for path in sorted(STATIC.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(STATIC).as_posix()
        r = await client.get(f"/static/{rel}")
        assert r.status_code == 200, rel
        assert r.content == path.read_bytes(), rel
        if rel.endswith(".js"):
            # Module scripts need a JavaScript type (nosniff makes browsers strict about it).
            assert r.headers["content-type"].startswith("text/javascript"), rel
    assert (await client.get("/static/app.css")).headers["content-type"].startswith("text/css")
    assert (await client.get("/static/nope.js")).status_code == 404
    assert (await client.get("/static/%2e%2e/routes/web.py")).status_code == 404


def test_scripts_never_turn_strings_into_markup_or_code():
    """Untrusted text reaches the DOM as text: no innerHTML & co, no eval, nothing from other origins."""
    for path in sorted(STATIC.rglob("*.js")):
        source = path.read_text()
        found = re.findall(r"\.(?:inner|outer)HTML\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function", source)
        assert not found, (path.name, found)
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", source), path.name
    css = (STATIC / "app.css").read_text()
    assert "@import" not in css and "url(" not in css  # no fonts or images from elsewhere


async def test_me_needs_a_token_and_says_who_you_are(client, users):
    r = await client.get("/me")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert (await client.get("/me", headers={"Authorization": "Bearer allin_wrong"})).status_code == 401
    me = (await client.get("/me", headers=users.admin.headers)).json()
    assert me == {"id": str(users.admin.id), "name": "admin", "role": "admin"}
    assert (await client.get("/me", headers=users.alice.headers)).json()["role"] == "user"
