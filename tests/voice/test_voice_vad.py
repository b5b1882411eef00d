"""Utterances: streaming end-of-utterance detection on spoken audio."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from allin.voice.audio import float32_to_pcm16
from allin.voice.stt import LocalSTT
from allin.voice.vad import EnergyDetector, SileroDetector, Utterances

FIRST = "How fast should code reviews be?"
SECOND = "Where is the deploy guide?"
DETECTORS = ["silero", "energy"]


def silence(seconds: float) -> bytes:
    return bytes(2 * int(seconds * 16_000))


def noise(seconds: float, dbfs: float, seed: int = 0) -> bytes:
    rms = 10 ** (dbfs / 20)
    return float32_to_pcm16(np.random.default_rng(seed).normal(0, rms, int(seconds * 16_000)))


def trimmed(pcm: bytes) -> bytes:
    """Speech without the TTS's trailing silence."""
    samples = np.frombuffer(pcm, "<i2")
    last = int(np.nonzero(np.abs(samples) > 100)[0][-1]) + 1
    return pcm[: 2 * last]


def feed_in_chunks(vad: Utterances, pcm: bytes, chunk: int) -> list[bytes]:
    out: list[bytes] = []
    for i in range(0, len(pcm), chunk):
        out += vad.feed(pcm[i : i + chunk])
    return out


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("chunk", [640, 333, 32_000])  # 20 ms frames, odd sizes, 1 s blocks
def test_two_utterances_found(say: Callable[[str], bytes], detector: str, chunk: int) -> None:
    first, second = say(FIRST), say(SECOND)
    stream = silence(0.5) + first + silence(1.0) + second + silence(1.0)
    vad = Utterances(detector=detector)  # type: ignore[arg-type]
    utterances = feed_in_chunks(vad, stream, chunk)
    assert len(utterances) == 2
    for got, spoken in zip(utterances, (first, second), strict=True):
        # TTS pads its audio with a little silence; the VAD keeps the speech plus short margins.
        assert 0.6 * len(spoken) < len(got) < len(spoken) + 2 * 16_000 * 0.5
    assert vad.flush() is None  # both already delivered


@pytest.mark.parametrize("detector", DETECTORS)
def test_utterances_hold_the_words(
    say: Callable[[str], bytes], stt: LocalSTT, word_recall: Callable[[str, str], float], detector: str
) -> None:
    stream = say(FIRST) + silence(1.0) + say(SECOND) + silence(1.0)
    utterances = Utterances(detector=detector).feed(stream)  # type: ignore[arg-type]
    assert len(utterances) == 2
    for pcm, text in zip(utterances, (FIRST, SECOND), strict=True):
        heard = stt.transcribe(pcm).text
        assert word_recall(text, heard) >= 0.8, (text, heard)


@pytest.mark.parametrize("detector", DETECTORS)
def test_no_utterance_until_the_silence_is_long_enough(say: Callable[[str], bytes], detector: str) -> None:
    vad = Utterances(detector=detector, end_silence_ms=600)  # type: ignore[arg-type]
    assert vad.feed(trimmed(say(FIRST)) + silence(0.4)) == []
    assert vad.in_speech
    assert len(vad.feed(silence(0.3))) == 1
    assert not vad.in_speech


@pytest.mark.parametrize("detector", DETECTORS)
def test_flush_returns_the_open_utterance(say: Callable[[str], bytes], detector: str) -> None:
    vad = Utterances(detector=detector)  # type: ignore[arg-type]
    assert vad.feed(silence(0.3) + trimmed(say(FIRST)) + b"\x00" * 101) == []
    utterance = vad.flush()
    assert utterance is not None and len(utterance) > 0.6 * len(say(FIRST))
    assert len(utterance) % 2 == 0
    assert vad.flush() is None  # reset after flushing


@pytest.mark.parametrize("detector", DETECTORS)
def test_silence_and_steady_noise_are_not_speech(say: Callable[[str], bytes], detector: str) -> None:
    vad = Utterances(detector=detector)  # type: ignore[arg-type]
    quiet_room = noise(3.0, dbfs=-45)
    assert vad.is_silence_only(silence(2.0))
    assert vad.is_silence_only(quiet_room)
    assert vad.is_silence_only(b"")
    assert not vad.is_silence_only(silence(0.2) + say(FIRST))
    assert vad.feed(silence(2.0) + quiet_room) == []
    assert vad.flush() is None


