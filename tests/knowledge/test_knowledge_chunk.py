"""The chunker: token limits, overlap, tables and code cut only between lines, full coverage."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allin.knowledge.chunk import (
    Block,
    Chunker,
    chunk_blocks,
    chunk_text,
    count_tokens,
    embedding_text,
    render_table,
    split_sentences,
)
from allin.knowledge.extract import extract

MAX_BYTES = 50 * 1024 * 1024


def _words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def word_counter(texts: list[str]) -> list[int]:
    """One token per word: makes budgets in these tests easy to reason about."""
    return [len(t.split()) for t in texts]


def test_every_corpus_chunk_fits_the_embedding_window(corpus: Path) -> None:
    files = [
        *sorted((corpus / "eng-practices" / "md").glob("*.md")),
        *sorted((corpus / "eng-practices" / "pdf").glob("*.pdf")),
        corpus / "wild-pdfs" / "nics-background-checks-2015-11.pdf",
        corpus / "wild-pdfs" / "federal-register-2020-17221.pdf",
    ]
    sizes = []
    for path in files:
        doc = extract(path, ocr=None, max_bytes=MAX_BYTES)
        for chunk in doc.chunks:
            n = count_tokens(embedding_text(doc.title, chunk))
            assert n <= 256, (path.name, chunk.ord, n)
            sizes.append(n)
    # Most prose chunks are well filled (~120–190 words), not fragments.
    assert sorted(sizes)[len(sizes) // 2] >= 100


def test_neighbouring_chunks_of_a_section_overlap_by_a_sentence(corpus: Path) -> None:
    doc = extract(corpus / "eng-practices" / "md" / "review_reviewer_speed.md", ocr=None, max_bytes=MAX_BYTES)
    pairs = [(a, b) for a, b in zip(doc.chunks, doc.chunks[1:], strict=False) if a.section == b.section]
    assert pairs
    for a, b in pairs:
        first = b.content[slice(*split_sentences(b.content)[0])]
        assert first in a.content, "the next chunk should start with a sentence of the previous one"
        assert not a.content.endswith(b.content)  # never a whole repeat


def test_sections_pages_and_kinds_never_mix() -> None:
    blocks = [
        Block("text", "Alpha paragraph. " * 3, section="A", page=1),
        Block("text", "Beta paragraph. " * 3, section="A", page=2),
        Block("text", "Gamma paragraph. " * 3, section="B", page=2),
        Block("image", "Delta text from a figure.", section="B", page=2),
    ]
    chunks = chunk_blocks(blocks, "Doc")
    assert [(c.kind, c.section, c.page) for c in chunks] == [
        ("text", "A", 1),
        ("text", "A", 2),
        ("text", "B", 2),
        ("image", "B", 2),
    ]
    assert [c.ord for c in chunks] == [0, 1, 2, 3]


def test_tiny_tail_is_merged_or_rebalanced() -> None:
    sentences = [f"{_words(5, f's{i}w')}." for i in range(11)]  # 11 sentences of 5 tokens
    chunker = Chunker(max_tokens=52, target_tokens=50, min_tokens=10, overlap_tokens=12, count=word_counter)
    chunks = chunker.chunk([Block("text", " ".join(sentences))], "")
    assert len(chunks) == 2
    last = chunks[-1].content
    assert sentences[9] in last and sentences[10] in last  # the tail took a sentence from before
    assert sentences[9] not in chunks[0].content
    # When the two fit together, the tail simply joins.
    merged = Chunker(max_tokens=60, target_tokens=60, min_tokens=10, overlap_tokens=12, count=word_counter)
    assert len(merged.chunk([Block("text", " ".join(sentences[:11]))], "")) == 1


def test_paragraph_boundaries_are_preferred_once_a_chunk_is_full_enough() -> None:
    paragraphs = [
        " ".join(f"{_words(9, f'p{p}s{s}w')}." for s in range(4)) for p in range(4)
    ]  # 40 tokens each
    chunker = Chunker(max_tokens=102, target_tokens=90, min_tokens=10, overlap_tokens=0, count=word_counter)
    chunks = chunker.chunk([Block("text", "\n\n".join(paragraphs))], "")
    assert [c.content for c in chunks] == ["\n\n".join(paragraphs[:2]), "\n\n".join(paragraphs[2:])]


def test_long_table_repeats_its_header_and_keeps_rows_whole() -> None:
    rows = [["Service", "Owner", "On-call rotation", "Runbook"]] + [
        [f"service-{i}", f"owner {i}", f"rotation {i % 7}", f"https://runbooks.example.com/service-{i}"]
        for i in range(120)
    ]
    chunks = chunk_blocks([Block("table", rows=rows, caption="Service owners", section="Ops")], "Handbook")
    assert len(chunks) > 3 and all(c.kind == "table" and c.section == "Ops" for c in chunks)
    seen = []
    for chunk in chunks:
        lines = chunk.content.split("\n")
        assert lines[:3] == [
            "Service owners",
            "| Service | Owner | On-call rotation | Runbook |",
            "| --- | --- | --- | --- |",
        ]
        assert count_tokens(embedding_text("Handbook", chunk)) <= 256
        seen += lines[3:]
    assert seen == render_table(rows).split("\n")[2:]  # every row once, in order


def test_very_wide_table_is_cut_into_column_groups_keeping_the_row_label() -> None:
    header = ["State"] + [f"Measure number {j}" for j in range(60)]
    rows = [header] + [[f"State {i}"] + [f"{i * 1000 + j:,}" for j in range(60)] for i in range(3)]
    chunks = chunk_blocks([Block("table", rows=rows)], "Wide")
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.content.startswith("| State |")
        assert count_tokens(embedding_text("Wide", chunk)) <= 256
    everything = "\n".join(c.content for c in chunks)
    assert all(
        f"| Measure number {j} |" in everything or f"| Measure number {j}" in everything for j in range(60)
    )


def test_code_is_cut_between_lines() -> None:
    code = "\n".join(
        f"    total = compute_value(total, item_{i}, factor={i})  # step {i}" for i in range(200)
    )
    chunks = chunk_blocks([Block("code", code, section="run", line_start=10)], "jobs.py")
    lines = code.split("\n")
    for chunk in chunks:
        assert chunk.content == "\n".join(lines[chunk.line_start - 10 : chunk.line_end - 9])
        assert count_tokens(embedding_text("jobs.py", chunk)) <= 256
    assert chunks[0].line_start == 10 and chunks[-1].line_end == 209


def test_embedding_text_has_title_and_section_but_content_stays_clean() -> None:
    [chunk] = chunk_text(
        "Reviews should be fast.", title="Speed of Code Reviews", section="Speed of Code Reviews > Why"
    )
    assert chunk.content == "Reviews should be fast."
    assert (
        embedding_text("Speed of Code Reviews", chunk)
        == "Speed of Code Reviews > Why\nReviews should be fast."
    )
    [other] = chunk_text("Reviews should be fast.", title="Handbook", section="Reviews")
    assert embedding_text("Handbook", other) == "Handbook > Reviews\nReviews should be fast."
    [table] = chunk_blocks([Block("table", rows=[["a", "b"], ["1", "2"]])], "T")
    assert embedding_text("T", table) == "T\n| a | b |\n| 1 | 2 |"  # no separator row


def test_sentence_splitting_respects_abbreviations_and_lists() -> None:
    text = "Use tools, e.g. linters. Then ship it! Next:\n- item one\n- item two. Done"
    spans = [text[a:b] for a, b in split_sentences(text)]
    assert spans == [
        "Use tools, e.g. linters.",
        "Then ship it!",
        "Next:",
        "- item one",
        "- item two.",
        "Done",
    ]


# --- property: any text is covered, in order, by bounded non-empty chunks -------------

_words_st = st.one_of(
    st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=12),
    st.sampled_from(["e.g.", "Mr.", "3.14", "—", "(see", "it)", "https://example.com/a/b?c=d"]),
    st.text(alphabet="abcdefghij", min_size=150, max_size=600),  # one very long "word"
)
_sentence = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(_words_st, min_size=1, max_size=40),
    st.sampled_from([".", "!", "?", "", ":", ";"]),
)
_text = st.builds(
    lambda parts, seps: "".join(p + s for p, s in zip(parts, seps, strict=False)),
    st.lists(_sentence, min_size=1, max_size=60),
    st.lists(st.sampled_from([" ", "\n", "\n\n", "  \n \n", "\t"]), min_size=60, max_size=60),
)


def _positions_ok(stream: str, pieces: list[str]) -> bool:
    """Each piece sits in `stream`: the first at 0, each next one starting after the previous
    one starts and no later than it ends (overlap allowed, gaps not), the last ending at the end."""
    starts = {0} if stream.startswith(pieces[0]) else set()
    prev_len = len(pieces[0])
    for piece in pieces[1:]:
        occurrences = _find_all(stream, piece)
        starts = {p for lo in starts for p in occurrences if lo < p <= lo + prev_len}
        prev_len = len(piece)
        if not starts:
            return False
    return any(p + prev_len == len(stream) for p in starts)


def _find_all(haystack: str, needle: str) -> list[int]:
    out, pos = [], haystack.find(needle)
    while pos != -1:
        out.append(pos)
        pos = haystack.find(needle, pos + 1)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_text, title=st.sampled_from(["", "Handbook", "A rather long document title " * 3]))
def test_chunks_cover_any_text_in_order(text: str, title: str) -> None:
    chunks = chunk_text(text, title=title, section="Section > Subsection")
    stream = "".join(text.split())
    if not stream:
        assert chunks == []
        return
    assert chunks and all(c.content.strip() for c in chunks)
    assert all(count_tokens(embedding_text(title, c)) <= 256 for c in chunks)
    pieces = ["".join(c.content.split()) for c in chunks]
    assert _positions_ok(stream, pieces)
    # Overlap is bounded: the chunks hold at most about twice the text.
    assert sum(map(len, pieces)) <= 2 * len(stream) + 50


@pytest.mark.parametrize("text", ["", "   \n\n  ", "word"])
def test_degenerate_inputs(text: str) -> None:
    chunks = chunk_text(text)
    assert [c.content for c in chunks] == ([text] if text.strip() else [])
