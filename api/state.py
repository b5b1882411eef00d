"""What the lifespan builds and every route shares (kept on `app.state.res`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from allin.config import Settings
from api.metrics import Metrics


@dataclass
class Resources:
    settings: Settings
    metrics: Metrics
    db_url: str = ""
    pool: AsyncConnectionPool | None = None
    db_ok: bool = False
    db_checked_at: float = 0.0
    migrated: bool = False
    started_at: float = field(default_factory=time.time)
    login_token: str | None = None  # only on the very first start, printed once
    # Filled in by the features that need them (assistant graph, knowledge, memory, ...).
    extras: dict[str, Any] = field(default_factory=dict)
