"""End to end: subscriptions kept as Airflow connections (environment variables in JSON and URI
form, the metadata DB) filter, batch and sign as their fields say; broken ones never break a
DAG, and the logs say what is wrong."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import Counter
from urllib.parse import parse_qs

from standardwebhooks import Webhook

from tests.airflow.e2e.conftest import FILTERED_SECRET, Deployment


def finished(deployment: Deployment, runs: dict[str, str]) -> None:
    for dag_id, run_id in runs.items():
        deployment.stack.wait_for_run(dag_id, run_id)


def test_filters_and_format_come_from_the_connection_extras(
    deployment: Deployment, runs: dict[str, str]
) -> None:
    # AIRFLOW_CONN_JOBHOOKS_FILTERED (URI form): verbs=failed, synccomplete;
    # subject_ids=customer_*, segment_*; format=form; its own secret.
    finished(deployment, runs)
    receiver = deployment.filtered
    deployment.wait_for_events(1, receiver, subject_id="segment_export", verb="synccomplete")
    deployment.wait_for_events(1, receiver, subject_id="customer_import", verb="failed")
    assert {(e["subject_id"], e["verb"]) for e in deployment.events(receiver)} == {
        ("segment_export", "synccomplete"),
        ("customer_import", "failed"),
    }
    webhook = Webhook(FILTERED_SECRET)
    for request in receiver.requests:
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        # A form body is no JSON, so sign it independently and compare.
        moment = dt.datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), dt.UTC)
        expected = webhook.sign(request.headers["webhook-id"], moment, request.body.decode())
        assert expected in request.headers["webhook-signature"].split()
        fields = parse_qs(request.body.decode())
        assert json.loads(fields["source"][0])["orchestrator"] == "airflow"


def test_a_batch_subscription_gets_completed_and_the_batch_verbs_as_cloudevents(
    deployment: Deployment, runs: dict[str, str]
) -> None:
    # jobhooks_batch, created through the REST API (metadata DB): mode=batch, cloudevents.
    finished(deployment, runs)
    receiver = deployment.batch
    for dag_id in ("partner_sync", "report_branch", "retired_feed"):
        deployment.wait_for_events(1, receiver, subject_id=dag_id, verb="completed")
    deployment.wait_for_events(1, receiver, subject_id="customer_import", verb="failed")
    events = deployment.events(receiver)
    by_dag: dict[str, Counter[str]] = {}
    for event in events:
        by_dag.setdefault(event["subject_id"], Counter())[event["verb"]] += 1
    assert by_dag["partner_sync"] == Counter(started=1, completed=1)
    assert by_dag["report_branch"]["completed"] == 1
    assert by_dag["retired_feed"] == Counter(started=1, completed=1)
    assert "completed" not in by_dag["segment_export"]  # another night always follows
    assert not {e["verb"] for e in events} & {"syncing", "synced", "synccomplete"}
    batches = [r for r in receiver.requests if r.body]
    assert {r.headers["content-type"] for r in batches} == {"application/cloudevents-batch+json"}
    assert any(len(json.loads(r.body)) > 1 for r in batches)  # events travel together
    completed = next(e for e in events if e["verb"] == "completed")
    assert completed["type"] == f"{completed['subject_type']}.completed"


def test_a_missing_or_malformed_connection_is_logged_and_skipped(
    deployment: Deployment, runs: dict[str, str]
) -> None:
    finished(deployment, runs)
    stack = deployment.stack
    scheduler = stack.log("scheduler")
    missing = "subscription 'jobhooks_missing': is named in [jobhooks] subscriptions but no"
    malformed = "subscription 'jobhooks_malformed', field 'verbs': 'faild' is not a verb; did"
    assert missing in scheduler and malformed in scheduler
    # Once by the scheduler itself (its log also carries its task processes' lines), not once
    # per scan of its DAG watcher.
    own = [line for line in scheduler.splitlines() if missing in line and "ti_id=" not in line]
    assert len(own) == 1, own
    # Each task's own log says it too, and the task ran as it would without jobhooks.
    task_log = stack.task_log("report_branch", runs["report_branch"], "publish")
    assert missing in task_log and malformed in task_log
    states = {
        ti["task_id"]: ti["state"]
        for ti in stack.task_instances("report_branch", runs["report_branch"])
    }
    assert states == {
        "choose": "success",
        "quick_report": "skipped",
        "full_report": "success",
        "publish": "success",
    }


def test_an_endpoint_that_never_answers_or_refuses_holds_nothing_up(
    deployment: Deployment, runs: dict[str, str]
) -> None:
    finished(deployment, runs)
    stack = deployment.stack
    # Every run finished as designed, while jobhooks_hanging's requests hung and
    # jobhooks_unreachable's were refused; the healthy subscriptions got everything.
    assert stack.run("report_branch", runs["report_branch"])["state"] == "success"
    assert deployment.hanging.requests, "the hanging endpoint was tried"
    deployment.wait_for_events(6, subject_id="report_branch", run_id=runs["report_branch"])
    # Each task process gave up delivering after flush_timeout (2 s), well within
    # task_success_overtime: none was killed for running over.
    assert "Task success overtime reached" not in stack.log("scheduler")
    with sqlite3.connect(deployment.outbox) as db:
        rows = dict(
            db.execute(
                "SELECT subscription || ':' || status, COUNT(*) FROM jobhooks_deliveries "
                "WHERE subscription IN ('jobhooks_hanging', 'jobhooks_unreachable') GROUP BY 1"
            ).fetchall()
        )
        refused = db.execute(
            "SELECT last_error FROM jobhooks_deliveries WHERE subscription = "
            "'jobhooks_unreachable' AND attempts > 0 LIMIT 1"
        ).fetchone()
    assert rows.get("jobhooks_hanging:delivered", 0) == 0  # kept, to be retried
    assert rows.get("jobhooks_hanging:pending", 0) + rows.get("jobhooks_hanging:dead", 0) > 0
    assert "refused" in refused[0].lower()
