"""The shapes that leave the ingestion pipeline (the store is written against these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ChunkKind = Literal["text", "table", "image", "code"]

IngestErrorCode = Literal[
    "empty", "encrypted", "malformed", "unsupported_type", "too_large", "image_bomb", "pdf_bomb",
    "docx_bomb", "no_text"
]


@dataclass
class Chunk:
    """One retrievable passage, in document order (`ord`)."""

    ord: int
    kind: ChunkKind
    content: str  # the clean passage shown to users (no title/section prefix)
    page: int | None = None  # 1-based, PDFs
    section: str | None = None  # heading path, "A > B", or a code symbol name
    # Source line range (1-based, inclusive): code files, and also Markdown
    # and plain-text files, where it is the range the passage came from.
    line_start: int | None = None
    line_end: int | None = None


@dataclass
class ExtractedDocument:
    title: str
    mime: str
    pages: int | None
    chunks: list[Chunk]
    warnings: list[str] = field(default_factory=list)


class IngestError(Exception):
    """A file that cannot be ingested, with a reason fit to show an admin.

    `code` is stable and machine-readable: empty, encrypted, malformed,
    unsupported_type, too_large, image_bomb, no_text.
    """

    def __init__(self, code: IngestErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: IngestErrorCode = code
        self.message = message

    def __repr__(self) -> str:
        return f"IngestError({self.code!r}, {self.message!r})"
