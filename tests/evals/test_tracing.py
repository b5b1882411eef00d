"""LangSmith tracing: on only with a key, runs arrive with our metadata, and nothing hangs without a network.

A local HTTP server (tests/evals/langsmith_fake.py) stands in for LangSmith;
the unmodified langsmith client finds it through LANGSMITH_ENDPOINT.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from allin.tracing import make_tracing, user_hash
from tests.evals.langsmith_fake import FakeLangSmith
from tests.support.pg import free_port

ALLIN = str(Path(sys.executable).parent / "allin")
REPO = Path(__file__).resolve().parents[2]
KEY = "lsv2_fake_test_key"


@pytest.fixture
def langsmith(monkeypatch) -> Iterator[FakeLangSmith]:
    with FakeLangSmith() as fake:
        monkeypatch.setenv("LANGSMITH_ENDPOINT", fake.url)
        yield fake


def test_no_key_no_tracing(settings):
    assert settings.langsmith_api_key is None and make_tracing(settings) is None
    blank = settings.model_copy(update={"langsmith_api_key": SecretStr("  ")})
    assert make_tracing(blank) is None


class TestAppTurns:
    @pytest.fixture
    def settings(self, settings, langsmith):
        return settings.model_copy(update={"langsmith_api_key": SecretStr(KEY), "langsmith_project": "allin-test"})

    async def test_a_turn_is_traced_with_run_name_and_metadata(self, app, users, langsmith):
        from allin.chats import store
        from api.tracing import stop_tracing

        res = app.state.res
        assert res.extras["tracing"] is not None and res.extras["runner"].tracing is res.extras["tracing"]
        async with res.pool.connection() as conn:
            chat = await store.create_chat(conn, users.alice.id)
        result = await res.extras["runner"].run(user_id=users.alice.id, chat=chat, text="Who are you?")
        assert result.status == "complete"
        await stop_tracing(res)  # what shutdown does: a bounded flush

        [root] = [r for r in langsmith.root_runs() if r.get("name") == "allin-turn"]
        meta = root["extra"]["metadata"]
        assert meta["chat_id"] == str(chat["id"]) and meta["mode"] == "offline" and meta["prompt_version"] == 0
        assert meta["user"] == user_hash(users.alice.id) and str(users.alice.id) not in json.dumps(meta)
        assert root["session_name"] == "allin-test" and root["run_type"] == "chain"
        assert root.get("end_time") and "Allin" in json.dumps(root.get("outputs"))
        children = {r["name"] for r in langsmith.runs.values() if r.get("trace_id") == root["id"]}
        assert {"classify", "recall", "synthesize"} <= children
        sent = [r for r in langsmith.requests if r["path"] == "/runs/multipart"]
        assert sent and all(r["headers"].get("x-api-key") == KEY for r in sent)


async def test_eval_with_langsmith_records_an_experiment(settings, langsmith, tmp_path):
    from allin.db.pool import make_pool
    from graphs.assistant.services import ServiceDeps
    from graphs.evals.dataset import load_dataset
    from graphs.evals.engine import EvalRun
    from graphs.evals.experiment import Experiment

    path = tmp_path / "tiny.jsonl"
    path.write_text('{"dataset": "tiny"}\n'
                    '{"id": "who", "question": "Who are you?", "route": "identity", "check": "identity"}\n'
                    '{"id": "thanks", "question": "Thanks a lot!", "route": "chat"}\n')
    settings = settings.model_copy(update={"langsmith_api_key": SecretStr(KEY)})
    tracing = make_tracing(settings)
    pool = make_pool(settings.database_url, settings, min_size=1, max_size=4)
    await pool.open()
    try:
        report = await EvalRun(settings, pool, ServiceDeps(settings, pool), tracing=tracing,
                               experiment=Experiment(tracing, prefix="ci")).run(load_dataset(path))
        # A second run reuses the mirrored dataset and its examples: a new experiment over the same examples.
        again = await EvalRun(settings, pool, ServiceDeps(settings, pool), tracing=tracing,
                              experiment=Experiment(tracing, prefix="ci2")).run(load_dataset(path))
    finally:
        await pool.close()
        tracing.close()

    [dataset] = langsmith.datasets.values()
    assert dataset["name"] == "allin-tiny"
    examples = {e["metadata"]["case_id"]: e for e in langsmith.examples.values()}
    assert set(examples) == {"who", "thanks"} and examples["who"]["inputs"] == {"question": "Who are you?"}
    assert examples["who"]["outputs"]["check"] == "identity"
    session, second = langsmith.sessions.values()
    assert second["name"].startswith("ci2-offline-") and second["reference_dataset_id"] == dataset["id"]
    assert len(langsmith.examples) == 2 and again["langsmith"]["dataset_id"] == dataset["id"]
    assert session["name"].startswith("ci-offline-") and session["reference_dataset_id"] == dataset["id"]
    assert session["extra"]["metadata"]["dataset"] == "tiny"
    assert session["patches"][-1]["extra"]["metadata"]["summary"]["identity"] == 1.0
    assert report["langsmith"]["experiment"] == session["name"]

    second_roots = [r for r in langsmith.root_runs() if r.get("session_name") == second["name"]]
    assert sorted(str(r["reference_example_id"]) for r in second_roots) == sorted(str(e["id"]) for e in examples.values())
    roots = {r["name"]: r for r in langsmith.root_runs()
             if r.get("name", "").startswith("allin-eval:") and r.get("session_name") == session["name"]}
    assert set(roots) == {"allin-eval:who", "allin-eval:thanks"}
    for case_id, root in ((k.split(":")[1], v) for k, v in roots.items()):
        assert root["reference_example_id"] == examples[case_id]["id"] and root["session_name"] == session["name"]
        assert root["extra"]["metadata"]["eval_case"] == case_id
    by_run = {}
    for f in langsmith.feedback:
        by_run.setdefault(str(f["run_id"]), {})[f["key"]] = f["score"]
    who = by_run[str(roots["allin-eval:who"]["id"])]
    assert who["route_correct"] == 1.0 and who["identity_ok"] == 1.0 and who["latency_ms"] > 0
    assert {c["run_id"] for c in report["cases"]} == {str(r["id"]) for r in roots.values()}


UNREACHABLE = """
import time
from langchain_core.runnables import RunnableLambda
from pydantic import SecretStr
from allin.config import Settings
from allin.tracing import make_tracing
tracing = make_tracing(Settings(_env_file=None, langsmith_api_key=SecretStr("fake")))
chain = RunnableLambda(lambda x: x + 1) | RunnableLambda(lambda x: x * 2)
for i in range(20):
    assert chain.invoke(i, {"callbacks": tracing.callbacks(), "run_name": "allin-turn"}) == (i + 1) * 2
