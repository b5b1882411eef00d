"""Small text helpers shared by the offline models: the embedder protocol and word overlap."""

from __future__ import annotations

import re
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """What the offline models need from an embedding model (e.g. the local MiniLM)."""

    def embed(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised float32 row per text."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """One L2-normalised float32 vector."""
        ...


STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does doing done for from had has
    have having how i if in into is it its just may me might more most much must my no not of on
    or our should so some such than that the their them then there these they this those to too
    up us was we were what when where which who whom why will with would you your yours about
    also any all am get gets got let lets like make makes made want need please tell know""".split()
)

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _stem(word: str) -> str:
    # Crude but predictable: enough to match "reviews"/"review", "processes"/"process".
    if len(word) <= 4:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """Lower-cased, stemmed words of `text` without stopwords."""
    return {_stem(w) for w in _WORD_RE.findall(text.lower()) if w not in STOPWORDS}


def overlap(query_words: set[str], text: str) -> float:
    """Share of the query's content words that occur in `text` (0..1)."""
    if not query_words:
        return 0.0
    return len(query_words & content_words(text)) / len(query_words)


def embed_texts(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """`embedder.embed`, tolerant of an empty list (some embedders reject it)."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray(embedder.embed(list(texts)), dtype=np.float32)
