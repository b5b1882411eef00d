"""Markdown, HTML, DOCX and plain text → blocks with their heading paths.

Headings are not passages: they become the `section` ("A > B > C") of the
blocks under them. Lists stay one block per list (items on their own lines),
fenced/pre code becomes code blocks inside its section, and tables become
Markdown tables (header row + rows) whatever the source format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from allin.knowledge.chunk import Block, render_table

_HEADING_ATTRS = re.compile(r"\s*\{[#.][^}]*\}\s*$")  # pandoc/kramdown "{#id .class}"
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*\n", re.S)


@dataclass
class Markup:
    title: str | None
    blocks: list[Block]
    warnings: list[str] = field(default_factory=list)


class _Sections:
    """The heading stack."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []
        self.first: str | None = None
        self.first_h1: str | None = None

    def enter(self, level: int, text: str) -> None:
        text = " ".join(_HEADING_ATTRS.sub("", text).split())
        if not text:
            return
        self.first = self.first or text
        if level == 1 and self.first_h1 is None:
            self.first_h1 = text
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))

    @property
    def path(self) -> str | None:
        return " > ".join(t for _, t in self._stack) or None


# --- Markdown ------------------------------------------------------------------------


def markdown_blocks(text: str) -> Markup:
    from markdown_it import MarkdownIt

    title = None
    offset = 0
    front = _FRONT_MATTER.match(text)
    if front:
        m = re.search(r"^title:\s*['\"]?(.+?)['\"]?\s*$", front.group(1), re.M)
        title = m.group(1) if m else None
        offset = front.group(0).count("\n")
        text = text[front.end() :]
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    sections = _Sections()
    blocks: list[Block] = []
    lists: list[list] = []  # open lists: [ordered, next number]
    list_lines: list[str] = []
    list_span: list[int | None] = []
    item_fresh = False  # the current list item has only its marker so far

    def lines_of(token) -> tuple[int | None, int | None]:
        return (token.map[0] + 1 + offset, token.map[1] + offset) if token.map else (None, None)

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        kind = tok.type
        if kind == "heading_open":
            sections.enter(int(tok.tag[1]), _inline_text(tokens[i + 1]))
            i += 3
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrGet("start") or 1) if kind == "ordered_list_open" else 0
            lists.append([kind == "ordered_list_open", start])
            if len(lists) == 1:
                list_span[:] = list(lines_of(tok))
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists and list_lines:
                blocks.append(Block("text", "\n".join(list_lines), sections.path, None, *list_span))
                list_lines.clear()
        elif kind == "list_item_open":
            ordered, number = lists[-1]
            marker = f"{number}." if ordered else "-"
            if ordered:
                lists[-1][1] += 1
            list_lines.append("  " * (len(lists) - 1) + marker + " ")
            item_fresh = True
        elif kind == "inline" and tokens[i - 1].type == "paragraph_open":
            content = _inline_text(tok)
            if lists:
                if item_fresh:
                    list_lines[-1] += content
                    item_fresh = False
                else:
                    list_lines.append("  " * len(lists) + content)  # a further paragraph in an item
            elif content:
                blocks.append(Block("text", content, sections.path, None, *lines_of(tok)))
        elif kind in ("fence", "code_block"):
            start, _ = lines_of(tok)
            code = tok.content.rstrip("\n")
            if code.strip():
                first = start + (1 if kind == "fence" else 0) if start else None
                end = first + code.count("\n") if first else None
                if lists:  # code inside a list item stays with the list text
                    list_lines.append(code)
                else:
                    blocks.append(Block("code", code, sections.path, None, first, end))
        elif kind == "table_open":
            rows, i = _markdown_table(tokens, i)
            start, end = lines_of(tok)
            if rows:
                blocks.append(Block("table", render_table(rows), sections.path, None, start, end, rows=rows))
            continue
        elif kind == "html_block":
            content = _html_to_text(tok.content)
            if content:
                blocks.append(Block("text", content, sections.path, None, *lines_of(tok)))
        i += 1
    return Markup(title or sections.first_h1 or sections.first, blocks)


def _inline_text(token) -> str:
    """Inline Markdown → plain text (emphasis dropped, links keep their text, code keeps backticks)."""
    out: list[str] = []
    for child in token.children or []:
        t = child.type
        if t == "text":
            out.append(child.content)
        elif t == "code_inline":
            out.append(f"`{child.content}`")
        elif t == "softbreak":
            out.append(" ")
        elif t == "hardbreak":
            out.append("\n")
        elif t == "image":
            out.append(child.content or "")
        elif t == "html_inline" and child.content.lower().startswith("<br"):
            out.append("\n")
    return "".join(out).strip()


def _markdown_table(tokens, i: int) -> tuple[list[list[str]], int]:
    rows: list[list[str]] = []
    row: list[str] = []
    while i < len(tokens) and tokens[i].type != "table_close":
        t = tokens[i].type
        if t == "tr_open":
            row = []
        elif t == "inline":
            row.append(_inline_text(tokens[i]))
        elif t == "tr_close":
            rows.append(row)
        i += 1
    return rows, i + 1


# --- HTML --------------------------------------------------------------------------------

