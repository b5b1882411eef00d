"""Helpers for the chat tests: a deterministic embedder and directly stored chats."""

from __future__ import annotations

import hashlib
import re
import uuid

import numpy as np

from allin.chats import store

DIM = 384


class TrigramEmbedder:
    """Hashed character trigrams of each word, L2-normalised: texts that share word pieces are close.

    Deterministic and instant; stands in for MiniLM where only the plumbing is under test
    (a typo like "kubernets" still lands near "kubernetes", which full-text search cannot match).
    """

    def _one(self, text: str) -> np.ndarray:
        vec = np.zeros(DIM, dtype=np.float32)
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            padded = f"#{word}#"
            for i in range(max(1, len(padded) - 2)):
                h = int.from_bytes(hashlib.blake2b(padded[i:i + 3].encode(), digest_size=4).digest(), "little")
                vec[h % DIM] += 1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0:
            vec[0] = 1.0
            return vec
        return vec / norm

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._one(t) for t in texts]) if texts else np.zeros((0, DIM), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._one(text)


async def make_chat(conn, user, *, title: str | None = None, exchanges: list[tuple[str, str]] = ()) -> dict:
    """A chat of `user` with (question, answer) exchanges stored directly."""
    chat = await store.create_chat(conn, user.id, title=title)
    for question, answer in exchanges:
        q = await store.add_turn(conn, user_id=user.id, chat_id=chat["id"], role="user", content=question)
        await store.add_turn(conn, user_id=user.id, chat_id=chat["id"], role="assistant", content=answer,
                             reply_to=q["id"])
    return await store.get_chat(conn, user.id, chat["id"])


def missing_id() -> str:
    return str(uuid.uuid4())
