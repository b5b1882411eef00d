"""Contract: the request shapes google-genai 2.34 puts on the wire, as the fake captured them.

The fake (and the product) rely on these keys and their mixed casing. If an
SDK upgrade changes them, this fails: re-capture, check the fake still
normalises what changed, then update the expectations.
"""

from __future__ import annotations

import io

import pytest
from google import genai
from google.genai import types
from pydantic import BaseModel

pytestmark = pytest.mark.gemini
LIVE_MODEL = "gemini-live-2.5-flash-preview"


class Route(BaseModel):
    route: str


def test_sdk_version_is_the_one_captured():
    assert genai.__version__.startswith("2.34."), "re-capture the wire shapes for this SDK"


def test_generate_request_shape(fake_gemini):
    client = genai.Client()
    uri = fake_gemini.add_file(b"%PDF-1.4", "application/pdf")["uri"]
    client.models.generate_content(
        model="gemini-2.5-flash",
        contents=[types.Part.from_uri(file_uri=uri, mime_type="application/pdf"), "q"],
        config=types.GenerateContentConfig(
            system_instruction="sys", temperature=0.1, max_output_tokens=100,
            response_mime_type="application/json", response_schema=Route,
            tools=[types.Tool(code_execution=types.ToolCodeExecution())],
            thinking_config=types.ThinkingConfig(thinking_budget=0)))

    request = fake_gemini.last_request("generate")
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert request.raw == {
        "contents": [{"parts": [{"fileData": {"file_uri": uri, "mime_type": "application/pdf"}},
                                {"text": "q"}], "role": "user"}],
        "systemInstruction": {"parts": [{"text": "sys"}], "role": "user"},
        "tools": [{"codeExecution": {}}],
        "generationConfig": {
            "temperature": 0.1, "maxOutputTokens": 100, "responseMimeType": "application/json",
            "responseSchema": {"properties": {"route": {"title": "Route", "type": "STRING"}},
                               "required": ["route"], "title": "Route", "type": "OBJECT"},
            "thinkingConfig": {"thinking_budget": 0}},
    }
    assert request.headers["x-goog-api-client"].startswith("google-genai-sdk/2.34.")
    # What tests read is normalised to camelCase.
    assert request.body["contents"][0]["parts"][0]["fileData"]["fileUri"] == uri
    assert request.body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


def test_upload_start_shape(fake_gemini):
    client = genai.Client()
    client.files.upload(file=io.BytesIO(b"abc"),
                        config=types.UploadFileConfig(mime_type="text/plain", display_name="d"))
    start, chunk = fake_gemini.requests("upload")
    assert start.raw == {"file": {"display_name": "d", "mime_type": "text/plain", "size_bytes": 3}}
    assert {k: v for k, v in start.headers.items() if k.startswith("x-goog-upload")} == {
        "x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start",
        "x-goog-upload-header-content-length": "3", "x-goog-upload-header-content-type": "text/plain"}
    assert chunk.query == {"upload_id": chunk.query["upload_id"], "upload_protocol": "resumable"}
    assert chunk.headers["x-goog-upload-offset"] == "0"


async def test_live_frame_shapes(fake_gemini):
    client = genai.Client()
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO], system_instruction="sys",
        speech_config=types.SpeechConfig(voice_config=types.VoiceConfig(
            prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore"))),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(handle="h"),
        context_window_compression=types.ContextWindowCompressionConfig(sliding_window=types.SlidingWindow()),
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
            name="search_knowledge", description="d",
            parameters=types.Schema(type=types.Type.OBJECT, required=["query"],
                                    properties={"query": types.Schema(type=types.Type.STRING)}))])])
    async with client.aio.live.connect(model=LIVE_MODEL, config=config) as session:
        await session.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="hello")]))
        await session.send_realtime_input(audio=types.Blob(data=b"\x00\x01\x02", mime_type="audio/pcm;rate=16000"))
        await session.send_realtime_input(audio_stream_end=True)
        await session.send_realtime_input(text="hi")
        await session.send_tool_response(function_responses=[types.FunctionResponse(
            id="1", name="search_knowledge", response={"my_key": 1})])
        for _ in range(3):  # drain the three turns' replies (see the fixtures' note on closing)
            [message async for message in session.receive()]

    frames = [e.raw for e in fake_gemini.live_frames()]
    assert frames == [
        {"setup": {
            "model": f"models/{LIVE_MODEL}",
            "generationConfig": {"responseModalities": ["AUDIO"], "speechConfig": {
                "voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}}},
            "systemInstruction": {"parts": [{"text": "sys"}], "role": "user"},
            "tools": [{"functionDeclarations": [{
                "description": "d", "name": "search_knowledge",
                "parameters": {"properties": {"query": {"type": "STRING"}}, "required": ["query"],
                               "type": "OBJECT"}}]}],
            "sessionResumption": {"handle": "h"},
            "inputAudioTranscription": {}, "outputAudioTranscription": {},
            "contextWindowCompression": {"sliding_window": {}}}},
        {"client_content": {"turns": [{"parts": [{"text": "hello"}], "role": "user"}], "turnComplete": True}},
        {"realtime_input": {"audio": {"data": "AAEC", "mime_type": "audio/pcm;rate=16000"}}},
        {"realtime_input": {"audioStreamEnd": True}},
        {"realtime_input": {"text": "hi"}},
        {"tool_response": {"functionResponses": [{"id": "1", "name": "search_knowledge",
                                                  "response": {"my_key": 1}}]}},
    ]
    setup = fake_gemini.last_request("live", frame="setup")
    assert setup.path == "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    assert setup.headers["x-goog-api-key"] == fake_gemini.api_key
    # Normalised for tests, user maps (the response's keys) untouched.
    assert [e.frame for e in fake_gemini.live_frames()][1:3] == ["clientContent", "realtimeInput"]
    assert fake_gemini.tool_responses()[0]["response"] == {"my_key": 1}
    assert setup.body["generationConfig"]["speechConfig"]["voiceConfig"] == {
        "prebuiltVoiceConfig": {"voiceName": "Kore"}}
