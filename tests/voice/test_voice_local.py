"""LocalSpeech: engines behind worker threads, without blocking the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from allin.voice.local import LocalSpeech, get_local_speech
from allin.voice.speakable import CODE_NOTE
from allin.voice.stt import LocalSTT
from allin.voice.tts import LocalTTS


@pytest.fixture(scope="module")
def speech(stt: LocalSTT, tts: LocalTTS):
    engines = LocalSpeech(stt=stt, tts=tts)
    yield engines
    engines.close()


def test_factory_is_cached_and_loads_nothing() -> None:
    first = get_local_speech()
    assert get_local_speech() is first
    # Nothing loaded at creation (only this test uses the process-wide instance).
    assert not first.stt.loaded and not first.tts.loaded


async def ticker(stop: asyncio.Event, gaps: list[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def test_transcribe_keeps_the_loop_free_and_relays_partials(
    speech: LocalSpeech, say: Callable[[str], bytes], word_recall: Callable[[str, str], float]
) -> None:
    text = "How fast should code reviews be? Within one working day."
    audio = say(text)
    partials: list[str] = []

    async def on_partial(partial: str) -> None:  # an async sender, like a WebSocket
        await asyncio.sleep(0)
        partials.append(partial)

    stop, gaps = asyncio.Event(), []
    tick = asyncio.create_task(ticker(stop, gaps))
    started = time.perf_counter()
    result = await speech.atranscribe(audio, on_partial=on_partial)
    elapsed = time.perf_counter() - started
    stop.set()
    await tick
    assert word_recall(text, result.text) >= 0.8, result.text
    assert partials and partials[-1] == result.text  # every partial delivered before the result
    # Blocking would stall the loop for the whole transcription; allow for a busy machine's scheduling.
    assert max(gaps) < min(0.25, elapsed / 2), (max(gaps), elapsed)


async def test_synthesize_and_speak_sentence_by_sentence(speech: LocalSpeech) -> None:
    pcm = await speech.asynthesize("Hello there.")
    assert len(pcm) > 0.3 * speech.tts.rate * 2

    answer = "Reviews take **one day** [1].\n\n```python\nx = 1\n```\n\nSmall changes go first."
    spoken = [(sentence, len(audio)) async for sentence, audio in speech.aspeak(answer)]
    assert [s for s, _ in spoken] == ["Reviews take one day.", CODE_NOTE, "Small changes go first."]
    assert all(n > 0.3 * speech.tts.rate * 2 for _, n in spoken)


async def test_speaking_can_stop_early(speech: LocalSpeech) -> None:
    stream = speech.aspeak("One. Two. Three. Four.")
    first = await anext(stream)
    await stream.aclose()  # barge-in: the caller stops listening
    assert first[0] == "One."
    assert [s async for s, _ in speech.aspeak("")] == []


async def test_concurrent_calls_all_complete(speech: LocalSpeech, say: Callable[[str], bytes]) -> None:
    audio = say("Good morning.")
    results = await asyncio.gather(
        speech.atranscribe(audio), speech.atranscribe(audio), speech.asynthesize("Yes."), speech.asynthesize("No.")
    )
    assert all("morning" in r.text.lower() for r in results[:2])
    assert all(len(r) > 0 for r in results[2:])


async def test_short_sentences_are_synthesized_once(speech: LocalSpeech) -> None:
    text = "The sources are in the chat."
    first = await speech.asynthesize(text)
    started = time.perf_counter()
    again = await speech.asynthesize(text)
    assert again == first and time.perf_counter() - started < 0.005  # from the cache, not the engine
    long = "A longer sentence that is not worth keeping, since answers rarely repeat it word for word at all."
    assert await speech.asynthesize(long) == await speech.asynthesize(long)  # deterministic, synthesized twice
