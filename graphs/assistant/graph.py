"""Wiring only: classify → (retrieve | code_execute, alongside recall) → synthesize.

`build_graph(deps)` returns the builder; the app compiles it with its Postgres
checkpointer, and `graphs/studio.py` compiles the same builder without one for
langgraph.json (the LangGraph server brings its own persistence)."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph

from graphs.assistant.context import Context
from graphs.assistant.deps import AssistantDeps
from graphs.assistant.nodes import make_nodes
from graphs.assistant.state import InputState, State


async def route_after_classify(state: State) -> list[Literal["retrieve", "code_execute", "recall"]]:
    """The route's own step, if any, alongside `recall`: they need nothing from each other, so they
    run in the same superstep (one checkpoint less per turn, memory lookup overlapping retrieval).
    Async because LangGraph runs a sync router in a worker thread: a thread hop on every turn."""
    route = state.get("route")
    if route == "knowledge":
        return ["retrieve", "recall"]
    if route == "code":
        return ["code_execute", "recall"]
    return ["recall"]


def build_graph(deps: AssistantDeps) -> StateGraph:
    classify, retrieve, code_execute, recall, synthesize = make_nodes(deps)
    builder = StateGraph(State, input_schema=InputState, context_schema=Context)
    builder.add_node("classify", classify)
    builder.add_node("retrieve", retrieve)
    builder.add_node("code_execute", code_execute)
    builder.add_node("recall", recall)
    builder.add_node("synthesize", synthesize)
    builder.add_edge(START, "classify")
    builder.add_conditional_edges("classify", route_after_classify, ["retrieve", "code_execute", "recall"])
    # synthesize runs once, in the superstep after all of the branches that ran.
    builder.add_edge("retrieve", "synthesize")
    builder.add_edge("code_execute", "synthesize")
    builder.add_edge("recall", "synthesize")
    builder.add_edge("synthesize", END)
    return builder
