"""LangSmith tracing for the app: built at startup when LANGSMITH_API_KEY is set, flushed at shutdown."""

from __future__ import annotations

import asyncio

from allin.tracing import make_tracing
from api.state import Resources


async def start_tracing(res: Resources) -> None:
    """Before the assistant starts: its turn runner picks `res.extras["tracing"]` up (None = off)."""
    res.extras["tracing"] = make_tracing(res.settings)


async def stop_tracing(res: Resources) -> None:
    tracing = res.extras.pop("tracing", None)
    if tracing is not None:
        # A bounded flush, off the event loop (it waits on the client's background thread).
        await asyncio.to_thread(tracing.close)
