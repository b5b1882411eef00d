"""Evaluation fixtures: a small dataset over three eng-practices PDFs, and a pool on the test's database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCS = ("review_reviewer_speed.pdf", "review_developer_small-cls.pdf", "review_emergencies.pdf")
SMALL_CASES = ("speed-max-response", "small-size", "emergency-hard-deadline", "emergency-after", "identity-who",
               "chat-thanks")


@pytest.fixture
def small_dataset(corpus: Path, tmp_path: Path) -> Path:
    """Six cases of evals/eng_practices.jsonl whose documents are three PDFs of the corpus."""
    pdfs = [corpus / "eng-practices" / "pdf" / name for name in DOCS]
    missing = [p for p in pdfs if not p.is_file()]
    if missing:
        pytest.skip(f"corpus files missing: {missing}")
    cases = [json.loads(line) for line in (REPO / "evals" / "eng_practices.jsonl").read_text().splitlines()[1:]]
    chosen = [c for c in cases if c["id"] in SMALL_CASES]
    assert len(chosen) == len(SMALL_CASES)
    path = tmp_path / "small.jsonl"
    header = {"dataset": "small", "documents": [str(p) for p in pdfs]}
    path.write_text("\n".join(json.dumps(x) for x in [header, *chosen]) + "\n")
    return path


@pytest.fixture
async def pool(settings) -> AsyncIterator:
    from allin.db.pool import make_pool

    pool = make_pool(settings.database_url, settings, min_size=1, max_size=6)
    await pool.open()
    yield pool
    await pool.close()
