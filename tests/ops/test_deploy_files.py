"""The deployment files say what the deploy guide promises: read and checked without a Docker engine.

docker-compose.yml, deploy/nginx/nginx.conf, the Dockerfile, the Prometheus rules and the CI
workflow are parsed and checked for the properties production relies on (replicas, health
checks, WebSocket upgrade, TLS, no secrets, non-root image, alerts on metrics that exist).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from allin.config import Settings
from api.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


check_compose = load_script("check_compose")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


# --- a minimal nginx config reader: directives, arguments and blocks ------------------------

def nginx_tokens(text: str) -> list[str]:
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|#[^\n]*|[{};]|[^\s{};"\']+', text)
    return [t for t in tokens if not t.startswith("#")]


def nginx_parse(tokens: list[str], pos: int = 0) -> tuple[list[tuple[str, list[str], list | None]], int]:
    """[(name, args, children or None)] for one block; quotes are stripped from arguments."""
    out: list[tuple[str, list[str], list | None]] = []
    words: list[str] = []
    while pos < len(tokens):
        tok = tokens[pos]
        pos += 1
        if tok == ";":
            out.append((words[0], words[1:], None))
            words = []
        elif tok == "{":
            children, pos = nginx_parse(tokens, pos)
            out.append((words[0], words[1:], children))
            words = []
        elif tok == "}":
            return out, pos
        else:
            words.append(tok[1:-1] if tok[:1] in "\"'" else tok)
    assert not words, f"unterminated directive {words}"
    return out, pos


def find(block: list, name: str, *args: str) -> list:
    return [d for d in block if d[0] == name and list(d[1][: len(args)]) == list(args)]


def directive_args(block: list, name: str) -> list[list[str]]:
    return [d[1] for d in block if d[0] == name]


@pytest.fixture(scope="module")
def nginx() -> list:
    tree, _ = nginx_parse(nginx_tokens((DEPLOY / "nginx" / "nginx.conf").read_text()))
    return tree


@pytest.fixture(scope="module")
def http(nginx) -> list:
    (block,) = [d[2] for d in nginx if d[0] == "http"]
    return block


def server_listening(http: list, port: str) -> list:
    servers = [d[2] for d in http if d[0] == "server"]
    matches = [s for s in servers if any(a and a[0] == port for a in directive_args(s, "listen"))]
    assert len(matches) == 1, f"one server on {port}"
    return matches[0]


# --- docker-compose.yml ------------------------------------------------------------------------

def test_compose_services_replicas_and_health(compose: dict):
    services = compose["services"]
    assert {"app", "db", "nginx"} <= services.keys()
    app, db = services["app"], services["db"]
    assert app["deploy"]["replicas"] == 2
    assert "/ready" in " ".join(app["healthcheck"]["test"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["image"] == "pgvector/pgvector:pg17"
    assert any(v.startswith("db-data:") for v in db["volumes"]) and "db-data" in compose["volumes"]
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert app["env_file"] == ".env"
    assert re.match(r"postgresql://\$\{POSTGRES_USER[^}]*\}:\$\{POSTGRES_PASSWORD[^}]*\}@db:5432/",
                    app["environment"]["DATABASE_URL"])
    assert "ports" not in app and "ports" not in db, "only nginx is reachable from outside"


def test_compose_check_script_passes_and_catches_mistakes(tmp_path: Path):
    assert check_compose.compose_problems(REPO) == []
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "check_compose.py")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "structure ok" in done.stdout

    # The same checks on a broken copy must fail, each for its reason.
    broken = (REPO / "docker-compose.yml").read_text()
    broken = broken.replace("replicas: 2", "replicas: 1")
    broken = broken.replace("POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}",
                            "POSTGRES_PASSWORD: hunter2")
    broken = broken.replace("pg_isready", "true")
    (tmp_path / "docker-compose.yml").write_text(broken)
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nENV GOOGLE_API_KEY=AIzaSyA1234567890abcdefghijklmnopqrstu\n")
    problems = "\n".join(check_compose.compose_problems(tmp_path))
    assert "replicas must be at least 2" in problems
    assert "POSTGRES_PASSWORD has a literal value" in problems
    assert "pg_isready" in problems
    assert "Dockerfile:2: a Google API key" in problems
    assert "mounts ./deploy/nginx/nginx.conf, which does not exist" in problems


def test_no_secrets_in_dockerfile_or_compose():
    for name in ("Dockerfile", "docker-compose.yml", "deploy/nginx/nginx.conf", "deploy/prometheus/prometheus.yml"):
        assert check_compose.secret_problems((REPO / name).read_text(), name) == []
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".env" in ignored and "deploy/certs/" in ignored, "secrets never enter the build context"


def test_compose_mounts_what_nginx_reads(compose: dict, http: list):
    volumes = compose["services"]["nginx"]["volumes"]
    assert "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in volumes
    assert "./deploy/certs:/etc/nginx/certs:ro" in volumes
    tls = server_listening(http, "443")
    for name in ("ssl_certificate", "ssl_certificate_key"):
        (path,) = directive_args(tls, name)
        assert path[0].startswith("/etc/nginx/certs/")
    assert compose["services"]["nginx"]["ports"] == ["80:80", "443:443"]


# --- nginx --------------------------------------------------------------------------------

def test_nginx_upgrades_websockets_on_ws(http: list):
    tls = server_listening(http, "443")
    (ws,) = [d[2] for d in find(tls, "location", "/ws")]
    assert directive_args(ws, "proxy_pass") == [["http://allin_app"]]
    assert ["1.1"] in directive_args(ws, "proxy_http_version")
    headers = {a[0].lower(): a[1] for a in directive_args(ws, "proxy_set_header")}
    assert headers["upgrade"] == "$http_upgrade"
    assert headers["connection"] == "upgrade"
    # Headers set in a location replace the server's: the forwarding ones must be repeated.
    assert {"host", "x-forwarded-for", "x-forwarded-proto"} <= headers.keys()
    (timeout,) = directive_args(ws, "proxy_read_timeout")
    assert int(timeout[0].rstrip("s")) >= Settings.model_fields["ws_idle_timeout_s"].default


def test_nginx_tls_redirect_and_headers(http: list):
    tls = server_listening(http, "443")
    assert ["443", "ssl"] in directive_args(tls, "listen")
    assert all(p.startswith("TLSv1.") and p >= "TLSv1.2" for p in directive_args(tls, "ssl_protocols")[0])
    plain = server_listening(http, "80")
    (redirect,) = [d[2] for d in find(plain, "location", "/")]
    assert directive_args(redirect, "return") == [["301", "https://$host$request_uri"]]
    assert find(plain, "location", "/.well-known/acme-challenge/"), "certbot renewals over HTTP"
    added = {a[0].lower(): a[1] for a in directive_args(tls, "add_header")}
    assert added["strict-transport-security"].startswith("max-age=31536000")
    assert added["x-content-type-options"] == "nosniff"
    assert added["referrer-policy"] == "no-referrer"  # the login link carries a token
    (metrics,) = [d[2] for d in find(tls, "location", "=", "/metrics")]
    assert directive_args(metrics, "return") == [["404"]]


def test_nginx_upstream_body_size_and_logs(http: list):
    (upstream,) = [d[2] for d in find(http, "upstream", "allin_app")]
    (server,) = directive_args(upstream, "server")
    assert server[0] == "app:8000" and "resolve" in server  # replicas join and leave without a reload
    assert directive_args(http, "resolver")[0][0] == "127.0.0.11"
    (size,) = directive_args(http, "client_max_body_size")
    cap = Settings.model_fields["max_upload_mb"].default
    assert cap <= int(size[0].rstrip("m")) <= cap + 5, "matches MAX_UPLOAD_MB (plus multipart framing)"
    (fmt,) = [a for a in directive_args(http, "log_format") if a[0] == "allin"]
    logged = " ".join(fmt[1:])
    assert "$uri" in logged and not re.search(r"\$(request|request_uri|args|query_string)\b", logged), \
        "the ?token= of the login link must never reach the access log"
    assert ["/dev/stdout", "allin"] in directive_args(http, "access_log")


# --- Dockerfile -----------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) with continuation lines joined and comments dropped."""
    text = (REPO / "Dockerfile").read_text()
    text = re.sub(r"<<'EOF'\n.*?\nEOF\n", "<<'EOF'\n", text, flags=re.S)  # heredoc bodies
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, re.M)]


