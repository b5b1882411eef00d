"""langchain-google-genai's ChatGoogleGenerativeAI against the fake, configured by env alone."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_google_genai import ChatGoogleGenerativeAI
from pydantic import BaseModel

from tests.fake_gemini import CodeExecution, FunctionCall, Text

pytestmark = pytest.mark.gemini
MODEL = "gemini-2.5-flash"


def chat(**kwargs) -> ChatGoogleGenerativeAI:
    return ChatGoogleGenerativeAI(model=MODEL, max_retries=0, **kwargs)


def test_invoke_sends_system_and_user_text(fake_gemini):
    answer = chat().invoke([SystemMessage("You are Allin."), HumanMessage("Where is the style guide?")])
    assert answer.text == "Echo: Where is the style guide?"
    assert fake_gemini.system_text() == "You are Allin."
    assert fake_gemini.texts() == ["Where is the style guide?"]


async def test_astream_keeps_chunk_order(fake_gemini):
    fake_gemini.enqueue(Text("one two three", chunks=["one ", "two ", "three"]))
    pieces = [chunk.text async for chunk in chat().astream("count")]
    assert [p for p in pieces if p] == ["one ", "two ", "three"]
    assert fake_gemini.last_request().stream


def test_stream_sync(fake_gemini):
    assert "".join(c.text for c in chat().stream("a b c")) == "Echo: a b c"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_code_execution_blocks(fake_gemini):
    fake_gemini.enqueue(CodeExecution(code="print(sum(range(11)))", output="55\n", text="The sum is 55."))
    answer = chat().bind_tools([{"code_execution": {}}]).invoke("Sum 0..10 with code.")

    blocks = {block["type"]: block for block in answer.content if isinstance(block, dict)}
    assert blocks["executable_code"]["executable_code"] == "print(sum(range(11)))"
    assert blocks["code_execution_result"]["code_execution_result"] == "55\n"
    assert "The sum is 55." in answer.text
    assert fake_gemini.tools() == [{"codeExecution": {}}]


def test_tool_function_call_round_trip(fake_gemini):
    @tool
    def search_knowledge(query: str) -> str:
        """Search the team documents."""
        return "Reviews should happen within one business day."

    fake_gemini.enqueue(FunctionCall(name="search_knowledge", args={"query": "review speed"}))
    model = chat().bind_tools([search_knowledge])
    question = HumanMessage("How fast are reviews?")
    first = model.invoke([question])
    call = first.tool_calls[0]
    assert (call["name"], call["args"]) == ("search_knowledge", {"query": "review speed"})

    result = ToolMessage(search_knowledge.invoke(call["args"]), tool_call_id=call["id"], name=call["name"])
    second = model.invoke([question, first, result])
    assert second.text == ('Function search_knowledge returned: '
                           '{"output": "Reviews should happen within one business day."}')
    declared = fake_gemini.tools()[0]["functionDeclarations"][0]
    assert declared["name"] == "search_knowledge"


class Route(BaseModel):
    route: str
    reason: str


async def test_structured_output(fake_gemini):
    classifier = chat().with_structured_output(Route, method="json_schema")
    assert await classifier.ainvoke("how do I run tests?") == Route(route="", reason="")
    config = fake_gemini.last_request().body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert set(config["responseJsonSchema"]["properties"]) == {"route", "reason"}
