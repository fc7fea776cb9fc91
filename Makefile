# jobhooks — `make test` from a fresh clone needs only python3 and make.
# Airflow and Prefect cannot share one environment (FastAPI pins), so each gets its own.

SHELL := /bin/bash
PYTHON ?= python3
export UV_PYTHON ?= $(PYTHON)
export UV_PYTHON_DOWNLOADS ?= never
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV_AIRFLOW := .venv-airflow
VENV_PREFECT := .venv-prefect
PYTEST_ARGS ?=

.PHONY: test test-airflow test-prefect sync sync-airflow sync-prefect lint clean

test: test-airflow test-prefect

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

$(VENV_AIRFLOW)/.synced: uv.lock pyproject.toml | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV_AIRFLOW) $(UV) sync --frozen --extra airflow --extra postgres
	touch $@

$(VENV_PREFECT)/.synced: uv.lock pyproject.toml | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV_PREFECT) $(UV) sync --frozen --extra prefect --extra postgres
	touch $@

sync-airflow: $(VENV_AIRFLOW)/.synced
sync-prefect: $(VENV_PREFECT)/.synced
sync: sync-airflow sync-prefect

# Core tests run in both environments: the core must work beside either orchestrator.
# The reliability suite (tests/reliability: faults, load, hostile input, secrets) runs once.
test-airflow: sync-airflow
	$(VENV_AIRFLOW)/bin/python -m pytest $(PYTEST_ARGS) tests/core $(wildcard tests/airflow) \
	    $(wildcard tests/reliability)

test-prefect: sync-prefect
	$(VENV_PREFECT)/bin/python -m pytest $(PYTEST_ARGS) tests/core $(wildcard tests/prefect)

lint: sync-prefect
	$(VENV_PREFECT)/bin/ruff check jobhooks_core jobhooks_airflow jobhooks_prefect tests
	$(VENV_PREFECT)/bin/mypy

clean:
	rm -rf .tools $(VENV_AIRFLOW) $(VENV_PREFECT) .pytest_cache .hypothesis

# The Airflow demo: a receiver and a real Airflow stack (SQLite) running the example DAGs.
.PHONY: demo
demo: sync-airflow
	$(VENV_AIRFLOW)/bin/python scripts/demo_airflow.py

# A live tour on this machine: receiver, check, emit, relay, outbox status (scripts/demo.py).
.PHONY: demo-core
demo-core: sync-prefect
	$(VENV_PREFECT)/bin/python scripts/demo.py

# The Prefect demo: a real Prefect server, served and ad-hoc flows, the watcher, a receiver.
.PHONY: demo-prefect
demo-prefect: sync-prefect
	$(VENV_PREFECT)/bin/python scripts/demo_prefect.py
