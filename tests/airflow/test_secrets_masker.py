"""Loading a ``jobhooks`` connection registers its signing secret(s) and credential-bearing
header values with Airflow's secrets masker — the Task SDK's (task processes) and the core's
(scheduler, API server) — so a log record quoting one is redacted to ``***``."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from airflow._shared.secrets_masker import secrets_masker as core_masker
from airflow.sdk._shared.secrets_masker import secrets_masker as sdk_masker

from jobhooks_airflow import connections
from jobhooks_airflow.hook import JobhooksHook

MASKERS = {"core": core_masker, "task-sdk": sdk_masker}


@pytest.fixture
def canaries() -> dict[str, str]:
    """Values no earlier test can have registered (the masker is process-wide)."""
    tag = uuid.uuid4().hex
    return {
        "secret": "whsec_" + base64.b64encode(f"key-{tag}".encode()).decode(),
        "token": f"token-{tag}",
        "api_key": f"apikey-{tag}",
        "team": f"team-{tag}",  # a header that is no credential: left alone
    }


@pytest.fixture
def masking_on() -> Iterator[None]:
    """Log masking as Airflow's logging configuration turns it on in its processes."""
    before = {name: m.SecretsMasker.is_log_masking_enabled() for name, m in MASKERS.items()}
    for module in MASKERS.values():
        module.SecretsMasker.enable_log_masking()
    yield
    for name, module in MASKERS.items():
        if not before[name]:
            module.SecretsMasker.disable_log_masking()


def logged(masker: Any, *args: str) -> str:
    """What a log record quoting ``args`` says after ``masker``'s filter ran on it."""
    record = logging.LogRecord("airflow.task", logging.INFO, __file__, 1,
                               "posting with " + ", ".join(["%s"] * len(args)), args, None)
    masker._secrets_masker().filter(record)
    return record.getMessage()


def connection(values: dict[str, str]) -> str:
    headers = {"Authorization": f"Bearer {values['token']}", "X-Api-Key": values["api_key"],
               "X-Team": values["team"]}
    return json.dumps({"conn_type": "jobhooks", "host": "https://hooks.example.com/ops",
                       "password": values["secret"], "extra": {"headers": headers}})


@pytest.mark.parametrize("which", MASKERS)
def test_a_log_record_quoting_the_secrets_is_redacted_once_the_connection_is_loaded(
    monkeypatch: pytest.MonkeyPatch, canaries: dict[str, str], masking_on: None, which: str
) -> None:
    masker = MASKERS[which]
    quoted = (canaries["secret"], f"Bearer {canaries['token']}", canaries["api_key"])
    assert logged(masker, *quoted) == "posting with " + ", ".join(quoted)  # not yet known
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__SUBSCRIPTIONS", "masked")
    monkeypatch.setenv("AIRFLOW_CONN_MASKED", connection(canaries))
    (sub,) = connections.load().subscriptions
    assert sub.secrets == (canaries["secret"],)  # the subscription itself keeps them
    assert logged(masker, *quoted) == "posting with ***, ***, ***"
    assert logged(masker, canaries["token"]) == "posting with ***"  # the bare token too
    assert logged(masker, canaries["team"]) == f"posting with {canaries['team']}"


def test_the_connection_form_hook_registers_them_too(
    monkeypatch: pytest.MonkeyPatch, canaries: dict[str, str], masking_on: None
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FORM_TEST", connection(canaries))
    JobhooksHook("form_test").get_conn()
    for masker in MASKERS.values():
        assert logged(masker, canaries["api_key"]) == "posting with ***"


def test_a_malformed_secret_is_registered_before_it_is_refused(
    monkeypatch: pytest.MonkeyPatch, canaries: dict[str, str], masking_on: None
) -> None:
    bad = f"whsec_not-base64-{canaries['token']}!"
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__SUBSCRIPTIONS", "broken")
    monkeypatch.setenv("AIRFLOW_CONN_BROKEN", json.dumps(
        {"conn_type": "jobhooks", "host": "https://hooks.example.com/", "password": bad}))
    (error,) = connections.load().errors
    assert "field 'secret'" in str(error) and canaries["token"] not in str(error)
    for masker in MASKERS.values():
        assert logged(masker, bad) == "posting with ***"
