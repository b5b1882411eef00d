"""Answers to review (admin): low-rated answers and questions Allin could not answer.

Users rate answers with `POST /chat/turns/{turn_id}/feedback` (api/routes/chats.py);
`allin eval --from-feedback OUT.jsonl` exports the same items as a draft dataset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from allin.feedback import review_items
from api.deps import AdminUser, ConnDep
from api.errors import AppError, error_responses
from api.schemas import Page, decode_cursor, encode_cursor

router = APIRouter(prefix="/admin/feedback", tags=["admin"], responses=error_responses(401, 403, 422, 503))


class ReviewItem(BaseModel):
    turn_id: UUID
    chat_id: UUID
    user_name: str
    question: str | None
    answer: str
    route: str | None
    citation_count: int
    prompt_version: int | None
    rating: int | None
    comment: str | None
    reasons: list[Literal["low_rated", "unanswered"]]
    created_at: datetime


@router.get("", response_model=Page[ReviewItem])
async def list_feedback(
    _: AdminUser,
    conn: ConnDep,
    kind: Annotated[Literal["all", "low_rated", "unanswered"], Query(description="Which answers to list.")] = "all",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[ReviewItem]:
    before = decode_cursor(cursor, 1)
    if before is not None and not isinstance(before[0], int):
        raise AppError(422, "invalid_cursor", "cursor is not one this server issued")
    rows = await review_items(conn, kind=kind, limit=limit + 1, before_seq=before[0] if before else None)
    page, more = rows[:limit], len(rows) > limit
    return Page[ReviewItem](
        items=[ReviewItem(**{k: r[k] for k in ReviewItem.model_fields}) for r in page],
        next_cursor=encode_cursor(page[-1]["seq"]) if more and page else None,
    )
