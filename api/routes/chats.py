"""Chats: start, end, configure, list, read, resume, rename, delete, export, fork, search, feedback.

Every route works on the caller's own chats only: another user's chat or
turn id answers 404, exactly like an unknown one, so ids leak nothing.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from uuid import UUID

import psycopg
from fastapi import APIRouter, Path, Query, Response, status
from langchain_core.messages import HumanMessage
from loguru import logger
from psycopg_pool import AsyncConnectionPool

from allin.chats import store
from allin.chats.export import slug, to_markdown
from allin.chats.search import search_turns
from allin.storage import ObjectNotFound, make_storage
from api.chat_threads import branch_thread, delete_thread, thread_config
from api.deps import ConnDep, CurrentUser, ResourcesDep
from api.errors import AppError, error_responses, not_found
from api.routes.chat_schemas import (
    QUERY_MAX,
    TITLE_MAX,
    ChatConfig,
    ChatDetail,
    ChatFork,
    ChatForked,
    ChatListItem,
    ChatPublic,
    ChatRef,
    ChatRename,
    ChatResume,
    ChatSettings,
    ChatStart,
    EffectiveSettings,
    EventPublic,
    FeedbackIn,
    FeedbackPublic,
    SearchHit,
    SearchResults,
    TurnPublic,
    chat_list_item,
    chat_public,
    turn_public,
)
from api.schemas import Page, decode_cursor, encode_cursor
from api.state import Resources

router = APIRouter(tags=["chats"], responses=error_responses(400, 401, 422, 503))
NOT_FOUND = error_responses(404)

ChatId = Annotated[UUID, Path(description="A chat of the caller")]
TurnId = Annotated[UUID, Path(description="A turn of one of the caller's chats")]
Limit = Annotated[int, Query(ge=1, le=100)]


async def _own_chat(conn: psycopg.AsyncConnection, user_id: UUID, chat_id: UUID) -> dict:
    chat = await store.get_chat(conn, user_id, chat_id)
    if chat is None:
        raise not_found("chat")
    return chat


def _effective(chat: dict, res: Resources) -> EffectiveSettings:
    prefs = chat["settings"] or {}
    return EffectiveSettings(
        retrieval_mode=prefs.get("retrieval_mode") or res.settings.retrieval_mode,
        answer_style=prefs.get("answer_style") or "normal",
        voice=bool(prefs.get("voice", False)),
        top_k=int(prefs.get("top_k") or res.settings.top_k),
        language=prefs.get("language"),
    )


def _pool(res: Resources) -> AsyncConnectionPool:
    if res.pool is None:
        raise AppError(503, "database_unavailable", "The database is not ready yet.")
    return res.pool


async def _embedder(res: Resources) -> Any | None:
    """The assistant's embedder, or None (search then uses full text alone)."""
    if (known := res.extras.get("chat_search_embedder")) is not None:
        return known
    deps = res.extras.get("deps")
    if deps is None:
        return None
    try:
        # The first use loads the model: CPU work, kept off the event loop.
        embedder = await asyncio.to_thread(lambda: deps.embedder)
    except Exception as exc:  # noqa: BLE001
        logger.warning("chat search without embeddings: {}", exc)
        return None
    res.extras["chat_search_embedder"] = embedder
    return embedder


# --- lifecycle -------------------------------------------------------------------------------------

@router.post("/chat/start", response_model=ChatPublic, status_code=status.HTTP_201_CREATED)
async def start_chat(body: ChatStart, user: CurrentUser, conn: ConnDep) -> ChatPublic:
    """A new chat. Without a title it is named automatically from its first exchange."""
    settings = body.settings.stored() if body.settings else {}
    async with conn.transaction():
        chat = await store.create_chat(conn, user.id, title=body.title, settings=settings)
    return chat_public(chat)


@router.post("/chat/end", response_model=ChatPublic, responses=NOT_FOUND)
async def end_chat(body: ChatRef, user: CurrentUser, conn: ConnDep) -> ChatPublic:
    """Marks the chat ended. It stays readable, and resuming it reopens it."""
    async with conn.transaction():
        await _own_chat(conn, user.id, body.chat_id)
        chat = await store.update_chat(conn, user.id, body.chat_id, status="ended")
        await store.log_event(conn, body.chat_id, user.id, "end")
    return chat_public(chat)


