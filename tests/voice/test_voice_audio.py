"""PCM16 helpers: conversions, validation codes, levels, resampling, WAV."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from allin.voice.audio import (
    AudioError,
    float32_to_pcm16,
    pcm16_to_float32,
    resample,
    rms_dbfs,
    to_input_rate,
    validate_pcm16,
    wav_bytes,
)


def tone(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(a: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(a * np.hanning(len(a))))
    return float(np.fft.rfftfreq(len(a), 1 / rate)[spectrum.argmax()])


def test_pcm16_round_trip_is_exact_for_int16_values() -> None:
    samples = np.array([-32768, -12345, -1, 0, 1, 12345, 32767], dtype="<i2")
    floats = pcm16_to_float32(samples.tobytes())
    assert floats.dtype == np.float32
    assert floats.min() == -1.0 and floats.max() < 1.0
    back = np.frombuffer(float32_to_pcm16(floats), dtype="<i2")
    assert np.abs(back.astype(int) - samples.astype(int)).max() <= 1


def test_float32_to_pcm16_clips_and_is_little_endian() -> None:
    pcm = float32_to_pcm16(np.array([2.0, -2.0, 0.5], dtype=np.float32))
    assert pcm[:2] == (32767).to_bytes(2, "little", signed=True)
    assert np.frombuffer(pcm, "<i2").tolist() == [32767, -32767, 16384]


@pytest.mark.parametrize(
    ("pcm", "max_seconds", "code"),
    [
        (b"\x00\x01\x02", 10, "odd_byte_count"),
        (bytes(2 * 16_000 * 3), 2.5, "too_long"),
        (b"", 10, "empty"),
    ],
)
def test_validate_rejects_bad_audio_with_code(pcm: bytes, max_seconds: float, code: str) -> None:
    with pytest.raises(AudioError) as err:
        validate_pcm16(pcm, max_seconds=max_seconds)
    assert err.value.code == code
    assert err.value.message


def test_validate_returns_duration() -> None:
    assert validate_pcm16(bytes(2 * 8000), max_seconds=1) == pytest.approx(0.5)
    assert validate_pcm16(bytes(2 * 24_000), max_seconds=1, rate=24_000) == pytest.approx(1.0)


def test_odd_bytes_rejected_by_conversion() -> None:
    with pytest.raises(AudioError) as err:
        pcm16_to_float32(b"\x01")
    assert err.value.code == "odd_byte_count"


def test_rms_dbfs_levels() -> None:
    assert rms_dbfs(np.ones(1000, np.float32)) == pytest.approx(0.0)
    assert rms_dbfs(tone(1000, 16_000, amp=1.0)) == pytest.approx(-3.01, abs=0.02)
    assert rms_dbfs(tone(1000, 16_000, amp=0.1)) == pytest.approx(-23.01, abs=0.02)
    assert rms_dbfs(np.zeros(100, np.float32)) == -120.0
    assert rms_dbfs(np.zeros(0, np.float32)) == -120.0


def test_resample_keeps_pitch_level_and_length() -> None:
    out = resample(tone(1000, 24_000), 24_000, 16_000)
    assert len(out) == 16_000
    assert peak_hz(out, 16_000) == pytest.approx(1000, abs=2)
    assert rms_dbfs(out[200:-200]) == pytest.approx(rms_dbfs(tone(1000, 24_000)), abs=0.1)


def test_resample_filters_what_the_new_rate_cannot_hold() -> None:
    # 10 kHz is above 16 kHz's Nyquist; without filtering it would fold to 6 kHz at full level.
    out = resample(tone(10_000, 24_000), 24_000, 16_000)
    assert rms_dbfs(out[200:-200]) < -50


@pytest.mark.parametrize(("src", "dst"), [(16_000, 48_000), (44_100, 16_000), (22_050, 16_000), (16_000, 16_000)])
def test_resample_any_ratio(src: int, dst: int) -> None:
    out = resample(tone(440, src), src, dst)
    assert len(out) == dst
    assert peak_hz(out, dst) == pytest.approx(440, abs=2)


def test_to_input_rate_converts_pcm() -> None:
    pcm24 = float32_to_pcm16(tone(500, 24_000, seconds=0.5))
    pcm16 = to_input_rate(pcm24, 24_000)
    assert len(pcm16) == 2 * 8000
    assert peak_hz(pcm16_to_float32(pcm16), 16_000) == pytest.approx(500, abs=3)


def test_wav_bytes_is_a_readable_wav() -> None:
    pcm = float32_to_pcm16(tone(300, 24_000, seconds=0.25))
    with wave.open(io.BytesIO(wav_bytes(pcm, 24_000))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24_000)
        assert w.getnframes() == 6000
        assert w.readframes(6000) == pcm
