"""The voice session's parts on their own: the streaming sentence splitter and the paced speaker."""

from __future__ import annotations

import asyncio
import time

import pytest

from allin.voice.local import LocalSpeech
from allin.voice.speakable import split_sentences
from graphs.voice.sentences import SentenceStream
from graphs.voice.speaker import Speaker

ANSWER = ("Reviews should be fast. Respond within one business day [1], e.g. first thing the next morning.\n\n"
          "```python\nprint('hi')\n```\n\nSources:\n[1] review_reviewer_speed, p. 1")


def tokens(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_sentences_come_out_as_soon_as_they_are_complete():
    stream = SentenceStream()
    got: list[tuple[int, str]] = []
    pieces = tokens(ANSWER)
    for i, piece in enumerate(pieces):
        got += [(i, s) for s in stream.feed(piece)]
    got += [(len(pieces), s) for s in stream.finish(ANSWER)]
    assert [s for _, s in got] == split_sentences(ANSWER)
    # The first sentence is out as soon as the next one has begun, long before the answer ends.
    assert got[0][1] == "Reviews should be fast."
    assert got[0][0] == ANSWER.index("Respond") // 3  # the token that starts the second sentence
    assert got[1][1] == "Respond within one business day, e.g. first thing the next morning."
    assert got[-1] == (len(pieces), "The sources are in the chat.")


def test_finish_uses_the_whole_answer_and_never_repeats():
    stream = SentenceStream()
    assert stream.feed("One. Two. Thr") == ["One.", "Two."]
    assert stream.finish("One. Two. Three.") == ["Three."]
    assert stream.finish("One. Two. Three.") == []


@pytest.fixture(scope="module")
def speech() -> LocalSpeech:
    local = LocalSpeech()
    local.tts.synthesize("Warm up.")  # loads the voice and pays the first call's one-off costs
    return local


async def test_speech_starts_before_the_answer_is_written_and_is_paced(speech: LocalSpeech):
    sent: list[tuple[float, bytes]] = []

    async def send(pcm: bytes) -> None:
        sent.append((time.perf_counter(), pcm))

    said: list[str] = []

    async def on_sentence(s: str) -> None:
        said.append(s)

    rate = speech.tts.rate
    speaker = Speaker(speech.asynthesize, send, rate=rate, on_sentence=on_sentence, lead_s=0.3, chunk_ms=100)
    speaker.start()
    stream = SentenceStream()
    text = "Hello there. Then a second sentence."
    started = time.perf_counter()
    for piece in tokens(text, 4):
        for s in stream.feed(piece):
            speaker.say(s)
        await asyncio.sleep(0.15)  # a model writing ~25 characters a second
    written = time.perf_counter()
    for s in stream.finish(text):
        speaker.say(s)
    speaker.end()
    await speaker.wait()
    done = time.perf_counter()

    assert sent and sent[0][0] < written  # the first sentence was spoken while the rest was being written
    assert said == split_sentences(text)
    assert b"".join(p for _, p in sent) == bytes(speaker.sent)
    assert all(len(p) <= rate // 10 * 2 for _, p in sent)
    audio_s = len(speaker.sent) / 2 / rate
    # Paced: sending took about as long as the audio lasts (less the allowed lead).
    assert done - started >= audio_s - 0.3 - 0.15, (done - started, audio_s)
    for t, _ in sent:  # never more than the lead (+ one chunk) ahead of real-time playback
        ahead = sum(len(p) for tt, p in sent if tt <= t) / 2 / rate - (t - sent[0][0])
        assert ahead <= 0.3 + 0.1 + 0.02


async def test_stop_drops_everything_not_yet_sent(speech: LocalSpeech):
    sent: list[bytes] = []

    async def send(pcm: bytes) -> None:
        sent.append(pcm)

    async def on_sentence(_: str) -> None:
        return None

    speaker = Speaker(speech.asynthesize, send, rate=speech.tts.rate, on_sentence=on_sentence, lead_s=0.2)
    speaker.start()
    for s in split_sentences("One sentence here. Another sentence there. A third to finish the answer."):
        speaker.say(s)
    speaker.end()
    while not sent:
        await asyncio.sleep(0.01)
    assert speaker.stop() is True and not speaker.speaking
    count = len(sent)
    await asyncio.sleep(0.5)
    await speaker.wait()
    assert len(sent) == count and bytes(speaker.sent) == b"".join(sent)
    assert len(speaker.sent) / 2 / speaker.rate < 1.0  # most of the ~4 s answer was never sent
    speaker.say("ignored after stop")
    assert speaker.stop() is False
