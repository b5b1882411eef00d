"""The graph's routing and state with fake dependencies and the in-memory saver (fast)."""

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from graphs.assistant.context import Context
from graphs.assistant.graph import build_graph
from tests.graph.fakes import FakeDeps


def compile_with(deps):
    return build_graph(deps).compile(checkpointer=InMemorySaver())


async def run(graph, text, thread="t1"):
    return await graph.ainvoke({"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}},
                               context=Context(user_id="u1", chat_id=thread))


async def test_knowledge_route_retrieves_and_cites():
    deps = FakeDeps()
    state = await run(compile_with(deps), "How fast should reviews be?")
    assert deps.calls == ["classify", "search"]
    assert state["route"] == "knowledge"
    assert state["messages"][-1].content == "route=knowledge [1]"
    assert state["citations"][0]["file"] == "speed.pdf" and state["citations"][0]["page"] == 2


async def test_code_route_runs_code_and_skips_retrieval():
    deps = FakeDeps()
    state = await run(compile_with(deps), "run this\n```python\nprint(2)\n```")
    assert deps.calls == ["classify", "run_code"]
    assert state["code_runs"][0]["stdout"] == "2\n"
    assert state["messages"][-1].content == "route=code 2"
    assert state["passages"] == []


async def test_per_turn_fields_reset_between_turns():
    deps = FakeDeps()
    graph = compile_with(deps)
    await run(graph, "How fast should reviews be?")
    state = await run(graph, "who are you?")
    assert state["route"] == "identity"
    assert state["passages"] == [] and state["citations"] == []
    assert [m.type for m in state["messages"]] == ["human", "ai", "human", "ai"]


async def test_system_prompt_memories_and_history_reach_the_model():
    deps = FakeDeps()
    graph = compile_with(deps)
    await run(graph, "first question")
    await run(graph, "second question")
    sent = deps.model.seen[-1]
    assert "Allin, from Team 8" in sent[0].content
    assert [m.type for m in sent] == ["system", "human", "ai", "human"]
    assert "payments team" in sent[-1].content


async def test_long_history_is_trimmed_and_the_thread_keeps_only_what_the_model_sees():
    deps = FakeDeps()
    deps.history_max_tokens = 600
    graph = compile_with(deps)
    for i in range(30):
        await run(graph, f"question number {i} " + "padding words " * 30)
    sent = deps.model.seen[-1]
    assert len(sent) < 20 and sent[1].type == "human"
    state = await graph.aget_state({"configurable": {"thread_id": "t1"}})
    kept = state.values["messages"]
    # The earlier exchanges the model was sent, then this turn's question and answer: nothing older.
    assert [m.id for m in kept[:-2]] == [m.id for m in sent[1:-1]]
    assert [m.type for m in kept[-2:]] == ["human", "ai"] and "question number 29" in kept[-2].content


async def test_history_is_capped_at_history_max_turns():
    deps = FakeDeps()
    deps.history_max_tokens = 100_000
    deps.history_max_turns = 3
    graph = compile_with(deps)
    for i in range(8):
        await run(graph, f"question number {i}")
    sent = deps.model.seen[-1]
    assert [m.type for m in sent] == ["system", *["human", "ai"] * 3, "human"]
    assert "question number 4" in sent[1].content
    state = await graph.aget_state({"configurable": {"thread_id": "t1"}})
    assert len(state.values["messages"]) == 8 and "question number 7" in state.values["messages"][-2].content
