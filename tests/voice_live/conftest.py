"""The `make_bridge` fixture: LiveBridges wired to the fake Gemini server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from allin.voice.gemini_live import LiveBridge
from tests.voice_live.support import LIVE_MODEL, Recorder, Searches


@pytest.fixture
async def make_bridge(fake_gemini) -> AsyncIterator[Callable[..., tuple[LiveBridge, Recorder]]]:
    """Build bridges against the fake (closed at the end of the test)."""
    made: list[LiveBridge] = []

    def make(**overrides: Any) -> tuple[LiveBridge, Recorder]:
        recorder = Recorder()
        options: dict[str, Any] = dict(
            api_key=fake_gemini.api_key, model=LIVE_MODEL, system_prompt="You are Allin, from Team 8.",
            search=Searches(), on_event=recorder, base_url=fake_gemini.base_url, reconnect_delay_s=0.02)
        bridge = LiveBridge(**(options | overrides))
        made.append(bridge)
        return bridge, recorder

    yield make
    for bridge in made:
        await bridge.close()
