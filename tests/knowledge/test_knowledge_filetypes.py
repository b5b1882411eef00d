"""Type detection trusts bytes over names."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from allin.knowledge.filetypes import detect
from allin.knowledge.types import IngestError


def test_binary_formats_by_magic_whatever_the_name(corpus: Path, tmp_path: Path) -> None:
    png_as_md = tmp_path / "diagram.md"
    png_as_md.write_bytes((corpus / "images" / "small-cls-page2.png").read_bytes())
    assert detect(png_as_md).kind == "image" and detect(png_as_md).mime == "image/png"
    assert detect(corpus / "wild-pdfs" / "nics-background-checks-2015-11.pdf").kind == "pdf"


def test_docx_must_really_be_a_word_document(tmp_path: Path) -> None:
    import docx

    real = tmp_path / "real.docx"
    docx.Document().save(real)
    assert detect(real).kind == "docx"
    fake = tmp_path / "fake.docx"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(IngestError) as info:
        detect(fake)
    assert info.value.code == "unsupported_type"


@pytest.mark.parametrize(
    ("name", "kind", "language"),
    [
        ("guide.md", "markdown", None),
        ("page.htm", "html", None),
        ("notes.rst", "text", None),
        ("server.log", "text", None),
        ("main.go", "code", "go"),
        ("lib.rs", "code", "rust"),
        ("settings.toml", "code", "toml"),
        ("README", "text", None),
    ],
)
def test_text_formats_by_extension(tmp_path: Path, name: str, kind: str, language: str | None) -> None:
    path = tmp_path / name
    path.write_text("hello world\n", encoding="utf-8")
    detected = detect(path)
    assert (detected.kind, detected.language) == (kind, language)


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("empty.md", b"", "empty"),
        ("tool.exe", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64, "unsupported_type"),
        ("data.py", b"\x00\x01\x02\x03" * 100, "unsupported_type"),  # binary under a code name
        ("table.xlsx", b"just some text", "unsupported_type"),
        ("song.mp3", b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff" * 64, "unsupported_type"),
    ],
)
def test_refusals_have_codes(tmp_path: Path, name: str, content: bytes, code: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(IngestError) as info:
        detect(path)
    assert info.value.code == code and name in str(info.value)


def test_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("a" * 2000, encoding="utf-8")
    with pytest.raises(IngestError) as info:
        detect(path, max_bytes=1000)
    assert info.value.code == "too_large"
    assert detect(path, max_bytes=5000).kind == "text"
