"""The fake Gemini server, driven through the unmodified google-genai SDK (REST)."""

from __future__ import annotations

import math

import httpx
import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel

from tests.fake_gemini import CodeExecution, Delay, Error, FunctionCall, Json, Text

pytestmark = pytest.mark.gemini
MODEL = "gemini-2.5-flash"


def test_generate_echoes_and_journals_the_request(fake_gemini):
    client = genai.Client()
    response = client.models.generate_content(
        model=MODEL, contents="How do I ask for a review?",
        config=types.GenerateContentConfig(system_instruction="You are Allin.", temperature=0.2))

    assert response.text == "Echo: How do I ask for a review?"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.total_token_count > 0
    request = fake_gemini.last_request("generate")
    assert request.model == MODEL
    assert request.headers["x-goog-api-key"] == fake_gemini.api_key
    assert fake_gemini.system_text() == "You are Allin."
    assert fake_gemini.texts() == ["How do I ask for a review?"]
    assert request.body["generationConfig"]["temperature"] == 0.2


def test_scripted_replies_are_served_in_order(fake_gemini):
    fake_gemini.enqueue(Text("first"))
    fake_gemini.enqueue(Text("second"))
    client = genai.Client()
    answers = [client.models.generate_content(model=MODEL, contents="q").text for _ in range(3)]
    assert answers == ["first", "second", "Echo: q"]


async def test_async_generate(fake_gemini):
    fake_gemini.enqueue(Text("async hello"))
    client = genai.Client()
    response = await client.aio.models.generate_content(model=MODEL, contents="hi")
    assert response.text == "async hello"


def test_stream_yields_the_scripted_chunks_in_order(fake_gemini):
    fake_gemini.enqueue(Text("Hello world", chunks=["Hel", "lo ", "world"]))
    client = genai.Client()
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="hi"))

    assert [c.text for c in chunks] == ["Hel", "lo ", "world"]
    assert [c.candidates[0].finish_reason for c in chunks] == [None, None, types.FinishReason.STOP]
    assert fake_gemini.last_request("generate").stream


async def test_async_stream_default_is_one_chunk_per_word(fake_gemini):
    client = genai.Client()
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents="a b")
    assert [c.text async for c in stream] == ["Echo: ", "a ", "b"]


class Route(BaseModel):
    route: str
    confidence: float
    tags: list[str]


def test_structured_output_defaults_to_a_schema_valid_instance(fake_gemini):
    client = genai.Client()
    response = client.models.generate_content(
        model=MODEL, contents="classify: how do I run tests?",
        config=types.GenerateContentConfig(response_mime_type="application/json",
                                           response_schema=Route))
    assert response.parsed == Route(route="", confidence=0.0, tags=[])
    config = fake_gemini.last_request().body["generationConfig"]
    assert config["responseMimeType"] == "application/json"


def test_structured_output_scripted(fake_gemini):
    fake_gemini.enqueue(Json({"route": "code", "confidence": 0.9, "tags": ["python"]}))
    client = genai.Client()
    response = client.models.generate_content(
        model=MODEL, contents="run print(1)",
        config=types.GenerateContentConfig(response_mime_type="application/json",
                                           response_schema=Route))
    assert response.parsed == Route(route="code", confidence=0.9, tags=["python"])


def test_code_execution_parts(fake_gemini):
    fake_gemini.enqueue(CodeExecution(code="print(1+1)", output="2\n", text="It prints 2."))
    client = genai.Client()
    response = client.models.generate_content(
        model=MODEL, contents="What does print(1+1) print?",
        config=types.GenerateContentConfig(tools=[types.Tool(code_execution=types.ToolCodeExecution())]))

    parts = response.candidates[0].content.parts
    assert parts[0].executable_code.code == "print(1+1)"
    assert parts[0].executable_code.language == types.Language.PYTHON
    assert parts[1].code_execution_result.output == "2\n"
    assert parts[1].code_execution_result.outcome == types.Outcome.OUTCOME_OK
    assert parts[2].text == "It prints 2."
    assert fake_gemini.tools() == [{"codeExecution": {}}]


