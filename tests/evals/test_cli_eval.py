"""`allin eval` as a person runs it: the table, the JSON report, and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ALLIN = str(Path(sys.executable).parent / "allin")
TINY = [
    {"dataset": "tiny"},
    {"id": "who", "question": "Who are you?", "route": "identity", "check": "identity"},
    {"id": "thanks", "question": "Thanks, that helps!", "route": "chat"},
    {"id": "absent", "question": "How do I order a new laptop from IT?", "route": "knowledge",
     "expected_phrases": ["couldn't find"]},
]


@pytest.fixture
def cli_env(db_url, data_dir):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "GEMINI_", "ALLIN_", "DATABASE_URL", "LANGSMITH_", "LANGCHAIN_"))}
    env.update(DATABASE_URL=db_url, ALLIN_DATA_DIR=str(data_dir / "data"), HOME=str(data_dir), LOG_LEVEL="WARNING")
    return env


def run(*args: str, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([ALLIN, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=env["HOME"])


def test_eval_prints_the_table_and_writes_the_report(cli_env, data_dir):
    dataset = data_dir / "tiny.jsonl"
    dataset.write_text("\n".join(json.dumps(x) for x in TINY) + "\n")
    out = data_dir / "report.json"
    done = run("eval", str(dataset), "--no-ingest", "--out", str(out), env=cli_env)
    assert done.returncode == 0, done.stderr
    for row in ("route accuracy", "retrieval hit@1", "identity consistent", "latency p95 (ms)"):
        assert row in done.stdout
    assert f"report: {out}" in done.stdout.replace("\n", "")
    assert "ok   who" in done.stderr  # one progress line per case
    report = json.loads(out.read_text())
    assert report["dataset"] == "tiny" and [c["id"] for c in report["cases"]] == ["who", "thanks", "absent"]
    assert report["ingest"]["added"] == [] and report["summary"]["route_accuracy"]["rate"] == 1.0
    assert report["summary"]["identity"] == {"rate": 1.0, "passed": 1, "n": 1}
    assert report["cases"][2]["phrases"]["found"] == ["couldn't find"]

    only = run("eval", str(dataset), "--no-ingest", "--case", "thanks", "--out", str(out), env=cli_env)
    assert only.returncode == 0, only.stderr
    assert [c["id"] for c in json.loads(out.read_text())["cases"]] == ["thanks"]


def test_bad_input_fails_with_one_clear_line(cli_env, data_dir):
    dataset = data_dir / "bad.jsonl"
    dataset.write_text('{"id": "a", "question": "q?", "route": "weather"}\n')
    done = run("eval", str(dataset), env=cli_env, timeout=60)
    assert done.returncode == 2 and "bad.jsonl:1: route:" in done.stderr and "Traceback" not in done.stderr
    dataset.write_text('{"id": "a", "question": "q?"}\n')
    done = run("eval", str(dataset), "--case", "nope", env=cli_env, timeout=60)
    assert done.returncode == 2 and "no such case in bad.jsonl: nope" in done.stderr
    done = run("eval", str(dataset), "--langsmith", env=cli_env, timeout=60)
    assert done.returncode == 2 and "--langsmith needs LANGSMITH_API_KEY" in done.stderr
    done = run("eval", env=cli_env, timeout=60)
    assert done.returncode == 2 and "give a dataset" in done.stderr
