"""Fixtures for the model tests: the real local MiniLM and passages from the shared corpus."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from allin.models.classify_local import LocalRouteClassifier
from allin.models.context import Passage
from allin.models.extractive import ExtractiveChatModel

SECRET_SYSTEM_PROMPT = "You are Allin. Internal note: the deploy password is hunter2-SECRET."


@pytest.fixture(scope="session")
def embedder():
    """The same local MiniLM the app uses (thresholds are tuned on it)."""
    from allin.knowledge.embeddings import EmbeddingModelError, get_local_embedder

    local = get_local_embedder()
    try:
        local.embed_query("warm up")
    except EmbeddingModelError as exc:
        pytest.skip(f"local embedding model unavailable: {exc}")
    return local


@pytest.fixture(scope="session")
def model(embedder) -> ExtractiveChatModel:
    return ExtractiveChatModel(embedder=embedder)


@pytest.fixture(scope="session")
def classifier(embedder) -> LocalRouteClassifier:
    return LocalRouteClassifier(embedder)


def paragraph_passages(path: Path, title: str) -> list[Passage]:
    """One passage per paragraph, numbered in document order, section = the heading above it."""
    passages: list[Passage] = []
    section = None
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        if not block.strip():
            continue
        if block.lstrip().startswith("#"):
            section = re.sub(r"\s*\{#[\w-]+\}", "", block.strip().lstrip("#").strip())
            continue
        n = len(passages) + 1
        passages.append(
            Passage(n=n, document_id="doc-speed", title=title, file=path.name, content=block,
                    page=1 + (n - 1) // 8, section=section, score=1.0 / n)
        )
    return passages


@pytest.fixture(scope="session")
def speed_passages(corpus: Path) -> list[Passage]:
    path = corpus / "eng-practices" / "md" / "review_reviewer_speed.md"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return paragraph_passages(path, "Speed of Code Reviews")