@router.post("/chat/config", response_model=ChatPublic, responses=NOT_FOUND)
async def configure_chat(body: ChatConfig, user: CurrentUser, conn: ConnDep) -> ChatPublic:
    """Merges `settings` into the chat's settings (a field sent as null returns to the default)."""
    async with conn.transaction():
        chat = await _own_chat(conn, user.id, body.chat_id)
        changes = body.settings.model_dump(exclude_unset=True)
        # Keys this version no longer knows are dropped rather than failing every later change.
        merged = {k: v for k, v in {**(chat["settings"] or {}), **changes}.items() if k in ChatSettings.model_fields}
        settings = ChatSettings.model_validate(merged).stored()
        chat = await store.update_chat(conn, user.id, body.chat_id, settings=settings)
        await store.log_event(conn, body.chat_id, user.id, "config", {"changed": changes})
    return chat_public(chat)


# --- history -----------------------------------------------------------------------------------------

def _parse_history_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    try:
        when, chat_id = datetime.fromisoformat(values[0]), UUID(values[1])
        if when.tzinfo is None:
            raise ValueError
    except (TypeError, ValueError):
        raise AppError(422, "invalid_cursor", "cursor is not one this server issued") from None
    return when, chat_id


@router.get("/chat/history", response_model=Page[ChatListItem])
async def list_chats(user: CurrentUser, conn: ConnDep, limit: Limit = 20,
                     cursor: Annotated[str | None, Query(max_length=200)] = None) -> Page[ChatListItem]:
    """The caller's chats, most recently active first."""
    after = _parse_history_cursor(cursor)
    rows = await store.list_chats(conn, user.id, limit=limit + 1, after=after)
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(page[-1]["updated_at"].isoformat(), str(page[-1]["id"])) if more else None
    return Page[ChatListItem](items=[chat_list_item(r) for r in page], next_cursor=next_cursor)


async def _turns_with_feedback(conn: psycopg.AsyncConnection, user_id: UUID, chat_id: UUID) -> list[TurnPublic]:
    turns = await store.list_turns(conn, user_id, chat_id, limit=10_000)
    feedback = await store.feedback_for_chat(conn, user_id, chat_id)
    return [turn_public(t, feedback.get(t["id"])) for t in turns]


@router.get("/chat/history/{chat_id}", response_model=ChatDetail, responses=NOT_FOUND)
async def get_chat(chat_id: ChatId, user: CurrentUser, conn: ConnDep) -> ChatDetail:
    """The chat, all its turns in order, and its events (start, rename, fork, export, ...)."""
    chat = await _own_chat(conn, user.id, chat_id)
    turns = await _turns_with_feedback(conn, user.id, chat_id)
    events = await store.list_events(conn, user.id, chat_id)
    return ChatDetail(chat=chat_public(chat), turns=turns, events=[EventPublic(**e) for e in events])


@router.post("/chat/history/{chat_id}/resume", response_model=ChatResume, responses=NOT_FOUND)
async def resume_chat(chat_id: ChatId, user: CurrentUser, conn: ConnDep, res: ResourcesDep,
                      limit: Limit = 20) -> ChatResume:
    """What a client needs to continue the chat: its last `limit` turns and effective settings.

    The server keeps no "active chat": any replica answers the next turn from the checkpoint.
    An ended chat is reopened.
    """
    async with conn.transaction():
        chat = await _own_chat(conn, user.id, chat_id)
        reopened = chat["status"] == "ended"
        if reopened:
            chat = await store.update_chat(conn, user.id, chat_id, status="active")
        await store.log_event(conn, chat_id, user.id, "resume", {"reopened": reopened} if reopened else {})
    turns = await store.recent_turns(conn, user.id, chat_id, limit)
    return ChatResume(chat=chat_public(chat), recent_turns=[turn_public(t) for t in turns],
                      settings=_effective(chat, res))


@router.patch("/chat/history/{chat_id}", response_model=ChatPublic, responses=NOT_FOUND)
async def rename_chat(chat_id: ChatId, body: ChatRename, user: CurrentUser, conn: ConnDep) -> ChatPublic:
    """Renames the chat; automatic titles no longer replace it."""
    async with conn.transaction():
        before = await _own_chat(conn, user.id, chat_id)
        chat = await store.update_chat(conn, user.id, chat_id, title=body.title, title_auto=False)
        await store.log_event(conn, chat_id, user.id, "rename", {"title": body.title, "previous": before["title"]})
    return chat_public(chat)


