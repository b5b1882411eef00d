"""Liveness, readiness and metrics: what load balancers and Prometheus read."""

from __future__ import annotations

import hmac
import time
from typing import Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from api import __version__
from api.deps import ResourcesDep
from api.errors import AppError

router = APIRouter(tags=["health"])

# The watcher refreshes db_ok every half second; older than this means it is stuck.
STALE_AFTER_S = 3.0


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    mode: Literal["offline", "gemini"]
    database: Literal["ok", "down"]
    uptime_s: float


class Ready(BaseModel):
    ready: bool
    database: Literal["ok", "down"]
    migrations: Literal["done", "pending"]


def _db_ok(res) -> bool:
    return res.db_ok and (time.time() - res.db_checked_at) < STALE_AFTER_S


@router.get("/health", response_model=Health)
async def health(res: ResourcesDep) -> Health:
    ok = _db_ok(res)
    return Health(
        status="ok" if ok else "degraded",
        version=__version__,
        mode=res.settings.mode,
        database="ok" if ok else "down",
        uptime_s=round(time.time() - res.started_at, 1),
    )


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
async def ready(res: ResourcesDep, response: Response) -> Ready:
    ok = _db_ok(res)
    body = Ready(ready=ok and res.migrated, database="ok" if ok else "down",
                 migrations="done" if res.migrated else "pending")
    if not body.ready:
        response.status_code = 503
    return body


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, res: ResourcesDep) -> Response:
    token = res.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise AppError(401, "unauthorized", "Metrics need the metrics token.")
    return Response(generate_latest(res.metrics.registry), media_type=CONTENT_TYPE_LATEST)
