"""Auth, errors, health and headers over HTTP."""

import psycopg

from allin.users import hash_token


async def test_health_and_ready(client):
    r = await client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["mode"] == "offline"
    assert body["version"]
    r = await client.get("/ready")
    assert r.status_code == 200 and r.json()["ready"] is True


async def test_missing_and_wrong_token_get_401(client, users):
    r = await client.get("/admin/users")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    r = await client.get("/admin/users", headers={"Authorization": "Bearer allin_wrong"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


async def test_normal_user_on_admin_route_gets_403(client, users):
    r = await client.get("/admin/users", headers=users.alice.headers)
    assert r.status_code == 403
    assert r.json() == {"error": {"code": "forbidden", "message": "This needs an admin."}}
    r = await client.get("/admin/users", headers=users.admin.headers)
    assert r.status_code == 200
    assert {u["name"] for u in r.json()["items"]} == {"admin", "alice", "bob"}


async def test_tokens_are_stored_hashed(db_url, users):
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT token_hash FROM users WHERE name = 'alice'")
        (stored,) = await cur.fetchone()
    assert stored == hash_token(users.alice.token)
    assert users.alice.token not in stored


async def test_admin_creates_rotates_and_revokes_users(client, users):
    r = await client.post("/admin/users", json={"name": "carol"}, headers=users.admin.headers)
    assert r.status_code == 201
    carol = r.json()
    assert carol["login_url"].endswith(carol["token"])
    me = {"Authorization": f"Bearer {carol['token']}"}
    assert (await client.get("/admin/users", headers=me)).status_code == 403  # authenticated, not admin
    r = await client.post(f"/admin/users/{carol['id']}/rotate", headers=users.admin.headers)
    new = {"Authorization": f"Bearer {r.json()['token']}"}
    assert (await client.get("/admin/users", headers=me)).status_code == 401  # old token dead
    assert (await client.get("/admin/users", headers=new)).status_code == 403
    assert (await client.delete(f"/admin/users/{carol['id']}", headers=users.admin.headers)).status_code == 204
    assert (await client.get("/admin/users", headers=new)).status_code == 401
    r = await client.post("/admin/users", json={"name": "carol"}, headers=users.admin.headers)
    assert r.status_code == 409


async def test_errors_are_json_never_html(client, users):
    r = await client.get("/no/such/route")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await client.post("/admin/users", json={"name": "x" * 500}, headers=users.admin.headers)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_error" and "name" in err["message"] and err["details"]
    r = await client.post("/admin/users", content=b"{not json", headers={**users.admin.headers, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = await client.put("/health")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


async def test_security_headers_and_request_id(client):
    r = await client.get("/health", headers={"X-Request-ID": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_metrics_are_exposed(client):
    await client.get("/health")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert 'allin_http_requests_total{method="GET",route="/health",status="200"}' in r.text