@router.delete("/chat/history/{chat_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_chat(chat_id: ChatId, user: CurrentUser, conn: ConnDep, res: ResourcesDep) -> Response:
    """Deletes the chat, its turns, events and feedback, and its LangGraph thread."""
    if not await store.delete_chat(conn, user.id, chat_id):
        raise not_found("chat")
    graph = res.extras.get("graph")
    if graph is not None:
        await delete_thread(graph, chat_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/chat/history/{chat_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "text/markdown": {}},
                     "description": "The chat as a file (Content-Disposition: attachment)"}, **NOT_FOUND},
)
async def export_chat(chat_id: ChatId, user: CurrentUser, conn: ConnDep,
                      format: Literal["json", "md"] = "json") -> Response:
    """The chat as JSON (chat, turns, events) or a Markdown transcript, as a download."""
    chat = await _own_chat(conn, user.id, chat_id)
    await store.log_event(conn, chat_id, user.id, "export", {"format": format})
    turns = await store.list_turns(conn, user.id, chat_id, limit=10_000)
    events = await store.list_events(conn, user.id, chat_id)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
    filename = f"allin-{slug(chat['title'])}-{stamp}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "md":
        return Response(to_markdown(chat, turns, events), media_type="text/markdown; charset=utf-8", headers=headers)
    feedback = await store.feedback_for_chat(conn, user.id, chat_id)
    detail = ChatDetail(chat=chat_public(chat), turns=[turn_public(t, feedback.get(t["id"])) for t in turns],
                        events=[EventPublic(**e) for e in events])
    body = {"format": "allin.chat.v1", "exported_at": datetime.now(timezone.utc).isoformat(),
            **detail.model_dump(mode="json")}
    return Response(json.dumps(body, ensure_ascii=False, indent=2), media_type="application/json", headers=headers)


# --- fork ----------------------------------------------------------------------------------------------

@router.post("/chat/history/{chat_id}/fork", response_model=ChatForked, status_code=status.HTTP_201_CREATED,
             responses=NOT_FOUND)
async def fork_chat(chat_id: ChatId, body: ChatFork, user: CurrentUser, res: ResourcesDep) -> ChatForked:
    """A new chat that branches at one of this chat's user turns, with that question's text replaced.

    How: the stored turns *before* the chosen turn are copied into the new chat (new ids, same
    content and times); the new LangGraph thread is seeded from the original thread's checkpoint
    just before the chosen human message was added (its messages renamed to the copies' ids),
    or rebuilt from the copied turns if the thread no longer holds that message. The edited
    question is then sent through the assistant's TurnRunner, which stores it as the fork's next
    user turn and stores the answer, so the fork arrives answered. Without a runner the edited
    question is stored and appended to the thread, unanswered (`answered: false`).
    The original chat and its thread are not changed; both chats get a `fork` event.
    No pooled connection is held while the model answers.
    """
    pool = _pool(res)
    async with pool.connection() as conn:
        source = await _own_chat(conn, user.id, chat_id)
        turn = await store.get_turn(conn, user.id, body.turn_id)
        if turn is None or turn["chat_id"] != source["id"]:
            raise not_found("turn")
        if turn["role"] != "user":
            raise AppError(422, "not_a_user_turn", "a fork starts from one of your own messages, not an answer")
        title = f"{source['title']} (fork)"
        title = title if len(title) <= TITLE_MAX else source["title"][: TITLE_MAX - 7].rstrip() + " (fork)"
        async with conn.transaction():
            chat = await store.create_chat(
                conn, user.id, title=title, title_auto=source["title_auto"], settings=source["settings"],
                topics=source["topics"], forked_from={"chat_id": str(source["id"]), "turn_id": str(turn["id"])},
            )
            id_map = await store.copy_turns(conn, user.id, from_chat=source["id"], to_chat=chat["id"],
                                            before_seq=turn["seq"])
            await store.log_event(conn, source["id"], user.id, "fork",
                                  {"new_chat_id": str(chat["id"]), "turn_id": str(turn["id"])})
        copied = await store.list_turns(conn, user.id, chat["id"], limit=10_000)
    graph, runner = res.extras.get("graph"), res.extras.get("runner")
    if graph is not None:
        try:
            await branch_thread(graph, from_chat=source["id"], to_chat=chat["id"], turn_id=turn["id"],
                                id_map=id_map, copied_turns=copied)
        except Exception:
            # A fork without its history would answer out of context: undo it rather than keep half of it.
            async with pool.connection() as conn:
                await store.delete_chat(conn, user.id, chat["id"])
            await delete_thread(graph, chat["id"])
            raise
    answered = False
    if runner is not None:
        result = await runner.run(user_id=user.id, chat=chat, text=body.text)
        answered = result.status == "complete"
    else:
        async with pool.connection() as conn:
            edited = await store.add_turn(conn, user_id=user.id, chat_id=chat["id"], role="user",
                                          content=body.text)
        if graph is not None:
            await graph.aupdate_state(thread_config(chat["id"]),
                                      {"messages": [HumanMessage(content=body.text, id=str(edited["id"]))]},
                                      as_node="synthesize")
    async with pool.connection() as conn:
        chat = await store.get_chat(conn, user.id, chat["id"])
        turns = await store.list_turns(conn, user.id, chat["id"], limit=10_000)
    return ChatForked(chat=chat_public(chat), turns=[turn_public(t) for t in turns], answered=answered)


