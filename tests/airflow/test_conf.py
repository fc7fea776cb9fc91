"""The [jobhooks] settings: read when asked (AIRFLOW__JOBHOOKS__* or airflow.cfg), resolved over
the core's JOBHOOKS_* variables into one Settings, bad values named."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from jobhooks_airflow import conf
from jobhooks_core.exceptions import ConfigurationError


def test_defaults_put_the_outbox_under_airflow_home() -> None:
    settings = conf.settings()
    assert settings.outbox_url == str(Path(os.environ["AIRFLOW_HOME"]) / "jobhooks" / "outbox.db")
    assert (settings.instance, settings.enabled, settings.flush_timeout) == ("default", True, 5.0)
    assert conf.subscriptions() == ["jobhooks_default"]
    assert conf.dag_watch_interval() == 30.0


def test_the_jobhooks_section_is_read_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__OUTBOX", "postgresql://jobhooks@db/airflow")
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__INSTANCE", "prod")
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__FLUSH_TIMEOUT", "2.5")
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__ENABLED", "False")
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__SUBSCRIPTIONS", " ops_alerts, ,catalog ")
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__DAG_WATCH_INTERVAL", "5")
    settings = conf.settings()
    assert settings.outbox_url == "postgresql://jobhooks@db/airflow"
    assert (settings.instance, settings.flush_timeout, settings.enabled) == ("prod", 2.5, False)
    assert conf.subscriptions() == ["ops_alerts", "catalog"]
    assert conf.subscriptions_configured()
    assert conf.dag_watch_interval() == 5.0


def test_the_hardening_options_are_read_from_the_jobhooks_section(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__RETENTION", "3600")
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__MAX_PAYLOAD_BYTES", "65536")
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__CA_BUNDLE", str(bundle))
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__REFUSE_PRIVATE_DESTINATIONS", "True")
    settings = conf.settings()
    assert (settings.retention_seconds, settings.max_payload_bytes) == (3600, 65536)
    assert settings.ca_bundle == bundle and settings.refuse_private_destinations is True


def test_a_bad_hardening_option_names_the_airflow_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__RETENTION", "a week")
    where = r"\[jobhooks\] retention \(or JOBHOOKS_RETENTION\)"
    with pytest.raises(ConfigurationError, match=where):
        conf.settings()


def test_the_jobhooks_section_wins_over_jobhooks_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JOBHOOKS_INSTANCE", "from-jobhooks")
    monkeypatch.setenv("JOBHOOKS_HOME", str(tmp_path))
    assert conf.settings().instance == "from-jobhooks"
    assert conf.settings().outbox_url == str(tmp_path / "outbox.db")  # JOBHOOKS_HOME honoured
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__INSTANCE", "from-airflow")
    assert conf.settings().instance == "from-airflow"


def test_flush_timeout_stays_below_task_success_overtime(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__TASK_SUCCESS_OVERTIME", "10")
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__FLUSH_TIMEOUT", "30")
    with caplog.at_level(logging.WARNING, logger="jobhooks"):
        assert conf.settings().flush_timeout == 9.0
    assert "flush_timeout 30 s is not below [core] task_success_overtime (10 s)" in caplog.text


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FLUSH_TIMEOUT", "soon", "[jobhooks] flush_timeout (or JOBHOOKS_FLUSH_TIMEOUT)"),
        ("ENABLED", "maybe", "'maybe' is not a boolean"),
        ("DAG_WATCH_INTERVAL", "0", "[jobhooks] dag_watch_interval"),
    ],
)
def test_a_bad_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"AIRFLOW__JOBHOOKS__{variable}", value)
    with pytest.raises(
        ConfigurationError,
        match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)"),
    ):
        conf.settings()
        conf.dag_watch_interval()


def test_links_use_the_api_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert conf.base_url() == "http://localhost:8080"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    assert conf.base_url() == "https://airflow.example.com"
