"""OCR of images, and refusing image bombs without decoding them."""

from __future__ import annotations

import resource
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from allin.knowledge.extract import extract
from allin.knowledge.types import IngestError

MAX_BYTES = 50 * 1024 * 1024


def test_ocr_reads_a_heading_crop(corpus: Path, ocr) -> None:
    with Image.open(corpus / "images" / "code-review-speed-page1.png") as page:
        crop = page.crop((150, 140, 800, 270)).copy()  # "Speed of Code Reviews" + the first h2
    text = " ".join(ocr.read(crop))
    assert "Speed of Code Reviews" in text
    assert "Why Should Code Reviews Be Fast?" in text


@pytest.mark.slow
def test_ocr_of_a_scanned_page_through_extract(corpus: Path, ocr) -> None:
    doc = extract(corpus / "images" / "code-review-speed-page1.png", ocr=ocr, max_bytes=MAX_BYTES)
    assert doc.mime == "image/png" and all(c.kind == "image" for c in doc.chunks)
    text = "\n".join(c.content for c in doc.chunks)
    for phrase in [
        "Speed of Code Reviews",
        "At Google, we optimize for the speed at which a team of developers can produce a product together",
        "When code reviews are slow, several things happen",
        "The velocity of the team as a whole is decreased",
        "One business day is the maximum time it should take to respond",
    ]:
        assert phrase in text
    # Lines of one paragraph are joined; paragraphs stay apart.
    assert any(c.content.count("\n\n") >= 1 for c in doc.chunks)


def test_image_without_ocr_is_no_text(corpus: Path) -> None:
    with pytest.raises(IngestError) as info:
        extract(corpus / "images" / "small-cls-page2.png", ocr=None, max_bytes=MAX_BYTES)
    assert info.value.code == "no_text" and "OCR" in str(info.value)


def _png_bomb(path: Path, width: int, height: int) -> None:
    """A valid 1-bit palette PNG of width×height, all zeros: tiny on disk, huge decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed pixels
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 3, 0, 0, 0)  # 1-bit, palette
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"PLTE", b"\x00\x00\x00\xff\xff\xff")
        + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )  # fmt: skip


@pytest.mark.parametrize("size", [(20_000, 20_000), (8_000, 6_000)])
def test_image_bomb_is_refused_without_decoding(tmp_path: Path, ocr, size: tuple[int, int]) -> None:
    # 400 Mpx is past Pillow's own limit; 48 Mpx only past ours (40 Mpx).
    bomb = tmp_path / "bomb.png"
    _png_bomb(bomb, *size)
    assert bomb.stat().st_size < 200_000
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(IngestError) as info:
        extract(bomb, ocr=ocr, max_bytes=MAX_BYTES, max_pixels=40_000_000)
    assert info.value.code == "image_bomb"
    assert f"{size[0]}" in str(info.value) or "pixels" in str(info.value)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mib < 50, f"peak memory grew by {grown_mib:.0f} MiB"


def test_truncated_image_is_malformed(tmp_path: Path, corpus: Path, ocr) -> None:
    data = (corpus / "images" / "small-cls-page2.png").read_bytes()
    broken = tmp_path / "broken.png"
    broken.write_bytes(data[: len(data) // 3])
    with pytest.raises(IngestError) as info:
        extract(broken, ocr=ocr, max_bytes=MAX_BYTES)
    assert info.value.code == "malformed"


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_jpeg_and_webp_are_sniffed_and_decoded(tmp_path: Path, corpus: Path, fmt: str, mime: str) -> None:
    from allin.knowledge.extract import open_image
    from allin.knowledge.filetypes import detect

    path = tmp_path / "scan.bin"  # the name says nothing: the bytes decide
    with Image.open(corpus / "images" / "small-cls-page2.png") as src:
        src.convert("RGB").save(path, format=fmt, quality=90)
        size = src.size
    assert detect(path).mime == mime
    image = open_image(path, max_pixels=40_000_000)
    assert image.size == size and image.mode == "RGB"
