"""End to end, with the scheduler restarted under another configuration (its executor and task
processes inherit it): no configuration at all, an outbox that cannot be written, and a
PostgreSQL outbox shared by the scheduler and the task processes.

These run after every other end-to-end test (see conftest): a restart stops running tasks.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.airflow.e2e.conftest import Deployment, main_connection
from tests.core.test_processes import postgres_database  # noqa: F401 - a fresh database

RESULT = {
    "choose": "success",
    "quick_report": "skipped",
    "full_report": "success",
    "publish": "success",
}


class Scheduler:
    """Restarts the scheduler under another configuration (None unsets a variable); the
    module's last test leaves it restarted as it was."""

    def __init__(self, deployment: Deployment) -> None:
        self.stack = deployment.stack
        self.changed = False

    def restart(self, **env: str | None) -> None:
        for dag in self.stack.api("GET", "dags?limit=100")["dags"]:  # let running work finish
            for run in self.stack.runs(dag["dag_id"]):
                if run["state"] not in ("success", "failed"):
                    self.stack.wait_for_run(dag["dag_id"], run["dag_run_id"])
        self.stack.restart_scheduler(**env)
        self.changed = bool(env)


@pytest.fixture(scope="module")
def scheduler(deployment: Deployment) -> Iterator[Scheduler]:
    restarts = Scheduler(deployment)
    yield restarts
    if restarts.changed:
        restarts.restart()


@contextmanager
def restored(deployment: Deployment) -> Iterator[None]:
    try:
        yield
    finally:
        deployment.stack.api("POST", "connections", main_connection(deployment.main))


def task_states(deployment: Deployment, run_id: str) -> dict[str, str]:
    tis = deployment.stack.task_instances("report_branch", run_id)
    return {ti["task_id"]: ti["state"] for ti in tis}


def test_without_any_subscription_dags_run_as_without_jobhooks(
    deployment: Deployment, scheduler: Scheduler
) -> None:
    stack = deployment.stack
    # Nothing configured: no [jobhooks] section, no jobhooks_default connection anywhere.
    stack.api("DELETE", "connections/jobhooks_default")
    with restored(deployment):
        scheduler.restart(AIRFLOW__JOBHOOKS__SUBSCRIPTIONS=None)
        run_id = stack.trigger("report_branch")
        assert stack.wait_for_run("report_branch", run_id)["state"] == "success"
        assert task_states(deployment, run_id) == RESULT
        said = "jobhooks: no subscription configured (no Airflow connection 'jobhooks_default'"
        assert said in stack.task_log("report_branch", run_id, "publish")
        assert said in stack.log("scheduler")
    # Nothing was recorded for the run, so nothing can be delivered later either.
    with sqlite3.connect(deployment.outbox) as db:
        (rows,) = db.execute(
            "SELECT COUNT(*) FROM jobhooks_deliveries WHERE event LIKE ?", (f"%{run_id}%",)
        ).fetchone()
    assert rows == 0
    assert not deployment.events(run_id=run_id)


def test_an_outbox_that_cannot_be_written_breaks_nothing(
    deployment: Deployment, scheduler: Scheduler, tmp_path: Path
) -> None:
    stack = deployment.stack
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the outbox's directory should be")
    scheduler.restart(AIRFLOW__JOBHOOKS__OUTBOX=str(blocker / "outbox.db"))
    run_id = stack.trigger("report_branch")
    assert stack.wait_for_run("report_branch", run_id)["state"] == "success"
    assert task_states(deployment, run_id) == RESULT
    task_log = stack.task_log("report_branch", run_id, "publish")
    cannot = f"cannot open the SQLite outbox '{blocker / 'outbox.db'}'"
    assert "jobhooks: could not record unit_succeeded for 'report_branch'" in task_log
    assert cannot in task_log and "(no effect on the job)" in task_log
    assert cannot in stack.log("scheduler")


def test_a_postgres_outbox_is_shared_by_the_scheduler_and_the_tasks(
    deployment: Deployment,
    scheduler: Scheduler,
    postgres_database: str,  # noqa: F811
) -> None:
    import psycopg

    stack = deployment.stack
    scheduler.restart(AIRFLOW__JOBHOOKS__OUTBOX=postgres_database)
    run_id = stack.trigger("customer_import")
    assert stack.wait_for_run("customer_import", run_id)["state"] == "failed"
    events = deployment.wait_for_events(4, subject_id="customer_import", run_id=run_id)
    # A fresh outbox knows nothing of earlier runs: this is the work's first start for it.
    assert Counter(e["verb"] for e in events) == Counter(started=1, syncing=1, synced=1, failed=1)
    failed = next(e for e in events if e["verb"] == "failed")
    # The task process recorded its error in PostgreSQL; the scheduler read it from there.
    assert failed["data"]["failed_tasks"][0]["error"].startswith("MalformedRowError: ")
    with psycopg.connect(postgres_database) as db:
        rows = db.execute(
            "SELECT event::json->>'verb', status FROM jobhooks_deliveries "
            "WHERE subscription = 'jobhooks_default' AND event LIKE %s",
            (f"%{run_id}%",),
        ).fetchall()
        notes = db.execute("SELECT COUNT(*) FROM jobhooks_values WHERE key LIKE 'note/%'")
        (left,) = notes.fetchone()
    # synced came from a task process, the rest from the scheduler: all in one outbox.
    assert sorted(rows) == sorted(
        [(v, "delivered") for v in ("started", "syncing", "synced", "failed")]
    )
    assert left == 0  # the run's errors were forgotten once reported
