"""Work done after each completed turn: the chat's automatic title and topics, turn embeddings.

Hang it on the TurnRunner: `on_turn_done=functools.partial(after_turn, res)`.
Best effort: every step logs its failure and lets the next one run.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from loguru import logger
from psycopg_pool import AsyncConnectionPool

from allin.chats import store
from allin.chats.embedding import TextEmbedder, TurnEmbeddingBatcher, embed_pending_turns, embed_turns
from allin.chats.titles import title_and_topics

# A chat that opened with small talk ("hi") is named by the first of its early questions that has keywords.
TITLE_WITHIN_QUESTIONS = 3
REMEMBERED_KEYS = 10_000  # chats and users the two tables below keep, the least recent dropped first
# Chats of this process past their naming window: their later turns skip the title query.
_settled_chats: OrderedDict[Any, None] = OrderedDict()
# A user's pending turns are looked for on their first turn here and then every this many turns.
CATCH_UP_EVERY = 20
_turns_since_catch_up: OrderedDict[Any, int] = OrderedDict()  # user id -> turns since


def _remember(table: OrderedDict, key: Any, value: Any) -> None:
    table.pop(key, None)
    table[key] = value
    if len(table) > REMEMBERED_KEYS:
        table.popitem(last=False)


async def maybe_title_chat(pool: AsyncConnectionPool, settings: Any, chat: dict, result: Any) -> dict | None:
    """Name the chat from this exchange if it is still automatically named and this is an early question.

    Returns the new {"title", "topics"}, or None when the chat kept its name.
    """
    user_id, chat_id = chat["user_id"], chat["id"]
    if not chat.get("title_auto", True) or chat_id in _settled_chats:
        return None  # named by its user, or past its early questions: nothing left to check
    async with pool.connection() as conn:
        # One round trip: the chat's naming state and which of its questions this one is.
        cur = await conn.execute(
            """SELECT c.title, c.title_auto, q.content,
                      (SELECT count(*) FROM chat_turns t WHERE t.chat_id = c.id AND t.user_id = c.user_id
                          AND t.role = 'user' AND t.seq <= q.seq) AS nth
               FROM chats c JOIN chat_turns q ON q.id = %s AND q.chat_id = c.id
               WHERE c.id = %s AND c.user_id = %s""",
            (result.user_turn_id, chat_id, user_id),
        )
        current = await cur.fetchone()
    if current is None or not current["title_auto"]:
        return None
    nth = current["nth"]
    if nth >= TITLE_WITHIN_QUESTIONS:
        _remember(_settled_chats, chat_id, None)
    if not (nth == 1 or (nth <= TITLE_WITHIN_QUESTIONS and current["title"] == store.DEFAULT_TITLE)):
        return None
    named = await title_and_topics(settings, current["content"], result.content or "")
    if named is None:
        return None
    async with pool.connection() as conn:
        if not await store.set_auto_title(conn, user_id, chat_id, title=named.title, topics=named.topics):
            return None
    return {"title": named.title, "topics": list(named.topics)}


async def _embedder_of(res: Any) -> TextEmbedder | None:
    deps = res.extras.get("deps") if hasattr(res, "extras") else None
    if deps is None:
        return None
    made = getattr(deps, "embedder_if_made", None)
    if made is not None:
        return made  # every turn after the first: no thread hop
    try:
        # The first use may load the model (a fraction of a second of CPU): not on the event loop.
        return await asyncio.to_thread(lambda: deps.embedder)
    except Exception as exc:  # noqa: BLE001 - search falls back to full text until an embedder works
        logger.warning("no embedder for chat turns: {}", exc)
        return None


async def after_turn(res_or_pool: Any, chat: dict, result: Any, *, settings: Any = None,
                     embedder: TextEmbedder | None = None) -> dict | None:
    """Title the chat (while `title_auto`) and embed this exchange (now and then all the user's pending turns).

    Returns what changed on the chat ({"title", "topics"}) for the client to show, or None.

    `res_or_pool`: the app's Resources (pool, settings and the assistant's embedder are taken from
    it) or a bare pool, with `settings`/`embedder` passed explicitly (offline titles when None).
    """
    batcher = None
    if isinstance(res_or_pool, AsyncConnectionPool):
        pool = res_or_pool
    else:
        pool = res_or_pool.pool
        settings = settings if settings is not None else res_or_pool.settings
        embedder = embedder if embedder is not None else await _embedder_of(res_or_pool)
        batcher = _batcher_of(res_or_pool, embedder)
    renamed = None
    try:
        renamed = await maybe_title_chat(pool, settings, chat, result)
    except Exception as exc:  # noqa: BLE001
        logger.warning("could not title chat {}: {}", chat.get("id"), exc)
    if embedder is not None:
        user_id = chat["user_id"]
        try:
            if _due_for_catch_up(user_id):
                # Also the turns that ended without this step (interrupted, failed) or whose embedding failed.
                await embed_pending_turns(pool, embedder, user_id=user_id)
            else:  # the usual case: just this exchange, with no query for what is pending
                exchange = [(result.user_turn_id, result.question), (result.turn_id, result.content)]
                if batcher is not None:
                    batcher.submit(user_id, exchange)  # with the other turns finishing about now
                else:
                    await embed_turns(pool, embedder, exchange)
        except Exception as exc:  # noqa: BLE001
            _catch_up_next_time({user_id})
            logger.warning("could not embed turns of chat {}: {}", chat.get("id"), exc)
    return renamed


def _batcher_of(res: Any, embedder: TextEmbedder | None) -> TurnEmbeddingBatcher | None:
    """The app's turn-embedding batcher (made on first use, and again if the embedder changed)."""
    if embedder is None or not hasattr(res, "extras"):
        return None
    batcher = res.extras.get("turn_embeddings")
    if batcher is None or batcher.embedder is not embedder or batcher.pool is not res.pool:
        batcher = TurnEmbeddingBatcher(res.pool, embedder, on_failure=_catch_up_next_time)
        res.extras["turn_embeddings"] = batcher
    return batcher


def _catch_up_next_time(user_ids: set[Any]) -> None:
    for user_id in user_ids:
        _turns_since_catch_up.pop(user_id, None)


def _due_for_catch_up(user_id: Any) -> bool:
    """A user's first turn in this process, and every CATCH_UP_EVERY turns after it."""
    count = _turns_since_catch_up.get(user_id)
    due = count is None or count + 1 >= CATCH_UP_EVERY
    _remember(_turns_since_catch_up, user_id, 0 if due else count + 1)
    return due
