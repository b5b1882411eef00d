"""Gemini mode through the real app and /ws, against the fake Gemini server.

Every model call goes over TLS to the fake (tests/fake_gemini), whose journal
shows what the product sent: the system prompt, the retrieved passages, the
code-execution tool, the classifier's JSON schema. Replies are scripted in
the order the graph asks for them: classify first, then code execution (code
route), then the streamed answer.
"""

from __future__ import annotations

import pytest
import websockets

from tests.fake_gemini import CodeExecution, Error, Json, Text
from tests.graph_gemini.conftest import gemini_mode, stored_turns
from tests.graph_gemini.helpers import answer_calls, ask, classify_calls, code_calls, hello, of

RETRIES = 1  # MODEL_MAX_RETRIES here: two attempts per model call


@pytest.fixture
def settings(settings, fake_gemini):
    return gemini_mode(settings, fake_gemini, model_max_retries=RETRIES)


def route(name: str) -> Text:
    return Json({"route": name, "reason": "scripted for the test"})


async def test_knowledge_turn_sends_prompt_and_context_and_streams_tokens_in_order(
        live_server, users, knowledge, fake_gemini, db_url):
    fake_gemini.enqueue(route("knowledge"))
    chunks = ["Reviews ", "should get a first answer ", "within one business day ", "[1]."]
    fake_gemini.enqueue(Text("".join(chunks), chunks=chunks, chunk_delay_s=0.05))
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        frames = await ask(ws, "How fast should code reviews be?")

    [classify], [answer] = classify_calls(fake_gemini), answer_calls(fake_gemini)
    # Routing: structured output (JSON mode with the decision's schema), not streamed.
    config = classify.body["generationConfig"]
    assert not classify.stream and config["responseMimeType"] == "application/json"
    schema = config.get("responseJsonSchema") or config["responseSchema"]
    assert schema["properties"]["route"]["enum"] == ["knowledge", "code", "chat", "identity"]
    assert classify.model == live_server.app.state.res.settings.classify_model
    # The answer: streamed, system prompt as systemInstruction, retrieved passages in the contents.
    assert answer.stream and answer.model == live_server.app.state.res.settings.chat_model
    assert "Allin, from Team 8" in answer.system_text
    sent = "\n".join(answer.texts)
    assert "One business day is the maximum time it should take to respond" in sent
    assert 'file="review_reviewer_speed.pdf" page="1"' in sent
    assert "<question>\nHow fast should code reviews be?\n</question>" in sent
    assert answer.tools == []  # no code execution on a knowledge turn

    # Tokens arrive in the order the model streamed them, one frame per chunk (they came apart:
    # chunks queued together for a slow reader would share a frame), then the message with its citation.
    assert [f["text"] for f in of(frames, "token")] == chunks
    assert [f["type"] for f in frames[-2:]] == ["message", "turn_complete"]
    message = frames[-2]
    assert message["content"] == "".join(chunks)
    [citation] = message["citations"]
    assert citation["document_id"] == knowledge["id"] and citation["file"] == knowledge["file"]
    assert citation["page"] == 1 and "business day" in citation["snippet"]

    user_turn, reply = await stored_turns(db_url, ready["chat_id"])
    assert user_turn["content"] == "How fast should code reviews be?"
    assert reply["status"] == "complete" and reply["route"] == "knowledge"
    assert reply["content"] == "".join(chunks) and reply["citations"][0]["page"] == 1


async def test_code_question_uses_the_code_execution_tool_and_stores_the_run(
        live_server, users, fake_gemini, db_url):
    code = "print(sum(range(11)))"
    fake_gemini.enqueue(route("code"))
    fake_gemini.enqueue(CodeExecution(code=code, output="55\n", text="The sum of 0..10 is 55."))
    # The answer is the fake's default (an echo of the turn message), so it can only
    # mention 55 if the code result reached the answering model.
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        frames = await ask(ws, "What is the sum of the integers from 0 to 10? Compute it.")

    [execute], [answer] = code_calls(fake_gemini), answer_calls(fake_gemini)
    assert execute.tools == [{"codeExecution": {}}]
    assert "What is the sum of the integers from 0 to 10?" in "\n".join(execute.texts)
    assert "code execution tool" in execute.system_text
    assert "55" in "\n".join(answer.texts)

    [frame] = of(frames, "code")
    assert frame["language"] == "python" and frame["code"] == code
    assert frame["stdout"] == "55\n" and frame["outcome"] == "ok"
    kinds = [f["type"] for f in frames]
    assert kinds.index("code") < kinds.index("message")
    message = of(frames, "message")[0]
    assert "55" in message["content"]
    # Only the answer streams to the user: the code call's text is not in the tokens.
    assert "".join(f["text"] for f in of(frames, "token")) == message["content"]

    _, reply = await stored_turns(db_url, ready["chat_id"])
    assert reply["route"] == "code" and reply["status"] == "complete"
    [run] = reply["code"]
    assert run["language"] == "python" and run["code"] == code and run["stdout"] == "55\n" and run["outcome"] == "ok"


