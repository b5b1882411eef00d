"""File → chunks + vectors, alone and as a stream that survives bad files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from allin.knowledge.chunk import embedding_text
from allin.knowledge.pipeline import process_file, process_files, sha256_file
from allin.knowledge.types import IngestError

MAX_BYTES = 50 * 1024 * 1024


def test_sha256_streams(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 10_000
    path.write_bytes(data)
    assert sha256_file(path, block_size=4096) == hashlib.sha256(data).hexdigest()


def test_process_file_returns_one_vector_per_chunk(corpus: Path, embedder) -> None:
    doc, vectors = process_file(
        corpus / "eng-practices" / "md" / "review_reviewer_speed.md",
        ocr=None,
        embedder=embedder,
        max_bytes=MAX_BYTES,
    )
    assert vectors.shape == (len(doc.chunks), 384)
    # The vectors embed title/section + passage: the "fast responses" query finds its section.
    query = embedder.embed_query("Is it OK to reply with a quick note when I am too busy for a full review?")
    best = doc.chunks[int(np.argmax(vectors @ query))]
    assert best.section.endswith("Fast Responses")
    again = embedder.embed([embedding_text(doc.title, c) for c in doc.chunks])
    np.testing.assert_allclose(vectors, again, atol=1e-5)


def test_process_file_raises_ingest_errors(corpus: Path, embedder) -> None:
    with pytest.raises(IngestError) as info:
        process_file(
            corpus / "wild-pdfs" / "password-example.pdf", ocr=None, embedder=embedder, max_bytes=MAX_BYTES
        )
    assert info.value.code == "encrypted"


def test_stream_keeps_order_and_goes_past_failures(corpus: Path, embedder, tmp_path: Path) -> None:
    unsupported = tmp_path / "archive.tar"
    unsupported.write_bytes(b"\x00" * 1024)
    paths = [
        corpus / "eng-practices" / "md" / "review_emergencies.md",
        corpus / "wild-pdfs" / "empty.pdf",
        corpus / "wild-pdfs" / "password-example.pdf",
        unsupported,
        corpus / "wild-pdfs" / "senate-expenditures.pdf",
        corpus / "eng-practices" / "pdf" / "review_emergencies.pdf",
    ]
    results = list(process_files(paths, ocr=None, embedder=embedder, max_bytes=MAX_BYTES))
    assert [r.path for r in results] == paths
    assert [r.error.code if r.error else None for r in results] == [
        None, "empty", "encrypted", "unsupported_type", None, None
    ]  # fmt: skip
    for result in results:
        assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
        if result.ok:
            assert result.vectors.shape == (len(result.document.chunks), 384)
    assert any(c.kind == "table" for c in results[4].document.chunks)


def test_stream_can_stop_early(corpus: Path, embedder) -> None:
    paths = sorted((corpus / "eng-practices" / "md").glob("*.md"))
    stream = process_files(paths, ocr=None, embedder=embedder, max_bytes=MAX_BYTES, read_ahead=3)
    first = next(stream)
    assert first.ok and first.path == paths[0]
    stream.close()  # cancels what was read ahead, without hanging
