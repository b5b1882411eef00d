"""PCM16 helpers: conversion, validation, level, resampling and WAV packing.

Audio on the wire is raw PCM16 little-endian mono (16 kHz from the client); the
engines want float32 in [-1, 1]. Everything here is numpy only (no scipy in the
stack), and pure: no I/O.
"""

from __future__ import annotations

import io
import math
import wave

import numpy as np

INPUT_RATE = 16_000
"""Rate of client audio and of what the STT model expects."""

SILENCE_DBFS = -120.0
"""Level reported for digital silence (log of zero is undefined)."""


class AudioError(ValueError):
    """Audio the server cannot use; `code` is the snake_case error code sent to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def pcm16_to_float32(b: bytes) -> np.ndarray:
    """Little-endian PCM16 bytes -> float32 samples in [-1, 1)."""
    if len(b) % 2:
        raise AudioError("odd_byte_count", f"PCM16 needs an even number of bytes, got {len(b)}")
    return np.frombuffer(b, dtype="<i2").astype(np.float32) / 32768.0


def float32_to_pcm16(a: np.ndarray) -> bytes:
    """Float samples (clipped to [-1, 1]) -> little-endian PCM16 bytes."""
    x = np.clip(np.asarray(a, dtype=np.float32), -1.0, 1.0)
    return np.round(x * 32767.0).astype("<i2").tobytes()


def validate_pcm16(b: bytes, *, max_seconds: float, rate: int = INPUT_RATE) -> float:
    """Check client audio before it reaches a model; returns its duration in seconds."""
    if not b:
        raise AudioError("empty", "no audio received")
    if len(b) % 2:
        raise AudioError("odd_byte_count", f"PCM16 needs an even number of bytes, got {len(b)}")
    seconds = len(b) / 2 / rate
    if seconds > max_seconds:
        raise AudioError("too_long", f"audio is {seconds:.1f} s, the limit is {max_seconds:g} s")
    return seconds


def rms_dbfs(a: np.ndarray) -> float:
    """RMS level in dBFS (a full-scale square wave is 0, a full-scale sine about -3)."""
    x = np.asarray(a, dtype=np.float64)
    if x.size == 0:
        return SILENCE_DBFS
    rms = math.sqrt(float(np.mean(x * x)))
    return max(SILENCE_DBFS, 20.0 * math.log10(rms)) if rms > 0 else SILENCE_DBFS


def resample(a: np.ndarray, src_rate: int, dst_rate: int, *, zero_crossings: int = 16) -> np.ndarray:
    """Band-limited resampling (Hann-windowed sinc), any rate ratio.

    When going down, the sinc's cutoff is lowered to the new Nyquist frequency so
    content above it is filtered out instead of folding back into the speech band.
    """
    x = np.asarray(a, dtype=np.float32)
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError("sample rates must be positive")
    if src_rate == dst_rate or x.size == 0:
        return x.copy()
    cutoff = min(1.0, dst_rate / src_rate)  # in units of the source Nyquist
    half = int(math.ceil(zero_crossings / cutoff))  # filter half-width in source samples
    offsets = np.arange(-half + 1, half + 1)

    def taps(frac: np.ndarray) -> np.ndarray:
        d = frac[:, None] - offsets[None, :]  # distance from each tap, in source samples
        window = 0.5 + 0.5 * np.cos(np.pi * np.clip(d / half, -1.0, 1.0))
        return (cutoff * np.sinc(cutoff * d) * window).astype(np.float32)

    # Output n sits at source time n*M/L: integer part n*M // L, fraction (n*M % L) / L.
    g = math.gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    table = taps(np.arange(up) / up) if up <= 4096 else None  # one row per phase, reused
    n_out = x.size * dst_rate // src_rate
    padded = np.concatenate([np.zeros(half, np.float32), x, np.zeros(half + 1, np.float32)])
    out = np.empty(n_out, dtype=np.float32)
    block = 8192  # bounds the (block x taps) matrices
    for start in range(0, n_out, block):
        num = np.arange(start, min(start + block, n_out), dtype=np.int64) * down
        base, phase = num // up, num % up
        w = table[phase] if table is not None else taps(phase / up)
        out[start : start + len(num)] = np.einsum("ij,ij->i", w, padded[base[:, None] + offsets + half])
    return out
    return out


def to_input_rate(pcm: bytes, rate: int) -> bytes:
    """PCM16 at `rate` -> PCM16 at the 16 kHz the STT model and VAD expect."""
    if rate == INPUT_RATE:
        return pcm
    return float32_to_pcm16(resample(pcm16_to_float32(pcm), rate, INPUT_RATE))


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    """A mono 16-bit WAV file holding `pcm` (for storing voice turns)."""
    if len(pcm) % 2:
        raise AudioError("odd_byte_count", f"PCM16 needs an even number of bytes, got {len(pcm)}")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()
