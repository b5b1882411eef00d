"""Long-term memory per user, on mem0 over the app's Postgres.

mem0 embeds, stores and searches (hybrid: pgvector cosine + full text); its
Gemini call extracts facts when keyed. Listing and deleting use plain SQL on
mem0's table instead: mem0 2.2 lists without an order and cannot delete
"this id, if it is this user's" in one step. Every method takes the user id
and refuses to run without it.

mem0 is imported and built on first use (in a worker thread) or by `open()`,
so building a `MemoryStore` is instant.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from loguru import logger
from psycopg_pool import AsyncConnectionPool

from allin.memory.facts import mentions_self, self_statements
from allin.memory.options import COLLECTION, MemoryOptions
from allin.models.text import content_words

# "What do you know about me?" matches no memory by meaning: it asks for all of them.
_ABOUT_ME = re.compile(r"\b(?:about me|remember me)\b", re.I)
# A crashed attempt's claim on a turn expires after this long.
CLAIM_STALE = "10 minutes"
ASSISTANT_CHARS = 2000  # of the answer shown to Gemini as context for extraction
LIST_MAX = 1000
KNOWN_USERS = 10_000  # users whose having memories (or not) is remembered, the least recent dropped first

Mem0Factory = Callable[[], tuple[Any, Any]]


def _need(user_id: Any) -> str:
    if user_id is None or not str(user_id).strip():
        raise ValueError("user_id is required for every memory operation")
    return str(user_id).strip()


def _hash(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - mem0's own dedupe key, not security


def _time(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


class MemoryStore:
    """One per process. `infer`: Gemini extracts facts (keyed); else statements are kept verbatim."""

    def __init__(self, pool: AsyncConnectionPool, mem0_factory: Mem0Factory, *, infer: bool,
                 options: MemoryOptions | None = None) -> None:
        self.pool = pool
        self.infer = infer
        self.options = options or MemoryOptions()
        self._factory = mem0_factory
        self._mem0: Any = None
        self._vector_pool: Any = None
        self._ready_lock = asyncio.Lock()
        self._pending: set[asyncio.Task] = set()
        self._closed = False
        # user -> None (has memories) or the monotonic time until which "none" is trusted
        self._known: OrderedDict[str, float | None] = OrderedDict()

    # -- lifecycle ----------------------------------------------------------------------------
    async def _engine(self) -> Any:
        if self._mem0 is not None:
            return self._mem0
        async with self._ready_lock:
            if self._mem0 is None:
                if self._closed:
                    raise RuntimeError("the memory store is closed")
                started = time.perf_counter()
                self._mem0, self._vector_pool = await asyncio.to_thread(self._factory)
                logger.info("memory ready ({} mode) in {:.1f} s", "gemini" if self.infer else "offline",
                            time.perf_counter() - started)
        return self._mem0

    def open(self) -> None:
        """Build mem0 now, blocking (its first import is 2-4 s of CPU: pydantic models by the hundred).

        For scripts and benchmarks. The app does not call it: a blocking import at startup delays
        serving, and one in a worker thread at startup still holds the GIL much of the time, which
        on a busy machine made the database watcher's 1 s checks time out ("database down"). The
        app's first use that needs mem0 (a recall for a user with memories, or a write) pays the
        import instead, in a thread.
        """
        if self._mem0 is None:
            started = time.perf_counter()
            self._mem0, self._vector_pool = self._factory()
            logger.info("memory ready ({} mode) in {:.1f} s", "gemini" if self.infer else "offline",
                        time.perf_counter() - started)

    def remember_later(self, user_id: Any, user_text: str, assistant_text: str, *, turn_id: Any) -> asyncio.Task | None:
        """`remember_turn` in the background (the answer is not held up by it); `aclose` waits for it."""
        if self._closed:
            return None
        task = asyncio.get_running_loop().create_task(
            self.remember_turn(user_id, user_text, assistant_text, turn_id=turn_id), name=f"memory-{turn_id}"
        )
        self._pending.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.opt(exception=task.exception()).warning("memory write failed: {}", task.exception())

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for background memory writes (tests, shutdown)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)

    async def aclose(self) -> None:
        self._closed = True
        await self.drain(self.options.drain_timeout_s)
        for task in list(self._pending):
            task.cancel()
        async with self._ready_lock:
            if self._mem0 is not None:
                self._mem0.close()
            if self._vector_pool is not None:
                await asyncio.to_thread(self._vector_pool.close)
            self._mem0 = self._vector_pool = None

    # -- writing ------------------------------------------------------------------------------
    async def remember_turn(self, user_id: Any, user_text: str, assistant_text: str, *, turn_id: Any) -> list[str]:
        """Store what the user said about themselves in this turn; once per `turn_id` (ids of new memories)."""
        user = _need(user_id)
        if turn_id is None or not str(turn_id).strip():
            raise ValueError("turn_id is required: it makes a retried turn write its memories once")
        turn = str(turn_id)
        keyed = self.infer and mentions_self(user_text)
        facts = [] if keyed else self_statements(user_text)
        if not keyed and not facts:
            return []  # nothing about the user: no claim needed, a retry finds nothing either
        if not await self._claim(user, turn):
            logger.debug("turn {} already remembered", turn)
            return []
        try:
            ids = await self._add(user, turn, user_text, assistant_text, facts, keyed)
        except BaseException:
            await self._release(turn)
            raise
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE memory_turns SET status = 'done', memory_ids = %s::uuid[], finished_at = now() "
                "WHERE turn_id = %s",
                (ids, turn),
            )
        return ids

    async def _add(self, user: str, turn: str, user_text: str, assistant_text: str, facts: list[str],
                   keyed: bool) -> list[str]:
        engine = await self._engine()
        metadata = {"turn_id": turn}
        if keyed:
            messages = [{"role": "user", "content": user_text}]
            if assistant_text:
                messages.append({"role": "assistant", "content": assistant_text[:ASSISTANT_CHARS]})
            try:
                result = await engine.add(messages, user_id=user, metadata=metadata, infer=True)
                self._known.pop(user, None)  # added, updated or deleted some: look again next time
                return [r["id"] for r in result.get("results", []) if r.get("event") == "ADD"]
            except Exception as exc:  # noqa: BLE001 - Gemini down: keep at least what the user stated
                logger.warning("memory extraction failed ({}); keeping the user's own statements", exc)
                facts = self_statements(user_text)
        facts = await self._unknown(user, facts)
        if not facts:
            return []
        # One message per fact: mem0 stores each as its own memory (no model call with infer=False).
        result = await engine.add([{"role": "user", "content": f} for f in facts], user_id=user,
                                  metadata=metadata, infer=False)
        ids = [r["id"] for r in result.get("results", [])]
        if ids:
            self._note(user, None)
        return ids

    async def _unknown(self, user: str, facts: list[str]) -> list[str]:
        """Facts this user has not stated before (the same sentence in another chat is kept once)."""
        if not facts:
            return []
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT payload->>'hash' AS hash FROM {COLLECTION} "
                "WHERE payload->>'user_id' = %s AND payload->>'hash' = ANY(%s)",
                (user, [_hash(f) for f in facts]),
            )
            known = {row["hash"] for row in await cur.fetchall()}
        return [f for f in facts if _hash(f) not in known]

    async def _claim(self, user: str, turn: str) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO memory_turns (turn_id, user_id) VALUES (%s, %s) "
                "ON CONFLICT (turn_id) DO UPDATE SET claimed_at = now() "
                "  WHERE memory_turns.status = 'pending' "
                f"    AND memory_turns.claimed_at < now() - interval '{CLAIM_STALE}'"
                "    AND memory_turns.user_id = EXCLUDED.user_id "
                "RETURNING turn_id",
                (turn, user),
            )
            return await cur.fetchone() is not None

    async def _release(self, turn: str) -> None:
        try:
            async with self.pool.connection() as conn:
                await conn.execute("DELETE FROM memory_turns WHERE turn_id = %s AND status = 'pending'", (turn,))
        except Exception as exc:  # noqa: BLE001 - the claim then expires on its own
            logger.warning("could not release the memory claim on turn {}: {}", turn, exc)

    # -- reading ------------------------------------------------------------------------------
    async def recall(self, user_id: Any, query: str, limit: int = 5) -> list[str]:
        """The user's memories relevant to `query`, best first (see `_relevant` and `MemoryOptions`).

        Never raises: a turn goes on without memories when the store fails.
        """
        user = _need(user_id)
        if not query or not query.strip() or limit < 1:
            return []
        try:
            if _ABOUT_ME.search(query):
                return [m["text"] for m in await self.list(user, limit=limit)]
            if not await self._has_memories(user):
                return []  # most users, most turns: one indexed probe instead of mem0's search
            engine = await self._engine()
            found = await engine.search(query.strip(), top_k=max(2 * limit, 10), filters={"user_id": user},
                                        threshold=min(self.options.lexical_min_score, self.options.min_score),
                                        explain=True)
        except Exception as exc:  # noqa: BLE001
            logger.warning("memory recall failed: {}", exc)
            return []
        words = content_words(query)
        return [r["memory"] for r in found.get("results", []) if r.get("memory") and self._relevant(r, words)][:limit]

    async def _has_memories(self, user: str) -> bool:
        """Whether the user has any memory. "Yes" is kept (a search then finds what is there, or
        nothing); "no" for `none_ttl_s`, and this process's own writes and deletes update it."""
        known = self._known.get(user, 0.0)
        if known is None:
            return True
        if time.monotonic() < known:
            return False
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM {COLLECTION} WHERE payload->>'user_id' = %s) AS found", (user,))
            found = bool((await cur.fetchone())["found"])
        if not found and user in self._known and self._known[user] is None:
            return True  # a write of this process landed while the probe ran: it wins
        self._note(user, None if found else time.monotonic() + self.options.none_ttl_s)
        return found

    def _note(self, user: str, state: float | None) -> None:
        self._known.pop(user, None)
        self._known[user] = state
        if len(self._known) > KNOWN_USERS:
            self._known.popitem(last=False)

    def _relevant(self, result: dict, query_words: set[str]) -> bool:
        """Close in meaning, or a little less close but sharing a word with the question ("team")."""
        semantic = float((result.get("score_details") or {}).get("semantic_score", result.get("score") or 0.0))
        if semantic >= self.options.min_score:
            return True
        return semantic >= self.options.lexical_min_score and bool(query_words & content_words(result["memory"]))

    async def list(self, user_id: Any, *, limit: int = LIST_MAX) -> list[dict]:
        """The user's memories, newest first: {id, text, created_at, updated_at}."""
        user = _need(user_id)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT id, payload->>'data' AS text, payload->>'created_at' AS created_at, "
                f"payload->>'updated_at' AS updated_at FROM {COLLECTION} WHERE payload->>'user_id' = %s "
                "ORDER BY payload->>'created_at' DESC, id LIMIT %s",
                (user, max(1, min(limit, LIST_MAX))),
            )
            rows = await cur.fetchall()
        return [
            {"id": str(r["id"]), "text": r["text"] or "", "created_at": _time(r["created_at"]),
             "updated_at": _time(r["updated_at"]) or _time(r["created_at"])}
            for r in rows
        ]

    # -- forgetting ---------------------------------------------------------------------------
    async def delete(self, user_id: Any, memory_id: Any) -> bool:
        """Delete one of the user's memories; False when unknown or another user's."""
        user = _need(user_id)
        try:
            mid = uuid.UUID(str(memory_id))
        except ValueError:
            return False
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"DELETE FROM {COLLECTION} WHERE id = %s AND payload->>'user_id' = %s RETURNING id", (mid, user)
            )
            deleted = [str(r["id"]) for r in await cur.fetchall()]
        if deleted:
            self._known.pop(user, None)  # maybe the last one: look again next time
        await self._forget_history(user, deleted, conversation=False)
        return bool(deleted)

    async def delete_all(self, user_id: Any) -> int:
        """Delete all of the user's memories; how many there were."""
        user = _need(user_id)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"DELETE FROM {COLLECTION} WHERE payload->>'user_id' = %s RETURNING id", (user,)
            )
            deleted = [str(r["id"]) for r in await cur.fetchall()]
        self._known.pop(user, None)
        await self._forget_history(user, deleted, conversation=True)
        return len(deleted)

    async def _forget_history(self, user: str, memory_ids: list[str], *, conversation: bool) -> None:
        """Drop deleted memories from mem0's in-process history (and the messages it would show Gemini
        as context, so a forgotten fact is not extracted again from them).

        mem0 2.2 has no API for this: its SQLite tables `history` (by memory id) and `messages`
        (by session scope, "user_id=<id>") are edited directly.
        """
        db = getattr(self._mem0, "db", None)
        if db is None or not (memory_ids or conversation):
            return

        def purge() -> None:
            with db._lock:
                if memory_ids:
                    db.connection.executemany("DELETE FROM history WHERE memory_id = ?", [(m,) for m in memory_ids])
                if conversation:
                    db.connection.execute("DELETE FROM messages WHERE session_scope = ?", (f"user_id={user}",))
                db.connection.commit()

        try:
            await asyncio.to_thread(purge)
        except Exception as exc:  # noqa: BLE001 - only the in-process history; the memories are gone
            logger.warning("could not purge mem0's history: {}", exc)
