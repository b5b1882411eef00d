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
from collections.abc import Callable, Iterable, Iterator
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
    return embed_reusing(document, embedder, {})[0]


# The vectors a document's stored chunks already have, by the exact text they were embedded from.
PreviousVectors = Callable[[Path], dict[str, np.ndarray]]


def embed_reusing(document: ExtractedDocument, embedder: Embedder,
                  previous: dict[str, np.ndarray]) -> tuple[np.ndarray, int]:
    """`embed_document`, taking the vector of any chunk whose text was embedded before (an edit to a
    long document re-embeds only what changed); returns the vectors and how many were reused."""
    texts = [embedding_text(document.title, c) for c in document.chunks]
    missing = [i for i, text in enumerate(texts) if text not in previous]
    out = np.empty((len(texts), embedder.dim), dtype=np.float32)
    if missing:
        out[missing] = embedder.embed([texts[i] for i in missing])
    for i, text in enumerate(texts):
        if text in previous:
            out[i] = previous[text]
    return out, len(texts) - len(missing)


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
    reused: int = 0  # chunks whose vector was kept from the document's previous version

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
    previous: PreviousVectors | None = None,
) -> Iterator[FileResult]:
    """Results in input order; up to `read_ahead` files are parsed while one is embedded.

    `previous(path)`: the vectors of the file's chunks as stored now, to reuse for unchanged chunks."""
    pending: deque[Future[_Parsed]] = deque()
    source = iter(paths)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="knowledge-parse") as pool:
        try:
            for path in source:
                pending.append(pool.submit(_parse, Path(path), ocr, max_bytes))
                if len(pending) > read_ahead:
                    yield _finish(pending.popleft().result(), embedder, previous)
            while pending:
                yield _finish(pending.popleft().result(), embedder, previous)
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


def _finish(parsed: _Parsed, embedder: Embedder, previous: PreviousVectors | None = None) -> FileResult:
    if parsed.document is None:
        return FileResult(parsed.path, parsed.sha256, None, None, parsed.error, parsed.seconds)
    start = time.perf_counter()
    known: dict[str, np.ndarray] = {}
    if previous is not None:
        try:
            known = previous(parsed.path)
        except Exception:  # noqa: BLE001 - reuse saves time; embedding everything is still right
            log.exception("could not read the stored vectors of %s", parsed.path)
    vectors, reused = embed_reusing(parsed.document, embedder, known)
    return FileResult(
        parsed.path,
        parsed.sha256,
        parsed.document,
        vectors,
        None,
        parsed.seconds,
        time.perf_counter() - start,
        reused,
    )
