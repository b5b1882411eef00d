"""A screenshot attached to a question: OCR'd, private to its owner, used only in that turn's context."""

from graphs.assistant.context import Context


async def test_attached_screenshot_text_reaches_the_turn(client, users, corpus):
    png = (corpus / "images" / "code-review-speed-page1.png").read_bytes()
    r = await client.post("/chat/attachments", headers=users.alice.headers,
                          files={"file": ("screen.png", png, "image/png")})
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["status"] == "ready" and "review" in att["text_preview"].lower()
    deps = client._transport.app.state.res.extras["deps"]
    mine = await deps.attachment_texts(Context(user_id=str(users.alice.id), attachment_ids=(att["id"],)))
    assert mine and "review" in mine[0].lower()
    # Bob cannot use Alice's attachment, even knowing its id.
    theirs = await deps.attachment_texts(Context(user_id=str(users.bob.id), attachment_ids=(att["id"],)))
    assert theirs == []
    # And it never became a knowledge document.
    docs = (await client.get("/knowledge/documents", headers=users.admin.headers)).json()["items"]
    assert docs == []


async def test_attachment_to_someone_elses_chat_is_404(client, users):
    r = await client.post("/chat/start", json={}, headers=users.alice.headers)
    chat_id = r.json()["chat_id"]
    r = await client.post("/chat/attachments", headers=users.bob.headers, data={"chat_id": chat_id},
                          files={"file": ("log.txt", b"ERROR boom", "text/plain")})
    assert r.status_code == 404
