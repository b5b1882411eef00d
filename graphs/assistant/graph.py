"""Wiring only. `build_graph(deps)` returns the builder; the app compiles it with its
Postgres checkpointer, and `graphs/studio.py` compiles the same builder without one
for langgraph.json (the LangGraph server brings its own persistence)."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph

from graphs.assistant.context import Context
from graphs.assistant.deps import AssistantDeps
from graphs.assistant.nodes import make_nodes
from graphs.assistant.state import InputState, State


def route_after_classify(state: State) -> Literal["retrieve", "code_execute", "recall"]:
    route = state.get("route")
    if route == "knowledge":
        return "retrieve"
    if route == "code":
        return "code_execute"
    return "recall"


def build_graph(deps: AssistantDeps) -> StateGraph:
    classify, retrieve, code_execute, recall, synthesize = make_nodes(deps)
    builder = StateGraph(State, input_schema=InputState, context_schema=Context)
    builder.add_node("classify", classify)
    builder.add_node("retrieve", retrieve)
    builder.add_node("code_execute", code_execute)
    builder.add_node("recall", recall)
    builder.add_node("synthesize", synthesize)
    builder.add_edge(START, "classify")
    builder.add_conditional_edges("classify", route_after_classify)
    builder.add_edge("retrieve", "recall")
    builder.add_edge("code_execute", "recall")
    builder.add_edge("recall", "synthesize")
    builder.add_edge("synthesize", END)
    return builder
