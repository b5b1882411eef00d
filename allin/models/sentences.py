"""Split a passage into quotable units: prose sentences, table rows, code blocks.

Table rows keep their header (a row alone reads badly), code blocks stay
whole, and headings are kept aside as the context of the units under them.
Inline Markdown (emphasis, links, anchors, HTML entities) is removed from
prose so a quoted sentence reads as plain text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Literal

UnitKind = Literal["sentence", "row", "code"]


@dataclass(frozen=True)
class Unit:
    pos: int  # order inside the passage
    kind: UnitKind
    text: str  # what is quoted
    heading: str = ""  # nearest heading above it
    table_header: tuple[str, ...] = ()  # header + separator lines, for rows

    @property
    def scoring_text(self) -> str:
        """What is embedded: a row is scored together with its column names."""
        if self.kind == "row" and self.table_header:
            return _table_words(self.table_header[0]) + ": " + _table_words(self.text)
        return self.text


_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_TABLE_RE = re.compile(r"^\s*\|")
_TABLE_SEPARATOR_RE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_LIST_ITEM_RE = re.compile(r"^\s*(?:[*+-]|\d{1,3}[.)])\s+")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")

_ANCHOR_RE = re.compile(r"\s*\{#[\w-]+\}")
_LINK_RE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_STRONG_RE = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS_RE = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")


def clean_inline(text: str) -> str:
    """Plain text of one line/paragraph of Markdown prose."""
    text = _ANCHOR_RE.sub("", text)
    text = _LINK_RE.sub(r"\1", text)
    text = _STRONG_RE.sub(r"\2", text)
    text = _EMPHASIS_RE.sub(r"\2", text)
    return " ".join(html.unescape(text).split())


def _table_words(line: str) -> str:
    return " ".join(cell.strip() for cell in line.strip().strip("|").split("|"))


def split_sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END_RE.split(paragraph) if s.strip()]


def split_units(content: str) -> list[Unit]:
    """The quotable units of a passage's text, in document order."""
    units: list[Unit] = []
    heading = ""
    paragraph: list[str] = []
    lines = content.splitlines()

    def add(kind: UnitKind, text: str, header: tuple[str, ...] = ()) -> None:
        units.append(Unit(pos=len(units), kind=kind, text=text, heading=heading, table_header=header))

    def flush() -> None:
        if paragraph:
            for sentence in split_sentences(clean_inline(" ".join(paragraph))):
                add("sentence", sentence)
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE_RE.match(line):
            flush()
            fence = _FENCE_RE.match(line).group(1)  # type: ignore[union-attr]
            block = [line]
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                block.append(lines[i])
                i += 1
            block.append(lines[i] if i < len(lines) else fence)
            if any(b.strip() for b in block[1:-1]):
                add("code", "\n".join(block))
        elif _TABLE_RE.match(line):
            flush()
            table = []
            while i < len(lines) and _TABLE_RE.match(lines[i]):
                table.append(lines[i].strip())
                i += 1
            i -= 1
            has_separator = len(table) > 1 and _TABLE_SEPARATOR_RE.match(table[1]) is not None
            header = tuple(table[:2]) if has_separator else (table[0],)
            for row in table[len(header) :]:
                add("row", row, header)
        elif m := _HEADING_RE.match(line):
            flush()
            heading = clean_inline(m.group(1))
        elif not line.strip():
            flush()
        else:
            if _LIST_ITEM_RE.match(line):
                flush()  # each bullet is its own paragraph
                line = _LIST_ITEM_RE.sub("", line, count=1)
            paragraph.append(line.strip())
        i += 1
    flush()
    return units