def test_dockerfile_is_multistage_non_root_with_healthcheck():
    ins = dockerfile_instructions()
    froms = [rest for name, rest in ins if name == "FROM"]
    assert len(froms) >= 2 and re.search(r"\bAS builder\b", froms[0], re.I)
    final_stage = ins[max(i for i, (name, _) in enumerate(ins) if name == "FROM"):]
    assert any(name == "COPY" and rest.startswith("--from=builder") for name, rest in final_stage)
    users = [rest for name, rest in final_stage if name == "USER"]
    assert users and users[-1] not in ("root", "0"), "the server runs as an unprivileged user"
    (health,) = [rest for name, rest in final_stage if name == "HEALTHCHECK"]
    assert "/health" in health and "CMD" in health
    (cmd,) = [rest for name, rest in final_stage if name == "CMD"]
    assert cmd == '["allin", "serve"]'
    env = " ".join(rest for name, rest in final_stage if name == "ENV")
    assert "ALLIN_HOST=0.0.0.0" in env and "HF_HUB_OFFLINE=1" in env
    run = " ".join(rest for name, rest in final_stage if name == "RUN")
    assert "bubblewrap" in run
    assert not [rest for name, rest in ins if name in ("ARG", "ENV") and re.search(r"KEY|SECRET|PASSWORD|TOKEN", rest)]


def test_dockerfile_copies_only_what_exists():
    for name, rest in dockerfile_instructions():
        if name == "COPY" and not rest.startswith("--from"):
            sources = rest.split()[:-1]
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"


# --- Prometheus ---------------------------------------------------------------------------

