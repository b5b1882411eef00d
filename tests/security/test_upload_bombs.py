"""Upload bombs through the real upload routes: refused with a clear error, memory stays bounded,
and the server keeps serving.

A bomb that gets past the upload checks (a valid PNG, PDF or DOCX) is stored and then refused by
ingestion: the knowledge document, or the attachment, is marked failed with the reason. Anything
over `max_upload_mb` is 413 before it is parsed; a zip that is no DOCX is 415.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from allin.knowledge.bombs import check_docx_parts, check_pdf_streams
from allin.knowledge.types import IngestError
from tests.knowledge.test_knowledge_images import _png_bomb
from tests.security.bombs import PeakRss, docx_bomb, pdf_bomb, zip_bomb

MAX_GROWTH_MIB = 300  # each of these files would take gigabytes if parsed as they ask
UPLOAD_MB = 8


@pytest.fixture
def settings(settings):
    """A small upload limit, so the oversize case is cheap; every bomb is far below it on disk."""
    return settings.model_copy(update={"max_upload_mb": UPLOAD_MB})


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bombs")
    made = {"png": d / "huge.png", "pdf": d / "huge.pdf", "docx": d / "huge.docx", "zip": d / "huge.zip"}
    _png_bomb(made["png"], 20_000, 20_000)  # 400 Mpx: 1.2 GB as RGB
    pdf_bomb(made["pdf"], 2048)  # a 2 GiB content stream
    docx_bomb(made["docx"], 128)  # 128 MiB of XML, millions of paragraphs
    zip_bomb(made["zip"], 128)
    for path in made.values():
        assert path.stat().st_size < 3 << 20, path  # small on the wire: only inflating makes them big
    return made


async def _warm_up(client, users) -> None:
    """Load the embedder first, so its one-time memory is not counted as the bomb's.

    (OCR models load lazily, on the first image actually read: a refused bomb never loads them.)
    """
    r = await client.post("/admin/knowledge/files", headers=users.admin.headers,
                          files={"file": ("warm.md", b"# Warm up\n\nDeploys happen on Tuesdays.\n", "text/markdown")})
    assert r.status_code == 201 and r.json()["status"] == "ready", r.text


# (kind, code of the refusal): what ingestion says about each bomb
FAILED_IN_INGESTION = [("png", "image_bomb"), ("pdf", "pdf_bomb"), ("docx", "docx_bomb")]


@pytest.mark.parametrize(("kind", "code"), FAILED_IN_INGESTION)
async def test_knowledge_upload_of_a_bomb_is_a_failed_document(client, users, bombs, kind, code) -> None:
    await _warm_up(client, users)
    path = bombs[kind]
    with PeakRss() as mem:
        r = await client.post("/admin/knowledge/files", headers=users.admin.headers,
                              files={"file": (path.name, path.read_bytes(), "application/octet-stream")})
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["status"] == "error" and doc["error"].startswith(f"{code}: "), doc
    assert doc["chunk_count"] == 0
    print(f"knowledge upload, {kind} bomb: peak RSS +{mem.growth_mib:.0f} MiB")
    assert mem.growth_mib < MAX_GROWTH_MIB, f"{kind}: peak memory grew {mem.growth_mib:.0f} MiB"
    await _still_serving(client, users)


@pytest.mark.parametrize(("kind", "code"), FAILED_IN_INGESTION)
async def test_attachment_of_a_bomb_is_a_failed_attachment(client, users, bombs, kind, code) -> None:
    await _warm_up(client, users)
    path = bombs[kind]
    with PeakRss() as mem:
        r = await client.post("/chat/attachments", headers=users.alice.headers,
                              files={"file": (path.name, path.read_bytes(), "application/octet-stream")})
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["status"] == "error" and att["error"].startswith(f"{code}: ") and att["text_preview"] == "", att
    print(f"attachment, {kind} bomb: peak RSS +{mem.growth_mib:.0f} MiB")
    assert mem.growth_mib < MAX_GROWTH_MIB, f"{kind}: peak memory grew {mem.growth_mib:.0f} MiB"
    await _still_serving(client, users)


@pytest.mark.parametrize("route", ["/admin/knowledge/files", "/chat/attachments"])
async def test_a_zip_bomb_and_an_oversize_body_are_refused_at_the_door(client, users, bombs, route) -> None:
    headers = users.admin.headers if route.startswith("/admin") else users.alice.headers
    with PeakRss() as mem:
        r = await client.post(route, headers=headers,
                              files={"file": ("huge.zip", bombs["zip"].read_bytes(), "application/zip")})
        assert r.status_code == 415, r.text
        assert r.json()["error"]["code"] == "unsupported_type" and "zip" in r.json()["error"]["message"]
        # Over the limit: refused while streaming to disk, before any parsing.
        r = await client.post(route, headers=headers,
                              files={"file": ("big.txt", b"a" * ((UPLOAD_MB << 20) + 1), "text/plain")})
        assert r.status_code == 413, r.text
        assert r.json()["error"] == {"code": "payload_too_large", "message": f"files are limited to {UPLOAD_MB} MB"}
    assert mem.growth_mib < MAX_GROWTH_MIB
    # Nothing of either was kept as a document.
    docs = (await client.get("/knowledge/documents", headers=users.admin.headers)).json()["items"]
    assert not [d for d in docs if d["path"].endswith(("huge.zip", "big.txt"))]
    await _still_serving(client, users)


async def _still_serving(client, users) -> None:
    assert (await client.get("/health")).json()["status"] == "ok"
    r = await client.post("/chat/attachments", headers=users.bob.headers,
                          files={"file": ("after.log", b"ERROR after the bomb: disk full\n", "text/plain")})
    assert r.status_code == 201 and r.json()["status"] == "ready" and "disk full" in r.json()["text_preview"], r.text


# --- the checks themselves: exact, and no false alarms on real files --------------------------


def test_pdf_check_counts_real_streams_and_spares_real_pdfs(corpus: Path, tmp_path: Path) -> None:
    for pdf in sorted(corpus.rglob("*.pdf")):
        check_pdf_streams(pdf)  # none of the sample PDFs is refused
    small = tmp_path / "small.pdf"
    pdf_bomb(small, 100)  # under the 128 MiB a stream may inflate to
    check_pdf_streams(small)
    pdf_bomb(small, 129)
    with pytest.raises(IngestError) as info:
        check_pdf_streams(small)
    assert info.value.code == "pdf_bomb" and "128 MB" in info.value.message


def test_docx_check_spares_a_real_document(tmp_path: Path) -> None:
    import docx

    doc = docx.Document()
    doc.add_heading("Deploys", 1)
    for i in range(2000):
        doc.add_paragraph(f"Step {i}: check the dashboard for service {i * 7919 % 1000} before you ship.")
    doc.save(tmp_path / "real.docx")
    check_docx_parts(tmp_path / "real.docx")
    docx_bomb(tmp_path / "bomb.docx", 2)  # small, but 300:1
    with pytest.raises(IngestError) as info:
        check_docx_parts(tmp_path / "bomb.docx")
    assert info.value.code == "docx_bomb" and ":1" in info.value.message
