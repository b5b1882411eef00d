"""Sentences in, paced audio chunks out; `stop()` drops whatever has not been sent.

Two stages run at once: synthesis of the next sentence while the current one
is sent. Sending is paced to the listener's playback, staying at most
`lead_s` ahead of it. That bound is what makes barge-in prompt: audio the
server still holds can be dropped at once, audio already sent cannot (the
client flushes its own buffer when it sees the interrupt).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from loguru import logger

Synthesize = Callable[[str], Awaitable[bytes]]
SendAudio = Callable[[bytes], Awaitable[None]]
OnSentence = Callable[[str], Awaitable[None]]

_END = object()


class Speaker:
    def __init__(self, synthesize: Synthesize, send_audio: SendAudio, *, rate: int, on_sentence: OnSentence,
                 lead_s: float = 1.0, chunk_ms: int = 100) -> None:
        self._synthesize = synthesize
        self._send_audio = send_audio
        self._on_sentence = on_sentence
        self.rate = rate
        self.lead_s = lead_s
        self._chunk_bytes = max(2, rate * chunk_ms // 1000 * 2)
        self._sentences: asyncio.Queue[object] = asyncio.Queue()
        self._audio: asyncio.Queue[object] = asyncio.Queue(maxsize=1)  # synthesize one sentence ahead, no more
        self._tasks: list[asyncio.Task] = []
        self._play_until = 0.0  # monotonic time the listener finishes what was sent (if played on arrival)
        self.spoken: list[str] = []  # sentences whose audio started
        self.sent = bytearray()  # every PCM16 byte sent (kept for the turn's recording)
        self.first_audio_at: float | None = None
        self.stopped = False
        self.failed: Exception | None = None

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._synth_loop(), name="voice-tts"),
                       asyncio.create_task(self._send_loop(), name="voice-send")]

    def say(self, sentence: str) -> None:
        if not self.stopped:
            self._sentences.put_nowait(sentence)

    def end(self) -> None:
        """No more sentences: `wait()` returns once the queued ones are sent."""
        self._sentences.put_nowait(_END)

    async def wait(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks)

    def stop(self) -> bool:
        """Barge-in: send nothing more. True when audio was still to come."""
        if self.stopped:
            return False
        self.stopped = True
        busy = any(not t.done() for t in self._tasks)
        for task in self._tasks:
            task.cancel()
        return busy

    @property
    def speaking(self) -> bool:
        return not self.stopped and any(not t.done() for t in self._tasks)

    async def _synth_loop(self) -> None:
        try:
            while (sentence := await self._sentences.get()) is not _END:
                assert isinstance(sentence, str)
                pcm = await self._synthesize(sentence)
                if pcm:
                    await self._audio.put((sentence, pcm))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the text answer still stands without speech
            logger.warning("speech synthesis failed: {}", exc)
            self.failed = exc
        finally:
            if not self.stopped:  # when stopped, the sender is cancelled too: nobody is waiting
                await self._audio.put(_END)

    async def _send_loop(self) -> None:
        while (item := await self._audio.get()) is not _END:
            sentence, pcm = item  # type: ignore[misc]
            self.spoken.append(sentence)
            await self._on_sentence(sentence)
            for start in range(0, len(pcm), self._chunk_bytes):
                chunk = pcm[start : start + self._chunk_bytes]
                ahead = self._play_until - time.monotonic()
                if ahead > self.lead_s:
                    await asyncio.sleep(ahead - self.lead_s)
                if self.stopped:
                    return
                await self._send_audio(chunk)
                if self.first_audio_at is None:
                    self.first_audio_at = time.monotonic()
                self.sent += chunk
                self._play_until = max(self._play_until, time.monotonic()) + len(chunk) / 2 / self.rate
