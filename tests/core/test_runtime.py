"""The runtime's promises: emit never raises into the caller, lifecycle facts persist in the
outbox across processes, settings are validated with clear errors."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobhooks_core import ConfigurationError, LifecycleSignal, Signal, Subscription
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import DEFAULT_RETRY_SCHEDULE, Settings
from tests.core.clitools import cli_env, write_config
from tests.receiver import TestReceiver

URL = "http://127.0.0.1:9/never-used"


_made: list[Jobhooks] = []


@pytest.fixture(autouse=True)
def _close_runtimes() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def make(tmp_path: Path, **settings: object) -> Jobhooks:
    rt = Jobhooks(settings=Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)}, **settings),
                  subscriptions=[Subscription.from_mapping("ops", {"url": URL})],
                  long_lived=True)
    _made.append(rt)
    return rt


def test_emit_into_an_unwritable_outbox_logs_and_returns_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    rt = make(tmp_path, outbox=str(blocker / "outbox.db"))
    with caplog.at_level(logging.ERROR, logger="jobhooks"):
        assert rt.emit("failed", "work", "x") is None
        assert rt.signal(LifecycleSignal(Signal.RUN_FAILED, "x", occurrence="r")) == []
    assert rt.failures == 2
    assert "could not record emit" in caplog.text and "no effect on the job" in caplog.text
    assert str(blocker) in caplog.text


def test_bad_arguments_to_emit_are_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rt = make(tmp_path)
    with caplog.at_level(logging.ERROR, logger="jobhooks"):
        assert rt.emit("exploded", "work", "x") is None
        assert rt.emit("failed", "work", "x", data={"obj": object()}) is None
    assert "'exploded' is not a valid Verb" in caplog.text
    assert "has no JSON form" in caplog.text


def test_disabled_jobhooks_writes_nothing(tmp_path: Path) -> None:
    rt = make(tmp_path, enabled="false")
    rt.emit("failed", "work", "x")
    assert rt.outbox.deliveries() == []


def test_once_per_work_facts_hold_across_processes(tmp_path: Path) -> None:
    first = make(tmp_path)
    verbs = [e.verb.value for e in first.signal(
        LifecycleSignal(Signal.RUN_STARTED, "daily_export", occurrence="r1"))]
    assert verbs == ["started", "syncing"]
    again = make(tmp_path)  # another process, same outbox
    verbs = [e.verb.value for e in again.signal(
        LifecycleSignal(Signal.RUN_STARTED, "daily_export", occurrence="r2"))]
    assert verbs == ["syncing"]
    assert len(again.outbox.deliveries()) == 3


def test_installation_instant_is_shared_by_every_process(tmp_path: Path) -> None:
    a, b = make(tmp_path), make(tmp_path)
    with a.outbox.transaction() as tx:
        first = tx.installed_at()
    with b.outbox.transaction() as tx:
        assert tx.installed_at() == first
    assert first <= dt.datetime.now(dt.UTC)


def test_settings_defaults() -> None:
    settings = Settings.from_env({"HOME": "/home/u"})
    assert settings.retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert settings.retry_schedule == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000,
                                       86400)
    assert settings.flush_timeout == 5 and settings.instance == "default"
    assert settings.outbox_url.endswith("jobhooks/outbox.db")
    assert settings.retention_seconds == 7 * 86400 and settings.max_payload_bytes == 262144
    assert settings.ca_bundle is None and settings.refuse_private_destinations is False


@pytest.mark.parametrize(("env", "fragment"), [
    ({"JOBHOOKS_FLUSH_TIMEOUT": "soon"}, "JOBHOOKS_FLUSH_TIMEOUT"),
    ({"JOBHOOKS_FLUSH_TIMEOUT": "-1"}, "positive number of seconds"),
    ({"JOBHOOKS_RETRY_SCHEDULE": "0,5,-1"}, "list of delays in seconds"),
    ({"JOBHOOKS_ENABLED": "maybe"}, "'maybe' is not a boolean"),
    ({"JOBHOOKS_RETENTION": "a week"}, "JOBHOOKS_RETENTION.*0 keeps delivered rows forever"),
    ({"JOBHOOKS_RETENTION": "-5"}, "'-5' is not a number of seconds"),
    ({"JOBHOOKS_MAX_PAYLOAD_BYTES": "1k"}, "JOBHOOKS_MAX_PAYLOAD_BYTES.*at least 1024"),
    ({"JOBHOOKS_MAX_PAYLOAD_BYTES": "100"}, "'100' is not a whole number of bytes"),
    ({"JOBHOOKS_CA_BUNDLE": "/no/such/ca.pem"}, "JOBHOOKS_CA_BUNDLE.*'/no/such/ca.pem'.*PEM"),
    ({"JOBHOOKS_REFUSE_PRIVATE_DESTINATIONS": "sure"}, "'sure' is not a boolean"),
])
def test_bad_settings_are_refused_clearly(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        Settings.from_env(env)


def test_module_level_emit_from_a_plain_script(tmp_path: Path, receiver: TestReceiver) -> None:
    config = write_config(tmp_path / "c.json", {"name": "ops", "url": receiver.url})
    script = ("from jobhooks_core import emit\n"
              "e = emit('synccomplete', 'workflow', 'nightly', data={'rows': 42})\n"
              "print(e.id)\n")
    out = subprocess.run([sys.executable, "-c", script], env=cli_env(tmp_path / "h", config),
                         capture_output=True, text=True, timeout=60, check=True).stdout
    (event,) = receiver.events()  # delivered by the atexit flush
    assert event["id"] == out.strip() and event["type"] == "workflow.synccomplete"
    assert event["source"]["orchestrator"] == "jobhooks"
