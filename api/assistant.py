"""Builds the assistant for the app: Postgres checkpointer, real dependencies, the turn runner."""

from __future__ import annotations

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

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
    # The pool is built with autocommit + dict rows + no prepared statements, as the saver needs.
    saver = AsyncPostgresSaver(res.pool)  # type: ignore[arg-type]
    graph = build_graph(deps).compile(checkpointer=saver, name="allin-assistant")
    res.extras["deps"] = deps
    res.extras["graph"] = graph
    res.extras["runner"] = TurnRunner(graph, res.pool, settings=settings, memory=deps.memory, metrics=res.metrics,
                                      on_turn_done=res.extras.get("on_turn_done"), tracing=res.extras.get("tracing"))
