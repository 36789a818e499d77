# Tradedesk: `make run` starts the console (and, through it, the bot); `make test` runs the
# whole suite. Both set the machine up first (scripts/setup.sh is idempotent and quick).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8501
PYTEST_ARGS ?=

.PHONY: help setup run test test-fast test-deps postgres postgres-stop chromium lint bench clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: ## find Python >= 3.12, sync .venv from uv.lock, create/migrate the database
	@scripts/setup.sh

run: setup ## start the console on http://127.0.0.1:8501 (it starts the bot)
	$(VENV)/bin/streamlit run console.py --server.address $(HOST) --server.port $(PORT) --server.headless true

postgres: ## start the local PostgreSQL the store tests use
	@scripts/postgres.sh

postgres-stop: ## stop that PostgreSQL
	@scripts/postgres.sh stop

chromium: ## install Debian's chromium + chromedriver for the browser tests
	@scripts/chromium.sh

test-deps: setup postgres chromium

test: test-deps ## set up, start PostgreSQL, install Chromium, run the whole suite
	$(PY) -m pytest $(PYTEST_ARGS)

# The edit-run loop: no browser, no PostgreSQL (neither is started or installed), no slow
# tests (bot subprocesses, long replays). Markers are declared in pyproject.toml.
test-fast: setup ## the suite without browser, PostgreSQL and slow tests (under two minutes)
	$(PY) -m pytest -m "not browser and not postgres and not slow" $(PYTEST_ARGS)

lint: setup ## ruff check, then pyright on bot/, db/ and the console (configured in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pyright

bench: setup ## run every bench/*.py
	@set -e; shopt -s nullglob; files=(bench/*.py); \
	if [ $${#files[@]} -eq 0 ]; then echo "bench: no bench/*.py yet"; exit 0; fi; \
	for f in "$${files[@]}"; do echo "== $$f"; $(PY) "$$f"; done

clean: ## remove caches and test output (keeps .venv, data/ and .pgdata/)
	rm -rf .pytest_cache .ruff_cache .hypothesis test-output
	find . -path ./.venv -prune -o -path ./.tools -prune -o -path ./.pgdata -prune -o \
		-type d -name __pycache__ -exec rm -rf {} +

distclean: clean ## also remove .venv, .tools and the test cluster (never data/)
	-scripts/postgres.sh stop
	rm -rf $(VENV) .tools .pgdata
