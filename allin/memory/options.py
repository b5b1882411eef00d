"""Long-term memory's knobs, read from Settings where they exist (MEMORY_* settings), defaults otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COLLECTION = "memories"  # mem0's pgvector table (created by migration 0003)


@dataclass(frozen=True)
class MemoryOptions:
    enabled: bool = True
    # Cosine similarity a memory needs to reach a question before recall returns it, or
    # `lexical_min_score` when the two share a content word. MiniLM: "which team am I on?" /
    # "I'm on the payments team." 0.38, "who is my manager?" / "My manager is Dana." 0.65;
    # unrelated pairs stay below 0.3. Gemini embeddings score everything higher: raise both
    # with EMBEDDING_PROVIDER=gemini.
    min_score: float = 0.35
    lexical_min_score: float = 0.2
    # The model that extracts facts when keyed (None: the chat model).
    extraction_model: str | None = None
    # Connections of mem0's own (synchronous) pool.
    pool_max: int = 4
    # How long shutdown waits for memory writes still running.
    drain_timeout_s: float = 10.0
    # A user found to have no memories is not searched again for this long: another replica's
    # first memory for them shows up within it (this process's own writes at once).
    none_ttl_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Any) -> MemoryOptions:
        defaults = cls()
        return cls(
            enabled=bool(getattr(settings, "memory_enabled", defaults.enabled)),
            min_score=float(getattr(settings, "memory_min_score", defaults.min_score)),
            lexical_min_score=float(getattr(settings, "memory_lexical_min_score", defaults.lexical_min_score)),
            extraction_model=getattr(settings, "memory_model", None) or None,
            pool_max=int(getattr(settings, "memory_pool_max", defaults.pool_max)),
            drain_timeout_s=defaults.drain_timeout_s,
        )
