"""PDF extraction on real-world files: text, pages, headings, tables, bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from allin.knowledge.chunk import count_tokens, embedding_text
from allin.knowledge.extract import extract
from allin.knowledge.types import IngestError

MAX_BYTES = 50 * 1024 * 1024

# What each wild PDF must give with OCR off: an error code, or text that is in it.
WILD = {
    "empty.pdf": ("error", "empty"),
    "password-example.pdf": ("error", "encrypted"),
    # pdfium opens it: one page that is a scanned image plus a stray date in
    # text; with OCR off only the date is read, and the skipped scan is reported.
    "malformed-from-issue-932.pdf": ("text", "2021 3 31"),
    "federal-register-2020-17221.pdf": ("text", "Federal Aviation Administration"),
    "image_structure.pdf": ("text", "Here is an image with some attributes"),
    "issue-33-lorem-ipsum.pdf": ("table", "Tempora"),
    "la-precinct-bulletin-2014-p1.pdf": ("text", "NEEL KASHKARI"),
    "nics-background-checks-2015-11.pdf": ("table", "| Alabama |"),
    "scotus-transcript-p1.pdf": ("text", "MICHAEL A. KNOWLES"),
    "senate-expenditures.pdf": ("table", "DHAW20190001"),
}


def _doc(corpus: Path, *parts: str, ocr=None):
    return extract(corpus.joinpath(*parts), ocr=ocr, max_bytes=MAX_BYTES)


def test_every_wild_pdf_is_listed(corpus: Path) -> None:
    assert {p.name for p in (corpus / "wild-pdfs").glob("*.pdf")} == set(WILD)


@pytest.mark.parametrize("name", sorted(WILD))
def test_wild_pdf_extracts_or_fails_clearly(corpus: Path, name: str) -> None:
    expectation, value = WILD[name]
    if expectation == "error":
        with pytest.raises(IngestError) as info:
            _doc(corpus, "wild-pdfs", name)
        assert info.value.code == value
        assert name in str(info.value)
        return
    doc = _doc(corpus, "wild-pdfs", name)
    assert doc.mime == "application/pdf" and doc.pages and doc.chunks
    assert [c.ord for c in doc.chunks] == list(range(len(doc.chunks)))
    assert all(c.content.strip() and 1 <= c.page <= doc.pages for c in doc.chunks)
    kinds = {c.kind for c in doc.chunks}
    assert any(value in c.content for c in doc.chunks if c.kind == expectation), (name, kinds)
    assert all(count_tokens(embedding_text(doc.title, c)) <= 256 for c in doc.chunks)


def test_malformed_pdf_reports_the_scan_it_could_not_read(corpus: Path) -> None:
    doc = _doc(corpus, "wild-pdfs", "malformed-from-issue-932.pdf")
    assert any("OCR is off" in w for w in doc.warnings)


def test_nics_table_is_a_markdown_table_with_header_and_rows(corpus: Path) -> None:
    doc = _doc(corpus, "wild-pdfs", "nics-background-checks-2015-11.pdf")
    tables = [c for c in doc.chunks if c.kind == "table"]
    assert tables and all(c.page == 1 for c in tables)
    alabama = next(c for c in tables if "| Alabama |" in c.content)
    lines = alabama.content.split("\n")
    assert lines[0] == "NICS Firearm Background Checks November - 2015"  # the caption
    header = [cell.strip() for cell in lines[1].strip("|").split("|")]
    assert lines[2].startswith("| --- | --- |")
    assert header[:7] == [
        "State / Territory",
        "Permit",
        "Handgun",
        "Long Gun",
        "*Other",
        "**Multiple",
        "Admin",
    ]
    assert header[7] == "Pre-Pawn Handgun" and header[-1] == "Totals"
    row = next(line for line in lines if line.startswith("| Alabama |"))
    cells = dict(zip(header, (c.strip() for c in row.strip("|").split("|")), strict=True))
    # Values read off the rendered page.
    assert cells["Permit"] == "18,870"
    assert cells["Handgun"] == "23,022"
    assert cells["Long Gun"] == "22,650"
    assert cells["Redemption Handgun"] == "2,179"
    assert cells["Totals"] == "71,137"
    every_row = "\n".join(c.content for c in tables)
    for state, total in [("Wyoming", "5,017"), ("Texas", None), ("Totals", "2,236,457")]:
        assert f"| {state} |" in every_row
        if total:
            assert total in next(line for line in every_row.split("\n") if line.startswith(f"| {state} |"))
    # Every table chunk repeats the header, and rows are whole lines.
    for chunk in tables:
        assert "| State / Territory | Permit |" in chunk.content
        assert all(line.startswith("|") and line.endswith("|") for line in chunk.content.split("\n")[1:])
    # The table's numbers are not indexed a second time as flat page text.
    assert not any("18,870" in c.content for c in doc.chunks if c.kind == "text")


def _table_candidates(path: Path) -> list[int]:
    import pypdfium2 as pdfium

    from allin.knowledge.pdf import _scan_page

    doc = pdfium.PdfDocument(path)
    try:
        return [i + 1 for i in range(len(doc)) if _scan_page(doc, i).table_candidate]
    finally:
        doc.close()


def test_table_precheck_sends_only_ruled_grids_to_pdfplumber(corpus: Path) -> None:
    wild = corpus / "wild-pdfs"
    assert _table_candidates(wild / "nics-background-checks-2015-11.pdf") == [1]
    assert _table_candidates(wild / "senate-expenditures.pdf") == [1]
    assert _table_candidates(wild / "issue-33-lorem-ipsum.pdf") == [1, 2]
    # A frame, a code box and link underlines are rules too, but no grid.
    assert _table_candidates(corpus / "eng-practices" / "pdf" / "README.pdf") == []
    assert _table_candidates(corpus / "eng-practices" / "pdf" / "review_reviewer_speed.pdf") == []


def test_grid_needs_rules_crossing_three_ways() -> None:
    from allin.knowledge.pdf import _forms_grid

    def box(x0: float, y0: float, x1: float, y1: float):
        return [(y0, x0, x1), (y1, x0, x1)], [(x0, y0, y1), (x1, y0, y1)]

    def boxes(*rects):
        h, v = [], []
        for r in rects:
            bh, bv = box(*r)
            h += bh
            v += bv
        return h, v

    assert not _forms_grid(*boxes((10, 10, 200, 60), (10, 100, 200, 150)))  # two framed code blocks
    assert not _forms_grid(*boxes((10, 10, 100, 60), (100, 10, 200, 60)))  # 1×2 cells
    # 2×2 cells drawn cell by cell (touching borders, no rule across the table).
    assert _forms_grid(*boxes((10, 10, 100, 60), (100, 10, 200, 60), (10, 60, 100, 110), (100, 60, 200, 110)))
    # The same grid drawn as long rules.
    lines_h = [(y, 10, 200) for y in (10, 60, 110)]
    lines_v = [(x, 10, 110) for x in (10, 100, 200)]
    assert _forms_grid(lines_h, lines_v)
    assert not _forms_grid(lines_h, lines_v[:2])


def test_rotated_page_table_keeps_its_columns(corpus: Path) -> None:
    doc = _doc(corpus, "wild-pdfs", "senate-expenditures.pdf")  # a landscape page stored rotated
    table = "\n".join(c.content for c in doc.chunks if c.kind == "table")
    assert "| DOCUMENTNO. | DATE POSTED | PAYEENAME | OBLIGATION/SERVICE DATES START |" in table
    assert "| DHAW20190001 | 05/03/2019 | CITIBANK-TRAVELCBACARD | 03/04/2019 | 03/06/2019 |" in table


def test_pages_and_sections_of_a_rendered_markdown_pdf(corpus: Path) -> None:
    doc = _doc(corpus, "eng-practices", "pdf", "review_reviewer_speed.pdf")
    assert doc.pages == 3

    def where(sentence: str):
        return next(c for c in doc.chunks if sentence in c.content)

    first = where("At Google, we optimize for the speed at which a team of developers")
    assert first.page == 1
    assert first.section == "Speed of Code Reviews > Why Should Code Reviews Be Fast?"
    tz = where("When dealing with time zone differences")
    assert tz.page == 2 and tz.section.endswith("> Cross-Time-Zone Reviews")
    large = where("If somebody sends you a code review that is so large")
    assert large.page == 3 and large.section.endswith("> Large CLs")
    # A sentence cut by the page break is whole in page 2's first chunk.
    assert where("back into a smooth flow of development").content.startswith(
        "Research has shown that it can take a long time for a developer to get back"
    )


def test_pdf_title_falls_back_to_first_heading_then_file_name(corpus: Path) -> None:
    assert _doc(corpus, "eng-practices", "pdf", "review_reviewer_speed.pdf").title == "review_reviewer_speed"
    # Metadata title "10811.exe" is a leftover file name: not used.
    assert _doc(corpus, "wild-pdfs", "scotus-transcript-p1.pdf").title == "scotus transcript p1"


def test_a_pdf_named_otherwise_is_still_read_as_pdf(corpus: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "notes.txt"
    renamed.write_bytes((corpus / "eng-practices" / "pdf" / "review_emergencies.pdf").read_bytes())
    doc = extract(renamed, ocr=None, max_bytes=MAX_BYTES)
    assert doc.mime == "application/pdf" and doc.pages


def test_truncated_pdf_is_malformed_with_a_reason(corpus: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + b"garbage " * 100)
    with pytest.raises(IngestError) as info:
        extract(broken, ocr=None, max_bytes=MAX_BYTES)
    assert info.value.code == "malformed" and "not a readable PDF" in str(info.value)


def test_too_large_is_refused_before_parsing(corpus: Path) -> None:
    with pytest.raises(IngestError) as info:
        extract(corpus / "wild-pdfs" / "federal-register-2020-17221.pdf", ocr=None, max_bytes=100_000)
    assert info.value.code == "too_large"


@pytest.mark.slow
def test_ocr_reads_images_inside_pdfs(corpus: Path, ocr) -> None:
    doc = _doc(corpus, "wild-pdfs", "image_structure.pdf", ocr=ocr)
    images = [c for c in doc.chunks if c.kind == "image"]
    assert images and images[0].page == 1
    assert "pdfplumber" in images[0].content and "jsvine" in images[0].content
    # The scanned page of the "malformed" file is read whole (it is in Chinese).
    scan = _doc(corpus, "wild-pdfs", "malformed-from-issue-932.pdf", ocr=ocr)
    assert any(c.kind == "image" and "有限公司" in c.content for c in scan.chunks)


def _scanned_pdf(image: Path, out: Path) -> Path:
    """A one-page PDF that is only a picture of a page (what a scanner makes)."""
    import pypdfium2 as pdfium
    from PIL import Image

    with Image.open(image) as pil:
        bitmap = pdfium.PdfBitmap.from_pil(pil.convert("RGB"))
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(612, 792)
    picture = pdfium.PdfImage.new(pdf)
    picture.set_bitmap(bitmap)
    picture.set_matrix(pdfium.PdfMatrix().scale(612, 792))
    page.insert_obj(picture)
    page.gen_content()
    pdf.save(out)
    return out


def test_pdf_without_text_is_no_text(corpus: Path, tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    blank = pdfium.PdfDocument.new()
    blank.new_page(612, 792)
    blank.save(tmp_path / "blank.pdf")
    with pytest.raises(IngestError) as info:
        extract(tmp_path / "blank.pdf", ocr=None, max_bytes=MAX_BYTES)
    assert info.value.code == "no_text"
    scan = _scanned_pdf(corpus / "images" / "code-review-speed-page1.png", tmp_path / "scan.pdf")
    with pytest.raises(IngestError) as info:
        extract(scan, ocr=None, max_bytes=MAX_BYTES)
    assert info.value.code == "no_text" and "OCR is off" in str(info.value)


@pytest.mark.slow
def test_scanned_pdf_is_read_by_ocr(corpus: Path, tmp_path: Path, ocr) -> None:
    scan = _scanned_pdf(corpus / "images" / "code-review-speed-page1.png", tmp_path / "scan.pdf")
    doc = extract(scan, ocr=ocr, max_bytes=MAX_BYTES)
    assert {c.kind for c in doc.chunks} == {"image"} and {c.page for c in doc.chunks} == {1}
    text = "\n".join(c.content for c in doc.chunks)
    assert "Speed of Code Reviews" in text and "One business day is the maximum time" in text
