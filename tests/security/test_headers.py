"""Security headers on every kind of response, and CORS limited to the configured origins."""

from __future__ import annotations

import httpx
import pytest

from api.app import create_app

ALLOWED = "https://allin.example"
EVIL = "https://evil.example"


def _assert_hardened(r: httpx.Response) -> None:
    where = f"{r.request.method} {r.request.url.path} → {r.status_code}"
    csp = r.headers.get("content-security-policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", where
    assert directives.get("object-src") == "object-src 'none'", where
    assert "'unsafe-inline'" not in directives.get("script-src", "script-src") and "*" not in csp, where
    assert r.headers.get("x-content-type-options") == "nosniff", where
    assert r.headers.get("referrer-policy") == "no-referrer", where  # login links carry a token
    assert r.headers.get("x-frame-options") == "DENY", where


async def test_every_kind_of_response_carries_the_headers(client, users) -> None:
    responses = [
        await client.get("/"),  # the HTML page
        await client.get("/static/app.css"),  # a static asset
        await client.get("/me", headers=users.alice.headers),  # JSON
        await client.get("/me"),  # 401
        await client.get("/admin/users", headers=users.alice.headers),  # 403
        await client.get("/no/such/page"),  # 404
        await client.get(f"/chat/history/{users.bob.id}", headers=users.alice.headers),  # 404 from a route
        await client.post("/chat/start", headers=users.alice.headers, json={"title": "x" * 10_000}),  # 422
        await client.put("/health"),  # 405
        await client.get("/metrics"),  # text
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 401, 403, 404, 404, 422, 405, 200]
    assert responses[0].headers["content-type"].startswith("text/html")
    for r in responses:
        _assert_hardened(r)


async def test_without_configured_origins_no_cross_origin_access(client, users) -> None:
    r = await client.options("/me", headers={"Origin": EVIL, "Access-Control-Request-Method": "GET",
                                              "Access-Control-Request-Headers": "authorization"})
    assert "access-control-allow-origin" not in r.headers
    r = await client.get("/me", headers={**users.alice.headers, "Origin": EVIL})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


@pytest.fixture
async def cors_client(settings):
    """The app with CORS_ORIGINS set (no lifespan needed: CORS answers before any route)."""
    app = create_app(settings.model_copy(update={"cors_origins": [ALLOWED]}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def test_cors_answers_only_the_configured_origin(cors_client) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    r = await cors_client.options("/chat/start", headers={"Origin": ALLOWED, **preflight})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-credentials" not in r.headers  # bearer tokens, never cookies
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    _assert_hardened(r)
    for origin in (EVIL, "https://allin.example.evil.example", "null", ALLOWED + ":8443", "http://allin.example"):
        r = await cors_client.options("/chat/start", headers={"Origin": origin, **preflight})
        assert r.status_code == 400, origin
        assert r.headers.get("access-control-allow-origin") in (None, ALLOWED), origin
        assert r.headers.get("access-control-allow-origin") != origin, origin
        r = await cors_client.get("/health", headers={"Origin": origin})
        assert "access-control-allow-origin" not in r.headers, origin
    r = await cors_client.get("/health", headers={"Origin": ALLOWED})
    assert r.headers["access-control-allow-origin"] == ALLOWED