_DROP = ["script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "head"]
_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "aside", "header", "footer", "nav", "blockquote",
    "ul", "ol", "li", "dl", "dt", "dd", "figure", "figcaption", "form", "fieldset", "address",
    "details", "summary", "body", "html", "hr", "center",
}  # fmt: skip


def html_blocks(html: str) -> Markup:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    title_tag = soup.find("title")
    title = " ".join(title_tag.get_text().split()) if title_tag else None
    for tag in soup.find_all(_DROP):
        tag.decompose()
    walker = _HtmlWalker()
    walker.walk(soup.body or soup)
    walker.flush()
    return Markup(title or walker.sections.first_h1 or walker.sections.first, walker.blocks)


class _HtmlWalker:
    def __init__(self) -> None:
        self.sections = _Sections()
        self.blocks: list[Block] = []
        self.buffer: list[str] = []
        self.list_depth = 0

    def flush(self) -> None:
        text = "".join(self.buffer)
        text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
        text = re.sub(r"\n{2,}", "\n", text).strip()
        if text:
            self.blocks.append(Block("text", text, self.sections.path))
        self.buffer.clear()

    def walk(self, node) -> None:
        from bs4 import NavigableString, Tag
        from bs4.element import Comment, Doctype, ProcessingInstruction

        for child in node.children:
            if isinstance(child, (Comment, Doctype, ProcessingInstruction)):
                continue
            if isinstance(child, NavigableString):
                self.buffer.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name.lower()
            if re.fullmatch(r"h[1-6]", name):
                self.flush()
                self.sections.enter(int(name[1]), child.get_text(" "))
            elif name == "table":
                self.flush()
                rows = _html_table(child)
                if rows:
                    self.blocks.append(Block("table", render_table(rows), self.sections.path, rows=rows))
            elif name == "pre":
                self.flush()
                code = child.get_text().strip("\n")
                if code.strip():
                    self.blocks.append(Block("code", code, self.sections.path))
            elif name == "br":
                self.buffer.append("\n")
            elif name == "code":
                self.buffer.append(f"`{child.get_text()}`")  # as inline code reads in Markdown
            elif name in ("ul", "ol"):
                self.list_depth += 1
                self.walk(child)
                self.list_depth -= 1
                if self.list_depth == 0:
                    self.flush()
            elif name == "li":
                self.buffer.append("\n" + "  " * max(0, self.list_depth - 1) + "- ")
                self.walk(child)
                self.buffer.append("\n")
            elif name in _BLOCK_TAGS:
                if self.list_depth:
                    self.buffer.append("\n")
                    self.walk(child)
                    self.buffer.append("\n")
                else:
                    self.flush()
                    self.walk(child)
                    self.flush()
            else:
                self.walk(child)  # inline: a, span, em, code, ...


def _html_table(table) -> list[list[str]]:
    rows = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue  # a nested table's rows
        cells = []
        for cell in tr.find_all(["th", "td"], recursive=False):
            text = " ".join(cell.get_text(" ").split())
            span = cell.get("colspan")
            repeat = int(span) if span and str(span).isdigit() and 0 < int(span) <= 50 else 1
            cells.extend([text] * repeat)
        if any(cells):
            rows.append(cells)
    return rows if len(rows) >= 2 else []


def _html_to_text(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(_DROP):
        tag.decompose()
    return " ".join(soup.get_text(" ").split())


# --- DOCX --------------------------------------------------------------------------------


def docx_blocks(path: Path) -> Markup:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(str(path))
    sections = _Sections()
    blocks: list[Block] = []
    paragraph_lines: list[str] = []
    title = (document.core_properties.title or "").strip() or None

    def flush() -> None:
        if paragraph_lines:
            blocks.append(Block("text", "\n\n".join(paragraph_lines), sections.path))
            paragraph_lines.clear()

    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = item.text.strip()
            if not text:
                continue
            style = (item.style.name if item.style is not None else "") or ""
            level = _docx_heading_level(style)
            if style == "Title":
                title = title or text
                continue
            if level:
                flush()
                sections.enter(level, text)
            elif "List" in style:
                if paragraph_lines and paragraph_lines[-1].startswith("- "):
                    paragraph_lines[-1] += "\n- " + text
                else:
                    paragraph_lines.append("- " + text)
            else:
                paragraph_lines.append(text)
        elif isinstance(item, Table):
            flush()
            rows = [[" ".join(c.text.split()) for c in row.cells] for row in item.rows]
            rows = [r for r in rows if any(r)]
            if len(rows) >= 2:
                blocks.append(Block("table", render_table(rows), sections.path, rows=rows))
            elif rows:
                paragraph_lines.append(" | ".join(rows[0]))
    flush()
    return Markup(title or sections.first_h1 or sections.first, blocks)


def _docx_heading_level(style: str) -> int:
    m = re.fullmatch(r"Heading (\d)", style)
    return int(m.group(1)) if m else 0


# --- plain text ---------------------------------------------------------------------------


def text_blocks(text: str, *, title_from_first_line: bool = True) -> Markup:
    """Plain text and logs: one block, line numbers kept; the chunker finds paragraphs."""
    title = None
    if title_from_first_line:
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        if 3 <= len(first) <= 80 and not first.endswith((".", ",", ";", ":")):
            title = first
    return Markup(title, [Block("text", text, line_start=1, line_end=text.count("\n") + 1)])
