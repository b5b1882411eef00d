"""The web client: `/` (the page), `/static/...` (its ES modules, styles, audio worklet) and `GET /me`.

The page and its assets are open (no bearer): the token reaches the page as
`/?token=…`, which the page moves into browser storage. Everything the page
then fetches carries `Authorization: Bearer`. The strict CSP set by the
middleware applies here too, so the page has no inline script or style.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from api.deps import CurrentUser
from api.errors import error_responses

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(tags=["web"])

# Revalidate on every load (ETag / Last-Modified make that cheap): a deploy is picked up at once.
_NO_STALE = {"Cache-Control": "no-cache"}


class Me(BaseModel):
    id: UUID
    name: str
    role: Literal["admin", "user"]


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=_NO_STALE)


@router.get("/me", response_model=Me, responses=error_responses(401, 503))
async def me(user: CurrentUser) -> Me:
    """Who the bearer is: the page shows the admin screens only when `role` is admin."""
    return Me(id=user.id, name=user.name, role=user.role)


class _StaticAssets(StaticFiles):
    """Starlette's StaticFiles (path checks, ETags, 304s) with explicit JS types and revalidation."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_NO_STALE)
        if path.endswith(".js"):
            # Module scripts need a JavaScript type; nosniff (set by the middleware) makes it strict.
            response.headers["content-type"] = "text/javascript; charset=utf-8"
        return response


# check_dir=False: nothing touches the disk at import; a missing file is a plain 404.
router.mount("/static", _StaticAssets(directory=STATIC_DIR, check_dir=False), name="static")
