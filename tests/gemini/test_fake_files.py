"""Files API (resumable upload, get/list/delete, expiry) and cachedContents on the fake."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google import genai
from google.genai import errors, types

from tests.fake_gemini import Error

pytestmark = pytest.mark.gemini
MODEL = "gemini-2.5-flash"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
PDF = CORPUS / "eng-practices" / "pdf" / "review_reviewer_speed.pdf"
PNG = CORPUS / "images" / "code-review-speed-page1.png"


@pytest.fixture
def samples() -> tuple[Path, Path]:
    if not (PDF.is_file() and PNG.is_file()):
        pytest.skip(f"sample corpus not found under {CORPUS}")
    return PDF, PNG


def test_upload_pdf_and_png_then_ask_about_them(fake_gemini, samples):
    pdf, png = samples
    client = genai.Client()
    uploaded = [client.files.upload(file=pdf, config=types.UploadFileConfig(display_name="speed.pdf")),
                client.files.upload(file=png)]

    assert [f.mime_type for f in uploaded] == ["application/pdf", "image/png"]
    assert [f.size_bytes for f in uploaded] == [pdf.stat().st_size, png.stat().st_size]
    assert uploaded[0].display_name == "speed.pdf"
    assert uploaded[0].state == types.FileState.ACTIVE
    assert uploaded[0].expiration_time - uploaded[0].create_time == timedelta(hours=48)
    start = fake_gemini.requests("upload")[0]
    assert start.headers["x-goog-upload-command"] == "start"
    assert start.headers["x-goog-upload-header-content-type"] == "application/pdf"
    chunk = fake_gemini.requests("upload")[1]
    assert chunk.headers["x-goog-upload-command"] == "upload, finalize"
    assert "x-goog-api-key" not in chunk.headers  # the upload id is the credential

    response = client.models.generate_content(model=MODEL, contents=[
        uploaded[0], uploaded[1], "How fast should reviews be?"])
    assert response.text == "Echo: How fast should reviews be?"
    assert fake_gemini.file_uris() == [f.uri for f in uploaded]


def test_large_upload_goes_in_8_mib_chunks(fake_gemini):
    client = genai.Client()
    data = bytes(range(256)) * (9 * 1024 * 4)  # 9 MiB
    uploaded = client.files.upload(file=io.BytesIO(data),
                                   config=types.UploadFileConfig(mime_type="application/octet-stream"))
    assert uploaded.size_bytes == len(data)
    commands = [e.headers["x-goog-upload-command"] for e in fake_gemini.requests("upload")]
    assert commands == ["start", "upload", "upload, finalize"]


def test_files_get_list_delete_and_missing_is_403(fake_gemini):
    client = genai.Client()
    names = [client.files.upload(file=io.BytesIO(b"%d" % i),
                                 config=types.UploadFileConfig(mime_type="text/plain")).name
             for i in range(5)]

    assert client.files.get(name=names[0]).name == names[0]
    listed = list(client.files.list(config=types.ListFilesConfig(page_size=2)))
    assert sorted(f.name for f in listed) == sorted(names)
    page_sizes = [e.query.get("pageSize") for e in fake_gemini.requests("files") if e.method == "GET"]
    assert page_sizes[-3:] == ["2", "2", "2"]  # three pages of 2, 2, 1

    client.files.delete(name=names[0])
    with pytest.raises(errors.ClientError) as caught:
        client.files.get(name=names[0])
    assert (caught.value.code, caught.value.status) == (403, "PERMISSION_DENIED")


def test_expired_files_disappear_and_cannot_be_used(fake_gemini):
    client = genai.Client()
    fake_gemini.file_ttl = timedelta(minutes=5)
    kept = client.files.upload(file=io.BytesIO(b"kept"), config=types.UploadFileConfig(mime_type="text/plain"))
    gone = client.files.upload(file=io.BytesIO(b"gone"), config=types.UploadFileConfig(mime_type="text/plain"))
    assert kept.expiration_time - datetime.now(UTC) < timedelta(minutes=5)

    fake_gemini.expire_file(gone.name)
    assert [f.name for f in client.files.list()] == [kept.name]
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents=[gone, "summarise"])
    assert caught.value.code == 403


def test_scripted_upload_error_is_final_not_retried(fake_gemini):
    fake_gemini.enqueue(Error(503), kind="upload")
    client = genai.Client()
    with pytest.raises(errors.ServerError):
        client.files.upload(file=io.BytesIO(b"x"), config=types.UploadFileConfig(mime_type="text/plain"))
    assert len(fake_gemini.requests("upload")) == 1


def test_cached_contents_create_get_list_delete(fake_gemini):
    client = genai.Client()
    cache = client.caches.create(model=MODEL, config=types.CreateCachedContentConfig(
        display_name="handbook", system_instruction="You are Allin.",
        contents=[types.Content(role="user", parts=[types.Part(text="The handbook text.")])],
        ttl="600s"))

    assert cache.name.startswith("cachedContents/")
    assert cache.model == f"models/{MODEL}"
    assert timedelta(seconds=590) < cache.expire_time - datetime.now(UTC) <= timedelta(seconds=600)
    assert client.caches.get(name=cache.name).display_name == "handbook"
    assert [c.name for c in client.caches.list()] == [cache.name]
    assert fake_gemini.requests("caches")[0].body["systemInstruction"]["parts"][0]["text"] == "You are Allin."

    answer = client.models.generate_content(model=MODEL, contents="hi",
                                            config=types.GenerateContentConfig(cached_content=cache.name))
    assert answer.text == "Echo: hi"
    assert fake_gemini.last_request().body["cachedContent"] == cache.name

    client.caches.delete(name=cache.name)
    with pytest.raises(errors.ClientError) as caught:
        client.caches.get(name=cache.name)
    assert caught.value.code == 403
