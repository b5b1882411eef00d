"""Bearer tokens: only a SHA-256 is stored (nowhere in the database is the token itself), near misses
are refused, the final comparison is constant-time, and logs never carry a token.

How `allin/users.py` checks a token: it looks the user up by the SHA-256 of the presented token
(an indexed equality on the hash, which leaks nothing useful: an attacker's guesses hash to values
unrelated to the stored one) and then compares the two digests with `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac

import psycopg
import pytest
from loguru import logger

from allin.users import authenticate, hash_token


async def _tables(conn) -> list[str]:
    cur = await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return [r[0] for r in await cur.fetchall()]


async def test_no_table_holds_a_plaintext_token(client, users, db_url) -> None:
    # Use every token once, so anything that would store it on the way (sessions, logs, audit) has had the chance.
    for user in (users.admin, users.alice, users.bob):
        assert (await client.get("/me", headers=user.headers)).status_code == 200
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT name, token_hash FROM users ORDER BY name")
        stored = dict(await cur.fetchall())
        for user in (users.admin, users.alice, users.bob):
            assert stored[user.name] == hashlib.sha256(user.token.encode()).hexdigest()
            for table in await _tables(conn):
                cur = await conn.execute(
                    f"SELECT count(*) FROM {table} t WHERE strpos(t::text, %s) > 0",  # noqa: S608 - catalog names
                    (user.token.removeprefix("allin_"),))
                assert (await cur.fetchone())[0] == 0, f"{user.name}'s token is stored in {table}"


@pytest.mark.parametrize("where", ["first", "middle", "last"])
async def test_a_token_one_character_off_is_refused(client, users, where: str) -> None:
    token = users.alice.token
    i = {"first": len("allin_"), "middle": len(token) // 2, "last": len(token) - 1}[where]
    near = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
    r = await client.get("/me", headers={"Authorization": f"Bearer {near}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert (await client.get("/me", headers=users.alice.headers)).json()["name"] == "alice"


async def test_the_stored_hash_is_not_a_token(client, users) -> None:
    """Someone who reads the users table (a backup, a replica) cannot log in with what is there."""
    r = await client.get("/me", headers={"Authorization": f"Bearer {hash_token(users.alice.token)}"})
    assert r.status_code == 401
    # (Trailing spaces are not part of a header value in HTTP, so they are no test of ours.)
    for junk in ("", "allin_", "x" * 201, users.alice.token[:-1], users.alice.token + "x"):
        r = await client.get("/me", headers={"Authorization": f"Bearer {junk}"})
        assert r.status_code == 401, repr(junk)


async def test_the_final_check_is_constant_time(db_url, users, monkeypatch) -> None:
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the stdlib's function, seen through allin.users' import
    async with await psycopg.AsyncConnection.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        user = await authenticate(conn, users.alice.token)
    assert user is not None and user.name == "alice"
    digest = hash_token(users.alice.token)
    assert compared == [(digest, digest)]


async def test_tokens_never_reach_the_logs(client, users) -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    try:
        r = await client.get("/", params={"token": users.alice.token})  # the login link
        assert r.status_code == 200
        await client.get("/me", params={"token": users.bob.token}, headers=users.alice.headers)
        await client.get("/no/such/page", params={"token": users.bob.token})
        await client.get("/me", headers={"Authorization": f"Bearer {users.admin.token}x"})  # a failed login
    finally:
        logger.remove(sink)
    logged = "\n".join(lines)
    assert "token=[redacted]" in logged  # the access log saw the requests ...
    for user in (users.alice, users.bob, users.admin):
        assert user.token.removeprefix("allin_") not in logged  # ... and no token
