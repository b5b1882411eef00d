"""PDF → blocks: text per page (pypdfium2), tables where there are any (pdfplumber), OCR for pixels.

Per page, in order of cost:

1. pdfium gives the text and, per line, its glyph height and position: lines
   taller than the body text become headings (the section path), vertical
   gaps split paragraphs, soft hyphens re-join words.
2. Ruling segments are read from the page's path objects; only a page where
   they cross as a grid of at least 2×2 cells (a rule crossed by three
   others, each way; or a path too complex to tell) goes to pdfplumber's
   `find_tables()` (0.3–1.6 s a page, against ~1 ms for the text). Boxes
   and underlines (code blocks, links) are not a grid. Tables found there
   become Markdown-table blocks, and their text is cut out of the page text
   so the numbers are not indexed twice.
3. A page with (almost) no text but an image covering part of it is a scan:
   it is rendered and read by OCR. Otherwise embedded images of a meaningful
   size (figures with text, screenshots) are read one by one.

PDFium is not thread-safe, not even across documents: every pdfium call
here runs under one process-wide lock, held per page, so other threads can
OCR or parse while a PDF is open. Use processes to parse PDFs in parallel.
"""

from __future__ import annotations

import ctypes
import logging
import re
import statistics
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from allin.knowledge.chunk import Block, render_table, split_sentences
from allin.knowledge.ocr import Ocr
from allin.knowledge.textclean import strip_junk
from allin.knowledge.types import IngestError

log = logging.getLogger(__name__)

PDFIUM_LOCK = threading.RLock()

SCAN_TEXT_CHARS = 30  # a page with fewer non-blank characters may be a scan
SCAN_IMAGE_COVER = 0.10  # ... if images cover at least this share of it
MIN_IMAGE_PT = (100.0, 30.0)  # an embedded image smaller than this on the page is decoration
MIN_IMAGE_PX = (64, 24)
RENDER_DPI = 150  # scans are read at this resolution (the detector works at ~1,000 px)
MAX_OCR_IMAGES = 40  # per document: OCR costs ~1–5 s an image
HEADING_RATIO = 1.15  # glyph height over body text height
RUNNING_BAND = 0.08  # running headers/footers live in this share of the page at top and bottom


@dataclass
class _Line:
    text: str
    start: int  # character index in the page text
    height: float
    top: float  # display space (the page as shown, rotation applied): y grows downwards
    bottom: float
    left: float
    level: int = 0  # heading level (1 = largest), 0 = body text
    running: bool = False  # a running header or footer (page furniture, not content)


@dataclass
class _ImageRef:
    index_path: tuple[int, ...]  # object indices from the page down through form XObjects
    bounds: tuple[float, float, float, float]  # left, top, right, bottom (display space)
    px: tuple[int, int]


@dataclass
class _PageScan:
    number: int  # 1-based
    width: float
    height: float
    text: str
    lines: list[_Line]
    grid: bool  # ruling segments cross like a table's (see _forms_grid)
    images: list[_ImageRef] = field(default_factory=list)

    @property
    def text_chars(self) -> int:
        return sum(1 for ch in self.text if not ch.isspace())

    @property
    def image_cover(self) -> float:
        area = self.width * self.height or 1.0
        return sum((b[2] - b[0]) * (b[3] - b[1]) for b in (i.bounds for i in self.images)) / area

    @property
    def table_candidate(self) -> bool:
        return self.grid


@dataclass
class PdfResult:
    title: str | None
    pages: int
    blocks: list[Block]
    warnings: list[str]


def extract_pdf(
    path: Path, *, ocr: Ocr | None, max_pixels: int, max_ocr_images: int = MAX_OCR_IMAGES
) -> PdfResult:
    warnings: list[str] = []
    with PDFIUM_LOCK:
        doc = _open(path)
    try:
        with PDFIUM_LOCK:
            meta_title = _metadata_title(doc)
            n_pages = len(doc)
        scans = []
        for i in range(n_pages):
            try:
                with PDFIUM_LOCK:
                    scans.append(_scan_page(doc, i))
            except pdfium.PdfiumError as exc:
                warnings.append(f"page {i + 1}: unreadable ({exc})")
        _mark_running_lines(scans)
        _assign_heading_levels(scans)
        outline = _Outline()
        blocks = _join_across_pages(
            _page_blocks(path, doc, scans, ocr, max_pixels, max_ocr_images, outline, warnings)
        )
    finally:
        with PDFIUM_LOCK:
            doc.close()
    return PdfResult(meta_title or outline.first, n_pages, blocks, warnings)


