"""The `allin` command as a person runs it: users, doctor, serve errors, the first login URL."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support.pg import free_port

ALLIN = str(Path(sys.executable).parent / "allin")


def run_cli(*args: str, env: dict, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([ALLIN, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=env["HOME"])


@pytest.fixture
def cli_env(db_url, data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GEMINI_", "ALLIN_", "DATABASE_URL"))}
    env.update(DATABASE_URL=db_url, ALLIN_DATA_DIR=str(data_dir / "data"), HOME=str(data_dir), LOG_LEVEL="WARNING")
    return env


def test_users_create_prints_token_on_last_line(cli_env, db_url):
    done = run_cli("users", "create", "dana", "--admin", env=cli_env)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"allin_[A-Za-z0-9_-]{40,}", token)
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT role, token_hash FROM users WHERE name = 'dana'").fetchone()
    assert row[0] == "admin" and token not in row[1]
    again = run_cli("users", "create", "dana", env=cli_env)
    assert again.returncode == 1 and "already exists" in again.stderr
    rotated = run_cli("users", "rotate", "dana", env=cli_env)
    assert rotated.stdout.strip().splitlines()[-1] != token
    listed = run_cli("users", "list", env=cli_env)
    assert "dana" in listed.stdout and "admin" in listed.stdout
    revoked = run_cli("users", "revoke", "dana", env=cli_env)
    assert revoked.returncode == 0
    assert "revoked" in run_cli("users", "list", env=cli_env).stdout


def test_serve_with_unreachable_database_exits_with_one_line(cli_env):
    env = {**cli_env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    done = run_cli("serve", env=env, timeout=30)
    assert done.returncode == 1
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot reach the database") and "Traceback" not in done.stderr


def test_invalid_setting_names_the_variable(cli_env):
    done = run_cli("serve", env={**cli_env, "ALLIN_PORT": "not-a-port"}, timeout=30)
    assert done.returncode == 2
    assert "ALLIN_PORT" in done.stderr and "Traceback" not in done.stderr


def test_doctor_reports_for_a_person(cli_env):
    done = run_cli("doctor", env=cli_env)
    out = done.stdout
    for word in ("database", "pgvector", "mode", "offline", "embeddings", "ocr", "sandbox"):
        assert word in out, out
    assert "PostgreSQL" in out


def test_first_start_prints_a_working_login_url(admin_db_url, data_dir):
    from tests.conftest import create_database, drop_database

    # A database with no users at all: the server makes the admin and prints its link.
    name = create_database(admin_db_url, "template0")
    url = admin_db_url.rpartition("/")[0] + "/" + name
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GEMINI_", "ALLIN_"))}
    env.update(DATABASE_URL=url, ALLIN_DATA_DIR=str(data_dir / "d"), HOME=str(data_dir), ALLIN_PORT=str(port))
    proc = subprocess.Popen([ALLIN, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=data_dir)
    try:
        login = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and login is None:
            line = proc.stdout.readline()
            m = re.search(r"(http://\S+/\?token=(\S+))", line)
            if m:
                login = m
        assert login, "no login URL printed"
        token = login.group(2)
        r = httpx.get(f"http://127.0.0.1:{port}/admin/users", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["items"][0]["name"] == "admin"
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["mode"] == "offline"
    finally:
        proc.terminate()
        proc.wait(15)
        drop_database(admin_db_url, name)
    # The access log never shows a token.
    err = proc.stderr.read()
    assert token not in err