started = time.monotonic()
dropped = tracing.close()
print("closed", round(time.monotonic() - started, 1), "dropped", dropped)
"""


def _python(code: str, env: dict, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=timeout)
    return done, time.monotonic() - started


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "GOOGLE_"))}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def test_a_fake_key_with_no_reachable_endpoint_does_not_hang():
    """Traces to a closed port: the process still ends promptly (short timeouts, few retries, bounded flush).

    A default langsmith client in the same script takes ~23 s here (its retries with backoff).
    """
    env = _clean_env(LANGSMITH_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    done, seconds = _python(UNREACHABLE, env, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "closed" in done.stdout
    assert seconds < 15, f"took {seconds:.1f}s\n{done.stdout}\n{done.stderr[-2000:]}"


def test_without_a_key_nothing_is_traced_and_nothing_warns():
    code = ("from allin.config import Settings\nfrom allin.tracing import make_tracing\n"
            "import threading\nassert make_tracing(Settings(_env_file=None)) is None\n"
            "from langchain_core.runnables import RunnableLambda\n"
            "assert RunnableLambda(lambda x: x + 1).invoke(1) == 2\n"
            "print(sorted(t.name for t in threading.enumerate()))")
    done, seconds = _python(code, _clean_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['MainThread']" and done.stderr == "" and seconds < 20


def test_allin_eval_with_a_fake_key_and_no_network_finishes(db_url, data_dir):
    dataset = data_dir / "tiny.jsonl"
    dataset.write_text('{"id": "who", "question": "Who are you?", "route": "identity", "check": "identity"}\n')
    env = _clean_env(DATABASE_URL=db_url, ALLIN_DATA_DIR=str(data_dir / "data"), HOME=str(data_dir),
                     LOG_LEVEL="WARNING", LANGSMITH_API_KEY="fake",
                     LANGSMITH_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    done = subprocess.run([ALLIN, "eval", str(dataset), "--no-ingest", "-o", str(data_dir / "r.json")],
                          capture_output=True, text=True, env=env, cwd=data_dir, timeout=180)
    assert done.returncode == 0, done.stderr
    assert json.loads((data_dir / "r.json").read_text())["summary"]["identity"]["rate"] == 1.0
    assert time.monotonic() - started < 120
