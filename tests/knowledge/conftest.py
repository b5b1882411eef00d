"""Fixtures for the knowledge-ingestion tests: the shared corpus and the heavy engines."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "wild-pdfs").is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (expected ../shared/corpus next to the repo)")
    return CORPUS


@pytest.fixture(scope="session")
def ocr():
    from allin.knowledge.ocr import Ocr

    return Ocr()


@pytest.fixture(scope="session")
def embedder():
    from allin.knowledge.embeddings import get_local_embedder

    return get_local_embedder()
