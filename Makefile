# Two commands matter: `make run` (set up and serve on the embedded defaults) and
# `make test` (set up and run the whole test suite). Both work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test test-fast install dev-install system-deps doctor compose-config clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Stamps: reinstall only when pyproject.toml changes, so a second `make run` starts at once.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	$(BIN)/python scripts/portable_pgvector.py
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python scripts/portable_pgvector.py
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev-install: $(VENV)/.installed-dev

system-deps:
	@scripts/system-deps.sh

run: install
	@scripts/system-deps.sh || true
	$(BIN)/allin serve

test: dev-install
	@scripts/system-deps.sh test
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The quick loop while developing: skips tests marked slow or e2e.
test-fast: dev-install
	$(BIN)/pytest -q -p no:cacheprovider -m "not slow and not e2e" $(PYTEST_ARGS)

doctor: install
	$(BIN)/allin doctor

# Check docker-compose.yml's structure without a Docker engine (plus `docker compose config -q`
# where the compose plugin works).
compose-config: install
	$(BIN)/python scripts/check_compose.py

clean:
	rm -rf $(VENV) build *.egg-info
