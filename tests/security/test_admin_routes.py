"""Admin sweep, from the app's own route table: every /admin operation is 401 without a token and 403
for a normal user; every operation but the few public ones is 401 without a token."""

from __future__ import annotations

import uuid

from tests.security.sweep import operations, request_kwargs

# The only operations anyone may call without a token (DESIGN.md, "Interfaces"): liveness,
# readiness, metrics (open unless ALLIN_METRICS_TOKEN is set), the page, the API docs.
PUBLIC = {
    "GET /health", "GET /ready", "GET /metrics", "GET /",
    "GET /openapi.json", "GET /docs", "GET /docs/oauth2-redirect", "GET /redoc",
}


def _any_ids(op) -> dict[str, str]:
    return {p.name: str(uuid.uuid4()) for p in op.id_params}


def test_admin_routes_are_exactly_the_ones_under_admin(app) -> None:
    ops = operations(app)
    misplaced = [str(op) for op in ops if op.admin != op.path.startswith("/admin")]
    assert not misplaced, f"admin-only and /admin must coincide: {misplaced}"
    assert sum(op.admin for op in ops) >= 10  # the sweep really found the admin surface


async def test_every_admin_route_refuses_a_user_and_an_anonymous_caller(app, client, users) -> None:
    spec = app.openapi()
    admin_ops = [op for op in operations(app) if op.admin]
    for op in admin_ops:
        url, kwargs = request_kwargs(op, _any_ids(op), spec)
        r = await client.request(op.method, url, headers=users.alice.headers, **kwargs)
        assert r.status_code == 403, (str(op), r.status_code, r.text)
        assert r.json()["error"]["code"] == "forbidden"
        r = await client.request(op.method, url, **kwargs)
        assert r.status_code == 401, (str(op), r.status_code, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    # Nothing happened: no user was made, rotated or revoked, no prompt version, no job.
    r = await client.get("/admin/users", headers=users.admin.headers)
    assert sorted(u["name"] for u in r.json()["items"]) == ["admin", "alice", "bob"]
    pool = app.state.res.pool
    async with pool.connection() as conn:
        for table in ("prompts", "jobs"):
            cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")  # noqa: S608 - fixed names
            assert (await cur.fetchone())["n"] == 0, table


async def test_every_non_public_route_needs_a_token(app, client, users) -> None:
    spec = app.openapi()
    ops = operations(app)
    open_ops = {str(op) for op in ops if not op.authenticated}
    assert open_ops <= PUBLIC, f"operations without auth that are not meant to be public: {open_ops - PUBLIC}"
    for op in ops:
        if str(op) in PUBLIC:
            continue
        url, kwargs = request_kwargs(op, _any_ids(op), spec)
        for headers in ({}, {"Authorization": "Bearer allin_not-a-token"}, {"Authorization": f"Basic {users.alice.token}"}):
            r = await client.request(op.method, url, headers=headers, **kwargs)
            assert r.status_code == 401, (str(op), headers, r.status_code, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