def exported_series() -> dict[str, set[str]]:
    """Every series name the app exports, with the label names each may carry."""
    series: dict[str, set[str]] = {}
    for metric in vars(Metrics()).values():
        kind = getattr(metric, "_type", None)
        if kind is None:
            continue
        labels = set(metric._labelnames)
        base = metric._name
        if kind == "counter":
            series[f"{base}_total"] = labels
        elif kind == "histogram":
            series[f"{base}_bucket"] = labels | {"le"}
            series[f"{base}_sum"] = series[f"{base}_count"] = labels
        else:
            series[base] = labels
    return series


@pytest.fixture(scope="module")
def alert_rules() -> list[dict]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_alerts_use_metrics_and_labels_that_exist(alert_rules: list[dict]):
    series = exported_series()
    assert "allin_http_requests_total" in series and "allin_turn_duration_seconds_bucket" in series
    prometheus_own = {"up": {"job", "instance"}}
    wanted = {"allin_http_requests_total", "allin_turn_duration_seconds_bucket", "allin_database_up",
              "allin_ingest_files_total"}
    used: set[str] = set()
    for rule in alert_rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        expr = rule["expr"]
        for name, matchers in re.findall(r"\b([a-z_:][a-z0-9_:]*)\s*(\{[^}]*\})?", expr):
            if not (name.startswith("allin_") or name in prometheus_own):
                continue
            known = series[name] if name in series else prometheus_own.get(name)
            assert known is not None, f"{rule['alert']}: {name} is not exported by api/metrics.py"
            used.add(name)
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
                assert label in known | {"job", "instance"}, f"{rule['alert']}: {name} has no label {label!r}"
        for grouping in re.findall(r"\bby\s*\(([^)]*)\)", expr):
            for label in (x.strip() for x in grouping.split(",")):
                assert any(label in labels for labels in series.values()), f"{rule['alert']}: by ({label})"
    assert wanted <= used
    by_name = {r["alert"]: r["expr"] for r in alert_rules}
    assert 'status=~"5.."' in by_name["AllinHighErrorRate"]
    assert by_name["AllinDatabaseDown"].strip() == "allin_database_up == 0"
    assert 'result="error"' in by_name["AllinIngestFailures"]


def test_prometheus_scrapes_the_replicas():
    conf = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert conf["rule_files"] == ["/etc/prometheus/alerts.yml"]
    (job,) = conf["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["app"] and sd["port"] == 8000


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_validates_and_unit_tests_the_rules(tmp_path: Path):
    conf = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(conf.replace("/etc/prometheus/alerts.yml", str(tmp_path / "alerts.yml")))
    for args in (["check", "config", str(tmp_path / "prometheus.yml")], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run(["promtool", *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


# --- CI and the corpus script ---------------------------------------------------------------

def test_ci_workflow_tests_and_builds_the_image():
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    steps = [s for job in wf["jobs"].values() for s in job["steps"]]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "scripts/fetch-corpus.sh" in runs
    assert "make test" in runs
    assert "docker build" in runs
    assert "make compose-config" in runs
    images = " ".join(str(job.get("container", {}).get("image", "")) for job in wf["jobs"].values())
    pythons = [str(s.get("with", {}).get("python-version", "")) for s in steps]
    assert "python:3.11" in images or "3.11" in pythons


@pytest.mark.parametrize("path", ["scripts/fetch-corpus.sh", "deploy/rolling-update.sh", "deploy/certbot-deploy-hook.sh"])
def test_shell_scripts_are_executable_and_parse(path: str):
    script = REPO / path
    assert script.stat().st_mode & 0o111, "executable"
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "set -euo pipefail" in script.read_text()


def test_deploy_guide_commands_parse():
    """Every bash block of deploy/README.md is valid shell and every YAML block loads."""
    guide = (DEPLOY / "README.md").read_text()
    bash_blocks = re.findall(r"```bash\n(.*?)```", guide, re.S)
    assert len(bash_blocks) >= 10
    for block in bash_blocks:
        done = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
        assert done.returncode == 0, f"{done.stderr}\n{block}"
    (spec,) = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", guide, re.S)]
    assert spec["services"][0]["health_check"]["http_path"] == "/ready"
    assert spec["jobs"][0]["kind"] == "PRE_DEPLOY" and spec["jobs"][0]["run_command"] == "allin migrate"
    for needed in ("allin backup", "allin restore", "certbot renew --dry-run", "CREATE EXTENSION IF NOT EXISTS vector",
                   "LOG_JSON", "deploy/rolling-update.sh", "STORAGE_BACKEND=s3"):
        assert needed in guide, needed


def test_fetch_corpus_makes_the_corpus_file_names():
    script = REPO / "scripts" / "fetch-corpus.sh"
    text = script.read_text()
    assert "https://github.com/google/eng-practices" in text and "tests/pdfs" in text
    corpus_readme = REPO.parent / "shared" / "corpus" / "README.md"
    if corpus_readme.is_file():  # the file names the tests use are the ones the script makes
        for name in re.findall(r"`([\w.-]+\.pdf)`", corpus_readme.read_text()):
            assert name in text, f"{name} is not fetched"
