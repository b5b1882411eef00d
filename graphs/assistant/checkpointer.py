"""The Postgres checkpointer for the app's pool.

Two changes to langgraph-checkpoint-postgres 3.x's AsyncPostgresSaver:

- Calls overlap. It runs every call under one `asyncio.Lock`, even when the
  saver holds a connection pool (upstream issue langchain-ai/langgraph#7259,
  fix proposed in #7269): every chat of a replica then waited for every other
  chat's checkpoint writes, one database round trip at a time. On a pool each
  call takes a connection of its own; a semaphore bounds them to part of the
  pool, leaving connections for the turns, search and memory that share it.
- A thread's latest checkpoint is remembered. A turn starts by loading the
  checkpoint the previous turn of the same chat wrote, on the same replica
  almost always: the saver keeps what it last wrote per thread and, instead of
  reading it back and decoding every message again (~1.3 ms of CPU a turn,
  about a tenth of a /ws turn), asks Postgres one indexed question: is that
  still the thread's latest checkpoint, with no writes pending on it? Any
  other answer (another replica moved the thread on, a run failed and left
  writes) reads it from the database as before, so several replicas on one
  database stay correct.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (Checkpoint, CheckpointMetadata, CheckpointTuple, ChannelVersions,
                                       get_checkpoint_id, get_serializable_checkpoint_metadata)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import AsyncConnectionPool

REMEMBERED_THREADS = 1000  # latest checkpoints kept: tens of KB each (the bounded message window, passages)

_IS_LATEST_SQL = """
SELECT c.checkpoint_id,
       EXISTS (SELECT 1 FROM checkpoint_writes w WHERE w.thread_id = c.thread_id
               AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id) AS has_writes
FROM checkpoints c WHERE c.thread_id = %s AND c.checkpoint_ns = %s
ORDER BY c.checkpoint_id DESC LIMIT 1"""


class PooledPostgresSaver(AsyncPostgresSaver):
    """AsyncPostgresSaver whose calls overlap on a pool and which remembers each thread's latest checkpoint."""

    def __init__(self, pool: AsyncConnectionPool, *, max_concurrent: int | None = None,
                 remembered: int = REMEMBERED_THREADS) -> None:
        super().__init__(pool)  # type: ignore[arg-type]
        self.lock = asyncio.Semaphore(max_concurrent or max(1, pool.max_size // 2))  # type: ignore[assignment]
        self.remembered = remembered
        self._latest: OrderedDict[tuple[str, str], CheckpointTuple] = OrderedDict()
        self.reused = self.loaded = 0  # latest-checkpoint reads answered from memory / from the database

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        if get_checkpoint_id(config):  # a given checkpoint, not the latest: as the library reads it
            return await super().aget_tuple(config)
        key = _thread_key(config)
        kept = self._latest.get(key)
        if kept is not None:
            async with self._cursor() as cur:
                await cur.execute(_IS_LATEST_SQL, key, binary=False)
                row = await cur.fetchone()
            if row is not None and row["checkpoint_id"] == kept.checkpoint["id"] and not row["has_writes"]:
                self._latest.move_to_end(key)
                self.reused += 1
                return kept._replace(checkpoint=_copy(kept.checkpoint))  # the run changes its copy in place
            self._latest.pop(key, None)
        self.loaded += 1
        return await super().aget_tuple(config)

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        key = _thread_key(config)
        self._latest.pop(key, None)  # until this write is known to have landed
        next_config = await super().aput(config, checkpoint, metadata, new_versions)
        parent_id = config["configurable"].get("checkpoint_id")
        self._latest[key] = CheckpointTuple(
            config=next_config,
            checkpoint=_copy(checkpoint),
            metadata=get_serializable_checkpoint_metadata(config, metadata),
            parent_config=({"configurable": {"thread_id": key[0], "checkpoint_ns": key[1],
                                             "checkpoint_id": parent_id}} if parent_id else None),
            pending_writes=[],
        )
        if len(self._latest) > self.remembered:
            self._latest.popitem(last=False)
        return next_config

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        self._latest.pop(_thread_key(config), None)
        await super().aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        for key in [k for k in self._latest if k[0] == str(thread_id)]:
            del self._latest[key]
        await super().adelete_thread(thread_id)


def _copy(checkpoint: Checkpoint) -> Checkpoint:
    """copy_checkpoint without the keys it adds (the same dict a database read gives), and with each
    channel's container copied: some channels change theirs in place (a barrier's set of the nodes
    it has seen, a topic's list), which must not reach the copy kept here or the next run's."""
    return {**checkpoint,  # type: ignore[typeddict-item]
            "channel_values": {k: _fresh(v) for k, v in checkpoint["channel_values"].items()},
            "channel_versions": checkpoint["channel_versions"].copy(),
            "versions_seen": {k: v.copy() for k, v in checkpoint["versions_seen"].items()}}


def _fresh(value: Any) -> Any:
    if isinstance(value, (list, set, dict)):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(_fresh(v) for v in value)
    return value


def _thread_key(config: RunnableConfig) -> tuple[str, str]:
    configurable = config["configurable"]
    return str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")


def pooled_checkpointer(pool: AsyncConnectionPool, *, max_concurrent: int | None = None) -> PooledPostgresSaver:
    """The app's saver on `pool`: calls run concurrently (at most `max_concurrent`, default half the
    pool). The pool needs autocommit, dict rows and no prepared statements."""
    return PooledPostgresSaver(pool, max_concurrent=max_concurrent)
