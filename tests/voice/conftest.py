"""Real engines for the voice tests: loaded once per session (a few seconds), no network."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from allin.voice.audio import to_input_rate
from allin.voice.stt import LocalSTT
from allin.voice.tts import LocalTTS


@pytest.fixture(scope="session")
def tts() -> LocalTTS:
    engine = LocalTTS(engines=("hibari",))
    engine.load()
    return engine


@pytest.fixture(scope="session")
def stt() -> LocalSTT:
    engine = LocalSTT()
    engine.load()
    return engine


@pytest.fixture(scope="session")
def say(tts: LocalTTS) -> Callable[[str], bytes]:
    """Text -> PCM16 mono 16 kHz spoken by the packaged voice (what a client would send)."""

    @functools.cache
    def speak(text: str) -> bytes:
        return to_input_rate(tts.synthesize(text), tts.rate)

    return speak


def _words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() or c.isspace() else " " for c in text).split()


def _recall(expected: str, heard: str) -> float:
    """Share of the expected words (case and punctuation ignored) found in what was heard."""
    want, got = _words(expected), set(_words(heard))
    return sum(w in got for w in want) / len(want)


@pytest.fixture(scope="session")
def word_recall() -> Callable[[str, str], float]:
    return _recall
