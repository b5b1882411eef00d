"""FastAPI dependencies as Annotated aliases, used in every route signature."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from allin.config import Settings
from allin.users import User, authenticate
from api.errors import AppError
from api.state import Resources

_bearer = HTTPBearer(auto_error=False, description="The token from your login link or `allin users create`.")


def get_resources(request: Request) -> Resources:
    return request.app.state.res


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_settings(res: ResourcesDep) -> Settings:
    return res.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_conn(res: ResourcesDep) -> AsyncIterator[psycopg.AsyncConnection]:
    if res.pool is None:
        raise AppError(503, "database_unavailable", "The database is not ready yet.")
    async with res.pool.connection() as conn:
        yield conn


ConnDep = Annotated[psycopg.AsyncConnection, Depends(get_conn)]


async def get_current_user(
    res: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AppError(401, "unauthorized", "Missing bearer token.", headers={"WWW-Authenticate": "Bearer"})
    if res.pool is None:
        raise AppError(503, "database_unavailable", "The database is not ready yet.")
    async with res.pool.connection() as conn:
        user = await authenticate(conn, credentials.credentials)
    if user is None:
        raise AppError(401, "unauthorized", "Invalid or revoked token.", headers={"WWW-Authenticate": "Bearer"})
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise AppError(403, "forbidden", "This needs an admin.")
    return user


AdminUser = Annotated[User, Depends(get_admin)]
