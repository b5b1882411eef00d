"""What a voice session needs from its connection (the `/ws` glue implements it).

Graphs sit below the API layer, so the session talks to the socket through
this small interface instead of importing the connection class.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

Tap = Callable[[dict], Awaitable[None]]
"""Called with each frame the turn runner emits, after it went to the client."""


class VoiceLink(Protocol):
    @property
    def user_id(self) -> str: ...

    @property
    def chat_id(self) -> str: ...

    async def send(self, frame: dict | bytes) -> None:
        """Queue a JSON frame (dict) or a binary audio frame (bytes) for the client."""

    async def error(self, code: str, message: str, reply_to: str | None = None) -> None: ...

    async def start_turn(self, text: str, *, tap: Tap, frame_id: str | None, audio_ref: str,
                         user_turn_id: uuid.UUID, turn_id: uuid.UUID, answer_audio_ref: str | None
                         ) -> asyncio.Task | None:
        """Run a voice turn through the same registry as text turns (one per chat).

        Returns the running turn, or None when it was refused (turn in progress,
        rate limit); the refusal has then been sent to the client.
        """

    async def cancel_turn(self) -> bool:
        """Cancel this chat's running turn the way `interrupt` does; False when none runs."""

    async def wait_for_turn(self) -> None:
        """Return once no turn of this chat is running (the keyed path writes the thread after it)."""
