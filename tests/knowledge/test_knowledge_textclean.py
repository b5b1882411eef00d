"""Invisible junk (noncharacters, BOMs, soft hyphens) never reaches titles or chunk text."""

from __future__ import annotations

from pathlib import Path

from allin.knowledge.extract import extract
from allin.knowledge.textclean import strip_junk

JUNK = ("\ufffe", "\uffff", "\ufeff", "\u00ad")


def test_strip_junk_removes_noncharacters_bom_and_soft_hyphens():
    assert strip_junk("\ufeffreview\u00ader\ufffe comments\uffff") == "reviewer comments"
    assert strip_junk("plane 1 \U0001fffe nonchar, \ufdd0 too") == "plane 1  nonchar,  too"


def test_strip_junk_keeps_real_text():
    text = "naïve café — 東京, tab\tand\nnewline, emoji 👩\u200d💻, Persian می\u200cخواهم"
    assert strip_junk(text) == text


def test_pdf_hyphen_reported_as_fffe_is_a_hyphen(corpus: Path):
    # pdfium reports hyphens at visual line ends as U+FFFE: in the title heading
    # ("review_developer_handling-comments") and in "non-constructive".
    doc = extract(corpus / "eng-practices" / "pdf" / "review_developer_handling-comments.pdf",
                  ocr=None, max_bytes=50_000_000)
    assert doc.title == "review_developer_handling-comments"
    text = " ".join(c.content for c in doc.chunks)
    assert "non-constructive" in text
    assert not any(j in text or j in doc.title for j in JUNK)


def test_chunk_text_and_sections_are_clean(tmp_path: Path):
    src = tmp_path / "notes.md"
    src.write_text("# On\u00adboarding\ufeff\n\nAsk your bud\u00addy\ufffe about the VPN.\n", encoding="utf-8")
    doc = extract(src, ocr=None, max_bytes=1_000_000)
    assert doc.chunks
    for chunk in doc.chunks:
        assert not any(j in chunk.content for j in JUNK), chunk.content
        assert not any(j in (chunk.section or "") for j in JUNK), chunk.section
    assert "Ask your buddy about the VPN." in " ".join(c.content for c in doc.chunks)
    assert [c.ord for c in doc.chunks] == list(range(len(doc.chunks)))
