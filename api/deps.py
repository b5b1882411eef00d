"""FastAPI dependencies as Annotated aliases, used in every route signature."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from allin.config import Settings
from allin.users import User, authenticate
from api.errors import AppError
from api.state import Resources

DOWN_IS_FRESH_S = 3.0  # the watcher checks every 0.5 s; an older "down" is not trusted
_bearer = HTTPBearer(auto_error=False, description="The token from your login link or `allin users create`.")


def get_resources(request: Request) -> Resources:
    return request.app.state.res


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_settings(res: ResourcesDep) -> Settings:
    return res.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def require_database(res: Resources) -> None:
    """503 at once when the database is known to be down: waiting for the pool's timeout on
    every request would only hold clients (and sockets) for nothing."""
    if res.pool is None:
        raise AppError(503, "database_unavailable", "The database is not ready yet.")
    if not res.db_ok and res.db_checked_at and time.time() - res.db_checked_at < DOWN_IS_FRESH_S:
        raise AppError(503, "database_unavailable", "The database is unavailable; try again shortly.",
                       headers={"Retry-After": "2"})


async def get_conn(res: ResourcesDep) -> AsyncIterator[psycopg.AsyncConnection]:
    require_database(res)
    async with res.pool.connection() as conn:
        yield conn


ConnDep = Annotated[psycopg.AsyncConnection, Depends(get_conn)]


async def get_current_user(
    res: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AppError(401, "unauthorized", "Missing bearer token.", headers={"WWW-Authenticate": "Bearer"})
    require_database(res)
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


async def reject_repeated_fields(request: Request) -> None:
    """422 when a multipart form sends a field twice: the schema has one of each, and silently
    keeping one copy would store a file the client may not have meant. Called in the route, after
    authentication, so a stranger still gets 401/403 first."""
    form = await request.form()  # already parsed by FastAPI: this is its cached copy
    repeated = sorted(name for name, n in Counter(name for name, _ in form.multi_items()).items() if n > 1)
    if repeated:
        raise AppError(422, "repeated_field", f"send each form field once; repeated: {', '.join(repeated)}")
