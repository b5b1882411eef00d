"""Builds the assistant for the app: Postgres checkpointer, real dependencies, the turn runner."""

from __future__ import annotations

import asyncio

from loguru import logger

from allin.db.pool import make_pool
from graphs.assistant.checkpointer import pooled_checkpointer
from graphs.assistant.graph import build_graph
from graphs.assistant.runner import TurnRunner
from graphs.assistant.services import ServiceDeps
from api.state import Resources
from tools.sandbox import Sandbox, set_default_sandbox


async def start_assistant(res: Resources) -> None:
    settings = res.settings
    set_default_sandbox(Sandbox(backend=settings.sandbox_backend, max_concurrency=settings.sandbox_max_concurrency,
                                python=settings.sandbox_python))
    deps = ServiceDeps(settings, res.pool, memory=res.extras.get("memory"),
                       chat_model=res.extras.get("chat_model_override"), embedder=res.extras.get("embedder_override"))
    # Checkpoints get a pool of their own: its connections may skip the WAL flush wait without
    # touching the turn log's durability, and its calls overlap across chats (see checkpointer.py).
    commit = {"synchronous_commit": "off"} if settings.checkpoint_async_commit else {}
    # Opened full (min = max): growing a pool one connection at a time under a burst of turns was slow
    # enough to time turns out.
    checkpoint_pool = make_pool(res.db_url, settings, min_size=settings.checkpoint_pool_max, max_size=settings.checkpoint_pool_max,
                                name="allin-checkpoints", **commit)
    await checkpoint_pool.open(wait=False)
    res.extras["checkpoint_pool"] = checkpoint_pool
    saver = pooled_checkpointer(checkpoint_pool, max_concurrent=settings.checkpoint_pool_max)
    graph = build_graph(deps).compile(checkpointer=saver, name="allin-assistant")
    res.extras["deps"] = deps
    res.extras["graph"] = graph
    res.extras["runner"] = TurnRunner(graph, res.pool, settings=settings, memory=deps.memory, metrics=res.metrics,
                                      on_turn_done=res.extras.get("on_turn_done"), tracing=res.extras.get("tracing"))
    res.extras["orphan_sweeper"] = asyncio.create_task(sweep_orphaned_turns(res), name="orphaned-turns")


async def sweep_orphaned_turns(res: Resources) -> None:
    """Now and then (and at startup), answer questions a stopped server left open (see the runner)."""
    period = min(300.0, max(1.0, res.settings.turn_timeout_s / 2))
    while True:
        try:
            await res.extras["runner"].answer_orphaned_turns()
        except Exception as exc:  # noqa: BLE001 - database down: the next round tries again
            logger.warning("orphaned-turn sweep failed: {}", exc)
        await asyncio.sleep(period)


async def drain_after_turns(res: Resources) -> None:
    """Let the last turns' titles, embeddings and memory writes finish (before memory and pools close)."""
    runner = res.extras.get("runner")
    if runner is not None:
        await runner.drain()
    batcher = res.extras.get("turn_embeddings")  # the embeddings those turns handed over
    if batcher is not None:
        await batcher.drain(timeout=10)


async def stop_assistant(res: Resources) -> None:
    sweeper = res.extras.pop("orphan_sweeper", None)
    if sweeper is not None:
        sweeper.cancel()
    checkpoint_pool = res.extras.pop("checkpoint_pool", None)
    if checkpoint_pool is not None:
        await checkpoint_pool.close(timeout=5)