# --- opening -------------------------------------------------------------------


def _open(path: Path) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise IngestError(
                "encrypted", f"{path.name} is password-protected; upload an unlocked copy"
            ) from None
        reason = str(exc).replace("Failed to load document", "").strip(" ()") or "unreadable"
        raise IngestError("malformed", f"{path.name} is not a readable PDF: {reason}") from None


_FILENAME_TITLE = re.compile(r"(\.[a-z0-9]{2,5}$)|(^[\w.-]+_[\w.-]+$)", re.I)


def _metadata_title(doc: pdfium.PdfDocument) -> str | None:
    """The Title entry, unless it is a leftover file name or placeholder."""
    title = strip_junk(doc.get_metadata_dict().get("Title") or "").strip()
    title = re.sub(r"^Microsoft (Word|PowerPoint|Excel) - ", "", title)
    if len(re.findall(r"[^\W\d_]", title)) < 3 or title.lower() in {"untitled", "title", "document"}:
        return None
    if _FILENAME_TITLE.search(title) and " " not in title:
        return None
    return " ".join(title.split())


class _Outline:
    """The heading stack while reading, and the document's first heading (its title)."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, str]] = []  # (level, text)
        self.first: str | None = None

    def enter(self, line: _Line, page: int, wrapped: bool) -> None:
        if wrapped and self.stack:
            level, previous = self.stack[-1]
            self.stack[-1] = (level, f"{previous} {line.text}")
            if self.first == previous and len(self.stack) == 1:
                self.first = self.stack[-1][1]
            return
        while self.stack and self.stack[-1][0] >= line.level:
            self.stack.pop()
        self.stack.append((line.level, line.text))
        if self.first is None and page <= 2 and len(line.text) >= 3:
            self.first = line.text

    @property
    def section(self) -> str | None:
        return " > ".join(text for _, text in self.stack) or None


# --- pass 1: text, geometry, rules, images (under the pdfium lock) ---------------


class _Display:
    """PDF user space → display space (points, origin top-left, the page's /Rotate applied).

    pdfplumber reports positions in display space; pdfium's boxes are in
    user space, which on a rotated page runs sideways.
    """

    def __init__(self, page: pdfium.PdfPage) -> None:
        width, height = page.get_size()
        scale = 100  # FPDF_PageToDevice returns integers: map at 1/100 pt
        size = (round(width * scale), round(height * scale))
        dx, dy = ctypes.c_int(), ctypes.c_int()

        def device(x: float, y: float) -> tuple[float, float]:
            pdfium_c.FPDF_PageToDevice(page, 0, 0, size[0], size[1], 0, x, y, dx, dy)
            return dx.value / scale, dy.value / scale

        (e, f), (ax, ay), (cx, cy) = device(0, 0), device(1000, 0), device(0, 1000)
        self.m = ((ax - e) / 1000, (ay - f) / 1000, (cx - e) / 1000, (cy - f) / 1000, e, f)

    def rect(self, left: float, bottom: float, right: float, top: float) -> tuple[float, float, float, float]:
        """A user-space box → (left, top, right, bottom) in display space."""
        a, b, c, d, e, f = self.m
        xs, ys = [], []
        for x, y in ((left, bottom), (right, top)):
            xs.append(a * x + c * y + e)
            ys.append(b * x + d * y + f)
        return min(xs), min(ys), max(xs), max(ys)


def _scan_page(doc: pdfium.PdfDocument, index: int) -> _PageScan:
    page = doc[index]
    try:
        width, height = page.get_size()
        display = _Display(page)
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range()
            lines = _lines(textpage, text, display)
        finally:
            textpage.close()
        grid, images = _objects(page, display)
        return _PageScan(index + 1, width, height, text, lines, grid, images)
    finally:
        page.close()


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _lines(textpage: pdfium.PdfTextPage, text: str, display: _Display) -> list[_Line]:
    out = []
    rect = pdfium_c.FS_RECTF()
    start = 0
    for m in [*_LINE_BREAK.finditer(text), None]:
        end = m.start() if m else len(text)
        raw = text[start:end]
        stripped = raw.strip()
        if stripped:
            first = start + (len(raw) - len(raw.lstrip()))
            if pdfium_c.FPDFText_GetLooseCharBox(textpage, first, rect):
                left, top, _, bottom = display.rect(rect.left, rect.bottom, rect.right, rect.top)
                # U+FFFE is pdfium's mark for a hyphen ending a visual line (see _reflow);
                # same length, so offsets into the page text still hold.
                out.append(_Line(stripped.replace("\ufffe", "-"), first, bottom - top, top, bottom, left))
        start = m.end() if m else len(text)
    return out


_Segment = tuple[float, float, float]  # position across, start and end along (display space)
GRID_TOLERANCE = 2.0  # points: rules this close meet or are one
COMPLEX_BOX_SEGMENTS = 12  # a box-shaped path with more segments than this may be a whole drawn grid


def _objects(page: pdfium.PdfPage, display: _Display) -> tuple[bool, list[_ImageRef]]:
    """Whether ruling segments form a grid, and the image objects; walks into form XObjects (raw API)."""
    horizontal: list[_Segment] = []  # (y, x0, x1)
    vertical: list[_Segment] = []  # (x, y0, y1)
    complex_box = False
    images: list[_ImageRef] = []
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    page_area = page.get_width() * page.get_height()
    width, height = ctypes.c_uint(), ctypes.c_uint()

    def walk(container, is_form: bool, path: tuple[int, ...], depth: int) -> None:
        nonlocal complex_box
        count = (pdfium_c.FPDFFormObj_CountObjects if is_form else pdfium_c.FPDFPage_CountObjects)(container)
        get = pdfium_c.FPDFFormObj_GetObject if is_form else pdfium_c.FPDFPage_GetObject
        for i in range(max(count, 0)):
            obj = get(container, i)
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            if kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < 8:
                walk(obj, True, (*path, i), depth + 1)
                continue
            if kind not in (pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_IMAGE):
                continue
            if not pdfium_c.FPDFPageObj_GetBounds(obj, left, bottom, right, top):
                continue
            box = display.rect(left.value, bottom.value, right.value, top.value)
            w, h = box[2] - box[0], box[3] - box[1]
            if kind == pdfium_c.FPDF_PAGEOBJ_PATH:
                x0, y0, x1, y1 = box
                if h < 2.5 and w > 5:
                    horizontal.append(((y0 + y1) / 2, x0, x1))
                elif w < 2.5 and h > 5:
                    vertical.append(((x0 + x1) / 2, y0, y1))
                elif w > 5 and h > 5 and w * h < 0.8 * page_area:  # a box (a cell, a frame): its 4 edges
                    horizontal.extend([(y0, x0, x1), (y1, x0, x1)])
                    vertical.extend([(x0, y0, y1), (x1, y0, y1)])
                    complex_box |= pdfium_c.FPDFPath_CountSegments(obj) > COMPLEX_BOX_SEGMENTS
            else:
                px = (0, 0)
                if pdfium_c.FPDFImageObj_GetImagePixelSize(obj, width, height):
                    px = (width.value, height.value)
                images.append(_ImageRef((*path, i), box, px))

    walk(page, False, (), 0)
    return complex_box or _forms_grid(horizontal, vertical), images


def _forms_grid(horizontal: list[_Segment], vertical: list[_Segment], tol: float = GRID_TOLERANCE) -> bool:
    """True when the rules cross like a table of at least 2×2 cells: some horizontal rule is
    crossed by vertical rules at three x positions, and some vertical rule by three horizontal ones.
    Touching collinear pieces (cell borders drawn cell by cell) are joined first."""
    if len(horizontal) < 3 or len(vertical) < 3:
        return False
    horizontal, vertical = _join_collinear(horizontal, tol), _join_collinear(vertical, tol)

    def crossed_three_times(rule: _Segment, others: list[_Segment]) -> bool:
        at, start, end = rule
        hits = sorted(p for p, lo, hi in others if start - tol <= p <= end + tol and lo - tol <= at <= hi + tol)
        distinct = sum(1 for a, b in zip(hits, hits[1:], strict=False) if b - a > tol) + 1 if hits else 0
        return distinct >= 3

    return any(crossed_three_times(r, vertical) for r in horizontal) and any(
        crossed_three_times(r, horizontal) for r in vertical
    )


def _join_collinear(segments: list[_Segment], tol: float) -> list[_Segment]:
    out: list[_Segment] = []
    for at, start, end in sorted(segments, key=lambda s: (round(s[0] / tol), s[1])):
        if out and abs(out[-1][0] - at) <= tol and start <= out[-1][2] + tol:
            out[-1] = (out[-1][0], out[-1][1], max(out[-1][2], end))
        else:
            out.append((at, start, end))
    return out


_DIGITS = re.compile(r"\d+")


def _mark_running_lines(scans: list[_PageScan]) -> None:
    """Lines repeated near the top or bottom of most pages (digits aside) are headers/footers."""
    if len(scans) < 3:
        return

    def margin_lines(scan: _PageScan) -> list[_Line]:
        band = RUNNING_BAND * scan.height
        return [ln for ln in scan.lines if ln.top < band or ln.bottom > scan.height - band]

    seen: Counter[str] = Counter()
    for scan in scans:
        seen.update({_DIGITS.sub("#", ln.text) for ln in margin_lines(scan)})
    repeated = {text for text, n in seen.items() if n >= max(3, len(scans) // 2)}
    for scan in scans:
        for line in margin_lines(scan):
            line.running = _DIGITS.sub("#", line.text) in repeated


def _assign_heading_levels(scans: list[_PageScan]) -> None:
    """Lines clearly taller than the body text are headings; bigger = higher level."""
    weights: Counter[float] = Counter()
    for scan in scans:
        for line in scan.lines:
            weights[round(line.height * 2) / 2] += len(line.text)
    if not weights:
        return
    body = weights.most_common(1)[0][0]
    candidates = [
        line
        for scan in scans
        for line in scan.lines
        if not line.running and line.height >= body * HEADING_RATIO and _heading_like(line.text)
    ]
    sizes = sorted({round(line.height) for line in candidates}, reverse=True)[:4]
    for line in candidates:
        size = round(line.height)
        line.level = sizes.index(size) + 1 if size in sizes else len(sizes)


def _heading_like(text: str) -> bool:
    letters = sum(ch.isalpha() for ch in text)
    return (
        letters >= 2 and len(text) <= 150 and len(text.split()) <= 20 and not text.endswith((".", ",", ";"))
    )


# --- pass 2: blocks per page ------------------------------------------------------


def _page_blocks(
    path: Path,
    doc: pdfium.PdfDocument,
    scans: list[_PageScan],
    ocr: Ocr | None,
    max_pixels: int,
    max_ocr_images: int,
    outline: _Outline,
    warnings: list[str],
) -> Iterator[list[Block]]:
    """The blocks of each page, in reading order."""
    ocr_budget = [max_ocr_images]
    skipped_no_ocr = 0
    plumber = _Plumber(path, warnings)
    try:
        for scan in scans:
            tables = plumber.tables(scan.number) if scan.table_candidate else []
            text = scan.text
            if tables:
                text = _blank_regions(doc, scan, [t.bbox for t in tables])
            # A scanned page: render it whole and read it.
            scanned = scan.text_chars < SCAN_TEXT_CHARS and scan.image_cover >= SCAN_IMAGE_COVER
            if scanned and ocr is None:
                skipped_no_ocr += 1
            elif scanned:
                paragraphs = _ocr_page(doc, scan, ocr, max_pixels, ocr_budget, warnings)
                if paragraphs:
                    yield [Block("image", "\n\n".join(paragraphs), outline.section, scan.number)]
                    continue
            image_blocks: list[tuple[float, Block]] = []
            for ref in [] if scanned else scan.images:
                if not _meaningful(ref):
                    continue
                if ocr is None:
                    skipped_no_ocr += 1
                    continue
                paragraphs = _ocr_image(doc, scan, ref, ocr, max_pixels, ocr_budget, warnings)
                if paragraphs:
                    image_blocks.append(
                        (ref.bounds[1], Block("image", "\n\n".join(paragraphs), page=scan.number))
                    )
            inserts = image_blocks
            for table in tables:
                top = table.bbox[1]
                markdown = render_table(table.rows, table.caption)
                block = Block("table", markdown, page=scan.number, rows=table.rows, caption=table.caption)
                inserts.append((top, block))
                if table.notes:
                    inserts.append((top + 0.01, Block("text", "\n\n".join(table.notes), page=scan.number)))
            yield list(_text_blocks(scan, text, outline, inserts))
    finally:
        plumber.close()
    if skipped_no_ocr:
        warnings.append(f"{skipped_no_ocr} image(s) or scanned page(s) not read: OCR is off")
    if ocr_budget[0] < 0:
        warnings.append(
            f"OCR limit of {max_ocr_images} images per document reached: {-ocr_budget[0]} not read"
        )


def _text_blocks(
    scan: _PageScan, text: str, outline: _Outline, inserts: list[tuple[float, Block]]
) -> Iterator[Block]:
    """Paragraph blocks in reading order, updating the heading stack.

    `inserts` (images, tables: (top, block)) are slotted in before the first
    text line below their top edge, and take the section in force there.
    """
    pending = sorted(inserts, key=lambda it: it[0])
    paragraph: list[_Line] = []
    gaps = [
        b.top - a.bottom
        for a, b in zip(scan.lines, scan.lines[1:], strict=False)
        if not a.level and not b.level
    ]
    typical_gap = statistics.median([g for g in gaps if g >= 0] or [0.0])

    def flush() -> Iterator[Block]:
        if paragraph:
            body = _reflow(paragraph, text)
            if body:
                yield Block("text", body, outline.section, scan.number)
            paragraph.clear()

    prev: _Line | None = None
    for line in scan.lines:
        while pending and pending[0][0] < line.top:
            yield from flush()
            _, block = pending.pop(0)
            block.section = outline.section
            yield block
        if line.running or not text[line.start : line.start + len(line.text)].strip():
            continue  # page furniture, or inside a table
        if line.level:
            yield from flush()
            # A heading wrapped over two lines: same size, right below.
            wrapped = prev is not None and prev.level == line.level and line.top - prev.bottom < line.height
            outline.enter(line, scan.number, wrapped)
            prev = line
            continue
        if prev is not None and paragraph:
            gap = line.top - prev.bottom
            if (
                gap > typical_gap + 0.45 * line.height
                or gap < -line.height  # moved up: a new column
                or abs(line.height - prev.height) > 0.2 * prev.height
                or line.text[:1] in "•▪◦●-–*"
            ):
                yield from flush()
        paragraph.append(line)
        prev = line
    yield from flush()
    for _, block in pending:
        block.section = outline.section
        yield block


def _reflow(lines: list[_Line], text: str) -> str:
    """Visual lines → one paragraph: soft hyphens re-join words, other breaks become spaces."""
    out = ""
    for line in lines:
        piece = text[line.start : line.start + len(line.text)]
        # pdfium reports a drawn hyphen that ends a visual line as U+FFFE; it is a real
        # hyphen ("well-designed"), so it goes back to "-" and the rules below apply.
        piece = " ".join(piece.replace("\ufffe", "-").split())
        if not piece:
            continue
        if out.endswith(("\x02", "\xad")):
            out = out[:-1] + piece
        elif out.endswith("-") and piece[:1].islower():
            out += piece
        else:
            out = f"{out} {piece}" if out else piece
    return strip_junk(out.replace("\x02", "")).strip()


_SENTENCE_DONE = (".", "!", "?", ":", ";", '"', "”", ")", "]")


def _join_across_pages(pages: Iterator[list[Block]]) -> list[Block]:
    """A sentence cut by a page break is completed on the next page.

    The unfinished tail of a page's last paragraph is repeated at the start
    of the next page's first paragraph (when that one starts in lower case),
    so each page's chunks hold whole sentences; page numbers stay exact for
    everything else.
    """
    out: list[Block] = []
    carry: str | None = None
    for blocks in pages:
        texts = [b for b in blocks if b.kind == "text"]
        if carry and texts and texts[0] is blocks[0] and texts[0].text[:1].islower():
            texts[0].text = f"{carry} {texts[0].text}"
        carry = None
        if texts and texts[-1] is blocks[-1] and not texts[-1].text.rstrip().endswith(_SENTENCE_DONE):
            spans = split_sentences(texts[-1].text)
            if spans:
                tail = texts[-1].text[spans[-1][0] : spans[-1][1]]
                carry = tail if len(tail) <= 400 else None
        out.extend(blocks)
    return out


def _blank_regions(doc: pdfium.PdfDocument, scan: _PageScan, bboxes: list[tuple[float, ...]]) -> str:
    """The page text with characters inside the given (pdfplumber) boxes replaced by spaces."""
    regions = [(x0 - 1, top - 1, x1 + 1, bottom + 1) for x0, top, x1, bottom in bboxes]
    chars = list(scan.text)
    with PDFIUM_LOCK:
        page = doc[scan.number - 1]
        display = _Display(page)
        textpage = page.get_textpage()
        try:
            rect = pdfium_c.FS_RECTF()
            for i, ch in enumerate(chars):
                if ch.isspace() or not pdfium_c.FPDFText_GetLooseCharBox(textpage, i, rect):
                    continue
                x0, y0, x1, y1 = display.rect(rect.left, rect.bottom, rect.right, rect.top)
                cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                if any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1 in regions):
                    chars[i] = " "
        finally:
            textpage.close()
            page.close()
    return "".join(chars)


# --- tables (pdfplumber, opened only when a page looks like it has one) -----------


class _Plumber:
    def __init__(self, path: Path, warnings: list[str]) -> None:
        self.path = path
        self.warnings = warnings
        self._pdf = None

    def tables(self, page_number: int) -> list:
        from allin.knowledge.tables import read_table

        try:
            if self._pdf is None:
                import pdfplumber

                self._pdf = pdfplumber.open(self.path)
            page = self._pdf.pages[page_number - 1]
            found = [read_table(page, t) for t in page.find_tables()]
            page.close()
            return [t for t in found if t is not None]
        except Exception as exc:  # a table we cannot read must not cost the page's text
            log.warning("table detection failed on %s page %d: %s", self.path.name, page_number, exc)
            self.warnings.append(f"page {page_number}: tables not read ({type(exc).__name__}: {exc})")
            return []

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()


# --- images ------------------------------------------------------------------------


def _meaningful(ref: _ImageRef) -> bool:
    left, top, right, bottom = ref.bounds
    return (
        right - left >= MIN_IMAGE_PT[0]
        and bottom - top >= MIN_IMAGE_PT[1]
        and ref.px[0] >= MIN_IMAGE_PX[0]
        and ref.px[1] >= MIN_IMAGE_PX[1]
    )


def _ocr_page(
    doc: pdfium.PdfDocument,
    scan: _PageScan,
    ocr: Ocr,
    max_pixels: int,
    budget: list[int],
    warnings: list[str],
) -> list[str]:
    budget[0] -= 1
    if budget[0] < 0:
        return []
    scale = RENDER_DPI / 72
    pixels = scan.width * scale * scan.height * scale
    if pixels > max_pixels:
        scale *= (max_pixels / pixels) ** 0.5
    with PDFIUM_LOCK:
        page = doc[scan.number - 1]
        try:
            bitmap = page.render(scale=scale, grayscale=True)
            image = bitmap.to_pil().copy()
            bitmap.close()
        finally:
            page.close()
    return _read(ocr, image, f"page {scan.number}", warnings)


def _ocr_image(
    doc: pdfium.PdfDocument,
    scan: _PageScan,
    ref: _ImageRef,
    ocr: Ocr,
    max_pixels: int,
    budget: list[int],
    warnings: list[str],
) -> list[str]:
    if ref.px[0] * ref.px[1] > max_pixels:
        warnings.append(
            f"page {scan.number}: an image of {ref.px[0]}×{ref.px[1]} pixels was too large to read"
        )
        return []
    budget[0] -= 1
    if budget[0] < 0:
        return []
    with PDFIUM_LOCK:
        page = doc[scan.number - 1]
        try:
            obj = _object_at(page, ref.index_path)
            if obj is None:
                return []
            image_obj = pdfium.PdfObject(obj, page=page, pdf=doc)
            try:
                bitmap = image_obj.get_bitmap(render=True)
            except pdfium.PdfiumError:
                bitmap = image_obj.get_bitmap(render=False)
            image = bitmap.to_pil().copy()  # our own pixels: closing the pdfium buffer is safe
            bitmap.warn_on_close = False
            bitmap.close()
        except (pdfium.PdfiumError, ValueError, OSError) as exc:
            warnings.append(f"page {scan.number}: an image could not be decoded ({exc})")
            return []
        finally:
            page.close()
    return _read(ocr, image, f"page {scan.number}", warnings)


def _object_at(page: pdfium.PdfPage, index_path: tuple[int, ...]):
    obj = pdfium_c.FPDFPage_GetObject(page, index_path[0])
    for i in index_path[1:]:
        if not obj:
            return None
        obj = pdfium_c.FPDFFormObj_GetObject(obj, i)
    return obj or None


def _read(ocr: Ocr, image: Image.Image, where: str, warnings: list[str]) -> list[str]:
    try:
        return ocr.read(image)
    except Exception as exc:  # OCR failing on one image must not fail the document
        log.warning("OCR failed on %s: %s", where, exc)
        warnings.append(f"{where}: OCR failed ({type(exc).__name__})")
        return []
