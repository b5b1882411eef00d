"""`LocalSpeech`: the offline STT and TTS engines, shared by every voice connection of a process.

Model calls are CPU-bound (tens of ms to ~1 s), so the async methods run them
on worker threads: one for STT and one for TTS, each a single-thread executor.
That is the concurrency limit: Whisper already uses two cores and hibari one,
so more parallel calls on a small machine only slow every call down; requests
beyond it queue without holding threads of the loop's default pool. Separate
queues keep a long transcription from stalling another user's speech.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from loguru import logger

from allin.voice.audio import to_input_rate
from allin.voice.stt import LocalSTT, Transcript
from allin.voice.tts import LocalTTS, split_sentences

PartialCallback = Callable[[str], Awaitable[object] | object]
CACHE_MAX_CHARS = 60  # ~4 s of speech, ~190 KB at 24 kHz
CACHE_ENTRIES = 128  # ~25 MB at most


class LocalSpeech:
    def __init__(self, stt: LocalSTT | None = None, tts: LocalTTS | None = None) -> None:
        self.stt = stt or LocalSTT()
        self.tts = tts or LocalTTS()
        # Executors start their thread on first submit, not here.
        self._stt_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="allin-stt")
        self._tts_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="allin-tts")
        self._cache: OrderedDict[str, bytes] = OrderedDict()  # short sentences' audio, LRU (event loop only)

    def warm_up(self) -> None:
        """Load both models and run each once (first calls pay one-off allocation costs). Blocking."""
        self.tts.load()
        self.stt.load()
        speech = self.tts.synthesize("Hello there.")
        self.stt.transcribe(to_input_rate(speech, self.tts.rate))

    async def awarm_up(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._stt_pool, self.warm_up)

    async def atranscribe(self, pcm: bytes, *, on_partial: PartialCallback | None = None) -> Transcript:
        """Transcribe PCM16 16 kHz off the event loop.

        `on_partial(text)` (sync or async) runs on the event loop after each
        decoded segment, before this returns; a failing callback is logged and
        does not stop the transcription.
        """
        loop = asyncio.get_running_loop()
        relay = None
        if on_partial is not None:

            async def call(text: str) -> None:
                result = on_partial(text)
                if inspect.isawaitable(result):
                    await result

            def relay(text: str) -> None:  # on the STT thread: hand over and wait, keeping order
                try:
                    asyncio.run_coroutine_threadsafe(call(text), loop).result(timeout=10)
                except Exception as exc:
                    logger.warning("partial transcript callback failed: {}", exc)

        job = functools.partial(self.stt.transcribe, pcm, on_partial=relay)
        return await loop.run_in_executor(self._stt_pool, job)

    async def asynthesize(self, text: str) -> bytes:
        """PCM16 mono at `self.tts.rate`, synthesized off the event loop.

        Short sentences come back from a cache: answers often open or close with
        the same words ("From the team docs:", "The sources are in the chat."),
        and the voice is deterministic, so the first sound of an answer can leave
        at once instead of after a synthesis.
        """
        cacheable = len(text) <= CACHE_MAX_CHARS
        if cacheable and (hit := self._cache.get(text)) is not None:
            self._cache.move_to_end(text)
            return hit
        loop = asyncio.get_running_loop()
        pcm = await loop.run_in_executor(self._tts_pool, self.tts.synthesize, text)
        if cacheable:
            self._cache[text] = pcm
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return pcm

    async def aspeak(self, answer: str) -> AsyncIterator[tuple[str, bytes]]:
        """(sentence, PCM16) for each speakable sentence of a Markdown answer; the next
        sentence is synthesized while the caller sends the current one."""
        sentences = split_sentences(answer)
        if not sentences:
            return
        upcoming = asyncio.ensure_future(self.asynthesize(sentences[0]))
        try:
            for i, sentence in enumerate(sentences):
                pcm = await upcoming
                if i + 1 < len(sentences):
                    upcoming = asyncio.ensure_future(self.asynthesize(sentences[i + 1]))
                yield sentence, pcm
        finally:
            upcoming.cancel()  # the caller stopped early (barge-in): drop the sentence in flight

    def close(self) -> None:
        self._stt_pool.shutdown(wait=False, cancel_futures=True)
        self._tts_pool.shutdown(wait=False, cancel_futures=True)


@functools.cache
def get_local_speech() -> LocalSpeech:
    """The process-wide LocalSpeech (models load on first use or `warm_up`, not here)."""
    return LocalSpeech()


@functools.cache
def shared_local_speech(*, stt_threads: int, stt_prompt: str | None, tts_speed: float,
                        max_seconds: float) -> LocalSpeech:
    """One LocalSpeech per configuration, shared by every app in the process (models load once)."""
    return LocalSpeech(
        LocalSTT(cpu_threads=stt_threads, initial_prompt=stt_prompt, max_seconds=max_seconds),
        LocalTTS(speed=tts_speed),
    )
