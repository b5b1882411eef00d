"""The offline voice session of one connection: VAD → local STT → the assistant turn → local TTS.

Audio from the client is cut into utterances by voice-activity detection (or
by the client's `audio_end`). Each utterance is transcribed (partial
transcripts while it decodes), saved as a WAV, and run as an ordinary turn
of the chat through the connection, so it is stored as a voice turn in the
same history and graph thread as typed ones. The answer's tokens feed a
sentence splitter; speech starts on the first complete sentence while the
rest is still being written. Speaking while Allin speaks (or `interrupt`)
stops the audio at once and cancels a turn that is still generating.

Transcription starts early: once `early_stt_ms` of silence follows speech,
the utterance so far is transcribed while the rest of the end-of-utterance
silence (or the client's `audio_end`) is still to come. If the user says
nothing more, that transcript is the utterance's; if they go on, it is
dropped and the whole utterance is transcribed when it ends.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from allin.storage import Storage
from allin.voice.audio import INPUT_RATE, AudioError, wav_bytes
from allin.voice.local import LocalSpeech
from allin.voice.stt import STTUnavailable, Transcript
from allin.voice.tts import TTSUnavailable
from allin.voice.vad import EarlyCut, Utterances
from graphs.voice.link import VoiceLink
from graphs.voice.sentences import SentenceStream
from graphs.voice.speaker import Speaker


@dataclass
class VoiceOptions:
    """Per-session knobs (the handler fills them from Settings)."""

    vad: str = "silero"
    end_silence_ms: int = 600
    early_stt_ms: int = 150  # silence after speech that starts a transcription (0: only when it ends)
    max_utterance_s: float = 30.0
    max_frame_s: float = 5.0  # one client audio frame; streaming clients send 20-100 ms
    playback_lead_s: float = 1.0  # how far audio may run ahead of the listener's playback
    chunk_ms: int = 100  # server audio frame length


def audio_key(chat_id: str, turn_id: uuid.UUID | str) -> str:
    """Storage key of a voice turn's recording (under DATA_DIR/files/ with local storage)."""
    return f"audio/{chat_id}/{turn_id}.wav"


def _has_words(text: str) -> bool:
    return any(c.isalnum() for c in text)


@dataclass
class _Reply:
    """One utterance being answered: transcription, then the turn, then speech."""

    pcm: bytes = b""
    task: asyncio.Task | None = None
    speaker: Speaker | None = None
    turn_task: asyncio.Task | None = None
    interrupted: bool = False
    spoken_turn: uuid.UUID | None = None
    answer_key: str | None = None
    sentences: list[str] = field(default_factory=list)
    early: asyncio.Task[Transcript] | None = None  # a transcription started before the utterance ended

    @property
    def active(self) -> bool:
        return self.task is not None and not self.task.done()


