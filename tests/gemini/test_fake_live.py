"""The fake's Live (BidiGenerateContent over wss) side, through google-genai's aio.live."""

from __future__ import annotations

import base64
import json
import ssl

import pytest
import websockets
from google import genai
from google.genai import errors, types

from tests.fake_gemini import (Audio, Close, GoAway, Interrupted, SessionResumptionUpdate, Text,
                               ToolCall, Transcript)

pytestmark = pytest.mark.gemini
LIVE_MODEL = "gemini-live-2.5-flash-preview"
SECOND_OF_SPEECH = b"\x10\x00" * 16000  # PCM16 mono 16 kHz


def audio_config(**extra) -> types.LiveConnectConfig:
    return types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(), **extra)


async def collect(session) -> list[types.LiveServerMessage]:
    return [message async for message in session.receive()]


def text_of(messages) -> str:
    return "".join(m.text or "" for m in messages if m.server_content and m.server_content.model_turn)


async def test_text_turn_echoes(fake_gemini):
    client = genai.Client()
    config = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT],
                                     system_instruction="You are Allin.")
    async with client.aio.live.connect(model=LIVE_MODEL, config=config) as session:
        await session.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="hello")]))
        messages = await collect(session)
        fake_gemini.enqueue(Text("scripted", chunks=["scri", "pted"]), kind="live")
        await session.send_realtime_input(text="again")
        second = await collect(session)

    assert text_of(messages) == "Echo: hello"
    assert messages[-2].server_content.generation_complete
    assert messages[-1].server_content.turn_complete
    assert messages[-1].usage_metadata.total_token_count > 0
    assert [m.text for m in second if m.text] == ["scri", "pted"]
    assert fake_gemini.system_text("live") == "You are Allin."
    assert fake_gemini.last_request("live", frame="setup").model == LIVE_MODEL
    assert [e.texts for e in fake_gemini.live_frames()[1:]] == [["hello"], ["again"]]


async def test_audio_in_audio_out_with_transcripts(fake_gemini):
    client = genai.Client()
    async with client.aio.live.connect(model=LIVE_MODEL, config=audio_config()) as session:
        for start in range(0, len(SECOND_OF_SPEECH), 3200):  # 100 ms frames
            await session.send_realtime_input(audio=types.Blob(
                data=SECOND_OF_SPEECH[start:start + 3200], mime_type="audio/pcm;rate=16000"))
        await session.send_realtime_input(audio_stream_end=True)
        messages = await collect(session)

    content = [m.server_content for m in messages if m.server_content]
    blobs = [p.inline_data for c in content if c.model_turn for p in c.model_turn.parts]
    heard = [c.input_transcription.text for c in content if c.input_transcription]
    said = [c.output_transcription.text for c in content if c.output_transcription]
    assert heard == ["(audio of 1000 ms)"]
    assert said == ["Echo: (audio of 1000 ms)"]
    assert {b.mime_type for b in blobs} == {"audio/pcm;rate=24000"}
    # 50 ms per character of the reply, at 24 kHz * 2 bytes.
    assert sum(len(b.data) for b in blobs) == 50 * len(said[0]) * 48
    assert fake_gemini.live_audio() == SECOND_OF_SPEECH


async def test_scripted_audio_reply(fake_gemini):
    fake_gemini.enqueue(Audio(text="Reviews within a day.", duration_ms=500, input_text="How fast?"))
    client = genai.Client()
    async with client.aio.live.connect(model=LIVE_MODEL, config=audio_config()) as session:
        await session.send_realtime_input(audio=types.Blob(data=SECOND_OF_SPEECH, mime_type="audio/pcm;rate=16000"))
        await session.send_realtime_input(audio_stream_end=True)
        messages = await collect(session)
    assert sum(len(m.data) for m in messages if m.data) == 500 * 48
    assert [m.server_content.input_transcription.text for m in messages
            if m.server_content and m.server_content.input_transcription] == ["How fast?"]


async def test_tool_call_round_trip(fake_gemini):
    fake_gemini.enqueue(ToolCall(name="search_knowledge", args={"query": "review speed"}))
    client = genai.Client()
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(
        name="search_knowledge", description="Search the team documents.",
        parameters=types.Schema(type=types.Type.OBJECT, properties={"query": types.Schema(type=types.Type.STRING)}))])
    config = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT], tools=[tool])
    async with client.aio.live.connect(model=LIVE_MODEL, config=config) as session:
        await session.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="how fast?")]))
        messages = []
        async for message in session.receive():
            messages.append(message)
            if message.tool_call:
                call = message.tool_call.function_calls[0]
                await session.send_tool_response(function_responses=[types.FunctionResponse(
                    id=call.id, name=call.name, response={"result": "within one business day"})])

    call = next(m.tool_call for m in messages if m.tool_call).function_calls[0]
    assert (call.name, call.args) == ("search_knowledge", {"query": "review speed"})
    assert fake_gemini.tool_responses() == [
        {"id": call.id, "name": "search_knowledge", "response": {"result": "within one business day"}}]
    assert text_of(messages) == 'Function search_knowledge returned: {"result": "within one business day"}'
    declared = fake_gemini.tools("live")[0]["functionDeclarations"][0]
    assert declared["parameters"]["properties"] == {"query": {"type": "STRING"}}


