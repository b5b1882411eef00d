"""System prompt administration: versions in the database over prompts/system.md, validation, rollback.

The Gemini tests run the app's own turn runner against the fake Gemini server,
whose journal shows the systemInstruction each answer was generated with.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row

from allin.prompts import IDENTITY_PHRASE, PROMPT_MAX_CHARS, file_prompt
from tests.fake_gemini import Json, Text
from tests.graph_gemini.conftest import gemini_mode

URL = "/admin/system-prompt"
NEW_PROMPT = f"# Identity\nYou are {IDENTITY_PHRASE}. Answer like a pirate captain (edit A).\n"
OTHER_PROMPT = f"# Identity\nYou are {IDENTITY_PHRASE}. Answer in haiku (edit B).\n"


async def test_get_shows_the_file_as_version_0_until_an_edit(client, users):
    r = await client.get(URL, headers=users.admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["active_version"] == 0 and body["text"] == file_prompt("system")
    assert body["sections"][:2] == ["Identity", "Tone"]
    assert body["versions"] == [{"version": 0, "source": "file", "active": True, "chars": len(file_prompt("system")),
                                 "note": "prompts/system.md", "author": None, "created_at": None}]


async def test_put_adds_an_active_version_and_rollback_switches_between_them(client, users, db_url):
    h = users.admin.headers
    r = await client.put(URL, json={"text": NEW_PROMPT, "note": "pirate test"}, headers=h)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["active_version"] >= 1 and first["text"] == NEW_PROMPT
    v1 = first["active_version"]
    r = await client.put(URL, json={"text": OTHER_PROMPT}, headers=h)
    v2 = r.json()["active_version"]
    assert v2 > v1 and r.json()["text"] == OTHER_PROMPT
    listed = r.json()["versions"]
    assert [(v["version"], v["active"], v["source"]) for v in listed] == [
        (v2, True, "database"), (v1, False, "database"), (0, False, "file")]
    assert listed[1]["note"] == "pirate test" and listed[1]["author"] == "admin" and listed[1]["chars"] == len(NEW_PROMPT)

    r = await client.post(f"{URL}/rollback", json={"version": v1}, headers=h)
    assert r.status_code == 200 and r.json()["active_version"] == v1 and r.json()["text"] == NEW_PROMPT
    r = await client.post(f"{URL}/rollback", json={"version": 0}, headers=h)
    assert r.json()["active_version"] == 0 and r.json()["text"] == file_prompt("system")
    async with await psycopg.AsyncConnection.connect(db_url, row_factory=dict_row) as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM prompts WHERE active")
        assert (await cur.fetchone())["n"] == 0  # the file wins when nothing in the database is active

    r = await client.post(f"{URL}/rollback", json={"version": 999}, headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(("text", "code", "words"), [
    ("", "prompt_empty", "empty"),
    ("   \n\t ", "prompt_empty", "empty"),
    (f"{IDENTITY_PHRASE} " + "x" * PROMPT_MAX_CHARS, "prompt_too_long", f"{PROMPT_MAX_CHARS:,}"),
    ("You are a helpful assistant called Bob.", "prompt_identity_missing", IDENTITY_PHRASE),
    ("You are Allin, from Team 9.", "prompt_identity_missing", IDENTITY_PHRASE),
])
async def test_invalid_prompts_are_refused_with_a_clear_message(client, users, text, code, words):
    r = await client.put(URL, json={"text": text}, headers=users.admin.headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code and words in r.json()["error"]["message"]
    assert (await client.get(URL, headers=users.admin.headers)).json()["active_version"] == 0


async def test_identity_check_ignores_case_and_line_breaks(client, users):
    r = await client.put(URL, json={"text": "You are allin,\nfrom   team 8: be brief."}, headers=users.admin.headers)
    assert r.status_code == 200, r.text


async def test_users_get_403_and_anonymous_401(client, users):
    for method, path, body in (("GET", URL, None), ("PUT", URL, {"text": NEW_PROMPT}),
                               ("POST", f"{URL}/rollback", {"version": 0})):
        r = await client.request(method, path, json=body, headers=users.alice.headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (method, path)
        assert (await client.request(method, path, json=body)).status_code == 401
    assert (await client.get(URL, headers=users.admin.headers)).json()["active_version"] == 0


class TestNextAnswerUsesTheActivePrompt:
    @pytest.fixture
    def settings(self, settings, fake_gemini):
        return gemini_mode(settings, fake_gemini, model_max_retries=0)

    async def _turn(self, app, user, fake, text: str) -> dict:
        from allin.chats import store

        fake.enqueue(Json({"route": "chat", "reason": "scripted"}))
        fake.enqueue(Text("Arr, hello."))
        res = app.state.res
        runner = res.extras["runner"]
        runner.on_turn_done = None  # no memory extraction: its model calls would race the scripted replies
        async with res.pool.connection() as conn:
            chat = await store.create_chat(conn, user.id)
        result = await runner.run(user_id=user.id, chat=chat, text=text)
        assert result.status == "complete", result
        async with res.pool.connection() as conn:
            cur = await conn.execute("SELECT prompt_version FROM chat_turns WHERE id = %s", (result.turn_id,))
            stored = (await cur.fetchone())["prompt_version"]
        answer = [e for e in fake.requests("generate") if e.stream][-1]  # the streamed answer (synthesize)
        return {"system": answer.system_text, "version": result.prompt_version,
                "stored": stored}

    async def test_put_then_rollback_changes_the_system_instruction_of_the_next_answer(
            self, app, client, users, fake_gemini):
        before = await self._turn(app, users.alice, fake_gemini, "hi there")
        assert before["system"].strip() == file_prompt("system").strip() and before["stored"] == 0

        r = await client.put(URL, json={"text": NEW_PROMPT}, headers=users.admin.headers)
        version = r.json()["active_version"]
        after = await self._turn(app, users.alice, fake_gemini, "hello again")
        assert after["system"].strip() == NEW_PROMPT.strip()
        assert after["version"] == after["stored"] == version

        await client.post(f"{URL}/rollback", json={"version": 0}, headers=users.admin.headers)
        rolled = await self._turn(app, users.bob, fake_gemini, "and now?")
        assert rolled["system"].strip() == file_prompt("system").strip() and rolled["stored"] == 0


async def test_turns_read_the_prompt_at_most_a_second_old(settings, db_url, users):
    """Another replica's edit (a bare SQL write here: nothing in this process hears of it) is picked up
    once the cached copy is older than PROMPT_MAX_AGE_S; an edit made here is seen at once."""
    from allin.db.pool import make_pool
    from allin.prompts import current_prompt, save_prompt_version

    pool = make_pool(db_url, settings, min_size=1, max_size=2)
    await pool.open()
    try:
        assert (await current_prompt(pool, max_age_s=60)).version == 0
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row) as other:
            await other.execute("INSERT INTO prompts (name, text, active) VALUES ('system', %s, true)", (NEW_PROMPT,))
        assert (await current_prompt(pool, max_age_s=60)).version == 0  # still the copy read just now
        fresh = await current_prompt(pool, max_age_s=0)
        assert fresh.version >= 1 and fresh.text == NEW_PROMPT
        async with pool.connection() as conn:
            mine = await save_prompt_version(conn, OTHER_PROMPT, author_id=users.admin.id)
        assert (await current_prompt(pool, max_age_s=60)) == mine
    finally:
        await pool.close()
