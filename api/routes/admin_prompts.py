"""The system prompt for admins: read it with its versions, save a new version, roll back.

The active database version wins over `prompts/system.md` (version 0); the
next turn on any replica uses it, and every stored answer records the
version that produced it (`chat_turns.prompt_version`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictInt

from allin import prompts
from api.deps import AdminUser, ConnDep
from api.errors import AppError, error_responses

router = APIRouter(prefix="/admin/system-prompt", tags=["admin"], responses=error_responses(400, 401, 403, 422, 503))

NOTE_MAX = 200


class PromptVersionPublic(BaseModel):
    version: int = Field(description="0 is the file shipped with the code (prompts/system.md).")
    source: Literal["file", "database"]
    active: bool
    chars: int
    note: str | None = None
    author: str | None = None
    created_at: datetime | None = None


class SystemPromptState(BaseModel):
    active_version: int
    text: str
    sections: list[str] = Field(description="The active prompt's top-level headings.")
    max_chars: int
    versions: list[PromptVersionPublic] = Field(description="Newest first; the file (version 0) last.")


class SystemPromptUpdate(BaseModel):
    # The cap is checked by allin.prompts (with its own message); this bound only stops absurd bodies early.
    text: Annotated[str, Field(max_length=prompts.PROMPT_MAX_CHARS * 4)]
    note: Annotated[str | None, Field(max_length=NOTE_MAX, description="Why this version (shown in the list).")] = None


class SystemPromptRollback(BaseModel):
    version: Annotated[StrictInt, Field(ge=0, description="The version to make active; 0 = the shipped file.")]


async def _state(conn) -> SystemPromptState:
    active = await prompts.active_prompt(conn)
    rows = await prompts.list_prompt_versions(conn)
    versions = [PromptVersionPublic(source="database", **r) for r in rows]
    versions.append(PromptVersionPublic(version=prompts.FILE_VERSION, source="file",
                                        active=active.version == prompts.FILE_VERSION,
                                        chars=len(prompts.file_prompt("system")), note="prompts/system.md"))
    return SystemPromptState(active_version=active.version, text=active.text,
                             sections=prompts.prompt_sections(active.text), max_chars=prompts.PROMPT_MAX_CHARS,
                             versions=versions)


@router.get("", response_model=SystemPromptState)
async def get_system_prompt(_: AdminUser, conn: ConnDep) -> SystemPromptState:
    return await _state(conn)


@router.put("", response_model=SystemPromptState)
async def put_system_prompt(body: SystemPromptUpdate, admin: AdminUser, conn: ConnDep) -> SystemPromptState:
    """Store the text as a new version and make it active (the next turn uses it)."""
    try:
        await prompts.save_prompt_version(conn, body.text, author_id=admin.id, note=body.note)
    except prompts.PromptInvalid as exc:
        raise AppError(422, exc.code, exc.message) from None
    return await _state(conn)


@router.post("/rollback", response_model=SystemPromptState, responses=error_responses(404))
async def rollback_system_prompt(body: SystemPromptRollback, _: AdminUser, conn: ConnDep) -> SystemPromptState:
    try:
        await prompts.activate_prompt_version(conn, body.version)
    except prompts.PromptVersionNotFound:
        raise AppError(404, "not_found", f"no system prompt version {body.version}") from None
    return await _state(conn)
