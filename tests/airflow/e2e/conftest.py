"""The shared Airflow deployment of the end-to-end tests, started once per session.

One scheduler, API server and dag-processor (LocalExecutor, SQLite) run the example DAGs of
``example_dags/airflow`` in real task processes, reporting to real receivers through seven
subscriptions kept every way Airflow keeps connections:

==================== ====================================== ==============================
connection           kept as                                 endpoint
==================== ====================================== ==============================
jobhooks_default     metadata DB (REST API), signed          ``main`` receiver, realtime
jobhooks_batch       metadata DB (REST API), cloudevents     ``batch`` receiver, batch mode
jobhooks_filtered    AIRFLOW_CONN_* (URI), form, filtered    ``filtered`` receiver
jobhooks_hanging     AIRFLOW_CONN_* (JSON)                   accepts, never answers
jobhooks_unreachable AIRFLOW_CONN_* (JSON)                   a port nobody listens on
jobhooks_malformed   AIRFLOW_CONN_* (JSON), a misspelt verb  (skipped, logged)
jobhooks_missing     named in [jobhooks] subscriptions only  (skipped, logged)
==================== ====================================== ==============================

The example DAGs are parsed before jobhooks first starts, so they are the installation's
baseline (never ``created``); the scheduled ones start running as soon as the scheduler does.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.airflow.stack import AirflowStack, free_port, wait_until
from tests.receiver import Reply, TestReceiver

EXAMPLES = Path(__file__).resolve().parents[3] / "example_dags" / "airflow"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FILTERED_SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLWZpbHRlcmVkLXN1YnM="
SUBSCRIPTIONS = (
    "jobhooks_default, jobhooks_batch, jobhooks_filtered, jobhooks_hanging, "
    "jobhooks_unreachable, jobhooks_malformed, jobhooks_missing"
)


@dataclass
class Deployment:
    """The running stack and the receivers its subscriptions point at."""

    stack: AirflowStack
    main: TestReceiver
    batch: TestReceiver
    filtered: TestReceiver
    hanging: TestReceiver
    outbox: Path

    def events(self, receiver: TestReceiver | None = None, **where: object) -> list[dict]:
        """Events a receiver got (default ``main``) whose top-level or data fields match."""
        found = []
        for event in (receiver or self.main).events():
            fields = {**event.get("data", {}), **event}
            if all(fields.get(k) == v for k, v in where.items()):
                found.append(event)
        return found

    def wait_for_events(
        self,
        count: int,
        receiver: TestReceiver | None = None,
        timeout: float = 60,
        **where: object,
    ) -> list[dict]:
        """At least ``count`` matching events (see :meth:`events`); all of them."""

        def enough() -> list[dict] | None:
            found = self.events(receiver, **where)
            return found if len(found) >= count else None

        try:
            return wait_until(enough, timeout, f"{count} event(s) matching {where}")
        except AssertionError as exc:
            got = [(e["type"], e["data"].get("task_id")) for e in self.events(receiver, **where)]
            raise AssertionError(f"{exc}; got {got}") from None


@pytest.fixture(scope="session", autouse=True)
def runs(deployment: Deployment) -> dict[str, str]:
    """The run of each example DAG, started together so they overlap: the scheduled DAGs
    started on their own when the scheduler did; the others are triggered here."""
    stack = deployment.stack
    found = {dag_id: stack.trigger(dag_id) for dag_id in ("customer_import", "report_branch")}
    for dag_id in ("segment_export", "partner_sync", "retired_feed"):
        scheduled = wait_until(lambda d=dag_id: stack.runs(d), 60, f"the run of {dag_id}")
        found[dag_id] = scheduled[0]["dag_run_id"]
    return found


def _conn(host: str, password: str | None = None, **extra: object) -> str:
    body: dict[str, object] = {"conn_type": "jobhooks", "host": host}
    if password:
        body["password"] = password
    if extra:
        body["extra"] = extra
    return json.dumps(body)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that restart the scheduler go last: a restart stops the tasks running then."""
    items.sort(key=lambda item: item.module.__name__.endswith("test_scheduler_restarts"))


def main_connection(receiver: TestReceiver) -> dict[str, object]:
    """jobhooks_default, kept in the metadata DB (REST API body)."""
    return {
        "connection_id": "jobhooks_default",
        "conn_type": "jobhooks",
        "host": receiver.url,
        "password": SECRET,
    }


def batch_connection(receiver: TestReceiver) -> dict[str, object]:
    extra = {"mode": "batch", "format": "cloudevents", "batch_flush_seconds": 1}
    return {
        "connection_id": "jobhooks_batch",
        "conn_type": "jobhooks",
        "host": receiver.url,
        "extra": json.dumps(extra),
    }


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow-home")
    receivers = [TestReceiver().start() for _ in range(4)]
    main, batch, filtered, hanging = receivers
    hanging.default = Reply.hang()
    filtered_uri = (
        f"jobhooks://:{urllib.parse.quote(FILTERED_SECRET, safe='')}@"
        f"{urllib.parse.quote(filtered.url, safe='')}/?"
        + urllib.parse.urlencode(
            {
                "verbs": "failed, synccomplete",
                "subject_ids": "customer_*, segment_*",
                "format": "form",
            }
        )
    )
    env = {
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__JOBHOOKS__SUBSCRIPTIONS": SUBSCRIPTIONS,
        "AIRFLOW__JOBHOOKS__INSTANCE": "e2e",
        "AIRFLOW__JOBHOOKS__FLUSH_TIMEOUT": "2",
        "AIRFLOW__JOBHOOKS__DAG_WATCH_INTERVAL": "1",
        "JOBHOOKS_RETRY_SCHEDULE": "0,0.5,1",
        "JOBHOOKS_POLL_SECONDS": "0.2",
        "AIRFLOW_CONN_JOBHOOKS_FILTERED": filtered_uri,
        "AIRFLOW_CONN_JOBHOOKS_HANGING": _conn(hanging.url, timeout_seconds=30),
        "AIRFLOW_CONN_JOBHOOKS_UNREACHABLE": _conn(f"http://127.0.0.1:{free_port()}/hooks"),
        "AIRFLOW_CONN_JOBHOOKS_MALFORMED": _conn(main.url, verbs="faild, synced"),
    }
    stack = AirflowStack(home, home / "dags", env)
    stack.copy_dags(EXAMPLES)
    try:
        # The DAGs exist before jobhooks first starts: the installation's baseline.
        stack.airflow("db", "migrate", timeout=300)
        stack.airflow("dags", "reserialize", timeout=300)
        stack.start(["api-server", "dag-processor"])
        for connection in (main_connection(main), batch_connection(batch)):
            stack.api("POST", "connections", connection)
        stack.start(["scheduler"])
        wait_until(
            lambda: "jobhooks: watching" in stack.log("scheduler"),
            60,
            "the scheduler's first DAG scan",
        )
        yield Deployment(stack, main, batch, filtered, hanging, home / "jobhooks" / "outbox.db")
    finally:
        stack.stop()
        for receiver in receivers:
            receiver.stop()