# --- search and feedback ---------------------------------------------------------------------------------

@router.get("/chat/search", response_model=SearchResults)
async def search_chats(user: CurrentUser, conn: ConnDep, res: ResourcesDep,
                       q: Annotated[str, Query(min_length=1, max_length=QUERY_MAX)],
                       limit: Limit = 20) -> SearchResults:
    """The caller's turns matching `q`: full text (web-search syntax: "phrase", -word, or) and meaning.

    Snippets are safe HTML: the text is escaped and matches are wrapped in <mark>…</mark>.
    """
    text = q.strip()
    if not text:
        raise AppError(422, "validation_error", "q: must contain a word")
    embedder = await _embedder(res)
    vector = None
    if embedder is not None:
        try:
            vector = await asyncio.to_thread(embedder.embed_query, text)
        except Exception as exc:  # noqa: BLE001 - full text alone still answers
            logger.warning("could not embed a search query: {}", exc)
    hits = await search_turns(conn, user_id=user.id, text=text, vector=vector, limit=limit)
    return SearchResults(items=[
        SearchHit(chat_id=h.chat_id, chat_title=h.chat_title, turn_id=h.turn_id, role=h.role, snippet=h.snippet,
                  score=h.score, created_at=h.created_at)
        for h in hits
    ])


@router.post("/chat/turns/{turn_id}/feedback", response_model=FeedbackPublic, responses=NOT_FOUND)
async def turn_feedback(turn_id: TurnId, body: FeedbackIn, user: CurrentUser, conn: ConnDep) -> FeedbackPublic:
    """Rates an answer (1 or -1) with an optional comment; sending again replaces the rating."""
    turn = await store.get_turn(conn, user.id, turn_id)
    if turn is None:
        raise not_found("turn")
    if turn["role"] != "assistant":
        raise AppError(422, "not_an_answer", "feedback is given on Allin's answers, not on your own messages")
    row = await store.upsert_feedback(conn, user.id, turn_id, rating=body.rating, comment=body.comment or None)
    if row is None:  # deleted meanwhile
        raise not_found("turn")
    return FeedbackPublic(**row)


@router.get("/chat/turns/{turn_id}/audio", response_class=Response, responses={
    **NOT_FOUND, 200: {"content": {"audio/wav": {}}, "description": "The turn's recording (WAV)."}})
async def turn_audio(turn_id: TurnId, user: CurrentUser, conn: ConnDep, res: ResourcesDep) -> Response:
    """A voice turn's recording: the user's words or Allin's spoken answer (`has_audio` in the turn list)."""
    turn = await store.get_turn(conn, user.id, turn_id)
    if turn is None or not turn["audio_ref"]:
        raise not_found("recording")
    try:
        data = await make_storage(res.settings).get(turn["audio_ref"])
    except ObjectNotFound:
        raise not_found("recording") from None
    return Response(data, media_type="audio/wav", headers={"Cache-Control": "private, max-age=86400"})