def test_silero_ignores_a_noise_burst() -> None:
    # A loud hiss (a door, a fan switching on) is energy but not speech.
    stream = noise(1.0, -50) + noise(0.8, -15, seed=1) + noise(1.5, -50, seed=2)
    assert Utterances(detector="silero").feed(stream) == []


def test_short_blips_are_dropped(say: Callable[[str], bytes]) -> None:
    click = say("Hi.")[: int(0.15 * 16_000) * 2 + 16_000]  # lead-in silence + ~150 ms of voice
    vad = Utterances(detector="energy", min_speech_ms=400)
    assert vad.feed(silence(0.5) + click + silence(1.0)) == []


def test_long_speech_is_cut_at_the_maximum(say: Callable[[str], bytes]) -> None:
    speech = b"".join(say(FIRST) for _ in range(4))  # ~10 s with no pause long enough to end it
    vad = Utterances(detector="silero", max_utterance_s=3.0, end_silence_ms=2000)
    utterances = vad.feed(speech)
    assert len(utterances) >= 2
    assert all(len(u) <= 3.0 * 32_000 + 1024 for u in utterances)


def test_streamed_scores_equal_whole_scores(say: Callable[[str], bytes]) -> None:
    audio = np.frombuffer(say(FIRST), "<i2").astype(np.float32) / 32768
    frames = audio[: len(audio) // 512 * 512].reshape(-1, 512)
    whole = SileroDetector().probabilities(frames)
    streamed = SileroDetector()
    parts = np.concatenate([streamed.probabilities(frames[i : i + 7]) for i in range(0, len(frames), 7)])
    np.testing.assert_allclose(parts, whole, atol=1e-5)
    assert whole.max() > 0.9 and whole[:3].max() < 0.5  # speech found, lead-in silence not


def test_energy_floor_follows_the_room() -> None:
    det = EnergyDetector()
    frames = np.random.default_rng(0).normal(0, 10 ** (-40 / 20), (100, det.frame_samples)).astype(np.float32)
    assert not det.classify(frames).any()
    assert det.floor_dbfs == pytest.approx(-40, abs=2)
    loud = frames * 10 ** (25 / 20)  # 25 dB above the floor
    assert det.classify(loud[:5]).all()


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("end", ["vad", "flush_soon", "flush_late"])
def test_an_early_cut_is_the_utterance_that_later_ends(say: Callable[[str], bytes], detector: str, end: str) -> None:
    """Transcribing the early cut must be transcribing the utterance: same audio, bar trailing silence."""
    speech = trimmed(say(FIRST))
    vad = Utterances(detector=detector)  # type: ignore[arg-type]
    assert feed_in_chunks(vad, silence(0.3) + speech, 640) == []
    assert vad.early_cut(150) is None  # still speaking
    feed_in_chunks(vad, silence(0.2), 640)
    cut = vad.early_cut(150)
    assert cut is not None and len(cut.audio) > 0.8 * len(speech)
    # The user says nothing more: the utterance is the cut plus some of the same silence.
    if end == "vad":
        utterance = feed_in_chunks(vad, silence(1.0), 640)[0]
    else:
        feed_in_chunks(vad, silence(0.05 if end == "flush_soon" else 0.3), 640)  # under end_silence_ms
        utterance = vad.flush()
    assert utterance is not None and len(utterance) >= len(cut.audio)
    assert cut.matches(utterance, vad)


@pytest.mark.parametrize("detector", DETECTORS)
def test_an_early_cut_is_void_once_the_user_goes_on(say: Callable[[str], bytes], detector: str) -> None:
    vad = Utterances(detector=detector)  # type: ignore[arg-type]
    feed_in_chunks(vad, silence(0.3) + trimmed(say(FIRST)) + silence(0.25), 640)
    cut = vad.early_cut(150)
    assert cut is not None
    feed_in_chunks(vad, trimmed(say(SECOND)) + silence(0.1), 640)  # a pause shorter than the end of an utterance
    later = vad.early_cut(50)
    assert later is not None and later.speech_seen > cut.speech_seen
    utterance = vad.flush()
    assert utterance is not None and utterance.startswith(cut.audio)
    assert not cut.matches(utterance, vad)  # it holds more speech than the cut
    assert later.matches(utterance, vad)
