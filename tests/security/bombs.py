"""Small files that inflate to huge ones, built fast and in bounded memory, and a peak-memory probe.

The PDF bomb's zlib stream is made by compressing 1 MiB once with a full flush (which resets the
dictionary, so every further 1 MiB compresses to the same bytes) and repeating that segment: a
2 GiB stream costs a few MB and well under a second to build, and is a valid stream (checksum
included) that zlib really inflates to 2 GiB.
"""

from __future__ import annotations

import re
import threading
import zipfile
import zlib
from pathlib import Path

MIB = 1 << 20


def zlib_of_repeated(byte: bytes, mib: int) -> bytes:
    """A zlib stream that inflates to `mib` MiB of `byte`."""
    block = byte * MIB
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = raw.compress(block) + raw.flush(zlib.Z_FULL_FLUSH)
    again = raw.compress(block) + raw.flush(zlib.Z_FULL_FLUSH)
    assert again == first or mib == 1, "a full flush should make segments repeat"
    tail = raw.flush()
    adler = 1
    for _ in range(mib):
        adler = zlib.adler32(block, adler)
    return b"\x78\xda" + first * mib + tail + adler.to_bytes(4, "big")


def pdf_bomb(path: Path, inflated_mib: int = 2048) -> None:
    """One page whose FlateDecode content stream inflates to `inflated_mib` MiB (of spaces: valid content)."""
    stream = zlib_of_repeated(b" ", inflated_mib)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
    b'+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)


def docx_bomb(path: Path, inflated_mib: int = 256) -> None:
    """A valid DOCX whose document.xml is `inflated_mib` MiB of tiny paragraphs (written streaming)."""
    paragraph = b"<w:p><w:r><w:t>boom</w:t></w:r></w:p>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _RELS)
        with zf.open("word/document.xml", "w", force_zip64=True) as doc:
            doc.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w='
                      b'"http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>')
            chunk = paragraph * (MIB // len(paragraph))
            for _ in range(inflated_mib):
                doc.write(chunk)
            doc.write(b"</w:body></w:document>")


def zip_bomb(path: Path, inflated_mib: int = 256) -> None:
    """A plain zip with one entry of zeros (not a DOCX)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("zeros.bin", "w", force_zip64=True) as entry:
        for _ in range(inflated_mib):
            entry.write(bytes(MIB))


# --- peak memory -----------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert m, field
    return int(m.group(1))


class PeakRss:
    """Peak resident memory of this process while the block runs, in MiB above the RSS at its start.

    Linux lets a process reset its high-water mark (`5` into /proc/self/clear_refs), so the peak is
    exact and independent of whatever earlier tests did; where that is refused, RSS is sampled
    every 2 ms instead (psutil).
    """

    def __enter__(self) -> PeakRss:
        self.start_kib = _status_kib("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._sampler = None
        except OSError:
            self._sampler = _Sampler()
            self._sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._sampler is None:
            peak = _status_kib("VmHWM")
        else:
            peak = self._sampler.stop()
        self.growth_mib = max(0, peak - self.start_kib) / 1024


class _Sampler(threading.Thread):
    def __init__(self) -> None:
        import psutil

        super().__init__(daemon=True)
        self.process = psutil.Process()
        self.peak_kib = self.process.memory_info().rss // 1024
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.002):
            self.peak_kib = max(self.peak_kib, self.process.memory_info().rss // 1024)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak_kib
