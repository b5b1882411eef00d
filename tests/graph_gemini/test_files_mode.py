"""Files mode (retrieval_mode=files) through the real app, keyed against the fake Gemini server.

Two eng-practices documents (a PDF and a Markdown file) sit in the knowledge
folder and in the test's Postgres (as a sync leaves them; changes and removals
go through the real sync job); questions go over /ws. The fake's
journal shows what the product did on the Files API (resumable upload starts,
gets, deletes) and which `fileData.fileUri` parts each answer request carried.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import websockets
from psycopg.rows import dict_row

from tests.fake_gemini import Json, Text
from tests.graph_gemini.conftest import gemini_mode
from tests.graph_gemini.helpers import answer_calls, ask, hello, of

DOCS = ("eng-practices/pdf/review_reviewer_speed.pdf", "eng-practices/md/review_developer_small-cls.md")
QUESTION = "Why should I write small CLs, and how fast should code reviews be?"


@pytest.fixture
def settings(settings, fake_gemini):
    return gemini_mode(settings, fake_gemini, retrieval_mode="files", model_max_retries=1)


@pytest.fixture(autouse=True)
def no_context_cache(request, monkeypatch):
    """These tests read the files in each answer request: no context cache (tests/graph_gemini/test_files_cache.py)."""
    if request.module.__name__.endswith("test_files_mode"):
        from allin.knowledge import gemini_cache

        monkeypatch.setattr(gemini_cache, "MIN_CACHE_TOKENS", 10**9)


@pytest.fixture(scope="session")
def processed(corpus: Path) -> list[tuple]:
    """The two documents extracted and embedded once per session (the CPU part of a sync)."""
    from allin.knowledge.embeddings import get_local_embedder
    from allin.knowledge.pipeline import process_file, sha256_file

    embedder = get_local_embedder()
    out = []
    for doc in DOCS:
        path = corpus / doc
        if not path.is_file():
            pytest.skip(f"{path} not found")
        document, vectors = process_file(path, ocr=None, embedder=embedder, max_bytes=50 << 20)
        out.append((path, sha256_file(path), document, vectors, embedder.name))
    return out


@pytest.fixture
async def synced(settings, processed, db_url) -> dict[str, dict]:
    """The documents in the knowledge folder and indexed as a sync leaves them: {file name: document row}.

    Written with the sync's own store calls, so a later sync finds them unchanged."""
    from allin.knowledge.store import replace_chunks, upsert_document

    folder = settings.knowledge_path
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        for source, digest, document, vectors, model in processed:
            shutil.copy(source, folder / source.name)
            doc_id = await upsert_document(conn, path=source.name, title=document.title, sha256=digest,
                                           mime=document.mime, size_bytes=source.stat().st_size)
            await replace_chunks(conn, doc_id, document.chunks, vectors, title=document.title,
                                 pages=document.pages, embedding_model=model)
    return await documents(db_url)


async def sync(live_server, users) -> dict:
    async with httpx.AsyncClient(base_url=live_server.url, headers=users.admin.headers, timeout=60) as http:
        job = (await http.post("/admin/sync_knowledge")).json()["job_id"]
        for _ in range(600):
            state = (await http.get(f"/admin/sync_knowledge/{job}")).json()
            if state["status"] in ("done", "failed"):
                assert state["status"] == "done", state
                return state
            await asyncio.sleep(0.1)
    raise AssertionError("sync did not finish")


async def documents(db_url: str) -> dict[str, dict]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        rows = await (await conn.execute("SELECT * FROM documents ORDER BY path")).fetchall()
    return {Path(r["path"]).name: r for r in rows}


def upload_starts(fake) -> list:
    """One per uploaded file: the resumable upload's `start` request (chunks carry an upload_id)."""
    return [e for e in fake.requests("upload") if "upload_id" not in e.query]


def uploaded_names(fake) -> list[str]:
    return [e.body["file"]["displayName"] for e in upload_starts(fake)]


def deletes(fake) -> list[str]:
    return [e.path.rsplit("/", 1)[-1] for e in fake.requests("files") if e.method == "DELETE"]


async def ask_knowledge(ws, fake, answer: str = "Within one business day [1]; keep CLs small [2].") -> list[dict]:
    fake.enqueue(Json({"route": "knowledge", "reason": "scripted"}))
    fake.enqueue(Text(answer))
    frames = await ask(ws, QUESTION, frame_id=uuid.uuid4().hex)  # ids are unique per chat
    assert frames[-1]["type"] == "turn_complete", frames[-1]
    return frames


