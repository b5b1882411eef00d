"""The graph as LangGraph Studio (`langgraph dev`) loads it, via langgraph.json.

Compiled without a checkpointer: the LangGraph server refuses a custom one and
supplies its own persistence. Building it does no I/O; models, the database
(embedded or DATABASE_URL) and the sandbox start on first use.
"""

from graphs.assistant.graph import build_graph
from graphs.assistant.services import LazyServiceDeps

graph = build_graph(LazyServiceDeps()).compile(name="allin-assistant")
