"""Voice over `/ws`: decodes client audio frames and hands them to the connection's voice session.

`start_voice` (a startup hook) registers `VoiceHandler` as
`res.extras["voice_handler"]`; the connection calls it with each audio frame
(raw bytes, a base64 `audio` frame or `audio_end`). The first audio frame of
a connection creates its session: the offline pipeline (`graphs.voice.session`)
or, with a Gemini key and the live bridge installed, `graphs.voice.live`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from typing import TYPE_CHECKING, Any

from loguru import logger

from allin.storage import Storage, make_storage
from allin.voice.local import LocalSpeech, shared_local_speech
from graphs.voice.link import Tap
from graphs.voice.live import LiveVoiceSession, live_bridge_available
from graphs.voice.session import VoiceOptions, VoiceSession
from tools.knowledge import search_knowledge
from api.state import Resources
from api.ws import protocol as p

if TYPE_CHECKING:
    from api.ws.endpoint import Connection

STT_MARGIN_S = 5.0  # the STT's own length guard sits past the session's, which reports first


class ConnectionLink:
    """`graphs.voice.link.VoiceLink` over a `/ws` connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @property
    def user_id(self) -> str:
        assert self.conn.user is not None
        return str(self.conn.user.id)

    @property
    def chat_id(self) -> str:
        assert self.conn.chat is not None
        return str(self.conn.chat["id"])

    async def send(self, frame: dict | bytes) -> None:
        await self.conn.send(frame)

    async def error(self, code: str, message: str, reply_to: str | None = None) -> None:
        await self.conn.send(p.error_frame(code, message, reply_to))

    async def start_turn(self, text: str, *, tap: Tap, frame_id: str | None, audio_ref: str,
                         user_turn_id: uuid.UUID, turn_id: uuid.UUID, answer_audio_ref: str | None
                         ) -> asyncio.Task | None:
        frame = p.Text(type="text", text=text[: p.MAX_TEXT_CHARS], id=frame_id)
        return await self.conn.start_turn(frame, modality="voice", audio_ref=audio_ref, tap=tap,
                                          user_turn_id=user_turn_id, turn_id=turn_id,
                                          answer_audio_ref=answer_audio_ref)

    async def cancel_turn(self) -> bool:
        return await self.conn.cancel_turn()

    async def wait_for_turn(self) -> None:
        active = self.conn.hub.turns.get(self.chat_id)
        if active is not None:
            await asyncio.wait([active.task])


class VoiceHandler:
    """Per process: the speech engines and options shared by every connection's session."""

    def __init__(self, res: Resources, *, speech: LocalSpeech | None = None, storage: Storage | None = None,
                 options: VoiceOptions | None = None) -> None:
        settings = res.settings
        self.res = res
        self.options = options or VoiceOptions(
            vad=settings.voice_vad,
            end_silence_ms=settings.voice_end_silence_ms,
            early_stt_ms=settings.voice_early_stt_ms,
            max_utterance_s=settings.voice_max_utterance_s,
        )
        self.speech = speech or shared_local_speech(
            stt_threads=settings.voice_stt_threads, stt_prompt=settings.voice_stt_prompt or None,
            tts_speed=settings.voice_tts_speed, max_seconds=settings.voice_max_utterance_s + STT_MARGIN_S,
        )
        # Recordings go to the storage backend: audio_ref "audio/<chat>/<turn>.wav" is its key.
        self.storage = storage or make_storage(settings)  # shared by replicas when S3 is configured
        self.bridge_factory: Any = None  # keyed path: None = allin.voice.gemini_live.LiveBridge

    def new_session(self, conn: Connection) -> VoiceSession | LiveVoiceSession:
        link = ConnectionLink(conn)
        if self.res.settings.gemini_enabled:
            if live_bridge_available():
                return self._live_session(link)
            logger.warning("GOOGLE_API_KEY is set but the Gemini Live bridge is missing: using local speech")
        early_stt = self.res.metrics.voice_early_stt
        return VoiceSession(link, speech=self.speech, storage=self.storage, options=self.options,
                            on_early_stt=lambda result: early_stt.labels(result=result).inc())

    def _live_session(self, link: ConnectionLink) -> LiveVoiceSession:
        res = self.res

        async def search(query: str, user_id: str) -> list:
            return await search_knowledge(res.pool, res.extras["deps"].embedder, query, user_id=user_id,
                                          top_k=res.settings.top_k)

        return LiveVoiceSession(link, settings=res.settings, pool=res.pool, graph=res.extras["graph"],
                                search=search, storage=self.storage, options=self.options,
                                bridge_factory=self.bridge_factory, memory=res.extras.get("memory"))

    async def __call__(self, conn: Connection, frame: bytes | p.Audio | p.AudioEnd) -> None:
        if conn.voice is None:
            if isinstance(frame, p.AudioEnd):
                await conn.send(p.error_frame("no_speech", "audio_end before any audio", frame.id))
                return
            conn.voice = self.new_session(conn)
        session = conn.voice
        if isinstance(frame, bytes):
            await session.on_audio(frame, as_json=False)
        elif isinstance(frame, p.Audio):
            try:
                pcm = base64.b64decode(frame.data, validate=True)
            except (binascii.Error, ValueError):
                await conn.send(p.error_frame("bad_audio", "audio.data must be standard base64", frame.id))
                return
            await session.on_audio(pcm, as_json=True)
        elif isinstance(frame, p.AudioEnd):
            await session.on_audio_end(frame.id)


async def start_voice(res: Resources) -> None:
    """Startup hook: register the voice handler; warm the engines up in the background if configured."""
    handler = VoiceHandler(res)
    res.extras["voice_handler"] = handler
    # Loading Whisper + the voice takes 1-3 s; without a warm-up the first utterance pays it.
    if getattr(res.settings, "voice_warm_up", False) and not res.settings.gemini_enabled:
        task = asyncio.create_task(_warm_up(handler), name="voice-warm-up")
        res.extras["voice_warm_up"] = task


async def _warm_up(handler: VoiceHandler) -> None:
    try:
        await handler.speech.awarm_up()
        await asyncio.to_thread(VoiceSession.make_vad, handler.options)
    except Exception as exc:  # noqa: BLE001 - voice then loads on first use (or reports voice_unavailable)
        logger.warning("voice warm-up failed: {}", exc)
