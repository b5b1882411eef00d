"""Helpers for the Gemini Live bridge tests: an event recorder and a search stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from allin.voice.gemini_live import LiveEvent

LIVE_MODEL = "gemini-live-2.5-flash-preview"


class Recorder:
    """`on_event` for a bridge: keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[LiveEvent] = []
        self.times: list[float] = []  # loop time at delivery, one per event
        self.hooks: list[Callable[[LiveEvent], Awaitable[None] | None]] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: LiveEvent) -> None:
        self.events.append(event)
        self.times.append(asyncio.get_running_loop().time())
        for hook in self.hooks:
            result = hook(event)
            if result is not None:
                await result
        async with self._changed:
            self._changed.notify_all()

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def of(self, kind: str) -> list[LiveEvent]:
        return [e for e in self.events if e.kind == kind]

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 10.0) -> LiveEvent:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.of(kind)) >= count), timeout)
        return self.of(kind)[count - 1]


class Searches:
    """A `search` function with canned passages that remembers its queries."""

    def __init__(self, passages: list[dict] | None = None, error: Exception | None = None) -> None:
        self.queries: list[str] = []
        self.passages = passages or []
        self.error = error

    async def __call__(self, query: str) -> list[dict]:
        self.queries.append(query)
        if self.error:
            raise self.error
        return self.passages
