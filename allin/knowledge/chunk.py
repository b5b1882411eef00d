"""Cutting extracted blocks into passages that fit the embedding window.

Extractors emit `Block`s (a paragraph run, a table, a code span) tagged with
their section, page and lines; `Chunker` packs them into `Chunk`s:

- a chunk never mixes sections, pages or kinds, so its citation is exact;
- text is packed sentence by sentence, preferring paragraph boundaries once
  a chunk is reasonably full, and a new chunk repeats the last one or two
  sentences of the previous one in the same section (overlap), so an answer
  that straddles a cut is still found whole in one passage;
- tables split between rows and repeat their caption and header row; code
  splits between lines; only a single line or row too long for a chunk on
  its own is cut inside (there is no other way to keep it under the limit);
- a tiny trailing fragment joins the chunk before it when it fits.

Sizes are measured in MiniLM tokens on the text the embedder sees
(`embedding_text`: "title > section" prefix + content), so no chunk is
silently truncated by the model's 256-token window.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from allin.knowledge.types import Chunk, ChunkKind

TOKENIZER_FILE = Path(__file__).parent / "data" / "all-MiniLM-L6-v2.tokenizer.json"

MAX_TOKENS = 256  # MiniLM's window, [CLS] and [SEP] included
TARGET_TOKENS = 200  # a chunk this full ends at the next paragraph boundary (~150 words)
SOFT_MIN_TOKENS = 140
MIN_TOKENS = 40  # a smaller trailing fragment joins its neighbour
OVERLAP_TOKENS = 60  # the most repeated from the previous chunk (one or two sentences)
SPECIAL_TOKENS = 2  # [CLS] ... [SEP]
MAX_TITLE_CHARS = 100
MAX_SECTION_CHARS = 160

TokenCounter = Callable[[list[str]], list[int]]


@dataclass
class Block:
    """A contiguous piece of a document, before chunking."""

    kind: ChunkKind
    text: str = ""
    section: str | None = None
    page: int | None = None
    line_start: int | None = None  # first source line of `text` (1-based)
    line_end: int | None = None
    rows: list[list[str]] | None = None  # tables: header row first, then data rows
    caption: str | None = None  # tables: a title line shown above the table


# --- what the embedder sees -------------------------------------------------


def embedding_prefix(doc_title: str, section: str | None) -> str:
    """ "Title > Section" (title dropped when the section path already starts with it)."""
    title = _clip(" ".join(doc_title.split()), MAX_TITLE_CHARS)
    section = " ".join(section.split()) if section else ""
    if len(section) > MAX_SECTION_CHARS:
        # The deepest heading says most about the passage: keep it, clip the path.
        section = "… > " + _clip(section.rsplit(" > ", 1)[-1], MAX_SECTION_CHARS)
    if section and title and section.lower().startswith(title.lower()):
        title = ""
    return " > ".join(p for p in (title, section) if p)


def embedding_text(doc_title: str, chunk: Chunk) -> str:
    """The text to embed for `chunk`: its title/section prefix, then the passage.

    Tables drop their Markdown separator row (`| --- |`): it carries no
    meaning and costs BERT a token per dash and pipe.
    """
    body = compact_table(chunk.content) if chunk.kind == "table" else chunk.content
    prefix = embedding_prefix(doc_title, chunk.section)
    return f"{prefix}\n{body}" if prefix else body


def compact_table(markdown: str) -> str:
    return "\n".join(line for line in markdown.split("\n") if not _SEPARATOR_ROW.match(line))


_SEPARATOR_ROW = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- Markdown tables ---------------------------------------------------------


def render_table(rows: Sequence[Sequence[str]], caption: str | None = None) -> str:
    """Header row + separator + data rows as a GitHub-flavoured Markdown table."""
    lines = [caption] if caption else []
    if rows:
        width = max(len(r) for r in rows)
        cells = [[_cell(c) for c in r] + [""] * (width - len(r)) for r in rows]
        lines.append(_row_line(cells[0]))
        lines.append("| " + " | ".join("---" for _ in range(width)) + " |")
        lines.extend(_row_line(r) for r in cells[1:])
    return "\n".join(lines)


def _cell(value: str | None) -> str:
    return " ".join((value or "").split()).replace("|", "\\|")


def _row_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


# --- token counting -----------------------------------------------------------


@functools.cache
def _counting_tokenizer():  # -> tokenizers.Tokenizer
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TOKENIZER_FILE))
    tok.no_truncation()
    tok.no_padding()
    return tok


def minilm_token_counts(texts: list[str]) -> list[int]:
    """Token counts without [CLS]/[SEP] under the MiniLM WordPiece tokenizer."""
    if not texts:
        return []
    encodings = _counting_tokenizer().encode_batch(texts, add_special_tokens=False)
    return [len(e.ids) for e in encodings]


def count_tokens(text: str) -> int:
    """Tokens the embedder would see for `text`, [CLS] and [SEP] included."""
    return minilm_token_counts([text])[0] + SPECIAL_TOKENS


# --- sentences ---------------------------------------------------------------

# A sentence ends at . ! ? (plus closing quotes/brackets) before whitespace and
# a non-lowercase character; a line that starts a list item also starts one.
_SENTENCE_END = re.compile(r"""(?<=[.!?…])["'”’)\]]*(\s+)(?=[^\s\da-z])""")
_LIST_ITEM = re.compile(r"\n[ \t]*(?=(?:[-*+•]|\d{1,3}[.)])\s)")
_ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "no", "fig", "cf", "approx"}
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences in `text`, whitespace excluded."""
    cuts = set()
    for m in _SENTENCE_END.finditer(text):
        word = text[: m.start(1)].rsplit(None, 1)[-1].rstrip("\"'”’)]").rstrip(".").lower()
        if word not in _ABBREVIATIONS and not (len(word) == 1 and word.isalpha()):
            cuts.add(m.start(1))
    cuts.update(m.start() for m in _LIST_ITEM.finditer(text))
    spans = []
    start = 0
    for cut in [*sorted(cuts), len(text)]:
        seg = text[start:cut]
        stripped = seg.strip()
        if stripped:
            s = start + (len(seg) - len(seg.lstrip()))
            spans.append((s, s + len(stripped)))
        start = cut
    return spans


# --- the chunker ---------------------------------------------------------------


@dataclass
class _Unit:
    """The smallest piece packed into a chunk: a sentence, a line, a word."""

    text: str
    sep: str  # whitespace that joins it to the previous unit ("\n\n" = new paragraph)
    tokens: int = 0
    line_start: int | None = None
    line_end: int | None = None


@dataclass
class _Piece:
    """A finished chunk before numbering."""

    kind: ChunkKind
    content: str
    section: str | None
    page: int | None
    line_start: int | None = None
    line_end: int | None = None


class Chunker:
    """Packs blocks into chunks whose embedding text is ≤ `max_tokens`."""

    def __init__(
        self,
        *,
        max_tokens: int = MAX_TOKENS,
        target_tokens: int = TARGET_TOKENS,
        min_tokens: int = MIN_TOKENS,
        overlap_tokens: int = OVERLAP_TOKENS,
        count: TokenCounter | None = None,
    ) -> None:
        self.max_tokens = max_tokens
        self.target_tokens = target_tokens
        self.soft_min_tokens = min(SOFT_MIN_TOKENS, target_tokens)
        self.min_tokens = min_tokens
        self.overlap_tokens = overlap_tokens
        self.count = count or minilm_token_counts

    def chunk(self, blocks: Iterable[Block], title: str) -> list[Chunk]:
        pieces: list[_Piece] = []
        for group in _groups(blocks):
            first = group[0]
            budget = self._budget(title, first.section)
            if first.kind == "table":
                pieces.extend(self._table(first, budget))
            elif first.kind == "code":
                pieces.extend(self._code(first, budget))
            else:
                pieces.extend(self._prose(group, budget))
        pieces = self._enforce_limit(pieces, title)
        return [
            Chunk(
                ord=i,
                kind=p.kind,
                content=p.content,
                page=p.page,
                section=p.section,
                line_start=p.line_start,
                line_end=p.line_end,
            )
            for i, p in enumerate(pieces)
        ]

    # -- budgets

    def _budget(self, title: str, section: str | None) -> int:
        prefix = embedding_prefix(title, section)
        used = self.count([prefix])[0] if prefix else 0
        return max(16, self.max_tokens - SPECIAL_TOKENS - used)

    # -- prose (text and OCR'd images)

    def _prose(self, group: list[Block], budget: int) -> list[_Piece]:
        units = self._units(group, budget)
        if not units:
            return []
        packs = self._pack(units, budget)
        head = group[0]
        return [self._piece(head.kind, head.section, head.page, pack) for pack in packs]

    def _units(self, group: list[Block], budget: int) -> list[_Unit]:
        units: list[_Unit] = []
        for block in group:
            text = block.text
            for p_start, p_end in _paragraph_spans(text):
                prev_end: int | None = None
                for s_start, s_end in split_sentences(text[p_start:p_end]):
                    a, b = p_start + s_start, p_start + s_end
                    if prev_end is None:
                        sep = "\n\n"  # a new paragraph
                    else:
                        sep = "\n" if "\n" in text[prev_end:a] else " "
                    units.append(_Unit(text[a:b], sep, 0, *_lines(text, block.line_start, a, b)))
                    prev_end = b
        self._measure(units)
        return self._split_oversized(units, budget)

    def _measure(self, units: list[_Unit]) -> None:
        for unit, n in zip(units, self.count([u.text for u in units]), strict=True):
            unit.tokens = n

    def _split_oversized(self, units: list[_Unit], budget: int) -> list[_Unit]:
        """Sentences over budget → lines → words → character runs."""
        if all(u.tokens <= budget for u in units):
            return units
        out: list[_Unit] = []
        for unit in units:
            if unit.tokens <= budget:
                out.append(unit)
                continue
            for splitter in (_split_lines, _split_words):
                parts = splitter(unit)
                if len(parts) > 1:
                    break
            else:
                parts = _split_chars(unit, self.count, budget)
            if len(parts) > 1:
                self._measure(parts)
                out.extend(self._split_oversized(parts, budget))
            else:
                out.append(unit)  # a single "character" over budget: cannot happen with WordPiece
        return out

    def _pack(self, units: list[_Unit], budget: int) -> list[list[_Unit]]:
        """Greedy packing with sentence overlap; returns the units of each chunk."""
        packs: list[tuple[list[_Unit], int]] = []  # (units, index of the first new unit)
        cur: list[_Unit] = []
        fresh = 0
        size = 0
        for unit in units:
            full = size + unit.tokens > budget
            natural_end = (
                unit.sep == "\n\n"
                and size - self._tokens(cur[:fresh]) >= self.soft_min_tokens
                and size + unit.tokens > self.target_tokens
            )
            if cur and fresh < len(cur) and (full or natural_end):
                packs.append((cur, fresh))
                cur = self._overlap(cur[fresh:], budget - unit.tokens)
                fresh = len(cur)
                size = self._tokens(cur)
            cur.append(unit)
            size += unit.tokens
        if fresh < len(cur):
            packs.append((cur, fresh))
        if len(packs) >= 2:
            self._absorb_tail(packs, budget)
        return [p for p, _ in packs]

    def _absorb_tail(self, packs: list[tuple[list[_Unit], int]], budget: int) -> None:
        """A tiny last chunk joins the one before; if they do not fit together, they share evenly."""
        (prev, prev_fresh), (last, last_fresh) = packs[-2], packs[-1]
        tail = last[last_fresh:]
        if self._tokens(tail) >= self.min_tokens:
            return
        if self._tokens(prev) + self._tokens(tail) <= budget:
            packs[-2] = (prev + tail, prev_fresh)
            packs.pop()
            return
        pool = prev[prev_fresh:] + tail
        for k in range(len(pool) - 1, 0, -1):
            moved = pool[k:]
            if self._tokens(moved) < self.min_tokens:
                continue
            overlap = self._overlap(pool[:k], budget - self._tokens(moved))
            if self._tokens(overlap) + self._tokens(moved) <= budget:
                packs[-2] = (prev[:prev_fresh] + pool[:k], prev_fresh)
                packs[-1] = (overlap + moved, len(overlap))
            return

    def _overlap(self, previous: list[_Unit], room: int) -> list[_Unit]:
        """The last one or two sentences of `previous`, if short enough."""
        limit = min(self.overlap_tokens, room)
        taken: list[_Unit] = []
        total = 0
        for unit in reversed(previous[-2:]):
            if unit.sep == "" and taken:  # a cut inside a word: do not start mid-word
                break
            if total + unit.tokens > limit:
                break
            taken.insert(0, unit)
            total += unit.tokens
        if len(taken) == len(previous) and len(previous) > 1:
            taken = taken[1:]  # never repeat a whole chunk
        return taken

    @staticmethod
    def _tokens(units: Sequence[_Unit]) -> int:
        return sum(u.tokens for u in units)

    @staticmethod
    def _piece(kind: ChunkKind, section: str | None, page: int | None, units: list[_Unit]) -> _Piece:
        content = "".join((u.sep if i else "") + u.text for i, u in enumerate(units))
        starts = [u.line_start for u in units if u.line_start is not None]
        ends = [u.line_end for u in units if u.line_end is not None]
        return _Piece(
            kind, content, section, page, min(starts) if starts else None, max(ends) if ends else None
        )

    # -- tables

    def _table(self, block: Block, budget: int) -> list[_Piece]:
        rows = block.rows or []
        if len(rows) < 2:
            text = block.text or render_table(rows)
            return self._prose([Block("text", text, block.section, block.page, block.line_start)], budget)
        width = max(len(r) for r in rows)
        rows = [list(r) + [""] * (width - len(r)) for r in rows]
        caption_tokens = self.count([block.caption])[0] if block.caption else 0
        header_tokens, *row_tokens = self.count([_row_line([_cell(c) for c in r]) for r in rows])
        if caption_tokens + header_tokens + max(row_tokens) > budget and width > 2:
            pieces = []
            for cols in self._column_slices(rows, block.caption, budget):
                part = [[r[c] for c in cols] for r in rows]
                pieces += self._table(replace(block, rows=part), budget)
            return pieces
        pieces = []
        start = 1
        while start < len(rows):
            size = caption_tokens + header_tokens
            end = start
            while end < len(rows) and (end == start or size + row_tokens[end - 1] <= budget):
                size += row_tokens[end - 1]
                end += 1
            content = render_table([rows[0], *rows[start:end]], block.caption)
            pieces.append(
                _Piece("table", content, block.section, block.page, block.line_start, block.line_end)
            )
            start = end
        # A single row can still be over budget (huge cells): the limit pass cuts it.
        return pieces

    def _column_slices(self, rows: list[list[str]], caption: str | None, budget: int) -> list[list[int]]:
        """Column groups (each repeating column 0, the row label) that fit with one row."""
        caption_tokens = self.count([caption])[0] if caption else 0
        width = len(rows[0])
        col_tokens = [max(self.count([_cell(r[c]) for r in rows])) + 2 for c in range(width)]
        header_cols = self.count([_cell(rows[0][c]) for c in range(width)])
        cost = [col_tokens[c] + header_cols[c] + 2 for c in range(width)]
        slices: list[list[int]] = []
        cur = [0]
        used = caption_tokens + cost[0]
        for c in range(1, width):
            if len(cur) > 1 and used + cost[c] > budget:
                slices.append(cur)
                cur = [0]
                used = caption_tokens + cost[0]
            cur.append(c)
            used += cost[c]
        slices.append(cur)
        return slices

    # -- code

    def _code(self, block: Block, budget: int) -> list[_Piece]:
        lines = block.text.split("\n")
        base = block.line_start or 1
        units = [_Unit(line, "\n", 0, base + i, base + i) for i, line in enumerate(lines)]
        self._measure(units)
        units = self._split_oversized(units, budget)
        packs: list[list[_Unit]] = []
        cur: list[_Unit] = []
        size = 0
        for unit in units:
            # Prefer to cut at a blank line once the window is half full.
            if cur and (size + unit.tokens > budget or (not unit.text.strip() and size > budget // 2)):
                packs.append(cur)
                cur, size = [], 0
            if not cur and not unit.text.strip():
                continue
            cur.append(unit)
            size += unit.tokens
        if cur:
            packs.append(cur)
        tail = self._tokens(packs[-1]) if len(packs) >= 2 else None
        if tail is not None and tail < self.min_tokens and self._tokens(packs[-2]) + tail <= budget:
            packs[-2].extend(packs.pop())
        pieces = []
        for pack in packs:
            while pack and not pack[-1].text.strip():
                pack.pop()
            if pack:
                piece = self._piece("code", block.section, block.page, pack)
                if block.line_start is None:
                    piece.line_start = piece.line_end = None
                pieces.append(piece)
        return pieces

    # -- the safety net

    def _enforce_limit(self, pieces: list[_Piece], title: str) -> list[_Piece]:
        """Re-cut any chunk whose exact embedding text is over the limit.

        Unit counts add up exactly when units meet at whitespace; this catches
        the rest (cuts inside a word, oversized table rows).
        """
        texts = [embedding_text(title, Chunk(0, p.kind, p.content, section=p.section)) for p in pieces]
        counts = self.count(texts)
        if all(n + SPECIAL_TOKENS <= self.max_tokens for n in counts):
            return pieces
        out: list[_Piece] = []
        for piece, n in zip(pieces, counts, strict=True):
            if n + SPECIAL_TOKENS <= self.max_tokens:
                out.append(piece)
                continue
            budget = max(8, self._budget(title, piece.section) - (n + SPECIAL_TOKENS - self.max_tokens) - 4)
            units = self._split_oversized(
                [_Unit(piece.content, "", self.count([piece.content])[0], piece.line_start, piece.line_end)],
                budget,
            )
            smaller = [
                self._piece(piece.kind, piece.section, piece.page, p) for p in self._pack(units, budget)
            ]
            if piece.line_start is None:
                for s in smaller:
                    s.line_start = s.line_end = None
            out.extend(self._enforce_limit(smaller, title) if len(smaller) > 1 else smaller)
        return out


def chunk_blocks(blocks: Iterable[Block], title: str, **options) -> list[Chunk]:
    return Chunker(**options).chunk(blocks, title)


def chunk_text(text: str, *, title: str = "", section: str | None = None, **options) -> list[Chunk]:
    """Chunk one run of plain text (a convenience for callers and tests)."""
    return chunk_blocks([Block("text", text, section)], title, **options)


# --- helpers -------------------------------------------------------------------


def _groups(blocks: Iterable[Block]) -> Iterable[list[Block]]:
    """Consecutive text/image blocks that share kind, section and page; tables and code alone."""
    group: list[Block] = []
    for block in blocks:
        if block.kind in ("table", "code"):
            if group:
                yield group
                group = []
            if block.text.strip() or block.rows:
                yield [block]
            continue
        if not block.text.strip():
            continue
        if group and (block.kind, block.section, block.page) != (
            group[0].kind,
            group[0].section,
            group[0].page,
        ):
            yield group
            group = []
        group.append(block)
    if group:
        yield group


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    start = 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _lines(text: str, base: int | None, a: int, b: int) -> tuple[int | None, int | None]:
    if base is None:
        return None, None
    first = base + text.count("\n", 0, a)
    return first, first + text.count("\n", a, b)


def _split_lines(unit: _Unit) -> list[_Unit]:
    lines = unit.text.split("\n")
    if len(lines) < 2:
        return [unit]
    out = []
    line_no = unit.line_start
    for line in lines:
        if line.strip():
            out.append(_Unit(line.strip(), unit.sep if not out else "\n", 0, line_no, line_no))
        if line_no is not None:
            line_no += 1
    return out or [unit]


def _split_words(unit: _Unit) -> list[_Unit]:
    words = unit.text.split()
    if len(words) < 2:
        return [unit]
    return [
        _Unit(w, unit.sep if i == 0 else " ", 0, unit.line_start, unit.line_end) for i, w in enumerate(words)
    ]


def _split_chars(unit: _Unit, count: TokenCounter, budget: int) -> list[_Unit]:
    """A single word over budget (rare: WordPiece maps >100-char words to [UNK])."""
    text = unit.text
    pieces: list[str] = []
    while text:
        lo, hi = 1, len(text)
        while lo < hi:  # longest prefix within budget
            mid = (lo + hi + 1) // 2
            if count([text[:mid]])[0] <= budget:
                lo = mid
            else:
                hi = mid - 1
        pieces.append(text[:lo])
        text = text[lo:]
    # Joined by a space: counts then add up exactly (the pieces tokenise apart).
    return [
        _Unit(p, unit.sep if i == 0 else " ", 0, unit.line_start, unit.line_end) for i, p in enumerate(pieces)
    ]
