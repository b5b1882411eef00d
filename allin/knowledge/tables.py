"""PDF tables (found by pdfplumber) as a header row and data rows.

pdfplumber's cell grid follows the ruling lines, which in real documents
often enclose several logical rows or columns in one cell: a title across the
whole table, a header cell over several sub-columns ("Pre-Pawn" over
"Handgun | Long Gun | *Other"), five states stacked in one ruled band. The
words are re-read inside such cells and placed by their position:

- a leading row that is one cell across the table becomes the caption;
- header rows (the first row and the rows below it that its cells reach
  into) are merged column by column, a spanning label prefixing the
  sub-column names under it;
- a body row whose first cell holds several lines, or a cell spanning
  columns, is split into one row per text line, each phrase (words a space
  apart) going to the column under its centre; a line that is a single
  phrase continues the row above (a wrapped cell);
- a spanning body cell holding only single-phrase lines is prose (a
  footnote, a disclaimer): it becomes a note, not rows.

Tables left with fewer than two columns or no data row are dropped: their
text stays in the page text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EPS = 1.0  # PDF points


@dataclass
class TableData:
    rows: list[list[str]]  # header first
    caption: str | None
    bbox: tuple[float, float, float, float]  # x0, top, x1, bottom (pdfplumber coordinates)
    notes: list[str]  # prose found in cells across the table (footnotes, disclaimers)


def read_table(page: Any, table: Any) -> TableData | None:
    """A pdfplumber `Table` on `page` → TableData, or None when it is not a real table."""
    cells = [list(r.cells) for r in table.rows]
    texts = table.extract()
    if not cells or not cells[0]:
        return None
    xs = _column_edges(cells, table.bbox)
    ncol = len(xs) - 1
    if any(len(r) != ncol for r in cells):
        return None
    words = page.crop(table.bbox, strict=False).extract_words()

    def span(bbox) -> tuple[int, int]:
        first = max(0, min(ncol - 1, _column_of(xs, bbox[0] + EPS)))
        last = max(first, min(ncol - 1, _column_of(xs, bbox[2] - EPS)))
        return first, last

    # Caption rows: a single cell across the whole table.
    caption_parts: list[str] = []
    while len(cells) > 1:
        present = [(j, c) for j, c in enumerate(cells[0]) if c is not None]
        if len(present) == 1 and span(present[0][1]) == (0, ncol - 1):
            caption_parts.append(_flat(texts[0][present[0][0]]))
            cells, texts = cells[1:], texts[1:]
        else:
            break

    # Header rows: row 0 and the rows its cells reach down into.
    header_bottom = max(c[3] for c in cells[0] if c is not None)
    n_header = 1
    while n_header < len(cells) and _row_top(cells[n_header]) < header_bottom - EPS:
        header_bottom = max(header_bottom, *(c[3] for c in cells[n_header] if c is not None))
        n_header += 1
    header = [""] * ncol
    for i in range(n_header):
        for j, bbox in enumerate(cells[i]):
            if bbox is None:
                continue
            a, b = span(bbox)
            if a == b:
                header[a] = _join(header[a], _flat(texts[i][j]))
                continue
            for col, text in _spread_header(_words_in(words, bbox), xs, a, b).items():
                header[col] = _join(header[col], text)

    body: list[list[str]] = []
    notes: list[str] = []
    for i in range(n_header, len(cells)):
        row_cells, row_texts = cells[i], texts[i]
        present = [(j, c) for j, c in enumerate(row_cells) if c is not None]
        if not present:
            continue
        spanning = any(span(c)[1] > span(c)[0] for _, c in present)
        stacked = (row_texts[0] or "").count("\n") > 0 and row_cells[0] is not None
        if spanning or stacked:
            row_bbox = (
                min(c[0] for _, c in present),
                min(c[1] for _, c in present),
                max(c[2] for _, c in present),
                max(c[3] for _, c in present),
            )
            lines = _lines(_words_in(words, row_bbox))
            if spanning and _is_prose(lines):
                notes.extend(_notes(lines, xs))
            else:
                body.extend(_rows_by_line(lines, xs))
        else:
            body.append([_flat(row_texts[j]) if row_cells[j] is not None else "" for j in range(ncol)])

    keep = [j for j in range(ncol) if header[j] or any(r[j] for r in body)]
    rows = [[r[j] for j in keep] for r in [header, *body]]
    rows = [rows[0]] + [r for r in rows[1:] if any(r)]
    if len(keep) < 2 or len(rows) < 2:
        return None
    caption = " — ".join(p for p in caption_parts if p) or None
    return TableData(rows, caption, tuple(table.bbox), notes)


def _column_edges(cells: list[list[Any]], bbox: tuple[float, ...]) -> list[float]:
    """x positions of column starts (cell j of every row sits at column j) + the right edge."""
    ncol = len(cells[0])
    starts: list[float | None] = [None] * ncol
    for row in cells:
        for j, c in enumerate(row):
            if c is not None and starts[j] is None:
                starts[j] = c[0]
    # Columns never seen on their own (always merged) get a share of their neighbours.
    for j in range(ncol):
        if starts[j] is None:
            prev = starts[j - 1] if j else bbox[0]
            starts[j] = prev
    return [float(s) for s in starts] + [float(bbox[2])]  # type: ignore[arg-type]


def _column_of(xs: list[float], x: float) -> int:
    for j in range(len(xs) - 1):
        if x < xs[j + 1]:
            return j
    return len(xs) - 2


def _row_top(row: list[Any]) -> float:
    return min(c[1] for c in row if c is not None) if any(c is not None for c in row) else 0.0


def _words_in(words: list[dict], bbox: tuple[float, ...]) -> list[dict]:
    x0, top, x1, bottom = bbox[:4]
    return [
        w
        for w in words
        if x0 - EPS <= (w["x0"] + w["x1"]) / 2 <= x1 + EPS
        and top - EPS <= (w["top"] + w["bottom"]) / 2 <= bottom + EPS
    ]


def _lines(words: list[dict]) -> list[list[dict]]:
    """Words grouped into text lines (same baseline within 3 pt), top to bottom."""
    lines: list[list[dict]] = []
    for w in sorted(words, key=lambda w: (round(w["top"]), w["x0"])):
        if lines and abs(w["top"] - lines[-1][0]["top"]) <= 3:
            lines[-1].append(w)
        else:
            lines.append([w])
    return [sorted(line, key=lambda w: w["x0"]) for line in lines]


def _by_column(line: list[dict], xs: list[float], a: int = 0, b: int | None = None) -> dict[int, str]:
    b = len(xs) - 2 if b is None else b
    cols: dict[int, str] = {}
    for w in line:
        col = min(b, max(a, _column_of(xs, (w["x0"] + w["x1"]) / 2)))
        cols[col] = _join(cols.get(col, ""), w["text"])
    return cols


def _spread_header(words: list[dict], xs: list[float], a: int, b: int) -> dict[int, str]:
    """A header cell over columns a..b: label lines prefix, multi-column lines split."""
    labels: list[str] = []
    per_col: dict[int, str] = {}
    for line in _lines(words):
        phrases = _phrases(line)
        if len(phrases) >= 2:
            for col, text in _by_column(phrases, xs, a, b).items():
                per_col[col] = _join(per_col.get(col, ""), text)
        else:
            labels.append(phrases[0]["text"])
    label = " ".join(labels)
    return {col: _join(label, per_col.get(col, "")) for col in range(a, b + 1)}


def _rows_by_line(lines: list[list[dict]], xs: list[float]) -> list[list[str]]:
    ncol = len(xs) - 1
    rows: list[list[str]] = []
    for line in lines:
        phrases = _phrases(line)
        if len(phrases) == 1 and rows:
            col = _column_of(xs, (phrases[0]["x0"] + phrases[0]["x1"]) / 2)
            rows[-1][col] = _join(rows[-1][col], phrases[0]["text"])  # a wrapped cell
            continue
        cols = _by_column(phrases, xs)
        rows.append([cols.get(j, "") for j in range(ncol)])
    return rows


def _is_prose(lines: list[list[dict]]) -> bool:
    """Sentences, not values: phrases of several words on average."""
    phrases = [p for line in lines for p in _phrases(line)]
    return bool(phrases) and sum(p["text"].count(" ") + 1 for p in phrases) / len(phrases) >= 3.5


def _notes(lines: list[list[dict]], xs: list[float]) -> list[str]:
    """Prose laid out side by side: one note per column, read top to bottom."""
    by_col: dict[int, str] = {}
    for line in lines:
        for phrase in _phrases(line):
            col = _column_of(xs, phrase["x0"] + 1)
            by_col[col] = _join(by_col.get(col, ""), phrase["text"])
    return [by_col[c] for c in sorted(by_col) if by_col[c]]


def _phrases(line: list[dict]) -> list[dict]:
    """Words of a line merged where they are only a space apart (a gap wider than
    half the text height separates columns)."""
    out: list[dict] = []
    for w in line:
        if out and w["x0"] - out[-1]["x1"] <= max(2.5, 0.5 * (w["bottom"] - w["top"])):
            last = out[-1]
            out[-1] = {**last, "text": f"{last['text']} {w['text']}", "x1": w["x1"]}
        else:
            out.append(dict(w))
    return out


def _flat(text: str | None) -> str:
    return " ".join((text or "").split())


def _join(a: str, b: str) -> str:
    return f"{a} {b}" if a and b else a or b