def test_function_call_and_function_response(fake_gemini):
    fake_gemini.enqueue(FunctionCall(name="search_knowledge", args={"query": "code review"}))
    client = genai.Client()
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(
        name="search_knowledge", description="Search the team documents.",
        parameters_json_schema={"type": "object", "properties": {"query": {"type": "string"}}})])
    config = types.GenerateContentConfig(
        tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    first = client.models.generate_content(model=MODEL, contents="find code review", config=config)
    call = first.function_calls[0]
    assert (call.name, call.args) == ("search_knowledge", {"query": "code review"})

    history = [types.Content(role="user", parts=[types.Part(text="find code review")]),
               first.candidates[0].content,
               types.Content(role="user", parts=[types.Part.from_function_response(
                   name="search_knowledge", response={"passages": ["Review fast."]})])]
    second = client.models.generate_content(model=MODEL, contents=history, config=config)
    assert second.text == 'Function search_knowledge returned: {"passages": ["Review fast."]}'
    declared = fake_gemini.tools()[0]["functionDeclarations"][0]
    assert declared["parametersJsonSchema"]["properties"] == {"query": {"type": "string"}}


def test_embeddings_are_deterministic_unit_vectors(fake_gemini):
    client = genai.Client()
    texts = ["How do I review code?", "How do I review code?", "Lunch menu"]
    result = client.models.embed_content(model="gemini-embedding-001", contents=texts,
                                         config=types.EmbedContentConfig(output_dimensionality=768))
    vectors = [e.values for e in result.embeddings]
    assert [len(v) for v in vectors] == [768, 768, 768]
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-4) for v in vectors)
    assert vectors[0] == vectors[1] != vectors[2]
    again = client.models.embed_content(model="gemini-embedding-001", contents="review code")
    assert len(again.embeddings[0].values) == 3072  # the model's default size
    cosine = sum(a * b for a, b in zip(vectors[0], client.models.embed_content(
        model="gemini-embedding-001", contents="review code",
        config=types.EmbedContentConfig(output_dimensionality=768)).embeddings[0].values))
    assert cosine > 0.3  # shared words give related vectors
    assert fake_gemini.last_request("embed").body["requests"][0]["outputDimensionality"] == 768


def test_count_tokens(fake_gemini):
    client = genai.Client()
    assert client.models.count_tokens(model=MODEL, contents="12345678").total_tokens == 2


def test_scripted_429_is_a_client_error(fake_gemini):
    fake_gemini.enqueue(Error(429, retry_delay="7s"))
    client = genai.Client()
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="hi")
    assert (caught.value.code, caught.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert caught.value.details["error"]["details"][0]["retryDelay"] == "7s"
    assert client.models.generate_content(model=MODEL, contents="hi").text == "Echo: hi"


async def test_scripted_500_on_stream_is_a_server_error(fake_gemini):
    fake_gemini.enqueue(Error(500))
    client = genai.Client()
    with pytest.raises(errors.ServerError) as caught:
        async for _ in await client.aio.models.generate_content_stream(model=MODEL, contents="hi"):
            pass
    assert caught.value.code == 500


def test_bad_key_is_400_invalid_argument(fake_gemini):
    client = genai.Client(api_key="not-the-key")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="hi")
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert "API key not valid" in caught.value.message


def test_unknown_model_is_404(fake_gemini):
    client = genai.Client()
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="no-such-model", contents="hi")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    with pytest.raises(errors.ClientError):  # an embedding model cannot generate
        client.models.generate_content(model="gemini-embedding-001", contents="hi")


def test_scripted_delay_trips_the_client_timeout(fake_gemini):
    fake_gemini.enqueue(Delay(3))
    client = genai.Client(http_options=types.HttpOptions(timeout=300))  # milliseconds
    with pytest.raises(httpx.TimeoutException):
        client.models.generate_content(model=MODEL, contents="slow")


def test_reset_forgets_script_journal_and_files(fake_gemini):
    client = genai.Client()  # keep a reference: a collected Client closes its transport
    client.models.generate_content(model=MODEL, contents="one")
    fake_gemini.enqueue(Text("never served"))
    fake_gemini.add_file(b"x", "text/plain")
    fake_gemini.reset()
    assert fake_gemini.journal == [] and fake_gemini.files == {}
    assert client.models.generate_content(model=MODEL, contents="two").text == "Echo: two"
