#!/usr/bin/env python3
"""Validate docker-compose.yml (and what it mounts) without a Docker engine.

Checks the structure Allin's deployment relies on: services, replicas, health checks,
the database URL, the files it mounts, and that no secret is written in the compose file
or the Dockerfile. When the `docker compose` CLI works, also runs `docker compose config -q`.

Usage: python scripts/check_compose.py [REPO_ROOT]   (exit 1 and one line per problem on failure)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML comes with the dev dependencies
    sys.exit("PyYAML is needed: pip install pyyaml")

GOOGLE_KEY = re.compile(r"AIza[0-9A-Za-z_\-]{30,}")
# NAME: value or NAME=value where NAME looks secret and the value is written out (not ${...});
# names inside a ${...} substitution are not assignments.
SECRET_ASSIGNMENT = re.compile(
    r"""(?ix) (?<![{\w])([A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|API_KEY|ACCESS_KEY|TOKEN)[A-Z0-9_]*)
        ["']?\s*[:=]\s*["']?(?!\$\{|\$\$\{)([^\s"'#,}]+)"""
)
URL_USERINFO = re.compile(r"[a-z][a-z0-9+.\-]*://([^@/\s]+(?:\s[^@/\s]+)*?)@", re.I)


def secret_problems(text: str, name: str) -> list[str]:
    """Literal secrets in a deployment file: API keys, NAME=value passwords, user:pass@ URLs."""
    problems = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        if GOOGLE_KEY.search(line):
            problems.append(f"{name}:{lineno}: a Google API key is written in the file")
        for match in SECRET_ASSIGNMENT.finditer(line):
            problems.append(f"{name}:{lineno}: {match.group(1)} has a literal value; take it from .env")
        for match in URL_USERINFO.finditer(line):
            userinfo = match.group(1)
            if ":" in userinfo and "${" not in userinfo:
                problems.append(f"{name}:{lineno}: a URL carries a literal password; build it from ${{...}}")
    return problems


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _env_files(service: dict) -> list[str]:
    value = service.get("env_file") or []
    items = value if isinstance(value, list) else [value]
    return [item["path"] if isinstance(item, dict) else str(item) for item in items]


def _healthcheck(service: dict) -> str:
    test = (service.get("healthcheck") or {}).get("test") or []
    return " ".join(test) if isinstance(test, list) else str(test)


def _mount_sources(service: dict) -> list[str]:
    sources = []
    for volume in service.get("volumes") or []:
        source = volume.get("source", "") if isinstance(volume, dict) else str(volume).split(":")[0]
        sources.append(source)
    return sources


def compose_problems(root: Path) -> list[str]:
    """What is wrong with root/docker-compose.yml; empty when it is fine."""
    path = root / "docker-compose.yml"
    if not path.is_file():
        return [f"{path} is missing"]
    text = path.read_text(encoding="utf-8")
    try:
        compose: dict[str, Any] = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        return [f"docker-compose.yml is not valid YAML: {exc}"]
    problems = secret_problems(text, "docker-compose.yml")
    services = compose.get("services") or {}
    for needed in ("app", "db", "nginx"):
        if needed not in services:
            problems.append(f"service {needed!r} is missing")
    if problems and not all(s in services for s in ("app", "db", "nginx")):
        return problems
    app, db, nginx = services["app"], services["db"], services["nginx"]

    # app
    if int((app.get("deploy") or {}).get("replicas", 1)) < 2:
        problems.append("app: deploy.replicas must be at least 2")
    if "/ready" not in _healthcheck(app) and "/health" not in _healthcheck(app):
        problems.append("app: healthcheck must call /ready or /health")
    if ".env" not in _env_files(app):
        problems.append("app: env_file must include .env (secrets come from there)")
    url = _env(app).get("DATABASE_URL", "")
    if not re.search(r"@db(:5432)?/", url):
        problems.append("app: DATABASE_URL must point at the db service")
    if ((app.get("depends_on") or {}).get("db") or {}).get("condition") != "service_healthy":
        problems.append("app: depends_on db with condition service_healthy")
    if app.get("ports"):
        problems.append("app: publish no ports; nginx is the way in")
    if "build" not in app and "image" not in app:
        problems.append("app: needs build or image")

    # db
    if "pgvector" not in str(db.get("image", "")):
        problems.append("db: use a Postgres image with pgvector (pgvector/pgvector:pg17)")
    if "pg_isready" not in _healthcheck(db):
        problems.append("db: healthcheck must run pg_isready")
    if not any(s and not s.startswith((".", "/")) for s in _mount_sources(db)):
        problems.append("db: keep the data on a named volume")
    if db.get("ports"):
        problems.append("db: do not publish the database port")

    # nginx
    ports = " ".join(str(p) for p in nginx.get("ports") or [])
    if "443" not in ports or "80" not in ports:
        problems.append("nginx: publish 80 and 443")
    for needed in ("./deploy/nginx/nginx.conf", "./deploy/certs"):
        if needed not in _mount_sources(nginx):
            problems.append(f"nginx: mount {needed}")

    # Files the compose file mounts or builds from must exist in the repository.
    for name, service in services.items():
        for source in _mount_sources(service):
            if source.startswith("./deploy/") and not (root / source).exists():
                problems.append(f"{name}: mounts {source}, which does not exist")
        if "build" in service and not (root / "Dockerfile").is_file():
            problems.append(f"{name}: builds from a Dockerfile that does not exist")
    dockerfile = root / "Dockerfile"
    if dockerfile.is_file():
        problems += secret_problems(dockerfile.read_text(encoding="utf-8"), "Dockerfile")
    return problems


def docker_compose_config(root: Path) -> tuple[bool, str]:
    """`docker compose config -q` when the CLI has the compose plugin; (False, why) otherwise."""
    docker = shutil.which("docker")
    if not docker:
        return False, "docker CLI not installed"
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        return False, "docker compose plugin not available"
    env = {**os.environ, "POSTGRES_PASSWORD": os.environ.get("POSTGRES_PASSWORD", "compose-config-check")}
    made_env = not (root / ".env").exists()
    try:
        if made_env:  # env_file: .env must exist for `config`; an empty one is enough to validate
            (root / ".env").write_text("")
        done = subprocess.run([docker, "compose", "config", "-q"], cwd=root, capture_output=True, text=True, env=env)
    finally:
        if made_env:
            (root / ".env").unlink(missing_ok=True)
    if done.returncode != 0:
        raise SystemExit(f"docker compose config failed: {done.stderr.strip()}")
    return True, "docker compose config: ok"


def main(argv: list[str]) -> int:
    root = Path(argv[1]).resolve() if len(argv) > 1 else Path(__file__).resolve().parents[1]
    problems = compose_problems(root)
    for problem in problems:
        print(f"compose: {problem}", file=sys.stderr)
    if problems:
        return 1
    ran, detail = docker_compose_config(root)
    print(f"docker-compose.yml: structure ok; {detail if ran else 'engine check skipped (' + detail + ')'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
