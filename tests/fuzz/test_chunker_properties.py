"""Properties of the chunker for arbitrary input (tests/knowledge/test_knowledge_chunk.py has the
worked examples and one property over sentence-like text; these widen the input).

What allin/knowledge/chunk.py guarantees, read from the code:

- every chunk is non-empty and its embedding text (title/section prefix + content) is at most
  MAX_TOKENS (256) MiniLM tokens, [CLS]/[SEP] included (`_enforce_limit` re-cuts anything over);
- chunks are numbered 0..n-1 and the same input gives the same chunks;
- text and code lose nothing and keep order: with whitespace removed, the chunks' contents
  tile the input's non-whitespace characters — the first chunk starts at the start, each
  next one starts after the previous one's start and no later than its end (the overlap of one
  or two sentences; never a gap), the last ends at the end;
- tables: every cell (whitespace collapsed, `|` escaped) appears in some chunk;
- empty or whitespace-only input gives no chunks.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allin.knowledge.chunk import MAX_TOKENS, Block, _cell, chunk_blocks, chunk_text, count_tokens, embedding_text
from allin.knowledge.markup import markdown_blocks
from tests.knowledge.test_knowledge_chunk import _positions_ok

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any Unicode (no lone surrogates: extracted text is always decoded, so it never holds them).
_any_text = st.text(max_size=400)
_word = st.text(alphabet=st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=14)
_long_word = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=200, max_size=1500)
_markdown_line = st.one_of(
    st.builds(lambda n, w: "#" * n + " " + w, st.integers(1, 6), _word),          # heading
    st.builds(lambda ws: "| " + " | ".join(ws) + " |", st.lists(_word, min_size=1, max_size=6)),  # table row
    st.just("| --- | --- |"),
    st.just("```"), st.just("```python"),                                          # code fences
    st.builds(lambda ws: "- " + " ".join(ws), st.lists(_word, min_size=1, max_size=8)),  # list item
    st.builds(lambda ws: " ".join(ws) + ".", st.lists(_word, min_size=1, max_size=30)),  # sentence
    _long_word,
    st.sampled_from(["", " ", "\t", "   \n"]),
)
_markdown = st.lists(_markdown_line, max_size=60).map("\n".join)
_mixed = st.one_of(_any_text, _markdown, st.lists(st.one_of(_word, _long_word), max_size=80).map(" ".join))
_titles = st.sampled_from(["", "Handbook", "Ünïcødé – 設計 " * 6])
_sections = st.one_of(st.none(), st.just("Intro > Setup"), st.text(max_size=300))


def _stream(text: str) -> str:
    return "".join(text.split())


def _check_bounded(chunks, title: str) -> None:
    assert [c.ord for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.content.strip(), c
        n = count_tokens(embedding_text(title, c))
        assert n <= MAX_TOKENS, (n, c.content[:80])


def _check_tiles(text: str, chunks) -> None:
    stream = _stream(text)
    if not stream:
        assert chunks == []
        return
    assert chunks, "text with content produced no chunk"
    assert _positions_ok(stream, [_stream(c.content) for c in chunks]), "text lost, reordered or duplicated"


@PROPS
@given(text=_mixed, title=_titles, section=_sections)
def test_text_chunks_are_bounded_lossless_and_deterministic(text: str, title: str, section: str | None) -> None:
    chunks = chunk_text(text, title=title, section=section)
    _check_bounded(chunks, title)
    _check_tiles(text, chunks)
    assert chunk_text(text, title=title, section=section) == chunks


@PROPS
@given(code=st.one_of(_any_text, _markdown, st.lists(st.one_of(_word, _long_word, st.just("")), max_size=200)
                      .map("\n".join)), title=_titles, start=st.one_of(st.none(), st.integers(1, 10_000)))
def test_code_chunks_are_bounded_lossless_and_keep_line_numbers(code: str, title: str, start: int | None) -> None:
    chunks = chunk_blocks([Block("code", code, section="main", line_start=start)], title)
    _check_bounded(chunks, title)
    _check_tiles(code, chunks)
    assert all(c.kind == "code" for c in chunks)
    if start is not None:
        last_line = start + code.count("\n")
        for c in chunks:
            assert start <= c.line_start <= c.line_end <= last_line
        assert [c.line_start for c in chunks] == sorted(c.line_start for c in chunks)
    assert chunk_blocks([Block("code", code, section="main", line_start=start)], title) == chunks


_cell_text = st.one_of(_word, st.text(max_size=20), st.just("a|b"))


@PROPS
@given(rows=st.integers(1, 12).flatmap(lambda width: st.lists(
           st.lists(_cell_text, min_size=width, max_size=width), min_size=2, max_size=40)),
       caption=st.one_of(st.none(), _word), title=_titles)
def test_table_chunks_are_bounded_and_keep_every_cell(rows: list[list[str]], caption: str | None, title: str) -> None:
    chunks = chunk_blocks([Block("table", rows=rows, caption=caption, section="Data")], title)
    _check_bounded(chunks, title)
    assert all(c.kind == "table" for c in chunks)
    everything = "\n".join(c.content for c in chunks)
    for row in rows:
        for value in row:
            assert _cell(value) in everything, value
    assert chunk_blocks([Block("table", rows=rows, caption=caption, section="Data")], title) == chunks


@PROPS
@given(text=_markdown, title=_titles)
def test_markdown_documents_chunk_within_the_window(text: str, title: str) -> None:
    """Headings, tables, fences and lists through the real Markdown extractor, then the chunker."""
    markup = markdown_blocks(text)
    chunks = chunk_blocks(markup.blocks, title)
    _check_bounded(chunks, title)
    # Every word of prose and code survives (headings become sections; table cells are checked above).
    prose = "".join(_stream(b.text) for b in markup.blocks if b.kind in ("text", "code"))
    kept = "".join(_stream(c.content) for c in chunks if c.kind in ("text", "code"))
    for ch in set(prose):
        assert ch in kept
    assert chunk_blocks(markdown_blocks(text).blocks, title) == chunks


@given(text=st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\u2003\u3000", max_size=200))
@settings(max_examples=30, deadline=None)
def test_whitespace_only_gives_no_chunks(text: str) -> None:
    assert chunk_text(text) == []
    assert chunk_blocks([Block("code", text), Block("table", text=text)], "T") == []
