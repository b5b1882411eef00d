"""File → (chunks, vectors), one at a time or as an overlapped stream.

Embedding is the slow stage (~90 chunks/s on 2 cores) and parsing the next
file is mostly independent of it, so `process_files` parses ahead in one
background thread while the caller's thread embeds. pdfium and onnxruntime
both release the GIL in their native code, so the two stages really run at
the same time. A sync job should iterate `process_files` inside
`asyncio.to_thread` (or a worker thread of its own) and write each result as
it comes; a failed file yields a result with `error` set and the stream goes
on.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from allin.knowledge.chunk import embedding_text
from allin.knowledge.embeddings import Embedder
from allin.knowledge.extract import extract
from allin.knowledge.ocr import Ocr
from allin.knowledge.types import ExtractedDocument, IngestError

log = logging.getLogger(__name__)


def sha256_file(path: Path, *, block_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks (constant memory)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(block_size):
            digest.update(block)
    return digest.hexdigest()


def embed_document(document: ExtractedDocument, embedder: Embedder) -> np.ndarray:
    """One vector per chunk, in chunk order: title/section prefix + passage."""
    return embedder.embed([embedding_text(document.title, c) for c in document.chunks])


def process_file(
    path: Path, *, ocr: Ocr | None, embedder: Embedder, max_bytes: int
) -> tuple[ExtractedDocument, np.ndarray]:
    """Extract and embed one file; raises IngestError when it cannot be ingested."""
    document = extract(Path(path), ocr=ocr, max_bytes=max_bytes)
    return document, embed_document(document, embedder)


@dataclass
class FileResult:
    path: Path
    sha256: str | None
    document: ExtractedDocument | None
    vectors: np.ndarray | None
    error: IngestError | None
    extract_s: float
    embed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _Parsed:
    path: Path
    sha256: str | None
    document: ExtractedDocument | None
    error: IngestError | None
    seconds: float


def process_files(
    paths: Iterable[Path],
    *,
    ocr: Ocr | None,
    embedder: Embedder,
    max_bytes: int,
    read_ahead: int = 2,
) -> Iterator[FileResult]:
    """Results in input order; up to `read_ahead` files are parsed while one is embedded."""
    pending: deque[Future[_Parsed]] = deque()
    source = iter(paths)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="knowledge-parse") as pool:
        try:
            for path in source:
                pending.append(pool.submit(_parse, Path(path), ocr, max_bytes))
                if len(pending) > read_ahead:
                    yield _finish(pending.popleft().result(), embedder)
            while pending:
                yield _finish(pending.popleft().result(), embedder)
        finally:
            for future in pending:  # the consumer stopped early
                future.cancel()


def _parse(path: Path, ocr: Ocr | None, max_bytes: int) -> _Parsed:
    start = time.perf_counter()
    digest = None
    try:
        digest = sha256_file(path)
        document = extract(path, ocr=ocr, max_bytes=max_bytes)
        return _Parsed(path, digest, document, None, time.perf_counter() - start)
    except IngestError as exc:
        return _Parsed(path, digest, None, exc, time.perf_counter() - start)
    except Exception as exc:  # one unreadable file must not stop a sync
        log.exception("extraction failed for %s", path)
        error = IngestError("malformed", f"{path.name} could not be read ({type(exc).__name__}: {exc})")
        return _Parsed(path, digest, None, error, time.perf_counter() - start)


def _finish(parsed: _Parsed, embedder: Embedder) -> FileResult:
    if parsed.document is None:
        return FileResult(parsed.path, parsed.sha256, None, None, parsed.error, parsed.seconds)
    start = time.perf_counter()
    vectors = embed_document(parsed.document, embedder)
    return FileResult(
        parsed.path,
        parsed.sha256,
        parsed.document,
        vectors,
        None,
        parsed.seconds,
        time.perf_counter() - start,
    )
