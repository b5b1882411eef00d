"""Markdown, HTML, DOCX and plain text: sections, lists, code, tables, line ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from allin.knowledge.extract import extract
from allin.knowledge.types import IngestError

MAX_BYTES = 50 * 1024 * 1024


def _extract(path: Path):
    return extract(path, ocr=None, max_bytes=MAX_BYTES)


def test_markdown_sections_carry_heading_paths(corpus: Path) -> None:
    doc = _extract(corpus / "eng-practices" / "md" / "review_reviewer_speed.md")
    assert doc.title == "Speed of Code Reviews" and doc.mime == "text/markdown" and doc.pages is None
    sections = list(dict.fromkeys(c.section for c in doc.chunks))
    root = "Speed of Code Reviews > "
    assert sections == [
        root + "Why Should Code Reviews Be Fast?",  # "{#why}" attribute dropped
        root + "How Fast Should Code Reviews Be?",
        root + "Speed vs. Interruption",
        root + "Fast Responses",
        root + "Cross-Time-Zone Reviews",
        root + "LGTM With Comments",
        root + "Large CLs",
        root + "Code Review Improvements Over Time",
        root + "Emergencies",
    ]
    one_day = next(c for c in doc.chunks if "One business day is the maximum time" in c.content)
    assert one_day.section == root + "How Fast Should Code Reviews Be?"
    assert one_day.line_start <= 36 <= one_day.line_end  # the sentence is on line 36 of the file
    # Inline markup is gone, list items stay on their own lines.
    first = doc.chunks[0].content
    assert "**" not in first and "\n- The velocity of the team as a whole is decreased." in first


def test_markdown_code_fences_and_tables(corpus: Path) -> None:
    doc = _extract(corpus / "eng-practices" / "md" / "review_developer_cl-descriptions.md")
    code = [c for c in doc.chunks if c.kind == "code"]
    assert len(code) == 2
    assert code[0].content.startswith("// Tags are okay in the first line if kept short.")
    assert code[0].section and code[0].section.startswith("Writing good CL descriptions")
    assert code[0].line_start == 170
    small = _extract(corpus / "eng-practices" / "md" / "review_developer_small-cls.md")
    table = next(c for c in small.chunks if c.kind == "table")
    assert table.content.split("\n")[:2] == [
        "| Layer | Feature: Multiplication | Feature: Division |",
        "| --- | --- | --- |",
    ]
    assert table.section.endswith("Splitting Horizontally & Vertically")


def test_html_drops_scripts_and_keeps_structure(tmp_path: Path) -> None:
    page = tmp_path / "onboarding.html"
    page.write_text(
        """<!doctype html><html><head><title>Team Handbook</title><style>p{color:red}</style></head>
        <body><script>var secret = "do not index";</script>
        <h1>Deploys</h1><p>We deploy on <b>Tuesdays</b> and Thursdays.</p>
        <h2>Rollbacks</h2><ul><li>Page the on-call engineer.</li><li>Run <code>make rollback</code>.</li></ul>
        <table><tr><th>Service</th><th>Owner</th></tr><tr><td>billing</td><td>Ana</td></tr></table>
        <pre>kubectl rollout undo deploy/api</pre></body></html>""",
        encoding="utf-8",
    )
    doc = _extract(page)
    assert doc.title == "Team Handbook" and doc.mime == "text/html"
    everything = "\n".join(c.content for c in doc.chunks)
    assert "do not index" not in everything and "color:red" not in everything
    by_kind = {c.kind: c for c in doc.chunks}
    assert (
        doc.chunks[0].content == "We deploy on Tuesdays and Thursdays." and doc.chunks[0].section == "Deploys"
    )
    rollbacks = next(c for c in doc.chunks if "on-call" in c.content)
    assert rollbacks.section == "Deploys > Rollbacks"
    assert rollbacks.content == "- Page the on-call engineer.\n- Run `make rollback`."
    assert by_kind["table"].content == "| Service | Owner |\n| --- | --- |\n| billing | Ana |"
    assert by_kind["code"].content == "kubectl rollout undo deploy/api"


def test_docx_headings_lists_and_tables(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Onboarding Guide", 0)  # the Title style
    document.add_heading("First Week", 1)
    document.add_paragraph("Get your laptop from IT on Monday.")
    document.add_paragraph("Request repository access", style="List Bullet")
    document.add_paragraph("Set up two-factor authentication", style="List Bullet")
    document.add_heading("Contacts", 2)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Topic", "Person"
    table.cell(1, 0).text, table.cell(1, 1).text = "Payroll", "Priya"
    path = tmp_path / "guide.docx"
    document.save(path)
    doc = _extract(path)
    assert doc.title == "Onboarding Guide"
    assert doc.chunks[0].section == "First Week"
    assert doc.chunks[0].content == (
        "Get your laptop from IT on Monday.\n\n"
        "- Request repository access\n- Set up two-factor authentication"
    )
    assert doc.chunks[1].kind == "table" and doc.chunks[1].section == "First Week > Contacts"
    assert doc.chunks[1].content == "| Topic | Person |\n| --- | --- |\n| Payroll | Priya |"


def test_plain_text_and_logs_keep_line_ranges(tmp_path: Path) -> None:
    log = tmp_path / "deploy.log"
    lines = [f"2026-01-0{1 + i % 9} 12:00:{i:02d} INFO step {i} finished without problems" for i in range(60)]
    lines[41] = "2026-01-05 12:00:41 ERROR connection refused by db-primary:5432"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc = _extract(log)
    assert doc.mime == "text/plain" and doc.title == "deploy"
    error = next(c for c in doc.chunks if "connection refused" in c.content)
    assert error.line_start <= 42 <= error.line_end
    assert all(c.content.split("\n")[0] in lines for c in doc.chunks)  # cut between lines


def test_non_utf8_text_is_read_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("Caf\xe9 opens at 8.\n".encode("cp1252"))
    doc = _extract(path)
    assert "Café opens at 8." in doc.chunks[0].content and doc.warnings


def test_markdown_without_text_is_no_text(tmp_path: Path) -> None:
    path = tmp_path / "empty-ish.md"
    path.write_text("# Title only\n\n## And a subtitle\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:
        _extract(path)
    assert info.value.code == "no_text"


def test_broken_docx_is_malformed(tmp_path: Path) -> None:
    import zipfile

    import docx

    good = tmp_path / "good.docx"
    docx.Document().save(good)
    broken = tmp_path / "broken.docx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, b"<w:document broken" if name == "word/document.xml" else src.read(name))
    with pytest.raises(IngestError) as info:
        _extract(broken)
    assert info.value.code == "malformed" and "Word document" in str(info.value)
