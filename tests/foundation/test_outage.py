"""When the database stops, /health says so within 2 s and /ready turns 503; both recover."""

import asyncio
import shutil
import time

import httpx
import pytest

from allin.config import Settings
from allin.db.migrate import migrate_url
from tests.conftest import short_tmpdir
from tests.support.pg import PgCluster


@pytest.fixture
def own_cluster():
    """A Postgres this test alone may stop and start."""
    root = short_tmpdir("alo")
    cluster = PgCluster(root / "d")
    cluster.init()
    cluster.start()
    yield cluster
    if cluster.is_running():
        cluster.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)


async def _wait_for(client, path, predicate, timeout):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        t0 = time.monotonic()
        r = await client.get(path)
        assert time.monotonic() - t0 < 2.0, "health endpoints must answer within 2 s"
        if predicate(r):
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} did not reach the expected state in {timeout}s (last: {r.status_code} {r.text})")


async def test_database_outage_is_reported_and_recovers(own_cluster, data_dir):
    from api.app import create_app

    url = own_cluster.url()
    await migrate_url(url, embedding_dim=384)
    settings = Settings(_env_file=None, database_url=url, data_dir=data_dir, google_api_key=None, log_level="WARNING")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/ready")).status_code == 200
            await asyncio.to_thread(own_cluster.stop, "immediate")
            took = await _wait_for(client, "/health", lambda r: r.json()["database"] == "down", 5)
            assert took < 2.0
            h = (await client.get("/health")).json()
            assert h["status"] == "degraded"
            r = await client.get("/ready")
            assert r.status_code == 503 and r.json()["database"] == "down"
            # Routes that need the database fail fast with a clear 503, not a hang.
            t0 = time.monotonic()
            r = await client.get("/admin/users", headers={"Authorization": "Bearer allin_x"})
            assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
            assert time.monotonic() - t0 < settings.db_timeout_s + 1.5

            await asyncio.to_thread(own_cluster.start)
            # Requests that need the database work again within 5 s (401: the token is checked again).
            bad_token = {"Authorization": "Bearer allin_x"}
            start = time.monotonic()
            while time.monotonic() - start < 15:
                r = await client.get("/admin/users", headers=bad_token)
                if r.status_code == 401:
                    break
                assert r.status_code == 503
                await asyncio.sleep(0.1)
            took = time.monotonic() - start
            assert r.status_code == 401 and took < 5.0, f"recovered after {took:.1f}s"
            await _wait_for(client, "/ready", lambda r: r.status_code == 200, 5)
            assert (await client.get("/health")).json()["database"] == "ok"
