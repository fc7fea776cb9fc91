"""Airflow-environment tests: an AIRFLOW_HOME of their own (set before Airflow is imported) and
no jobhooks settings leaking in from the environment; each test gets a fresh Process."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from tests.receiver import TestReceiver

# Importing airflow reads (and writes) AIRFLOW_HOME: keep it away from the user's ~/airflow.
_HOME = tempfile.mkdtemp(prefix="jobhooks-airflow-tests-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"


@pytest.fixture(autouse=True)
def clean_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """No JOBHOOKS_* / [jobhooks] / AIRFLOW_CONN_* values from outside, a fresh Process."""
    for key in list(os.environ):
        if key.startswith(("JOBHOOKS_", "AIRFLOW__JOBHOOKS__", "AIRFLOW_CONN_")) and (
            key != "JOBHOOKS_TEST_POSTGRES_URL"
        ):
            monkeypatch.delenv(key)
    from jobhooks_airflow import process

    fresh = process.Process()
    monkeypatch.setattr(process, "_process", fresh)
    yield
    fresh.stopping()


@pytest.fixture
def receiver() -> Iterator[TestReceiver]:
    """A started TestReceiver on 127.0.0.1, stopped after the test."""
    with TestReceiver() as started:
        yield started
