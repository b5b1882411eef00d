"""Decompression bombs: refuse files whose compressed parts inflate past sane sizes, before parsing.

A 1 MB PDF can hold a FlateDecode stream that inflates to gigabytes, and pdfium
inflates a page's content stream whole when it loads the page (measured: a
1 GB stream took the process to 2 GB RSS). A 7 KB DOCX can hold a
`document.xml` of hundreds of MB that lxml parses into a tree many times
that size. Both checks here run in bounded memory (≤ ~1 MB buffers) and stop
counting at the limit, so a bomb costs a fraction of a second, not the server.
"""

from __future__ import annotations

import mmap
import re
import zipfile
import zlib
from pathlib import Path

from allin.knowledge.types import IngestError

# One stream larger than this inflated is no content stream or image we can use
# (images are refused above 40 Mpx anyway: 40 Mpx × 3 bytes = 120 MB).
MAX_PDF_STREAM_BYTES = 128 << 20
MAX_PDF_INFLATED_BYTES = 1 << 30  # all Flate streams of one PDF together
# The XML a DOCX parser builds a tree from (document, styles, headers, ...).
MAX_DOCX_XML_BYTES = 32 << 20
MAX_DOCX_RATIO = 100  # real Office XML compresses ~5–20×; bombs 100–1000×

_STREAM_START = re.compile(rb"stream(?:\r\n|\n|\r)")
_CHUNK = 1 << 20


def check_pdf_streams(path: Path) -> None:
    """Inflate every zlib stream of the PDF with a counter; raise IngestError("pdf_bomb") past the limits.

    Streams are found by their `stream` keyword; data that is not zlib (JPEG
    images, encrypted streams) fails at its first bytes and is skipped.
    """
    total = 0
    if path.stat().st_size == 0:  # mmap refuses empty files; there is nothing to inflate
        return
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for match in _STREAM_START.finditer(data):
            size = _inflated_size(data, match.end(), MAX_PDF_STREAM_BYTES)
            total += size
            if size > MAX_PDF_STREAM_BYTES or total > MAX_PDF_INFLATED_BYTES:
                limit = MAX_PDF_STREAM_BYTES if size > MAX_PDF_STREAM_BYTES else MAX_PDF_INFLATED_BYTES
                raise IngestError(
                    "pdf_bomb",
                    f"{path.name} holds compressed data that inflates past {limit >> 20} MB; refused",
                )


def _inflated_size(data: mmap.mmap, start: int, limit: int) -> int:
    """Bytes the zlib stream at `start` inflates to, counting stops just past `limit` (0 if not zlib)."""
    inflater = zlib.decompressobj()
    out, pos, pending = 0, start, b""
    try:
        # Output is capped per call (max_length), so input not yet inflated waits in unconsumed_tail.
        while not inflater.eof and out <= limit:
            if not pending:
                if pos >= len(data):
                    break
                pending, pos = data[pos:pos + _CHUNK], pos + _CHUNK
            out += len(inflater.decompress(pending, _CHUNK))
            pending = inflater.unconsumed_tail
    except zlib.error:
        pass  # not zlib (or broken): what inflated so far still counts
    return out


def check_docx_parts(path: Path) -> None:
    """Refuse a DOCX whose XML parts declare a huge or implausibly compressed size.

    zipfile never returns more than an entry's declared size (and then checks
    its CRC), so the declared sizes in the central directory are what a parser
    can be made to read.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            xml = [i for i in zf.infolist() if i.filename.endswith((".xml", ".rels"))]
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError("malformed", f"{path.name} is not a readable Word document: {exc}") from None
    inflated = sum(i.file_size for i in xml)
    compressed = sum(i.compress_size for i in xml)
    if inflated > MAX_DOCX_XML_BYTES:
        raise IngestError(
            "docx_bomb", f"{path.name}: its XML inflates to {inflated / 1e6:.0f} MB, over {MAX_DOCX_XML_BYTES >> 20} MB"
        )
    if inflated > (1 << 20) and inflated > MAX_DOCX_RATIO * max(compressed, 1):
        raise IngestError(
            "docx_bomb", f"{path.name}: its XML is compressed {inflated // max(compressed, 1)}:1, a decompression bomb"
        )