async def test_go_away_then_resume_with_the_last_handle(fake_gemini):
    client = genai.Client()
    config = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT],
                                     session_resumption=types.SessionResumptionConfig())
    fake_gemini.enqueue(GoAway(time_left="2s"))
    async with client.aio.live.connect(model=LIVE_MODEL, config=config) as session:
        await session.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="hi")]))
        messages = await collect(session)

    assert messages[0].go_away.time_left == "2s"
    updates = [m.session_resumption_update for m in messages if m.session_resumption_update]
    assert updates[-1].resumable and updates[-1].new_handle
    handle = updates[-1].new_handle

    resumed = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT],
                                      session_resumption=types.SessionResumptionConfig(handle=handle))
    async with client.aio.live.connect(model=LIVE_MODEL, config=resumed) as session:
        await session.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="again")]))
        assert text_of(await collect(session)) == "Echo: again"
    assert [s.get("sessionResumption") for s in fake_gemini.live_setups()] == [{}, {"handle": handle}]


async def test_pushed_events_reach_an_idle_session(fake_gemini):
    client = genai.Client()
    async with client.aio.live.connect(model=LIVE_MODEL) as session:
        fake_gemini.push_live(SessionResumptionUpdate(resumable=False))
        fake_gemini.push_live(Transcript(output="hello"))
        fake_gemini.push_live(GoAway(time_left="1s", close_after=0.05))
        received = [await anext(aiter(session.receive())) for _ in range(3)]
        with pytest.raises(errors.APIError) as caught:
            await anext(aiter(session.receive()))
    assert received[0].session_resumption_update.resumable is False
    assert received[1].server_content.output_transcription.text == "hello"
    assert received[2].go_away.time_left == "1s"
    assert caught.value.code == 1000


async def test_barge_in_interrupts_the_reply(fake_gemini):
    fake_gemini.enqueue(Interrupted(partial_ms=300))
    client = genai.Client()
    async with client.aio.live.connect(model=LIVE_MODEL, config=audio_config()) as session:
        await session.send_realtime_input(audio=types.Blob(data=SECOND_OF_SPEECH, mime_type="audio/pcm;rate=16000"))
        await session.send_realtime_input(audio_stream_end=True)
        messages = []
        async for message in session.receive():
            messages.append(message)
            if message.data:  # the user talks over the model
                await session.send_realtime_input(audio=types.Blob(data=b"\x01\x00" * 160,
                                                                   mime_type="audio/pcm;rate=16000"))
    flags = [m.server_content.interrupted for m in messages if m.server_content]
    assert flags.count(True) == 1
    assert sum(len(m.data) for m in messages if m.data) == 300 * 48


async def test_scripted_close_surfaces_as_api_error(fake_gemini):
    fake_gemini.enqueue(Close(1011, "RESOURCE_EXHAUSTED: quota"))
    client = genai.Client()
    async with client.aio.live.connect(model=LIVE_MODEL) as session:
        await session.send_realtime_input(text="hi")
        with pytest.raises(errors.APIError) as caught:
            await collect(session)
    assert (caught.value.code, caught.value.details) == (1011, "RESOURCE_EXHAUSTED: quota")


async def test_bad_key_closes_with_1008_after_setup(fake_gemini):
    client = genai.Client(api_key="not-the-key")
    with pytest.raises(errors.APIError) as caught:
        async with client.aio.live.connect(model=LIVE_MODEL):
            pass
    assert caught.value.code == 1008
    assert "API key not valid" in caught.value.details
    assert fake_gemini.last_request("live", frame="setup").headers["x-goog-api-key"] == "not-the-key"


async def test_unknown_or_non_live_model_closes_with_1008(fake_gemini):
    client = genai.Client()
    for model in ("no-such-model", "gemini-2.5-flash"):
        with pytest.raises(errors.APIError) as caught:
            async with client.aio.live.connect(model=model):
                pass
        assert caught.value.code == 1008
        assert f"models/{model} is not found" in caught.value.details


async def test_raw_frames_snake_case_and_unpadded_base64url(fake_gemini):
    """Protocol level, without the SDK: key casing and base64 variants are normalised."""
    url = fake_gemini.base_url.replace("https://", "wss://") + \
        "//ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContent"
    context = ssl.create_default_context(cafile=str(fake_gemini.cert_file))
    pcm = bytes([0xFB, 0xFF, 0x3E, 0x00]) * 3  # 12 bytes: urlsafe chars, padding needed
    async with websockets.connect(url, ssl=context,
                                  additional_headers={"x-goog-api-key": fake_gemini.api_key}) as ws:
        await ws.send(json.dumps({"setup": {"model": f"models/{LIVE_MODEL}",
                                            "generation_config": {"response_modalities": ["TEXT"]}}}))
        assert json.loads(await ws.recv()) == {"setupComplete": {}}
        data = base64.urlsafe_b64encode(pcm).decode().rstrip("=")
        await ws.send(json.dumps({"realtime_input": {"audio": {"data": data, "mime_type": "audio/pcm;rate=16000"}}}))
        await ws.send(json.dumps({"realtime_input": {"audio_stream_end": True}}))
        replies = [json.loads(await ws.recv()) for _ in range(3)]
    assert replies[0] == {"serverContent": {"modelTurn": {"parts": [{"text": "Echo: (audio of 0 ms)"}]}}}
    assert replies[1] == {"serverContent": {"generationComplete": True}}
    assert replies[2]["serverContent"] == {"turnComplete": True}
    assert fake_gemini.live_audio() == pcm
    assert fake_gemini.live_setups()[0]["generationConfig"] == {"responseModalities": ["TEXT"]}
