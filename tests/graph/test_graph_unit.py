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


async def test_long_history_is_trimmed_but_kept_in_state():
    deps = FakeDeps()
    deps.history_max_tokens = 600
    graph = compile_with(deps)
    for i in range(30):
        await run(graph, f"question number {i} " + "padding words " * 30)
    sent = deps.model.seen[-1]
    state = await graph.aget_state({"configurable": {"thread_id": "t1"}})
    assert len(state.values["messages"]) == 60
    assert len(sent) < 20 and sent[1].type == "human"
