"""Uses the memory store in a fresh process and reports what it touched (see test_footprint.py).

Audit hooks record every file opened for writing, every folder made or file moved, and every
name lookup or socket connection made from Python (mem0's PostHog client and notices fetch are
Python HTTP clients; the database is reached by libpq, which the hooks do not see).

    python -m tests.memory.footprint_worker DB_URL DATA_DIR USER_ID
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

EVENTS: list[list[str]] = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event: str, args: tuple) -> None:
    if event == "open":
        path, mode, flags = args
        if isinstance(path, int) or path is None:
            return
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
        if writing:
            EVENTS.append(["write", os.fsdecode(path)])
    elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "os.symlink", "os.link"):
        EVENTS.append([event, os.fsdecode(args[0])])
    elif event == "socket.getaddrinfo":
        EVENTS.append(["resolve", str(args[0])])
    elif event == "socket.connect":
        EVENTS.append(["connect", repr(args[1])])


async def main(db_url: str, data_dir: str, user_id: str) -> dict:
    from allin.config import Settings
    from allin.db.pool import make_pool
    from allin.knowledge.embeddings import get_local_embedder
    from allin.memory import make_memory_store

    settings = Settings(_env_file=None, database_url=db_url, ALLIN_DATA_DIR=data_dir, google_api_key=None)
    pool = make_pool(db_url, settings, min_size=0, max_size=2)
    await pool.open()
    store = make_memory_store(settings, pool, db_url=db_url, embedder=get_local_embedder())
    try:
        ids = await store.remember_turn(user_id, "I'm on the payments team.", "Noted.", turn_id=str(uuid.uuid4()))
        recalled = await store.recall(user_id, "Which team am I on?")
        listed = await store.list(user_id)
        deleted = await store.delete_all(user_id)
    finally:
        await store.aclose()
        await pool.close()
    import mem0.memory.main
    import mem0.memory.telemetry

    return {"ids": ids, "recalled": recalled, "listed": len(listed), "deleted": deleted,
            "telemetry": [mem0.memory.telemetry.MEM0_TELEMETRY, mem0.memory.main.MEM0_TELEMETRY],
            "events": EVENTS}


if __name__ == "__main__":
    sys.addaudithook(_audit)
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