async def test_first_question_uploads_each_document_once_and_references_the_files(
        live_server, users, synced, fake_gemini, db_url):
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        frames = await ask_knowledge(ws, fake_gemini)

    # One resumable upload per selected document, as the type Gemini reads it.
    assert sorted(uploaded_names(fake_gemini)) == sorted(synced)
    mimes = {e.body["file"]["displayName"]: e.headers.get("x-goog-upload-header-content-type")
             for e in upload_starts(fake_gemini)}
    assert mimes == {"review_reviewer_speed.pdf": "application/pdf", "review_developer_small-cls.md": "text/plain"}
    rows = await documents(db_url)
    for name, row in rows.items():
        assert row["gemini_file_name"] and fake_gemini.file(row["gemini_file_name"]) is not None
        assert row["gemini_file_sha256"] == row["sha256"] and row["gemini_expires_at"] is not None

    # The answer request carries both files as fileData parts, each after its numbered label.
    [answer] = answer_calls(fake_gemini)
    assert sorted(answer.file_uris) == sorted(r["gemini_file_uri"] for r in rows.values())
    parts = answer.contents[-1]["parts"]
    for i, part in enumerate(parts):
        if "fileData" in part:
            assert parts[i - 1]["text"].startswith("Document [")
    sent = "\n".join(answer.texts)
    assert "Answer the text in <question> from these attached documents" in sent
    assert "<passage " not in sent  # the files replace the passages
    assert f"<question>\n{QUESTION}\n</question>" in sent

    # Citations name the documents by the numbers the files were given.
    message = of(frames, "message")[0]
    cited = {c["n"]: c for c in message["citations"]}
    assert set(cited) == {1, 2}
    labels = [p["text"] for p in parts if p.get("text", "").startswith("Document [")]
    for n, citation in cited.items():
        assert citation["file"] in labels[n - 1] and citation["title"] in labels[n - 1]
        assert citation["document_id"] == str(rows[Path(citation["file"]).name]["id"])
        assert citation["page"] is None and citation["snippet"]


async def test_a_second_question_reuses_the_files(live_server, users, synced, fake_gemini):
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ask_knowledge(ws, fake_gemini)
        first = answer_calls(fake_gemini)[0].file_uris
        await ask_knowledge(ws, fake_gemini)
    assert len(upload_starts(fake_gemini)) == 2  # the first turn's, none since
    assert sorted(answer_calls(fake_gemini)[1].file_uris) == sorted(first)


async def test_an_expired_file_is_uploaded_again_alone(live_server, users, synced, fake_gemini, db_url):
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ask_knowledge(ws, fake_gemini)
        before = await documents(db_url)
        fake_gemini.expire_file(before["review_reviewer_speed.pdf"]["gemini_file_name"])
        await ask_knowledge(ws, fake_gemini)

    assert uploaded_names(fake_gemini)[2:] == ["review_reviewer_speed.pdf"]
    after = await documents(db_url)
    pdf, md = after["review_reviewer_speed.pdf"], after["review_developer_small-cls.md"]
    assert pdf["gemini_file_uri"] != before["review_reviewer_speed.pdf"]["gemini_file_uri"]
    assert md["gemini_file_uri"] == before["review_developer_small-cls.md"]["gemini_file_uri"]
    # The generate request references the new copy, which the fake accepted (expired ones get 403).
    assert sorted(answer_calls(fake_gemini)[1].file_uris) == sorted([pdf["gemini_file_uri"], md["gemini_file_uri"]])


async def test_a_recorded_expiry_within_the_margin_is_uploaded_again(live_server, users, synced, fake_gemini,
                                                                        db_url):
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ask_knowledge(ws, fake_gemini)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await conn.execute("UPDATE documents SET gemini_expires_at = now() + interval '10 minutes'"
                               " WHERE path LIKE %s", ("%.md",))
        await ask_knowledge(ws, fake_gemini)
    assert uploaded_names(fake_gemini)[2:] == ["review_developer_small-cls.md"]


async def test_a_changed_document_is_uploaded_again_after_sync(live_server, users, synced, fake_gemini, db_url):
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ask_knowledge(ws, fake_gemini)
        old = (await documents(db_url))["review_developer_small-cls.md"]
        path = live_server.app.state.res.settings.knowledge_path / "review_developer_small-cls.md"
        path.write_text(path.read_text() + "\n\nSmall CLs get reviewed within one business day here.\n")
        await sync(live_server, users)
        await ask_knowledge(ws, fake_gemini)

    assert uploaded_names(fake_gemini)[2:] == ["review_developer_small-cls.md"]
    new = (await documents(db_url))["review_developer_small-cls.md"]
    assert new["sha256"] != old["sha256"] and new["gemini_file_sha256"] == new["sha256"]
    assert new["gemini_file_uri"] in answer_calls(fake_gemini)[1].file_uris
    # The superseded copy is deleted, not left to expire.
    assert old["gemini_file_name"].rsplit("/", 1)[-1] in deletes(fake_gemini)
    assert fake_gemini.file(old["gemini_file_name"]) is None


