"""/metrics as Prometheus scrapes it: parsed with the client library's own parser, before and after a turn."""

from __future__ import annotations

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ws_client import ask, hello


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    r = httpx.get(f"{url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_move_after_a_turn(live_server, users):
    before = scrape(live_server.url)
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        during = scrape(live_server.url)
        frames = await ask(ws, "How do I run the tests?")
    assert frames[-1]["type"] == "turn_complete"
    after = scrape(live_server.url)

    assert value(during, "allin_ws_connections") == value(before, "allin_ws_connections") + 1
    assert value(after, "allin_turns_total", modality="text", outcome="complete") == \
        value(before, "allin_turns_total", modality="text", outcome="complete") + 1
    assert value(after, "allin_turn_duration_seconds_count", modality="text") == \
        value(before, "allin_turn_duration_seconds_count", modality="text") + 1
    for node in ("classify", "synthesize"):
        assert value(after, "allin_graph_node_duration_seconds_count", node=node) >= \
            value(before, "allin_graph_node_duration_seconds_count", node=node) + 1, node
    assert value(after, "allin_http_requests_total", method="GET", route="/metrics", status="200") >= 2
    assert value(after, "allin_database_up") == 1
    assert any(name == "allin_db_pool_connections" for name, _ in after)
