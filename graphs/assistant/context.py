"""Per-run configuration, read by nodes through `Runtime[Context]` (never stored in checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class Context:
    user_id: str = ""
    chat_id: str = ""
    retrieval_mode: Literal["chunks", "files"] = "chunks"
    top_k: int = 6
    answer_style: Literal["concise", "normal", "detailed"] = "normal"
    # Ids of attachments (POST /chat/attachments) that this turn refers to.
    attachment_ids: tuple[str, ...] = ()
