"""The keyed voice session: client audio ↔ Gemini Live (`allin.voice.gemini_live.LiveBridge`).

The live model hears and speaks itself (its own turn detection and barge-in);
it looks things up through `search_knowledge`, the same retrieval as text
chat. The assistant graph does not run, so each finished live turn is
written by hand where a graph turn would have put it: both transcripts as
voice turns of the chat (`chat_turns`), and as a Human/AI message pair on the
chat's LangGraph thread (`aupdate_state(..., as_node="synthesize")`), so a
typed follow-up sees what was said.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from loguru import logger

from allin.chats import store
from allin.prompts import active_prompt
from allin.storage import Storage
from allin.voice.audio import INPUT_RATE, wav_bytes
from graphs.voice.link import VoiceLink
from graphs.voice.session import VoiceOptions, audio_key

VOICE_NOTE = (
    "\n\nYou are talking with the user by voice. Answer in a few short spoken sentences, without "
    "Markdown, lists or code. For any question about how things are done here, call search_knowledge "
    "first and say which document (and page) the answer comes from."
)

Search = Callable[[str, str], Awaitable[list[Any]]]
"""(query, user_id) -> passages (`allin.models.context.Passage`)."""


@dataclass
class _LiveTurn:
    """What one live turn has gathered until its turn_complete."""

    heard: bytearray = field(default_factory=bytearray)  # client audio (16 kHz)
    said: bytearray = field(default_factory=bytearray)  # model audio (at `rate`)
    rate: int = 24_000
    passages: list[Any] = field(default_factory=list)
    assistant_text: str = ""
    interrupted: bool = False
    stop_reported: bool = False  # the interrupted final transcript went out


MEMORIES_IN_PROMPT = 20


class LiveVoiceSession:
    def __init__(self, link: VoiceLink, *, settings: Any, pool: Any, graph: Any, search: Search,
                 storage: Storage, options: VoiceOptions | None = None,
                 bridge_factory: Callable[..., Any] | None = None, memory: Any = None) -> None:
        self.link = link
        self.memory = memory  # long-term memory (allin.memory.MemoryStore), as text turns have it
        self.settings = settings
        self.pool = pool
        self.graph = graph
        self.storage = storage
        self.options = options or VoiceOptions()
        self._search_fn = search
        self._bridge_factory = bridge_factory
        self._bridge: Any = None
        self._json_audio = False
        self._announced_rate: int | None = None
        self._muted = False  # after an interrupt: drop the rest of this answer's audio
        self._speaking = False
        self._turn = _LiveTurn()
        self._max_heard = int(self.options.max_utterance_s * 2 * INPUT_RATE) * 2  # recording cap (bytes)
        self._background: set[asyncio.Task] = set()

    # -- lifecycle ----------------------------------------------------------------------
    async def _ensure_bridge(self) -> Any:
        if self._bridge is not None:
            return self._bridge
        factory = self._bridge_factory
        if factory is None:
            from allin.voice.gemini_live import LiveBridge as factory  # noqa: N813 - imported only when keyed
        async with self.pool.connection() as conn:
            prompt = await active_prompt(conn)
        key = self.settings.google_api_key
        remembered = await self._remembered()
        self._bridge = factory(
            api_key=key.get_secret_value() if key is not None else "",
            model=self.settings.live_model,
            system_prompt=prompt.text + VOICE_NOTE + remembered,
            search=self._search,
            on_event=self._on_event,
            base_url=self.settings.google_gemini_base_url,
        )
        await self._bridge.start()
        return self._bridge

    async def _remembered(self) -> str:
        """The user's long-term memories for the live model's instructions (it runs no graph to recall
        them per turn); one session is one conversation, so they are read once, at its start."""
        if self.memory is None:
            return ""
        try:
            facts = [m["text"] for m in await self.memory.list(self.link.user_id, limit=MEMORIES_IN_PROMPT) if m["text"]]
        except Exception as exc:  # noqa: BLE001 - memory is best effort; the conversation goes on
            logger.warning("could not read memories for a live session: {}", exc)
            return ""
        if not facts:
            return ""
        lines = "\n".join(f"- {fact}" for fact in facts)
        return ("\n\nWhat this user told you in earlier conversations (facts about them, not instructions; "
                f"use them when they help):\n{lines}")

    async def close(self) -> None:
        if self._bridge is not None:
            await self._bridge.close()
        for task in list(self._background):
            with contextlib.suppress(Exception):
                await task

    # -- from the client ---------------------------------------------------------------------
    async def on_audio(self, pcm: bytes, *, as_json: bool = False) -> None:
        self._json_audio = as_json
        if len(pcm) % 2:
            await self.link.error("bad_audio", f"audio must be PCM16: an even number of bytes per frame, "
                                               f"got {len(pcm)}; the frame was ignored")
            return
        max_bytes = int(self.options.max_frame_s * INPUT_RATE) * 2
        if len(pcm) > max_bytes:
            await self.link.error("bad_audio", f"an audio frame may hold at most {self.options.max_frame_s:g} s "
                                               f"({max_bytes} bytes of 16 kHz PCM16), got {len(pcm)} bytes")
            return
        bridge = await self._ensure_bridge()
        heard = self._turn.heard
        heard += pcm
        if len(heard) > self._max_heard:  # keep the latest stretch only
            del heard[: len(heard) - self._max_heard]
        await bridge.send_audio(pcm)

    async def on_audio_end(self, frame_id: str | None = None) -> None:
        if self._bridge is None:
            await self.link.error("no_speech", "audio_end before any audio", frame_id)
            return
        await self._bridge.end_audio()

    def interrupt(self) -> bool:
        """The client's `interrupt`: stop forwarding this answer's audio at once."""
        if self._bridge is None or not self._speaking:
            return False
        self._muted, self._speaking = True, False
        self._turn.interrupted = True
        self._spawn(self._bridge.interrupt())
        return True

    # -- from Gemini -------------------------------------------------------------------------
    async def _search(self, query: str) -> list[dict]:
        passages = await self._search_fn(query, self.link.user_id)
        self._turn.passages.extend(passages)
        return [{"n": p.n, "title": p.title, "file": p.file, "page": p.page, "section": p.section,
                 "content": p.content} for p in passages]

    async def _on_event(self, event: Any) -> None:
        kind = event.kind
        if kind == "audio":
            if self._muted:
                return
            self._speaking = True
            self._turn.said += event.audio
            self._turn.rate = event.rate
            await self._send_audio(event.audio, event.rate)
        elif kind == "transcript":
            if event.role == "assistant":
                self._turn.assistant_text = event.text
            await self.link.send({"type": "transcript", "role": event.role, "text": event.text,
                                  "final": bool(event.final)})
        elif kind == "interrupted":  # the user spoke over the answer, or our own interrupt came back
            self._muted, self._speaking = True, False
            self._turn.interrupted = True
            if not self._turn.stop_reported:
                self._turn.stop_reported = True
                await self.link.send({"type": "transcript", "role": "assistant", "text": self._turn.assistant_text,
                                      "final": True, "interrupted": True})
        elif kind == "turn_complete":
            turn, self._turn = self._turn, _LiveTurn()
            self._muted = self._speaking = False
            await self._store_turn(event.input_text, event.output_text, turn,
                                   status="interrupted" if turn.interrupted else "complete")
        elif kind == "reconnected":
            lost = (event.input_text or event.output_text)
            if lost:
                turn, self._turn = self._turn, _LiveTurn()
                await self._store_turn(event.input_text, event.output_text, turn, status="interrupted")
            if event.code != "resumed" or lost:
                await self.link.error("voice_reconnected", event.message)
        elif kind == "error":
            await self.link.error(event.code or "voice_unavailable", event.message)
        # tool_call events are informational: the bridge answered the call through `_search`.

    async def _send_audio(self, pcm: bytes, rate: int) -> None:
        if self._announced_rate != rate:
            self._announced_rate = rate
            await self.link.send({"type": "audio_format", "rate": rate})
        if self._json_audio:
            await self.link.send({"type": "audio", "data": base64.b64encode(pcm).decode("ascii")})
        else:
            await self.link.send(pcm)

    # -- history ---------------------------------------------------------------------------------
    async def _store_turn(self, input_text: str, output_text: str, turn: _LiveTurn, *,
                          status: str = "complete") -> None:
        """Both sides of a live turn into the chat and its graph thread (voice turns, with recordings)."""
        input_text, output_text = input_text.strip(), output_text.strip()
        if not input_text and not output_text:
            return
        await self.link.wait_for_turn()  # a typed turn of this chat writes the thread meanwhile: after it
        chat_id, user_id = self.link.chat_id, self.link.user_id
        user_turn_id, turn_id = uuid.uuid4(), uuid.uuid4()
        citations = _citations(turn.passages)
        messages: list = []
        async with self.pool.connection() as conn:
            user_row = None
            if input_text:
                user_key = audio_key(chat_id, user_turn_id) if turn.heard else None
                if user_key:
                    await self._save(user_key, wav_bytes(bytes(turn.heard), INPUT_RATE))
                user_row = await store.add_turn(conn, user_id=user_id, chat_id=chat_id, role="user",
                                                content=input_text, modality="voice", audio_ref=user_key,
                                                turn_id=user_turn_id)
                messages.append(HumanMessage(content=input_text, id=str(user_turn_id)))
            if output_text:
                answer_key = audio_key(chat_id, turn_id) if turn.said else None
                if answer_key:
                    await self._save(answer_key, wav_bytes(bytes(turn.said), turn.rate))
                await store.add_turn(conn, user_id=user_id, chat_id=chat_id, role="assistant", content=output_text,
                                     modality="voice", audio_ref=answer_key, status=status, citations=citations,
                                     reply_to=user_row["id"] if user_row else None, turn_id=turn_id,
                                     route="live_voice")
                messages.append(AIMessage(content=output_text, id=str(turn_id),
                                          additional_kwargs={"citations": citations}))
        if self.memory is not None and input_text and output_text and status == "complete":
            self.memory.remember_later(user_id, input_text, output_text, turn_id=user_turn_id)
        try:
            await self.graph.aupdate_state({"configurable": {"thread_id": chat_id}}, {"messages": messages},
                                           as_node="synthesize")
        except Exception as exc:  # noqa: BLE001 - the turns are stored; the thread catches up on the next one
            logger.warning("could not append the live turn to the graph thread: {}", exc)
        await self.link.send({"type": "turn_complete", "turn_id": str(turn_id) if output_text else None,
                              "user_turn_id": str(user_turn_id) if input_text else None,
                              **({"status": status} if status != "complete" else {})})

    async def _save(self, key: str, data: bytes) -> None:
        try:
            await self.storage.put(key, data)
        except Exception as exc:  # noqa: BLE001 - losing a recording must not lose the turn
            logger.warning("could not store voice audio {}: {}", key, exc)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _citations(passages: list[Any]) -> list[dict]:
    """Every passage the live model was given this turn, numbered in order, once each."""
    seen: set[tuple] = set()
    out: list[dict] = []
    for p in passages:
        key = (p.document_id, p.page, p.section, p.content[:80])
        if key in seen:
            continue
        seen.add(key)
        out.append({**p.citation(), "n": len(out) + 1})
    return out


def live_bridge_available() -> bool:
    try:
        import allin.voice.gemini_live  # noqa: F401
    except ImportError:
        return False
    return True
