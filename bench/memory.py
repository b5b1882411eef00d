"""Long-term memory (mem0 on Postgres, offline): remember and recall latency, and recall on a big table.

    .venv/bin/python bench/memory.py [--users 200] [--per-user 50] [--queries 40] [--database-url URL]

Fills `memories` with `--per-user` first-person statements for each of
`--users` users through `MemoryStore.remember_turn` (the app's write path:
claim, dedupe, MiniLM embedding, mem0 insert), then times `--queries`
recalls by one user (the graph's recall step: MiniLM query embedding,
pgvector HNSW + full-text search filtered to the user, the relevance gate).
It checks that each probe question gets its own user's matching fact back
although that user owns a small share of the table (HNSW with a filter;
`hnsw.iterative_scan` keeps scanning until the user's rows are found).

Without --database-url (or DATABASE_URL) it starts its own Postgres from the
bundled wheel. Figures: p50/p95 in ms, wall time on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

TEAMS = ["payments", "search", "billing", "platform", "mobile", "data", "identity", "growth", "infra", "security"]
SERVICES = ["the ledger service", "the checkout API", "the search indexer", "the CI pipeline", "the mobile app",
            "the data warehouse", "the auth gateway", "the billing cron", "the feature flag service", "Terraform"]
TOOLS = ["Neovim", "VS Code", "IntelliJ", "Emacs", "Zed"]
CITIES = ["Tel Aviv", "Berlin", "London", "Lisbon", "Warsaw", "New York"]
# (question, the word its matching statement must contain)
PROBES = [("Which team am I on?", "team"), ("Who is my manager?", "manager"), ("What editor do I use?", "use"),
          ("Where am I based?", "based"), ("What do I work on?", "work on")]


def statements(i: int, n: int) -> list[str]:
    """`n` distinct facts for user `i`; the first five answer PROBES."""
    base = [f"I'm on the {TEAMS[i % len(TEAMS)]} team.", f"My manager is Dana {i}.",
            f"I use {TOOLS[i % len(TOOLS)]}.", f"I'm based in {CITIES[i % len(CITIES)]}.",
            f"I work on {SERVICES[i % len(SERVICES)]}."]
    extra = [f"I work on {SERVICES[(i + k) % len(SERVICES)]} release {k}." for k in range(n)]
    return (base + extra)[:n]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(url: str, users: int, per_user: int, queries: int) -> None:
    import psycopg
    from psycopg.rows import dict_row

    from allin.config import Settings
    from allin.db.pool import make_pool
    from allin.knowledge.embeddings import get_local_embedder
    from allin.memory import make_memory_store
    from allin.users import create_user

    data = Path(tempfile.mkdtemp(prefix="albmem", dir="/tmp"))
    settings = Settings(_env_file=None, database_url=url, ALLIN_DATA_DIR=data, google_api_key=None)
    pool = make_pool(url, settings, min_size=1, max_size=8)
    await pool.open()
    store = make_memory_store(settings, pool, db_url=url, embedder=get_local_embedder())
    try:
        started = time.perf_counter()
        store.open()
        get_local_embedder().embed_query("warm up")
        print(f"mem0 import + build and MiniLM load: {time.perf_counter() - started:.1f} s")
        async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
            ids = [(await create_user(conn, f"bench{i}-{uuid.uuid4().hex[:6]}"))[0].id for i in range(users)]

        adds: list[float] = []
        started = time.perf_counter()
        for i, uid in enumerate(ids):
            for fact in statements(i, per_user):
                t0 = time.perf_counter()
                await store.remember_turn(uid, fact, "Noted.", turn_id=uuid.uuid4())
                adds.append((time.perf_counter() - t0) * 1000)
        total = time.perf_counter() - started
        print(f"remember_turn x{len(adds)} ({users} users x {per_user}): p50 {pct(adds, .5):.1f} ms, "
              f"p95 {pct(adds, .95):.1f} ms, {len(adds) / total:.0f}/s")

        me, mine = ids[0], statements(0, per_user)
        recalls: list[float] = []
        hits = 0
        for k in range(queries):
            question, word = PROBES[k % len(PROBES)]
            t0 = time.perf_counter()
            found = await store.recall(me, question)
            recalls.append((time.perf_counter() - t0) * 1000)
            expected = mine[k % len(PROBES)]
            hits += expected in found
            assert all(f in mine for f in found), f"another user's memory leaked: {found}"
        print(f"recall x{queries} (1 of {users} users, {users * per_user} rows): p50 {pct(recalls, .5):.1f} ms, "
              f"p95 {pct(recalls, .95):.1f} ms, mean {statistics.mean(recalls):.1f} ms; "
              f"right fact returned {hits}/{queries}")
        unrelated = await store.recall(me, "How fast should code reviews be?")
        print(f"unrelated question ('How fast should code reviews be?') recalls: {unrelated}")
    finally:
        await store.aclose()
        await pool.close()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--per-user", type=int, default=50)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="an empty database to fill (default: start a private Postgres)")
    args = parser.parse_args()

    from allin.db.migrate import migrate_url

    cluster, root, url = None, None, args.database_url
    if not url:
        from tests.support.pg import PgCluster

        root = Path(tempfile.mkdtemp(prefix="albpg", dir="/tmp"))
        cluster = PgCluster(root / "d")
        cluster.init()
        cluster.start()
        url = cluster.url()
    try:
        asyncio.run(migrate_url(url, embedding_dim=384))
        asyncio.run(run(url, args.users, args.per_user, args.queries))
    finally:
        if cluster is not None:
            cluster.stop("immediate")
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