class VoiceSession:
    def __init__(self, link: VoiceLink, *, speech: LocalSpeech, storage: Storage,
                 options: VoiceOptions | None = None, on_early_stt: Callable[[str], None] | None = None) -> None:
        self.link = link
        self.on_early_stt = on_early_stt  # told "used" or "dropped" for each early transcription (metrics)
        self.speech = speech
        self.storage = storage
        self.options = options or VoiceOptions()
        self._vad: Utterances | None = None  # made on the first frame (the model loads off the loop)
        self._json_audio = False  # answer in the format the client used last
        self._announced_rate: int | None = None
        self._rate: int | None = None
        self._dropping = False  # the rest of an over-long utterance is ignored until it ends
        self._heard = False  # an utterance was taken since the last audio_end
        self._carry = b""  # an utterance cut short by the user going on talking: heard again with the rest
        self._reply = _Reply()
        self._early: tuple[EarlyCut, asyncio.Task[Transcript]] | None = None
        self.closed = False

    @staticmethod
    def make_vad(options: VoiceOptions) -> Utterances:
        """The utterance cutter (loads the Silero model the first time in the process: blocking)."""
        # The detector's own cut-off sits past ours, so an over-long utterance is
        # reported and dropped here rather than silently answered in two halves.
        return Utterances(detector=options.vad, end_silence_ms=options.end_silence_ms,  # type: ignore[arg-type]
                          max_utterance_s=options.max_utterance_s * 2 + 5)

    # -- audio in ---------------------------------------------------------------------
    async def on_audio(self, pcm: bytes, *, as_json: bool = False) -> None:
        self._json_audio = as_json
        if len(pcm) % 2:
            await self.link.error("bad_audio", f"audio must be PCM16: an even number of bytes per frame, "
                                               f"got {len(pcm)}; the frame was ignored")
            return
        max_bytes = int(self.options.max_frame_s * INPUT_RATE) * 2
        if len(pcm) > max_bytes:
            await self.link.error("bad_audio", f"an audio frame may hold at most {self.options.max_frame_s:g} s "
                                               f"({max_bytes} bytes of 16 kHz PCM16), got {len(pcm)} bytes; "
                                               "send smaller frames")
            return
        if not pcm:
            return
        if self._vad is None:
            self._vad = await asyncio.to_thread(self.make_vad, self.options)
        # Silero scores a 32 ms window in ~0.1 ms: streaming-sized frames stay on the loop.
        if len(pcm) > INPUT_RATE:  # > 0.5 s
            done = await asyncio.to_thread(self._vad.feed, pcm)
        else:
            done = self._vad.feed(pcm)
        if self._vad.in_speech and self._reply.active and not self._dropping:
            await self.barge_in()
        for utterance in done:
            await self._take(utterance, None)
        if not done and self.options.early_stt_ms:
            self._start_early_stt()
        if self._vad.open_s > self.options.max_utterance_s:
            self._vad.discard()
            if not self._dropping:
                self._dropping = True
                await self.link.error("utterance_too_long", f"an utterance may last at most "
                                      f"{self.options.max_utterance_s:g} s; it was dropped. Pause between "
                                      "questions or send audio_end sooner")

    async def on_audio_end(self, frame_id: str | None = None) -> None:
        utterance = self._vad.flush() if self._vad is not None else None
        dropping, heard = self._dropping, self._heard
        self._dropping = self._heard = False
        if dropping:
            return  # already reported as too long
        if utterance is None and self._carry:
            utterance, self._carry = self._carry, b""
        if utterance is not None:
            await self._take(utterance, frame_id)
        elif not heard:
            await self.link.error("no_speech", "no speech was heard before audio_end (silence or noise only); "
                                               "check the microphone and speak, then send audio_end", frame_id)

    def _start_early_stt(self) -> None:
        assert self._vad is not None
        cut = self._vad.early_cut(self.options.early_stt_ms)
        if cut is None or self._dropping:
            return
        if self._early is not None:
            if self._early[0].speech_seen == cut.speech_seen:
                return  # already transcribing this speech
            self._drop_early()  # the user went on: that transcript is stale
        task = asyncio.create_task(self.speech.atranscribe(cut.audio), name="voice-early-stt")
        # A dropped early run's error (say, bad audio) is reported by the run that replaces it, not logged here.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._early = (cut, task)

    def _early_transcript(self, utterance: bytes) -> asyncio.Task[Transcript] | None:
        """The early transcription of exactly this utterance, if one was started."""
        if self._early is None:
            return None
        cut, task = self._early
        if self._vad is None or not cut.matches(utterance, self._vad):
            self._drop_early()
            return None
        self._early = None
        self._count_early("used")
        return task

    def _drop_early(self) -> None:
        if self._early is not None:
            self._early[1].cancel()
            self._early = None
            self._count_early("dropped")

    def _count_early(self, result: str) -> None:
        if self.on_early_stt is not None:
            self.on_early_stt(result)

    async def _take(self, utterance: bytes, frame_id: str | None) -> None:
        if self._dropping:
            self._dropping = False  # the tail of the over-long utterance ended: listen again
            self._drop_early()
            return
        self._heard = True
        if self._reply.active:
            await self.barge_in()
        if self._carry:
            joined = self._carry + utterance
            self._carry = b""
            if len(joined) <= self.options.max_utterance_s * INPUT_RATE * 2:
                utterance = joined  # an early transcript of the second part alone no longer matches
        reply = _Reply(pcm=utterance, early=self._early_transcript(utterance))
        self._reply = reply
        reply.task = asyncio.create_task(self._answer(reply, utterance, frame_id), name="voice-reply")

    # -- interruptions --------------------------------------------------------------------
    def interrupt(self) -> bool:
        """Stop speaking now (the `interrupt` frame): True when a reply was in progress.

        The connection cancels a turn still generating itself; a reply still
        transcribing is dropped here.
        """
        reply = self._reply
        if not reply.active or reply.interrupted:
            return False
        reply.interrupted = True
        if reply.speaker is not None:
            reply.speaker.stop()
        if reply.turn_task is None and reply.task is not None:
            reply.task.cancel()
        return True

    async def barge_in(self) -> None:
        """The user spoke over Allin: stop the audio, cancel the turn, wait until the reply wound down.

        If the reply was still being transcribed, the user had only paused: its
        audio is kept and heard again together with what they say next.
        """
        reply = self._reply
        if not reply.active:
            return
        if reply.turn_task is None and not reply.interrupted:
            self._carry = reply.pcm
        self.interrupt()
        if reply.turn_task is not None and not reply.turn_task.done():
            await self.link.cancel_turn()
        if reply.task is not None:
            await asyncio.wait([reply.task])

    async def close(self) -> None:
        """The socket closed: stop speaking; a running turn still completes and is stored."""
        self.closed = True
        self._drop_early()
        reply = self._reply
        if reply.speaker is not None:
            reply.speaker.stop()
        if reply.task is not None and not reply.task.done():
            reply.task.cancel()
            await asyncio.wait([reply.task])

    # -- one reply ------------------------------------------------------------------------
    async def _answer(self, reply: _Reply, pcm: bytes, frame_id: str | None) -> None:
        try:
            text = await self._transcribe(reply, pcm, frame_id)
            if text is None or reply.interrupted:
                return
            await self._run_turn(reply, pcm, text, frame_id)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - one failed reply must not end the session
            logger.opt(exception=exc).error("voice reply failed")
            await self.link.error("voice_error", "the spoken question could not be answered", frame_id)
        finally:
            if reply.speaker is not None:
                reply.speaker.stop()
            if reply.spoken_turn is not None:
                await self._finish_speech(reply)

    async def _transcribe(self, reply: _Reply, pcm: bytes, frame_id: str | None) -> str | None:
        async def partial(text: str) -> None:
            if not reply.interrupted:
                await self.link.send({"type": "transcript", "role": "user", "text": text, "final": False})

        try:
            if reply.early is not None:
                result = await reply.early  # started during the closing silence: often done already
            else:
                result = await self.speech.atranscribe(pcm, on_partial=partial)
        except AudioError as exc:
            code = "utterance_too_long" if exc.code == "too_long" else "bad_audio"
            await self.link.error(code, exc.message, frame_id)
            return None
        except STTUnavailable as exc:
            await self.link.error("voice_unavailable", f"speech recognition is not available: {exc}", frame_id)
            return None
        text = result.text.strip()
        if not _has_words(text):
            await self.link.error("no_speech", "sound was heard but no words could be made out; please repeat",
                                  frame_id)
            return None
        return text

    async def _run_turn(self, reply: _Reply, pcm: bytes, text: str, frame_id: str | None) -> None:
        chat_id = self.link.chat_id
        user_turn_id, turn_id = uuid.uuid4(), uuid.uuid4()
        user_key = audio_key(chat_id, user_turn_id)
        await self.link.send({"type": "transcript", "role": "user", "text": text, "final": True,
                              "turn_id": str(user_turn_id), **({"reply_to": frame_id} if frame_id else {})})
        # Written while the turn starts (a few ms of fsync that the answer need not wait for).
        saving = asyncio.create_task(self._save(user_key, wav_bytes(pcm, INPUT_RATE)))

        speaker = await self._speaker(reply, turn_id)
        stream = SentenceStream()

        async def tap(frame: dict) -> None:
            if speaker is None:
                return
            kind = frame.get("type")
            if kind == "token":
                for sentence in stream.feed(frame.get("text") or ""):
                    speaker.say(sentence)
            elif kind == "message":
                for sentence in stream.finish(frame.get("content") or ""):
                    speaker.say(sentence)
                speaker.end()
            elif kind == "error":
                speaker.end()

        answer_key = audio_key(chat_id, turn_id) if speaker is not None else None
        task = await self.link.start_turn(text, tap=tap, frame_id=frame_id, audio_ref=user_key,
                                          user_turn_id=user_turn_id, turn_id=turn_id, answer_audio_ref=answer_key)
        if task is None:  # refused (turn in progress, rate limit): nothing was stored
            if speaker is not None:
                speaker.stop()
            await saving
            await self._delete(user_key)
            return
        reply.turn_task, reply.spoken_turn, reply.answer_key = task, turn_id, answer_key
        if reply.interrupted:  # interrupted while the turn was being registered
            await self.link.cancel_turn()
        await asyncio.wait([task])  # not `await task`: cancelling this reply must not cancel the turn
        await saving
        if speaker is not None:
            speaker.end()  # a cancelled or failed turn sent no message frame
            await speaker.wait()
            if speaker.failed is not None:
                await self.link.error("voice_unavailable", "the answer could not be spoken; it is in the chat",
                                      frame_id)

    async def _speaker(self, reply: _Reply, turn_id: uuid.UUID) -> Speaker | None:
        """A speaker for this reply, or None (text only) when no local voice can be loaded."""
        try:
            if self._rate is None:
                # Reading the rate loads the engine (~0.5 s the first time): off the loop.
                self._rate = await asyncio.to_thread(lambda: self.speech.tts.rate)
        except TTSUnavailable as exc:
            await self.link.error("voice_unavailable", f"speech output is not available, answering in text: {exc}")
            return None

        async def on_sentence(sentence: str) -> None:
            reply.sentences.append(sentence)
            await self.link.send({"type": "transcript", "role": "assistant", "text": " ".join(reply.sentences),
                                  "final": False, "turn_id": str(turn_id)})

        speaker = Speaker(self.speech.asynthesize, self._send_audio, rate=self._rate, on_sentence=on_sentence,
                          lead_s=self.options.playback_lead_s, chunk_ms=self.options.chunk_ms)
        reply.speaker = speaker
        speaker.start()
        return speaker

    async def _send_audio(self, pcm: bytes) -> None:
        if self._announced_rate != self._rate:
            self._announced_rate = self._rate
            await self.link.send({"type": "audio_format", "rate": self._rate})
        if self._json_audio:
            await self.link.send({"type": "audio", "data": base64.b64encode(pcm).decode("ascii")})
        else:
            await self.link.send(pcm)

    async def _finish_speech(self, reply: _Reply) -> None:
        """The answer's recording and the final assistant transcript (what was actually said)."""
        speaker = reply.speaker
        if reply.answer_key is not None and speaker is not None:
            await self._save(reply.answer_key, wav_bytes(bytes(speaker.sent), speaker.rate))
        frame = {"type": "transcript", "role": "assistant", "text": " ".join(reply.sentences), "final": True,
                 "turn_id": str(reply.spoken_turn)}
        if reply.interrupted:
            frame["interrupted"] = True
        await self.link.send(frame)

    async def _save(self, key: str, data: bytes) -> None:
        try:
            await self.storage.put(key, data)
        except Exception as exc:  # noqa: BLE001 - losing a recording must not lose the turn
            logger.warning("could not store voice audio {}: {}", key, exc)

    async def _delete(self, key: str) -> None:
        try:
            await self.storage.delete(key)
        except Exception as exc:  # noqa: BLE001
            logger.warning("could not remove voice audio {}: {}", key, exc)
