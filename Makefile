# Model Manager — the README's two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_WORKERS ?= 2

.PHONY: help run venv deps dev-deps migrate worker devcluster test test-sqlite test-postgres test-fast lint typecheck format bench load clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.deps: requirements.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.deps

venv: $(VENV)/.deps ## Create .venv with the runtime requirements

run: $(VENV)/.deps ## Start Redis (if needed), the demo cluster (if no cluster), a worker and the portal on :8080
	$(PY) scripts/run.py

worker: $(VENV)/.deps ## Run one RQ worker in the foreground
	$(VENV)/bin/flask --app wsgi worker

devcluster: $(VENV)/.deps ## Run the simulated Kubernetes API on :8001
	$(PY) -m portal.devcluster

# Runs its command with PostgreSQL and Redis answering: the ones at TEST_POSTGRES_URL/TEST_REDIS_URL,
# else the defaults on 127.0.0.1, else private servers it starts and stops (scripts/test_services.py).
TEST_SERVICES = $(PY) scripts/test_services.py --

test: $(VENV)/.dev-deps lint typecheck ## Lint, type-check, and the suite on SQLite and PostgreSQL (starts what it needs)
	$(TEST_SERVICES) $(MAKE) --no-print-directory test-sqlite test-postgres

test-sqlite: $(VENV)/.dev-deps
	$(TEST_SERVICES) env TEST_DATABASE=sqlite $(VENV)/bin/pytest -n $(PYTEST_WORKERS) -q

test-postgres: $(VENV)/.dev-deps
	$(TEST_SERVICES) env TEST_DATABASE=postgres $(VENV)/bin/pytest -n $(PYTEST_WORKERS) -q

test-fast: $(VENV)/.dev-deps ## The suite on SQLite only, without browser tests
	$(TEST_SERVICES) env TEST_DATABASE=sqlite $(VENV)/bin/pytest -n $(PYTEST_WORKERS) -q -m "not browser"

lint: $(VENV)/.dev-deps ## ruff check + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev-deps ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(VENV)/.dev-deps ## mypy --strict on portal/ and jobs/
	$(VENV)/bin/mypy portal jobs

bench: $(VENV)/.dev-deps ## Run the benchmarks and write docs/benchmarks.md
	$(PY) -m bench

load: $(VENV)/.dev-deps ## 50 portal users for 60 s during an install (locust, loopback); writes docs/benchmarks.md
	$(PY) -m bench bench_load

clean: ## Remove local state (.run/) and caches
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
