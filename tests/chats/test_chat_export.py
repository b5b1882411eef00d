"""GET /chat/history/{id}/export: JSON (chat, turns, events) and a Markdown transcript."""

from __future__ import annotations

import json

import pytest

from allin.chats import store
from allin.chats.export import fence, slug, to_markdown
from tests.chats.helpers import make_chat, missing_id

CITATIONS = [
    {"n": 1, "document_id": "7f0c3c0e-3a55-4a5d-9d7c-1d7c0a1b2c3d", "title": "Code Review Guide",
     "file": "review.pdf", "page": 4, "section": "Speed", "snippet": "Respond within one business day."},
    {"n": 2, "document_id": "7f0c3c0e-3a55-4a5d-9d7c-1d7c0a1b2c3e", "title": "Style", "file": "style.md",
     "page": None, "section": None, "snippet": "Small changes."},
]
CODE = [{"language": "python", "code": "print('```')\nprint(6 * 7)", "stdout": "```\n42\n", "stderr": "",
         "outcome": "ok", "duration_ms": 31}]


@pytest.fixture
async def rich_chat(conn, users) -> dict:
    chat = await make_chat(conn, users.alice, title="Réview speed & <tags>")
    q = await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user",
                             content="How fast should reviews be?")
    await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="assistant", reply_to=q["id"],
                         content="Within one business day [1]. Keep changes small [2]. Unknown [7].",
                         citations=CITATIONS)
    q2 = await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="user",
                              content="Run print(6*7)", modality="voice")
    await store.add_turn(conn, user_id=users.alice.id, chat_id=chat["id"], role="assistant", reply_to=q2["id"],
                         content="It printed 42.", code=CODE)
    return await store.get_chat(conn, users.alice.id, chat["id"])


async def test_export_json(client, users, conn, rich_chat):
    r = await client.get(f"/chat/history/{rich_chat['id']}/export", params={"format": "json"},
                         headers=users.alice.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="allin-review-speed-tags-') and disposition.endswith('.json"')
    body = json.loads(r.content)
    assert body["format"] == "allin.chat.v1" and body["exported_at"]
    assert body["chat"]["title"] == "Réview speed & <tags>"
    assert [t["content"] for t in body["turns"]][0] == "How fast should reviews be?"
    assert body["turns"][1]["citations"] == CITATIONS and body["turns"][3]["code"] == CODE
    assert body["turns"][2]["modality"] == "voice"
    assert [e["kind"] for e in body["events"]] == ["start", "export"]
    # The default format is JSON too, and each export is logged.
    r = await client.get(f"/chat/history/{rich_chat['id']}/export", headers=users.alice.headers)
    assert r.status_code == 200 and json.loads(r.content)["chat"]["chat_id"] == str(rich_chat["id"])
    kinds = [e["kind"] for e in await store.list_events(conn, users.alice.id, rich_chat["id"])]
    assert kinds == ["start", "export", "export"]


async def test_export_markdown(client, users, rich_chat):
    r = await client.get(f"/chat/history/{rich_chat['id']}/export", params={"format": "md"},
                         headers=users.alice.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/markdown")
    assert r.headers["content-disposition"].endswith('.md"')
    md = r.text
    assert md.startswith("# Réview speed & <tags>\n")
    assert "**You** · " in md and "**Allin** · " in md and "· voice" in md
    # Citations become document-wide footnotes; an unknown marker stays as written.
    assert "Within one business day [^1]. Keep changes small [^2]. Unknown [7]." in md
    assert '[^1]: Code Review Guide, page 4, section Speed (review.pdf) — “Respond within one business day.”' in md
    assert "[^2]: Style (style.md) — “Small changes.”" in md
    # Code and its output as fenced blocks that the backticks inside cannot close.
    assert "````python\nprint('```')\nprint(6 * 7)\n````" in md
    assert "*Result: ok, 31 ms*" in md and "````text\n```\n42\n````" in md
    assert md.index("How fast should reviews be?") < md.index("Run print(6*7)") < md.index("It printed 42.")
    assert "## Events" in md and "— export" in md


async def test_export_rejects_bad_requests(client, users, rich_chat):
    r = await client.get(f"/chat/history/{rich_chat['id']}/export", params={"format": "pdf"},
                         headers=users.alice.headers)
    assert r.status_code == 422
    r = await client.get(f"/chat/history/{missing_id()}/export", headers=users.alice.headers)
    assert r.status_code == 404


def test_markdown_helpers():
    assert fence("a ``` b", "text") == "````text\na ``` b\n````"
    assert fence("plain") == "```\nplain\n```"
    assert slug("Ünïcode / Title!") == "unicode-title" and slug("???") == "chat"
    assert slug("x" * 80) == "x" * 50


def test_markdown_of_an_empty_chat():
    from datetime import datetime, timezone

    now = datetime(2025, 5, 1, 12, 0, tzinfo=timezone.utc)
    chat = {"id": "c1", "title": "Empty", "created_at": now, "status": "ended", "topics": ["a"],
            "forked_from": {"chat_id": "c0", "turn_id": "t0"}}
    md = to_markdown(chat, [], [])
    assert "- Started: 2025-05-01 12:00 UTC" in md and "- Status: ended" in md and "- Topics: a" in md
    assert "Forked from chat `c0` at turn `t0`" in md and "## Events" not in md
