"""The caller's long-term memories: list, delete one, delete all.

Another user's memory id answers 404, exactly like an unknown one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel

from allin.memory import MemoryStore
from api.deps import CurrentUser, ResourcesDep
from api.errors import AppError, error_responses, not_found
from api.state import Resources

router = APIRouter(prefix="/memory", tags=["memory"], responses=error_responses(401, 422, 503))


class MemoryPublic(BaseModel):
    id: UUID
    text: str
    created_at: datetime | None
    updated_at: datetime | None


class MemoryList(BaseModel):
    items: list[MemoryPublic]


def _memory(res: Resources) -> MemoryStore:
    memory = res.extras.get("memory")
    if memory is None:
        raise AppError(503, "memory_unavailable", "Long-term memory is not enabled on this server.")
    return memory


@router.get("", response_model=MemoryList)
async def list_memories(
    user: CurrentUser, res: ResourcesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> MemoryList:
    items = await _memory(res).list(user.id, limit=limit)
    return MemoryList(items=[MemoryPublic.model_validate(item) for item in items])


@router.delete("/{memory_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404))
async def delete_memory(
    memory_id: Annotated[UUID, Path(description="One of the caller's memories")], user: CurrentUser,
    res: ResourcesDep,
) -> Response:
    if not await _memory(res).delete(user.id, memory_id):
        raise not_found("memory")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def delete_all_memories(user: CurrentUser, res: ResourcesDep) -> Response:
    await _memory(res).delete_all(user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
