"""Knowledge sync and upload as an admin would do them, on the real corpus and a real Postgres."""

import asyncio
import io
import shutil
import time

import pytest


async def wait_job(client, job_id, headers, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = (await client.get(f"/admin/sync_knowledge/{job_id}", headers=headers)).json()
        if job["status"] in ("done", "failed"):
            return job
        await asyncio.sleep(0.3)
    raise AssertionError("sync did not finish")


@pytest.fixture
def knowledge(settings, corpus):
    root = settings.knowledge_path
    shutil.copytree(corpus / "eng-practices" / "pdf", root / "eng", dirs_exist_ok=True)
    for name in ("empty.pdf", "password-example.pdf", "malformed-from-issue-932.pdf",
                 "nics-background-checks-2015-11.pdf"):
        shutil.copy(corpus / "wild-pdfs" / name, root / name)
    shutil.copy(corpus / "images" / "code-review-speed-page1.png", root / "speed.png")
    return root


@pytest.mark.slow
async def test_sync_is_incremental_and_reports_per_file(client, users, knowledge):
    h = users.admin.headers
    r = await client.post("/admin/sync_knowledge", headers=h)
    assert r.status_code == 202
    job = await wait_job(client, r.json()["job_id"], h)
    assert job["status"] == "done", job
    by_path = {f["path"]: f for f in job["results"]}
    assert by_path["eng/review_reviewer_speed.pdf"]["status"] == "ingested"
    assert by_path["empty.pdf"]["status"] == "error" and by_path["empty.pdf"]["error"].startswith("empty")
    assert by_path["password-example.pdf"]["error"].startswith("encrypted")
    assert by_path["speed.png"]["status"] == "ingested"

    docs = (await client.get("/knowledge/documents", headers=h)).json()["items"]
    errors = {d["path"]: d["error"] for d in docs if d["status"] == "error"}
    assert "empty.pdf" in errors and "password-example.pdf" in errors

    # A second sync with no changes does no work, and says so.
    job = await wait_job(client, (await client.post("/admin/sync_knowledge", headers=h)).json()["job_id"], h)
    assert job["progress"]["summary"].startswith("nothing to do")
    # Touch one file: only it is re-ingested. Delete one: its chunks go.
    (knowledge / "eng" / "review_index.pdf").unlink()
    with (knowledge / "eng" / "review_emergencies.pdf").open("ab") as f:
        f.write(b"\n% touched\n")
    job = await wait_job(client, (await client.post("/admin/sync_knowledge", headers=h)).json()["job_id"], h)
    changed = {f["path"]: f["status"] for f in job["results"] if f["status"] != "unchanged"}
    assert changed == {"eng/review_emergencies.pdf": "ingested", "eng/review_index.pdf": "removed"}
    # Its text did not change: every chunk kept its vector instead of being embedded again.
    [touched] = [f for f in job["results"] if f["path"] == "eng/review_emergencies.pdf"]
    assert touched["chunks"] > 3 and touched["reused"] == touched["chunks"]


async def test_an_edited_document_re_embeds_only_its_changed_chunks(client, users, settings, db_url):
    import psycopg

    sections = {name: f"## {name}\n\n" + " ".join(f"The {name} rule number {i} says to keep reviews small."
                                                    for i in range(25)) for name in ("Speed", "Size", "Tone")}
    doc = settings.knowledge_path / "guide.md"
    doc.write_text("# Review guide\n\n" + "\n\n".join(sections.values()))
    h = users.admin.headers

    async def sync() -> dict:
        job = await wait_job(client, (await client.post("/admin/sync_knowledge", headers=h)).json()["job_id"], h)
        [outcome] = [f for f in job["results"] if f["path"] == "guide.md"]
        return outcome

    def vectors() -> dict[int, tuple[str, str]]:
        with psycopg.connect(db_url) as conn:
            rows = conn.execute("SELECT c.ord, c.section, c.embedding::text FROM chunks c JOIN documents d"
                                " ON d.id = c.document_id WHERE d.path = 'guide.md' ORDER BY c.ord").fetchall()
        return {ord_: (section, vector) for ord_, section, vector in rows}

    first = await sync()
    assert first["status"] == "ingested" and first["reused"] == 0 and first["chunks"] >= 3
    before = vectors()
    doc.write_text(doc.read_text().replace("Tone rule number 3 says", "Tone rule number 3 now says"))
    second = await sync()
    assert second["status"] == "ingested" and second["chunks"] == first["chunks"]
    assert second["reused"] == first["chunks"] - 1  # only the edited chunk was embedded again
    after = vectors()
    changed = [after[i][0] for i in before if before[i][1] != after[i][1]]
    assert len(changed) == 1 and "Tone" in changed[0]


async def test_normal_users_cannot_sync_or_upload(client, users):
    assert (await client.post("/admin/sync_knowledge", headers=users.alice.headers)).status_code == 403
    r = await client.post("/admin/knowledge/files", headers=users.alice.headers,
                          files={"file": ("a.md", b"# hi", "text/markdown")})
    assert r.status_code == 403


async def test_upload_ingests_and_serves_the_file(client, users, corpus):
    h = users.admin.headers
    pdf = (corpus / "eng-practices" / "pdf" / "review_reviewer_speed.pdf").read_bytes()
    r = await client.post("/admin/knowledge/files", headers=h,
                          files={"file": ("speed.pdf", pdf, "application/pdf")})
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["status"] == "ready" and doc["chunk_count"] > 3 and doc["path"] == "uploads/speed.pdf"
    got = await client.get(f"/knowledge/documents/{doc['id']}/file", headers=users.alice.headers)
    assert got.status_code == 200 and got.content == pdf
    assert (await client.delete(f"/admin/knowledge/documents/{doc['id']}", headers=h)).status_code == 204
    assert (await client.get(f"/knowledge/documents/{doc['id']}/file", headers=h)).status_code == 404


async def test_bad_uploads_get_clear_errors(client, users):
    h = users.admin.headers
    r = await client.post("/admin/knowledge/files", headers=h, files={"file": ("../../etc/x.md", b"# x", "text/plain")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_filename"
    r = await client.post("/admin/knowledge/files", headers=h, files={"file": ("x.exe", b"MZ\x90\x00" * 100, "x")})
    assert r.status_code == 415
    r = await client.post("/admin/knowledge/files", headers=h, files={"file": ("e.md", b"", "text/plain")})
    assert r.status_code == 422


@pytest.mark.parametrize("route", ["/admin/knowledge/files", "/chat/attachments"])
async def test_a_form_with_two_files_is_refused_and_stores_neither(client, users, route):
    h = users.admin.headers
    two = [("file", ("a.md", b"# first", "text/markdown")), ("file", ("b.md", b"# second", "text/markdown"))]
    r = await client.post(route, headers=h, files=two)
    assert r.status_code == 422 and r.json()["error"]["code"] == "repeated_field", r.text
    assert "file" in r.json()["error"]["message"]
    docs = (await client.get("/knowledge/documents", headers=h)).json()["items"]
    assert [d["path"] for d in docs if d["path"].startswith("uploads/")] == []
    # Strangers still learn nothing but that they are not allowed.
    assert (await client.post(route, files=two)).status_code == 401


async def test_restricted_document_is_visible_only_to_named_users(client, users):
    h = users.admin.headers
    r = await client.post("/admin/knowledge/files", headers=h,
                          files={"file": ("plan.md", b"# Launch plan\n\nThe zebra launch happens in March.", "text/markdown")})
    doc = r.json()
    r = await client.put(f"/admin/knowledge/documents/{doc['id']}/access", headers=h, json={"users": ["alice"]})
    assert r.status_code == 200 and r.json()["restricted"] is True
    alice = [d["id"] for d in (await client.get("/knowledge/documents", headers=users.alice.headers)).json()["items"]]
    bob = [d["id"] for d in (await client.get("/knowledge/documents", headers=users.bob.headers)).json()["items"]]
    assert doc["id"] in alice and doc["id"] not in bob
    assert (await client.get(f"/knowledge/documents/{doc['id']}/file", headers=users.bob.headers)).status_code == 404
    # And retrieval itself respects it.
    from tools.knowledge import search_knowledge

    res = client._transport.app.state.res
    embedder = res.extras["deps"].embedder
    a = await search_knowledge(res.pool, embedder, "When is the zebra launch?", user_id=users.alice.id)
    b = await search_knowledge(res.pool, embedder, "When is the zebra launch?", user_id=users.bob.id)
    assert any("zebra" in p.content for p in a) and not any("zebra" in p.content for p in b)
