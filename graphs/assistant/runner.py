"""One assistant turn end to end: store the user turn, run the graph, stream frames, store the answer.

Used by `/ws`, the offline voice path, the CLI and evaluation, so all of them
write the same records. The run does not depend on the client staying
connected: `emit` may fail or be dropped and the turn still completes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from loguru import logger
from psycopg.errors import UniqueViolation
from psycopg_pool import AsyncConnectionPool

from allin.chats import store
from allin.models.errors import TurnTimeout, user_message
from allin.prompts import current_prompt
from allin.tracing import Tracing, user_hash
from graphs.assistant.context import Context

Emit = Callable[[dict], Awaitable[None]]


async def _drop(_: dict) -> None:
    return None


ORPHAN_GRACE_S = 5
ORPHAN_LOCK = 0x416C6C696E_01  # pg advisory lock key: one replica sweeps at a time
STOPPED_REPLY = "(No answer: the server stopped while working on this question. Please ask again.)"


@dataclass
class TurnResult:
    user_turn_id: uuid.UUID
    turn_id: uuid.UUID
    status: str  # complete | interrupted | error
    content: str
    citations: list[dict] = field(default_factory=list)
    code: list[dict] = field(default_factory=list)
    route: str | None = None
    error_code: str | None = None
    duration_ms: int = 0
    node_ms: dict[str, float] = field(default_factory=dict)
    passages: list[dict] = field(default_factory=list)
    prompt_version: int | None = None
    modality: str = "text"
    audio_ref: str | None = None  # the answer's recording (voice turns)
    question: str = ""  # the user's stored words (after-turn work needs them; saves reading them back)


class TurnRunner:
    def __init__(self, graph: Any, pool: AsyncConnectionPool, *, settings: Any, memory: Any = None,
                 metrics: Any = None, on_turn_done: Callable[[dict, TurnResult], Awaitable[Any]] | None = None,
                 tracing: Tracing | None = None, run_name: str = "allin-turn"):
        self.graph = graph
        self.pool = pool
        self.settings = settings
        self.memory = memory
        self.metrics = metrics
        self.on_turn_done = on_turn_done
        self._after_turns: set[asyncio.Task] = set()  # after-turn work left running (see `drain`)
        self.tracing = tracing  # LangSmith, only when a key is configured (allin.tracing)
        self.run_name = run_name

    def config(self, chat_id: uuid.UUID | str, user_id: uuid.UUID | str, *, prompt_version: int | None = None) -> dict:
        metadata: dict[str, Any] = {"chat_id": str(chat_id), "mode": self.settings.mode, "user": user_hash(user_id)}
        if prompt_version is not None:
            metadata["prompt_version"] = prompt_version
        config: dict[str, Any] = {"configurable": {"thread_id": str(chat_id)}, "run_name": self.run_name}
        if self.tracing is not None:
            metadata = {**self.tracing.metadata, **metadata}
            config["callbacks"] = self.tracing.callbacks()
        config["metadata"] = metadata
        return config

    def context(self, chat: dict, user_id: uuid.UUID | str, attachment_ids: tuple[str, ...] = ()) -> Context:
        prefs = chat.get("settings") or {}
        return Context(
            user_id=str(user_id),
            chat_id=str(chat["id"]),
            retrieval_mode=prefs.get("retrieval_mode") or self.settings.retrieval_mode,
            top_k=int(prefs.get("top_k") or self.settings.top_k),
            answer_style=prefs.get("answer_style") or "normal",
            attachment_ids=tuple(attachment_ids),
        )

    async def run(self, *, user_id: uuid.UUID | str, chat: dict, text: str, emit: Emit = _drop,
                  modality: str = "text", client_id: str | None = None, attachment_ids: tuple[str, ...] = (),
                  audio_ref: str | None = None, user_turn_id: uuid.UUID | None = None,
                  turn_id: uuid.UUID | None = None, answer_audio_ref: str | None = None,
                  after_turn_in_background: bool = False) -> TurnResult:
        """`audio_ref`: the user's recording; `answer_audio_ref`: where the spoken answer will be.
        A voice caller picks the turn ids so its recordings can be named after them.

        After a complete turn, `on_turn_done` (title, embeddings, memory) runs before this returns,
        or with `after_turn_in_background` after it: a live connection gets `turn_complete` without
        waiting for it (a title from Gemini is a model call), and a `chat` frame if the title changed.
        """
        started = time.perf_counter()
        chat_id = chat["id"]
        turn_id = turn_id or uuid.uuid4()

        async def send(frame: dict) -> None:
            try:
                await emit(frame)
            except Exception:  # noqa: BLE001 - a gone client must not stop the turn
                pass

        # The user's words are stored before any model call: a crash from here on loses nothing they typed.
        try:
            async with self.pool.connection() as conn:
                user_turn = await store.add_turn(
                    conn, user_id=user_id, chat_id=chat_id, role="user", content=text, modality=modality,
                    client_id=client_id, attachments=list(attachment_ids), audio_ref=audio_ref, turn_id=user_turn_id,
                )
                # Traces name the prompt version up front; synthesize reads it again (both cached for a second).
                prompt_version = (await current_prompt(self.pool)).version if self.tracing is not None else None
        except Exception as exc:  # noqa: BLE001 - not stored: say so, so the client can send it again
            if isinstance(exc, UniqueViolation) and client_id:
                # Not a database fault: the client reused a question's id (a blind resend after a reconnect).
                code, message = "duplicate_id", (
                    f"This chat already has a question sent with id {client_id[:64]!r}; it was not stored twice. "
                    "Its answer is in the chat's history; send a new question with a new id.")
            else:
                code, message = user_message(exc)
                message = f"{message} Your message was not saved; please send it again."
            logger.warning("could not store a question in chat {}: {}", chat_id, exc)
            await send({"type": "error", "code": code, "turn_id": str(turn_id), "message": message})
            return TurnResult(user_turn_id=user_turn_id or uuid.uuid4(), turn_id=turn_id, status="error",
                              content="", error_code=code, modality=modality)
        result = TurnResult(user_turn_id=user_turn["id"], turn_id=turn_id, status="complete", content="",
                            question=user_turn["content"],
                            modality=modality, audio_ref=answer_audio_ref)
        tokens: list[str] = []
        config = self.config(chat_id, user_id, prompt_version=prompt_version)
        ctx = self.context(chat, user_id, attachment_ids)
        # The human message carries the turn id, so checkpoints map back to stored turns (fork, export).
        graph_input = {"messages": [HumanMessage(content=text, id=str(user_turn["id"]))]}

        node_started = time.perf_counter()

        async def stream_graph() -> None:
            nonlocal node_started
            async for mode, payload in self.graph.astream(
                graph_input, config, context=ctx, stream_mode=["custom", "updates"],
                durability=self.settings.langgraph_durability,
            ):
                if mode == "custom":
                    piece = payload.get("token") if isinstance(payload, dict) else None
                    if piece:  # synthesize's answer as the model writes it (graphs/assistant/nodes.py)
                        tokens.append(piece)
                        await send({"type": "token", "text": piece, "turn_id": str(turn_id)})
                elif mode == "updates":
                    now = time.perf_counter()
                    for node, update in (payload or {}).items():
                        result.node_ms[node] = round((now - node_started) * 1000, 2)
                        if self.metrics is not None:
                            self.metrics.node_latency.labels(node).observe(now - node_started)
                        self._apply_update(node, update or {}, result)
                        if node == "code_execute":
                            for run in result.code:
                                await send({"type": "code", "turn_id": str(turn_id), **_code_frame(run)})
                    node_started = now

        deadline = asyncio.timeout(self.settings.turn_timeout_s)  # no turn runs forever: the orphan sweep relies on it
        try:
            async with deadline:
                await stream_graph()
        except asyncio.CancelledError:
            result.status, result.content = "interrupted", "".join(tokens)
            await asyncio.shield(self._finish(user_id, chat, result, config, interrupted=True))
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a stored turn and an error frame
            if deadline.expired():
                exc = TurnTimeout(f"the turn ran past {self.settings.turn_timeout_s} s")
            code, message = user_message(exc)
            logger.opt(exception=exc).warning("turn failed in chat {}: {}", chat_id, code)
            result.status, result.error_code, result.content = "error", code, "".join(tokens)
            if self.metrics is not None:
                self.metrics.model_errors.labels(self.settings.mode, code).inc()
            try:
                await self._finish(user_id, chat, result, config, error_message=message)
            except Exception as store_exc:  # noqa: BLE001 - database down too: the orphan sweep answers later
                logger.warning("could not store the failed turn in chat {}: {}", chat_id, store_exc)
            # Last: for the client an error frame ends the turn, so nothing of it may still be running.
            await send({"type": "error", "code": code, "message": message, "turn_id": str(turn_id)})
            return result

        try:
            await self._finish(user_id, chat, result, config)
        except Exception as exc:  # noqa: BLE001 - the database went away at the very end
            code, message = user_message(exc)
            logger.warning("could not store the answer in chat {}: {}", chat_id, exc)
            result.status, result.error_code = "error", code
            # The orphan sweep gives the question its "interrupted" reply once the database is back.
            await send({"type": "error", "code": code, "turn_id": str(turn_id),
                        "message": f"{message} This answer could not be saved."})
            return result
        result.duration_ms = int((time.perf_counter() - started) * 1000)
        await send({"type": "message", "role": "assistant", "content": result.content,
                    "citations": result.citations, "turn_id": str(turn_id)})
        await send({"type": "turn_complete", "turn_id": str(turn_id), "user_turn_id": str(result.user_turn_id)})
        if self.metrics is not None:
            self.metrics.turns.labels(modality, result.status).inc()
            self.metrics.turn_latency.labels(modality).observe(time.perf_counter() - started)
        if self.on_turn_done is not None:
            after = self._after_turn(chat, result, send)
            if after_turn_in_background:
                task = asyncio.create_task(after, name=f"after-turn-{chat_id}")
                self._after_turns.add(task)
                task.add_done_callback(self._after_turns.discard)
            else:
                await after
        return result

    async def _after_turn(self, chat: dict, result: TurnResult, send: Emit) -> None:
        assert self.on_turn_done is not None
        try:
            changed = await self.on_turn_done(chat, result)
        except Exception as exc:  # noqa: BLE001 - titles/memory are best effort, never fail the turn
            logger.warning("after-turn work failed: {}", exc)
            return
        if isinstance(changed, dict) and changed:
            await send({"type": "chat", "chat_id": str(chat["id"]), **changed})

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for after-turn work still running (shutdown: before the pool closes)."""
        if self._after_turns:
            await asyncio.wait(set(self._after_turns), timeout=timeout)

    async def answer_orphaned_turns(self) -> int:
        """Store an "interrupted" reply for each user turn a dead process left unanswered.

        Only turns older than TURN_TIMEOUT_S (+ grace) qualify: no live turn on any replica runs
        that long. One replica at a time (advisory lock), so no turn gets two replies. The
        thread gets the same reply, so the next turn's history matches what the user sees.
        """
        answered = 0
        async with self.pool.connection() as conn, conn.transaction():
            locked = await (await conn.execute("SELECT pg_try_advisory_xact_lock(%s) AS ok", (ORPHAN_LOCK,))).fetchone()
            if not locked["ok"]:
                return 0
            for turn in await store.unanswered_user_turns(
                    conn, older_than_s=self.settings.turn_timeout_s + ORPHAN_GRACE_S):
                config = self.config(turn["chat_id"], turn["user_id"])
                reply_id = uuid.uuid4()
                try:
                    snapshot = await self.graph.aget_state(config)
                    known = {m.id for m in (snapshot.values or {}).get("messages", [])}
                    question = [] if str(turn["id"]) in known else [HumanMessage(turn["content"], id=str(turn["id"]))]
                    await self.graph.aupdate_state(
                        config, {"messages": [*question, AIMessage(STOPPED_REPLY, id=str(reply_id))]},
                        as_node="synthesize")
                except Exception as exc:  # noqa: BLE001 - the stored reply matters more than the thread's copy
                    logger.warning("could not add the interrupted reply to thread {}: {}", turn["chat_id"], exc)
                await store.add_turn(conn, user_id=turn["user_id"], chat_id=turn["chat_id"], role="assistant",
                                     content=STOPPED_REPLY, modality=turn["modality"], status="interrupted",
                                     reply_to=turn["id"], error="server_stopped", turn_id=reply_id)
                answered += 1
        if answered:
            logger.info("answered {} turn(s) left unanswered by a stopped server", answered)
        return answered

    @staticmethod
    def _apply_update(node: str, update: dict, result: TurnResult) -> None:
        if "route" in update:
            result.route = update["route"]
        if node == "retrieve":
            result.passages = update.get("passages") or []
        if node == "code_execute":
            result.code = update.get("code_runs") or []
        if node == "synthesize":
            msgs = update.get("messages") or []
            if msgs:
                result.content = msgs[-1].content if isinstance(msgs[-1].content, str) else str(msgs[-1].content)
            result.citations = update.get("citations") or []
            # Left out of the update when it did not change (nodes.only_changes); the reply carries it.
            result.prompt_version = update.get("prompt_version", msgs[-1].additional_kwargs.get("prompt_version")
                                               if msgs else None)

    async def _finish(self, user_id, chat: dict, result: TurnResult, config: dict, *, interrupted: bool = False,
                      error_message: str | None = None) -> None:
        content = result.content
        if interrupted and not content:
            content = "(interrupted before any answer)"
        if error_message and not content:
            content = error_message
        if interrupted or error_message:
            # Keep the thread's history in step with what the user saw.
            try:
                await self.graph.aupdate_state(
                    config, {"messages": [AIMessage(content=content, id=str(result.turn_id))]}, as_node="synthesize"
                )
            except Exception as exc:  # noqa: BLE001
                logger.warning("could not append the partial answer to the thread: {}", exc)
        async with self.pool.connection() as conn:
            await store.add_turn(
                conn, user_id=user_id, chat_id=chat["id"], role="assistant", content=content,
                modality=result.modality, audio_ref=result.audio_ref, status=result.status,
                reply_to=result.user_turn_id, citations=result.citations,
                code=[_code_frame(c) for c in result.code] or None, route=result.route,
                prompt_version=result.prompt_version, error=result.error_code, turn_id=result.turn_id,
            )


def _code_frame(run: dict) -> dict:
    return {k: run.get(k) for k in ("language", "code", "stdout", "stderr", "outcome", "duration_ms")} | (
        {"message": run["message"]} if run.get("message") else {}
    )
