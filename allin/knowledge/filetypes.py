"""What a file really is, from its bytes first and its name second.

Binary formats (PDF, images, DOCX) are recognised by their magic bytes with
`puremagic`, so a PNG renamed `.pdf` is read as a PNG and a random zip named
`.docx` is refused. Text formats have no magic: they are recognised by
extension, and only when the bytes look like text.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import puremagic

from allin.knowledge.types import IngestError

FileKind = Literal["pdf", "image", "markdown", "html", "docx", "text", "code"]

SNIFF_BYTES = 8192

MARKDOWN_EXTENSIONS = {".md", ".markdown"}
HTML_EXTENSIONS = {".html", ".htm"}
TEXT_EXTENSIONS = {".txt", ".rst", ".log"}
# extension → language name (the code chunker keys on it; "python" uses ast)
CODE_EXTENSIONS = {
    ".py": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".go": "go",
    ".java": "java",
    ".kt": "kotlin",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".cc": "cpp",
    ".hpp": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".sh": "shell",
    ".bash": "shell",
    ".sql": "sql",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".json": "json",
}
# Extension-less files worth reading in a repository.
TEXT_FILENAMES = {"readme", "contributing", "changelog", "authors", "codeowners"}

IMAGE_MIMES = {"image/png": "image/png", "image/jpeg": "image/jpeg", "image/webp": "image/webp"}
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

TEXT_MIMES: dict[FileKind, str] = {
    "markdown": "text/markdown",
    "html": "text/html",
    "text": "text/plain",
    "code": "text/x-source",
}


@dataclass(frozen=True)
class FileType:
    kind: FileKind
    mime: str
    language: str | None = None  # for kind="code"


def detect(path: Path, *, max_bytes: int | None = None) -> FileType:
    """Sniff `path`; raise IngestError for empty, oversized or unsupported files."""
    size = path.stat().st_size
    if size == 0:
        raise IngestError("empty", f"{path.name} is empty (0 bytes)")
    if max_bytes is not None and size > max_bytes:
        raise IngestError(
            "too_large", f"{path.name} is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit"
        )
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    return detect_bytes(head, path)


def detect_bytes(head: bytes, path: Path) -> FileType:
    """Classify from the first bytes of a file and its name."""
    ext = path.suffix.lower()
    # PDF allows junk before the header (within the first 1 KiB).
    if b"%PDF-" in head[:1024]:
        return FileType("pdf", "application/pdf")
    mimes = _magic_mimes(head, path)
    for mime in mimes:
        if mime in IMAGE_MIMES:
            return FileType("image", IMAGE_MIMES[mime])
    if head.startswith(b"PK\x03\x04"):
        if _is_docx(path):
            return FileType("docx", DOCX_MIME)
        raise IngestError("unsupported_type", f"{path.name} is a zip archive, not a Word document")
    binary_mime = next((m for m in mimes if not m.startswith("text/")), None)
    if not looks_like_text(head):
        what = f" ({binary_mime})" if binary_mime else ""
        raise IngestError("unsupported_type", f"{path.name} is a binary file{what} that cannot be read")
    kind, language = _text_kind(path, ext)
    if kind is None:
        if "text/html" in mimes:
            return FileType("html", "text/html")
        raise IngestError(
            "unsupported_type", f"{path.name}: file type {ext or '(no extension)'} is not supported"
        )
    return FileType(kind, TEXT_MIMES[kind], language)


def is_supported_name(path: Path) -> bool:
    """Cheap pre-filter by name only (for folder walks); `detect` still decides."""
    ext = path.suffix.lower()
    return ext in {".pdf", ".png", ".jpg", ".jpeg", ".webp", ".docx"} or _text_kind(path, ext)[0] is not None


def looks_like_text(head: bytes) -> bool:
    """No NUL bytes and decodable (UTF-8, or mostly printable in a single-byte code page)."""
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniff window is still text.
        if exc.start >= len(head) - 3:
            return True
    printable = sum(1 for b in head if b >= 0x20 or b in (0x09, 0x0A, 0x0D))
    return printable / len(head) > 0.95


def decode_text(data: bytes) -> tuple[str, str | None]:
    """Bytes → str; a warning when the file was not UTF-8."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "not UTF-8: decoded as Windows-1252"


def _text_kind(path: Path, ext: str) -> tuple[FileKind | None, str | None]:
    if ext in MARKDOWN_EXTENSIONS:
        return "markdown", None
    if ext in HTML_EXTENSIONS:
        return "html", None
    if ext in TEXT_EXTENSIONS:
        return "text", None
    if ext in CODE_EXTENSIONS:
        return "code", CODE_EXTENSIONS[ext]
    if not ext and path.name.lower() in TEXT_FILENAMES:
        return "text", None
    return None, None


def _magic_mimes(head: bytes, path: Path) -> list[str]:
    try:
        return [m.mime_type for m in puremagic.magic_string(head, path.name) if m.mime_type]
    except (puremagic.PureError, ValueError):
        return []


def _is_docx(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return "word/document.xml" in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
