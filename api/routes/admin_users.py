"""User and token lifecycle for admins (the CLI has the same commands)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field

from allin import users as users_db
from api.deps import AdminUser, ConnDep, SettingsDep
from api.errors import AppError, error_responses, not_found

router = APIRouter(prefix="/admin/users", tags=["admin"], responses=error_responses(400, 401, 403, 422, 503))

UserName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")]


class UserCreate(BaseModel):
    name: UserName
    role: Literal["admin", "user"] = "user"


class UserPublic(BaseModel):
    id: UUID
    name: str
    role: Literal["admin", "user"]
    created_at: datetime


class UserWithToken(UserPublic):
    token: str = Field(description="Shown once; only its hash is stored.")
    login_url: str


class UserList(BaseModel):
    items: list[UserPublic]


def _with_token(user: users_db.User, token: str, base_url: str) -> UserWithToken:
    return UserWithToken(id=user.id, name=user.name, role=user.role, created_at=user.created_at,
                         token=token, login_url=f"{base_url}/?token={token}")


@router.get("", response_model=UserList)
async def list_users(_: AdminUser, conn: ConnDep) -> UserList:
    rows = await users_db.list_users(conn)
    return UserList(items=[UserPublic(**{k: r[k] for k in ("id", "name", "role", "created_at")}) for r in rows])


@router.post("", response_model=UserWithToken, status_code=status.HTTP_201_CREATED, responses=error_responses(409))
async def create_user(body: UserCreate, _: AdminUser, conn: ConnDep, settings: SettingsDep) -> UserWithToken:
    try:
        user, token = await users_db.create_user(conn, body.name, body.role)
    except users_db.UserExists:
        raise AppError(409, "user_exists", f"a user named {body.name!r} already exists") from None
    return _with_token(user, token, settings.base_url)


@router.post("/{user_id}/rotate", response_model=UserWithToken, responses=error_responses(404))
async def rotate(user_id: Annotated[UUID, Path()], _: AdminUser, conn: ConnDep, settings: SettingsDep) -> UserWithToken:
    try:
        user, token = await users_db.rotate_token(conn, user_id=user_id)
    except users_db.UserNotFound:
        raise not_found("user") from None
    return _with_token(user, token, settings.base_url)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 409))
async def revoke(user_id: Annotated[UUID, Path()], admin: AdminUser, conn: ConnDep) -> None:
    if user_id == admin.id:
        raise AppError(409, "cannot_revoke_self", "You cannot revoke your own token here; use the CLI.")
    try:
        await users_db.revoke(conn, user_id=user_id)
    except users_db.UserNotFound:
        raise not_found("user") from None
