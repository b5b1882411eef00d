"""Voice in the browser: Chromium's fake microphone plays a spoken question (made offline by the
packaged TTS voice); the page's AudioWorklet downsamples it to 16 kHz PCM16 and streams it on /ws;
the server transcribes, answers and speaks; the page shows the transcripts and plays the audio."""

from __future__ import annotations

import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import expect

from tests.conftest import short_tmpdir
from tests.e2e.conftest import login, screenshot, voice_browser

pytestmark = pytest.mark.e2e

QUESTION = "Who are you?"
FRAME_BYTES = 1280  # 40 ms of 16 kHz PCM16: what the worklet posts


@pytest.fixture(scope="module")
def spoken_question() -> Path:
    """QUESTION spoken by the packaged voice, with silence around it, as a 16 kHz PCM16 WAV."""
    from allin.voice.audio import to_input_rate
    from allin.voice.tts import LocalTTS

    tts = LocalTTS(engines=("hibari",))
    tts.load()
    pcm = np.frombuffer(to_input_rate(tts.synthesize(QUESTION), tts.rate), dtype=np.int16)
    silence = np.zeros(16_000, dtype=np.int16)
    audio = np.concatenate([silence[:8000], pcm, silence, silence])
    path = short_tmpdir("alwav") / "question.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(audio.tobytes())
    return path


def watch_socket(page) -> dict[str, list]:
    seen: dict[str, list] = {"sent_bytes": [], "sent": [], "received": [], "received_bytes": []}

    def on_socket(ws):
        def sent(payload):
            if isinstance(payload, (bytes, bytearray)):
                seen["sent_bytes"].append(len(payload))
            else:
                seen["sent"].append(json.loads(payload))

        def received(payload):
            if isinstance(payload, (bytes, bytearray)):
                seen["received_bytes"].append(len(payload))
            else:
                seen["received"].append(json.loads(payload))

        ws.on("framesent", sent)
        ws.on("framereceived", received)

    page.on("websocket", on_socket)
    return seen


async def test_spoken_question_is_streamed_transcribed_answered_and_played(live_server, users, spoken_question):
    async with voice_browser(spoken_question) as browser:
        page = await browser.new_page()
        seen = watch_socket(page)
        await login(page, live_server, users.alice.token)
        mic = page.locator("#mic-btn")
        await mic.click()
        await expect(mic).to_have_attribute("aria-pressed", "true")
        await page.locator("#voice-status").wait_for(state="visible")

        # The final transcript of what was said replaces the greyed partial one.
        heard = page.locator(".msg-user.voice:not(.partial) .msg-body")
        await heard.wait_for(timeout=60_000)
        assert "who are you" in (await heard.inner_text()).lower()
        await screenshot(page, "11-voice-transcript")
        await mic.click()  # stop: the tail of the recording, then audio_end
        await expect(mic).to_have_attribute("aria-pressed", "false")

        answer = page.locator(".msg-assistant").last
        await answer.locator(".msg-actions:not([hidden])").wait_for(timeout=60_000)
        assert "Allin" in await answer.locator(".msg-body").inner_text()
        await screenshot(page, "12-voice-answer")
        # The spoken answer plays (scheduled Web Audio buffers); Esc stops it at once (barge-in).
        await expect(mic).to_have_class(re.compile(r"\bspeaking\b"), timeout=15_000)
        await page.keyboard.press("Escape")
        await expect(mic).not_to_have_class(re.compile(r"\bspeaking\b"))

        # What went over the socket: 16 kHz PCM16 in 40 ms binary frames, then audio_end…
        assert len(seen["sent_bytes"]) > 25, "at least a second of audio"
        assert all(n % 2 == 0 and n <= FRAME_BYTES for n in seen["sent_bytes"])
        assert sum(1 for n in seen["sent_bytes"] if n == FRAME_BYTES) >= len(seen["sent_bytes"]) - 2
        assert any(f["type"] == "audio_end" for f in seen["sent"])
        # …and back: transcripts, the answer's tokens and its speech at the announced rate.
        kinds = [f["type"] for f in seen["received"]]
        assert "transcript" in kinds and "token" in kinds and "audio_format" in kinds
        assert seen["received_bytes"], "the spoken answer comes back as binary PCM16"
        rate = next(f["rate"] for f in seen["received"] if f["type"] == "audio_format")
        assert rate >= 8000
        browser.assert_no_js_errors()
