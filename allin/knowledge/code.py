"""Source files → one code block per top-level symbol, with its line range.

Python is parsed with `ast` (decorators and the comment lines right above a
definition belong to it; a long class is split into its methods, section
"Class.method"). Other languages use a regex for definitions starting at
column 0 (`def`, `func`, `function`, `class`, `fn`, ... with the usual
modifiers); files without any (YAML, JSON, SQL, shell) are left whole and
the chunker cuts them into line windows. Code between definitions (imports,
constants, a main block) becomes blocks with no section.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from allin.knowledge.chunk import Block

CLASS_SPLIT_LINES = 60  # a longer class is cut into its methods

_DEFINITION = re.compile(
    r"""^(?:export\s+(?:default\s+)?)?
    (?:pub(?:\([\w:]+\))?\s+)?
    (?:(?:public|private|protected|internal|static|final|abstract|sealed|async|unsafe|const|extern|inline|override|open|data)\s+)*
    (?:def|func|function\*?|class|fn|struct|enum|trait|impl|interface|object|module|record)\s+
    (?:\([^)]*\)\s*)?          # Go receiver
    (?:<[^>]*>\s*)?            # Rust generics on impl
    ([A-Za-z_$][\w$]*)""",
    re.X | re.M,
)


@dataclass
class _Span:
    start: int  # 1-based, inclusive
    end: int
    name: str | None


def code_blocks(text: str, language: str | None) -> tuple[list[Block], list[str]]:
    """Blocks for a source file, plus warnings (e.g. a Python file that does not parse)."""
    lines = text.split("\n")
    warnings: list[str] = []
    spans: list[_Span] | None = None
    if language == "python":
        try:
            spans = _python_spans(text, lines)
        except (SyntaxError, ValueError) as exc:
            where = f"line {getattr(exc, 'lineno', '?')}"
            warnings.append(f"Python did not parse ({type(exc).__name__} at {where}): cut by pattern instead")
    if spans is None:
        spans = _regex_spans(lines)
    blocks = []
    for span in _with_gaps(spans, len(lines)):
        body = "\n".join(lines[span.start - 1 : span.end])
        if body.strip():
            blocks.append(Block("code", body, span.name, None, span.start, span.end))
    return blocks, warnings


def _python_spans(text: str, lines: list[str]) -> list[_Span]:
    tree = ast.parse(text)
    spans: list[_Span] = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        start = _leading_comments(lines, _first_line(node))
        end = node.end_lineno or node.lineno
        if isinstance(node, ast.ClassDef) and end - start + 1 > CLASS_SPLIT_LINES:
            spans.extend(_class_spans(node, lines, start, end))
        else:
            spans.append(_Span(start, end, node.name))
    return spans


def _class_spans(node: ast.ClassDef, lines: list[str], start: int, end: int) -> list[_Span]:
    methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    out: list[_Span] = []
    cursor = start
    for method in methods:
        m_start = _leading_comments(lines, _first_line(method))
        if m_start > cursor:
            out.append(_Span(cursor, m_start - 1, node.name))  # class header, attributes
        m_end = method.end_lineno or method.lineno
        out.append(_Span(m_start, m_end, f"{node.name}.{method.name}"))
        cursor = m_end + 1
    if cursor <= end:
        out.append(_Span(cursor, end, node.name))
    return out


def _first_line(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _leading_comments(lines: list[str], start: int) -> int:
    """Move `start` up over the comment lines directly above it."""
    while start > 1 and lines[start - 2].lstrip().startswith(("#", "//")):
        start -= 1
    return start


def _regex_spans(lines: list[str]) -> list[_Span]:
    starts = []
    for i, line in enumerate(lines, start=1):
        m = _DEFINITION.match(line)
        if m:
            starts.append((_leading_comments(lines, i), m.group(1)))
    spans = []
    for k, (start, name) in enumerate(starts):
        end = starts[k + 1][0] - 1 if k + 1 < len(starts) else len(lines)
        spans.append(_Span(start, end, name))
    return spans


def _with_gaps(spans: list[_Span], n_lines: int) -> list[_Span]:
    """Definitions plus the unnamed code between them, in file order."""
    out: list[_Span] = []
    cursor = 1
    for span in sorted(spans, key=lambda s: s.start):
        if span.start > cursor:
            out.append(_Span(cursor, span.start - 1, None))
        out.append(span)
        cursor = max(cursor, span.end + 1)
    if cursor <= n_lines:
        out.append(_Span(cursor, n_lines, None))
    return out
