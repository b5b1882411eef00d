"""GET /admin/feedback: low-rated answers and unanswered knowledge questions; the draft-dataset export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphs.evals.dataset import load_dataset

ALLIN = str(Path(sys.executable).parent / "allin")


async def _turn(app, user, text: str):
    from allin.chats import store

    res = app.state.res
    async with res.pool.connection() as conn:
        chat = await store.create_chat(conn, user.id)
    result = await res.extras["runner"].run(user_id=user.id, chat=chat, text=text)
    assert result.status == "complete", result
    return result


@pytest.fixture
async def reviewed(app, client, users):
    """Offline, no documents: a knowledge question goes unanswered; a small-talk answer gets a thumbs down."""
    unanswered = await _turn(app, users.alice, "What is the deploy process for the billing service?")
    disliked = await _turn(app, users.bob, "Who are you?")
    liked = await _turn(app, users.bob, "Thanks, that was helpful!")
    r = await client.post(f"/chat/turns/{disliked.turn_id}/feedback", json={"rating": -1, "comment": "too long"},
                          headers=users.bob.headers)
    assert r.status_code == 200, r.text
    r = await client.post(f"/chat/turns/{liked.turn_id}/feedback", json={"rating": 1}, headers=users.bob.headers)
    assert r.status_code == 200, r.text
    return {"unanswered": unanswered, "disliked": disliked, "liked": liked}


async def test_lists_low_rated_and_unanswered_newest_first(client, users, reviewed):
    r = await client.get("/admin/feedback", headers=users.admin.headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["turn_id"] for i in items] == [str(reviewed["disliked"].turn_id), str(reviewed["unanswered"].turn_id)]
    disliked, unanswered = items
    assert disliked["reasons"] == ["low_rated"] and disliked["rating"] == -1 and disliked["comment"] == "too long"
    assert disliked["question"] == "Who are you?" and disliked["user_name"] == "bob"
    assert unanswered["reasons"] == ["unanswered"] and unanswered["route"] == "knowledge"
    assert unanswered["question"] == "What is the deploy process for the billing service?"
    assert "couldn't find" in unanswered["answer"] and unanswered["citation_count"] == 0
    assert unanswered["prompt_version"] == 0 and unanswered["rating"] is None

    only = (await client.get("/admin/feedback?kind=unanswered", headers=users.admin.headers)).json()["items"]
    assert [i["turn_id"] for i in only] == [str(reviewed["unanswered"].turn_id)]
    only = (await client.get("/admin/feedback?kind=low_rated", headers=users.admin.headers)).json()["items"]
    assert [i["turn_id"] for i in only] == [str(reviewed["disliked"].turn_id)]


async def test_pages_with_a_cursor(client, users, reviewed):
    first = (await client.get("/admin/feedback?limit=1", headers=users.admin.headers)).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = (await client.get(f"/admin/feedback?limit=1&cursor={first['next_cursor']}",
                               headers=users.admin.headers)).json()
    assert [i["turn_id"] for i in first["items"] + second["items"]] == [
        str(reviewed["disliked"].turn_id), str(reviewed["unanswered"].turn_id)]
    assert second["next_cursor"] is None
    bad = await client.get("/admin/feedback?cursor=nonsense", headers=users.admin.headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"


async def test_users_get_403(client, users, reviewed):
    r = await client.get("/admin/feedback", headers=users.bob.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


async def test_export_writes_a_draft_dataset_to_review(reviewed, db_url, data_dir):
    out = data_dir / "draft.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GEMINI_", "ALLIN_", "LANGSMITH_"))}
    env.update(DATABASE_URL=db_url, ALLIN_DATA_DIR=str(data_dir / "data"), HOME=str(data_dir), LOG_LEVEL="WARNING")
    done = subprocess.run([ALLIN, "eval", "--from-feedback", str(out)], capture_output=True, text=True, env=env,
                          cwd=data_dir, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wrote 2 draft case(s)" in done.stdout
    dataset = load_dataset(out)  # valid as a dataset as written
    assert dataset.name == "draft" and "Review every case" in dataset.description
    by_question = {c.question: c for c in dataset.cases}
    assert set(by_question) == {"Who are you?", "What is the deploy process for the billing service?"}
    unanswered = by_question["What is the deploy process for the billing service?"]
    assert unanswered.route == "knowledge" and "unanswered" in unanswered.tags
    assert unanswered.source["turn_id"] == str(reviewed["unanswered"].turn_id)
    assert by_question["Who are you?"].source["comment"] == "too long"
    assert json.loads(out.read_text().splitlines()[0])["dataset"] == "draft"
