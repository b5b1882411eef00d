"""Streaming end-of-utterance detection for 16 kHz PCM16 voice input.

`Utterances` cuts a stream into utterances: it starts collecting at the first
speech frame (with a little audio before it, so the first phoneme survives),
and closes the utterance after `end_silence_ms` of non-speech, keeping it only
if it held at least `min_speech_ms` of speech (coughs and clicks are dropped).

Which frames are speech is a detector's call:

- `SileroDetector` (default): the Silero VAD v6 ONNX model that faster-whisper
  ships in its package (`faster_whisper/assets/silero_vad_v6.onnx`, 1.2 MB, no
  download). It scores 32 ms windows at ~0.13 ms each on one thread and ignores
  non-speech noise (fans, keyboard, a hiss burst) that an energy threshold
  takes for speech.
- `EnergyDetector`: RMS level against an adaptive noise floor; no model. Kept
  as the fallback and for callers that want no ONNX session.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from allin.voice.audio import INPUT_RATE, SILENCE_DBFS, pcm16_to_float32

DetectorName = Literal["silero", "energy"]


class SpeechDetector(Protocol):
    """Classifies fixed-size frames as speech, in stream order (detectors keep state)."""

    frame_samples: int

    def classify(self, frames: np.ndarray) -> np.ndarray:
        """frames: float32 (n, frame_samples) -> bool (n,)."""
        ...


class EnergyDetector:
    """Speech = RMS level `threshold_db` above a noise floor that tracks the quiet parts.

    The floor starts at the first frame with any signal (digital zeros, which a
    browser microphone sends while it starts, carry no information about the
    room), falls fast (the room got quieter) and rises slowly (time constant
    `rise_s`), so speech barely lifts it but a fan that starts stops counting
    as speech after a few seconds. `min_speech_dbfs` is an absolute bar under
    which nothing is speech.
    """

    def __init__(
        self,
        *,
        rate: int = INPUT_RATE,
        frame_ms: int = 30,
        threshold_db: float = 12.0,
        hysteresis_db: float = 3.0,
        min_speech_dbfs: float = -50.0,
        floor_min_dbfs: float = -70.0,
        fall_s: float = 0.15,
        rise_s: float = 4.0,
    ) -> None:
        self.frame_samples = rate * frame_ms // 1000
        frame_s = frame_ms / 1000
        self._fall = 1 - math.exp(-frame_s / fall_s)
        self._rise = 1 - math.exp(-frame_s / rise_s)
        self.threshold_db = threshold_db
        self.hysteresis_db = hysteresis_db
        self.min_speech_dbfs = min_speech_dbfs
        self.floor_min_dbfs = floor_min_dbfs
        self.floor_dbfs: float | None = None
        self._speaking = False

    def classify(self, frames: np.ndarray) -> np.ndarray:
        power = np.mean(frames.astype(np.float64) ** 2, axis=1)
        levels = np.where(power > 0, 10 * np.log10(np.maximum(power, 1e-30)), SILENCE_DBFS)
        out = np.zeros(len(levels), dtype=bool)
        for i, level in enumerate(levels):
            level = float(level)
            if level < self.floor_min_dbfs:
                self._speaking = False  # (near-)digital silence: not speech, and says nothing about the room
                continue
            if self.floor_dbfs is None:
                self.floor_dbfs = level
            bar = max(self.floor_dbfs + self.threshold_db, self.min_speech_dbfs)
            if self._speaking:
                bar -= self.hysteresis_db  # stay in speech through slightly softer syllables
            self._speaking = out[i] = level >= bar
            rate = self._fall if level < self.floor_dbfs else self._rise
            self.floor_dbfs += rate * (level - self.floor_dbfs)
        return out


_silero_lock = threading.Lock()
_silero_session = None


def _silero() -> object:
    """The packaged Silero ONNX session, loaded once per process (sessions are thread-safe to run)."""
    global _silero_session
    with _silero_lock:
        if _silero_session is None:
            import onnxruntime as ort
            from faster_whisper.utils import get_assets_path

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = opts.inter_op_num_threads = 1  # tiny model: one core is plenty
            opts.log_severity_level = 3
            path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
            _silero_session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        return _silero_session


class SileroDetector:
    """Silero VAD v6 at 16 kHz: 512-sample windows, speech above `threshold`, kept down to `neg_threshold`.

    The model's recurrent state and 64-sample context carry across calls, so
    feeding a stream in pieces scores exactly as feeding it whole.
    """

    frame_samples = 512
    _context = 64

    def __init__(self, *, threshold: float = 0.5, neg_threshold: float = 0.35) -> None:
        self.threshold = threshold
        self.neg_threshold = neg_threshold
        self._session = _silero()
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._ctx = np.zeros(self._context, dtype=np.float32)
        self._speaking = False

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros(0, dtype=np.float32)
        frames = frames.astype(np.float32, copy=False)
        # Each row is the window with the previous window's last 64 samples in front.
        ctx = np.vstack([self._ctx[None, :], frames[:-1, -self._context :]])
        batch = np.concatenate([ctx, frames], axis=1)
        probs, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._ctx = frames[-1, -self._context :].copy()
        return np.asarray(probs, dtype=np.float32).reshape(-1)

    def classify(self, frames: np.ndarray) -> np.ndarray:
        probs = self.probabilities(frames)
        out = np.zeros(len(probs), dtype=bool)
        for i, p in enumerate(probs):
            self._speaking = out[i] = p >= (self.neg_threshold if self._speaking else self.threshold)
        return out


def make_detector(kind: DetectorName = "silero") -> SpeechDetector:
    if kind == "silero":
        return SileroDetector()
    if kind == "energy":
        return EnergyDetector()
    raise ValueError(f"unknown VAD detector {kind!r}; use 'silero' or 'energy'")


@dataclass(frozen=True, slots=True)
class EarlyCut:
    """The open utterance as it stands after a short silence: transcribable before it has ended.

    If the user says nothing more, the utterance that later closes (by VAD or
    `audio_end`) is this audio plus at most `slack` bytes of the same silence,
    so a transcript of this audio is a transcript of that utterance.
    """

    audio: bytes
    slack: int
    speech_seen: int  # Utterances.speech_seen when cut: any speech heard since voids the cut

    def matches(self, utterance: bytes, vad: "Utterances") -> bool:
        return (vad.speech_seen == self.speech_seen and 0 <= len(utterance) - len(self.audio) <= self.slack
                and utterance.startswith(self.audio))


class Utterances:
    """Feed PCM16 16 kHz mono as it arrives; get back each utterance once it has ended.

    One instance per voice connection (it holds stream state); not thread-safe.
    Scoring a 30 ms frame costs well under a millisecond, so `feed` may run on
    the event loop for client-sized chunks.
    """

    def __init__(
        self,
        *,
        detector: DetectorName = "silero",
        min_speech_ms: int = 250,
        end_silence_ms: int = 600,
        max_utterance_s: float = 30.0,
        pre_roll_ms: int = 300,
        keep_silence_ms: int = 200,
        flush_min_speech_ms: int = 100,
    ) -> None:
        self._kind = detector
        self._detector = make_detector(detector)
        self.frame_samples = self._detector.frame_samples
        frame_ms = self.frame_samples * 1000 / INPUT_RATE
        frames = lambda ms: max(1, math.ceil(ms / frame_ms))  # noqa: E731
        self._min_speech = frames(min_speech_ms)
        self._end_silence = frames(end_silence_ms)
        self._max_frames = frames(max_utterance_s * 1000)
        self._keep_silence = frames(keep_silence_ms) if keep_silence_ms else 0
        self._flush_min_speech = frames(flush_min_speech_ms)
        self._pre_roll: deque[bytes] = deque(maxlen=frames(pre_roll_ms))
        self._pending = bytearray()
        self._frames_for = frames
        self.speech_seen = 0  # speech frames heard since this object was made (never reset)
        self._reset_utterance()

    def _reset_utterance(self) -> None:
        self._frames: list[bytes] = []  # the open utterance, pre-roll included
        self._speech_frames = 0
        self._last_speech = -1  # index in _frames of the latest speech frame
        self._silence_run = 0

    @property
    def in_speech(self) -> bool:
        """True once the open utterance holds `min_speech_ms` of speech (a cue for barge-in)."""
        return self._speech_frames >= self._min_speech

    @property
    def open_s(self) -> float:
        """Length in seconds of the utterance collected so far (pre-roll included); 0 when none is open."""
        return len(self._frames) * self.frame_samples / INPUT_RATE

    def discard(self) -> None:
        """Drop the open utterance (it ran over a length limit); detection goes on with the next frame."""
        self._reset_utterance()

    def feed(self, pcm: bytes) -> list[bytes]:
        """Add audio; return the utterances (PCM16) that ended inside it, oldest first."""
        self._pending += pcm
        step = self.frame_samples * 2
        n = len(self._pending) // step
        if n == 0:
            return []
        raw = bytes(self._pending[: n * step])
        del self._pending[: n * step]
        samples = pcm16_to_float32(raw).reshape(n, self.frame_samples)
        flags = self._detector.classify(samples)
        done: list[bytes] = []
        for i, is_speech in enumerate(flags):
            utterance = self._step(raw[i * step : (i + 1) * step], bool(is_speech))
            if utterance is not None:
                done.append(utterance)
        return done

    def _step(self, frame: bytes, is_speech: bool) -> bytes | None:
        if not self._frames:
            if not is_speech:
                self._pre_roll.append(frame)
                return None
            self._frames = list(self._pre_roll)
            self._pre_roll.clear()
        self._frames.append(frame)
        if is_speech:
            self.speech_seen += 1
            self._speech_frames += 1
            self._last_speech = len(self._frames) - 1
            self._silence_run = 0
        else:
            self._silence_run += 1
        if self._silence_run >= self._end_silence:
            return self._close(self._min_speech)
        if len(self._frames) >= self._max_frames:
            return self._close(self._min_speech)
        return None

    def _close(self, min_speech: int) -> bytes | None:
        """End the open utterance: trim trailing silence, drop it if too little speech."""
        frames, last, speech = self._frames, self._last_speech, self._speech_frames
        self._reset_utterance()
        end = min(len(frames), last + 1 + self._keep_silence)
        for tail in frames[end:]:
            self._pre_roll.append(tail)  # silence after an utterance is the next one's lead-in
        if speech < min_speech or last < 0:
            return None
        return b"".join(frames[:end])

    def early_cut(self, silence_ms: int) -> EarlyCut | None:
        """The open utterance once `silence_ms` of silence has followed its speech, else None.

        What `_close` or `flush` would return if the user stopped here (the same
        trimming), so a caller can start transcribing during the rest of the
        end-of-utterance silence instead of after it.
        """
        if not self._frames or self._last_speech < 0 or self._speech_frames < self._flush_min_speech:
            return None
        if self._silence_run < self._frames_for(silence_ms):
            return None
        end = min(len(self._frames), self._last_speech + 1 + self._keep_silence)
        still_to_come = self._last_speech + 1 + self._keep_silence - end  # frames a close may still keep
        step = self.frame_samples * 2
        return EarlyCut(b"".join(self._frames[:end]), (still_to_come + 1) * step, self.speech_seen)

    def flush(self) -> bytes | None:
        """The client said `audio_end`: return the open utterance (if it held any real speech) and reset.

        The bar is lower than for VAD-ended utterances (`flush_min_speech_ms`):
        the user chose to end here, so a short "yes" still counts.
        """
        if self._pending and self._frames:
            tail = bytes(self._pending[: len(self._pending) // 2 * 2])
            self._frames.append(tail)  # not scored: shorter than a frame
        utterance = self._close(self._flush_min_speech) if self._frames else None
        self._pending.clear()
        self._pre_roll.clear()
        self._detector = make_detector(self._kind)  # next turn starts from a clean model state
        return utterance

    def is_silence_only(self, pcm: bytes) -> bool:
        """True when `pcm` holds less than `min_speech_ms` of speech in all (scored apart from the stream)."""
        detector = make_detector(self._kind)
        n = len(pcm) // (self.frame_samples * 2)
        if n == 0:
            return True
        samples = pcm16_to_float32(pcm[: n * self.frame_samples * 2]).reshape(n, self.frame_samples)
        return int(np.count_nonzero(detector.classify(samples))) < self._min_speech