@pytest.mark.parametrize(("failures", "code"), [
    ([Error(429), Error(500)], "model_unavailable"),
    ([Error(500), Error(429, retry_delay="20s")], "model_rate_limited"),
])
async def test_persistent_model_errors_end_the_turn_clearly_and_the_chat_stays_usable(
        live_server, users, fake_gemini, db_url, failures, code):
    fake_gemini.enqueue(route("chat"))
    for failure in failures:  # one more failure than the retries allow
        fake_gemini.enqueue(failure)
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        frames = await ask(ws, "Thanks, that helps a lot!", frame_id="a")
        error = frames[-1]
        assert error["type"] == "error" and error["code"] == code and error["reply_to"] == "a"
        assert "Please try again" in error["message"] and "RESOURCE_EXHAUSTED" not in error["message"]
        assert of(frames, "token") == [] and of(frames, "message") == []

        # Bounded: one call plus MODEL_MAX_RETRIES, then no more; and it backed off in between.
        attempts = answer_calls(fake_gemini)
        assert len(attempts) == RETRIES + 1
        assert attempts[1].time - attempts[0].time >= 0.45

        # Same socket, next turn: it works and sees the earlier exchange.
        fake_gemini.enqueue(route("identity"))
        fake_gemini.enqueue(Text("I am Allin, from Team 8."))
        frames = await ask(ws, "Who are you?", frame_id="b")
    assert frames[-1]["type"] == "turn_complete"
    assert of(frames, "message")[0]["content"] == "I am Allin, from Team 8."
    assert len(answer_calls(fake_gemini)) == RETRIES + 2
    assert "Thanks, that helps a lot!" in "\n".join(answer_calls(fake_gemini)[-1].texts)

    turns = await stored_turns(db_url, ready["chat_id"])
    assert [(t["role"], t["status"]) for t in turns] == [
        ("user", "complete"), ("assistant", "error"), ("user", "complete"), ("assistant", "complete")]
    assert turns[1]["error"] == code
    assert turns[3]["content"] == "I am Allin, from Team 8."


async def test_a_failed_classification_falls_back_to_the_local_classifier(live_server, users, fake_gemini):
    fake_gemini.enqueue(Error(503))  # the classifier's call
    fake_gemini.enqueue(Text("I am Allin, from Team 8."))
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        frames = await ask(ws, "Who are you?")
    assert frames[-1]["type"] == "turn_complete"
    assert len(classify_calls(fake_gemini)) == 1  # one attempt: a failed routing falls back at once
    [answer] = answer_calls(fake_gemini)
    assert '<context route="identity">' in "\n".join(answer.texts)


async def test_code_execution_retries_a_transient_error(live_server, users, fake_gemini):
    fake_gemini.enqueue(route("code"))
    fake_gemini.enqueue(Error(503))
    fake_gemini.enqueue(CodeExecution(code="print(2 ** 10)", output="1024\n"))
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        frames = await ask(ws, "Compute 2 to the power of 10.")
    assert frames[-1]["type"] == "turn_complete"
    assert of(frames, "code")[0]["stdout"] == "1024\n"
    executes = code_calls(fake_gemini)
    assert len(executes) == 2 and executes[1].time - executes[0].time >= 0.45


async def test_routing_is_deterministic(live_server, users, fake_gemini):
    fake_gemini.enqueue(route("identity"))
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ask(ws, "Who are you?")
    [classify] = classify_calls(fake_gemini)
    assert classify.body["generationConfig"]["temperature"] == 0


async def test_failed_code_reaches_the_user_as_an_error_run(live_server, users, fake_gemini, db_url):
    fake_gemini.enqueue(route("code"))
    fake_gemini.enqueue(CodeExecution(code="print(1 / 0)", outcome="OUTCOME_FAILED",
                                      output="ZeroDivisionError: division by zero"))
    async with websockets.connect(live_server.ws_url) as ws:
        ready = await hello(ws, users.alice.token)
        frames = await ask(ws, "What does print(1 / 0) do? Run it.")
    [frame] = of(frames, "code")
    assert frame["outcome"] == "error" and frame["stdout"] == ""
    assert "ZeroDivisionError" in frame["stderr"]
    _, reply = await stored_turns(db_url, ready["chat_id"])
    assert reply["code"][0]["outcome"] == "error" and "ZeroDivisionError" in reply["code"][0]["stderr"]
    assert "ZeroDivisionError" in "\n".join(answer_calls(fake_gemini)[0].texts)  # the answer sees it