async def test_deleting_a_document_deletes_its_gemini_file(live_server, users, synced, fake_gemini, db_url):
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ask_knowledge(ws, fake_gemini)
    row = (await documents(db_url))["review_reviewer_speed.pdf"]
    name = row["gemini_file_name"]
    assert fake_gemini.file(name) is not None
    async with httpx.AsyncClient(base_url=live_server.url, headers=users.admin.headers) as http:
        r = await http.delete(f"/admin/knowledge/documents/{row['id']}")
    assert r.status_code == 204
    for _ in range(100):  # the remote delete runs in the background
        if name.rsplit("/", 1)[-1] in deletes(fake_gemini):
            break
        await asyncio.sleep(0.05)
    assert deletes(fake_gemini) == [name.rsplit("/", 1)[-1]]
    assert fake_gemini.file(name) is None
    assert "review_reviewer_speed.pdf" not in await documents(db_url)


async def test_sync_removing_a_document_deletes_its_gemini_file(live_server, users, synced, fake_gemini, db_url):
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token)
        await ask_knowledge(ws, fake_gemini)
    name = (await documents(db_url))["review_developer_small-cls.md"]["gemini_file_name"]
    (live_server.app.state.res.settings.knowledge_path / "review_developer_small-cls.md").unlink()
    state = await sync(live_server, users)
    assert state["progress"]["removed"] == 1
    assert deletes(fake_gemini) == [name.rsplit("/", 1)[-1]]
    assert fake_gemini.file(name) is None


async def test_chunks_mode_sends_passages_and_no_files(live_server, users, synced, fake_gemini):
    async with httpx.AsyncClient(base_url=live_server.url, headers=users.alice.headers) as http:
        chat = (await http.post("/chat/start", json={"settings": {"retrieval_mode": "chunks"}})).json()
    async with websockets.connect(live_server.ws_url) as ws:
        await hello(ws, users.alice.token, chat["chat_id"])
        frames = await ask_knowledge(ws, fake_gemini, answer="Within one business day [1].")
    [answer] = answer_calls(fake_gemini)
    assert answer.file_uris == [] and upload_starts(fake_gemini) == []
    assert "<passage " in "\n".join(answer.texts)
    assert of(frames, "message")[0]["citations"][0]["n"] == 1


async def test_concurrent_turns_upload_a_document_once(settings, synced, fake_gemini, db_url):
    from allin.knowledge.gemini_files import GeminiFiles

    files = GeminiFiles(settings)
    doc_id = synced["review_reviewer_speed.pdf"]["id"]
    conns = [await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) for _ in range(4)]
    try:
        refs = await asyncio.gather(*(files.ensure_uploaded(c, doc_id) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert uploaded_names(fake_gemini) == ["review_reviewer_speed.pdf"]
    assert len({r.uri for r in refs}) == 1 and refs[0].mime == "application/pdf"


async def test_files_mode_without_a_key_falls_back_to_passages(settings, synced):
    from graphs.assistant.context import Context
    from graphs.assistant.services import ServiceDeps

    offline = settings.model_copy(update={"google_api_key": None})
    deps = ServiceDeps(offline, pool=None)
    assert deps.gemini_files is None
    assert await deps.attach_files([], Context(retrieval_mode="files")) == []


def test_the_files_turn_escapes_document_names_and_puts_each_file_after_its_label():
    from allin.models.context import AttachedFile, TurnContext, build_files_turn_content

    files = [AttachedFile(n=1, document_id="d1", title='Speed "<fast>"', file="a.pdf", uri="https://x/files/1",
                          mime="application/pdf")]
    blocks = build_files_turn_content(TurnContext(question="Why <b>?", route="knowledge"), files, "Use the files.")
    assert blocks[0] == {"type": "text", "text": 'Document [1]: Speed "<fast>" (a.pdf)'}
    assert blocks[1] == {"type": "media", "file_uri": "https://x/files/1", "mime_type": "application/pdf"}
    text = blocks[2]["text"]
    assert '<document n="1" document_id="d1" title="Speed &quot;&lt;fast&gt;&quot;" file="a.pdf"/>' in text
    assert "<question>\nWhy &lt;b&gt;?\n</question>" in text and "<instructions>Use the files.</instructions>" in text


def test_pick_documents_takes_the_best_passage_of_at_most_three_documents():
    from allin.models.context import Passage
    from graphs.assistant.files import MAX_FILES, pick_documents

    passages = [Passage(n=i, document_id=d, title=d, file=f"{d}.md", content=str(i))
                for i, d in enumerate(["a", "a", "b", "c", "b", "d"], 1)]
    picked = pick_documents(passages)
    assert MAX_FILES == 3 and [(p.document_id, p.n) for p in picked] == [("a", 1), ("b", 3), ("c", 4)]
