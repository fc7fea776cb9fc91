"""End to end: the example DAGs run in real task processes and each reports exactly the verbs
DESIGN §3 gives it, once, with the data a receiver needs (signed, valid against the schema)."""

from __future__ import annotations

import json
from collections import Counter
from importlib.resources import files

import jsonschema
from standardwebhooks import Webhook

from tests.airflow.e2e.conftest import SECRET, Deployment

RUN_VERBS = ("started", "syncing", "synced", "synccomplete", "failed")


def verbs(events: list[dict]) -> Counter[str]:
    return Counter(e["verb"] for e in events)


def run_events(deployment: Deployment, dag_id: str, run_id: str, count: int) -> list[dict]:
    """The main receiver's events of one run, once the run finished and ``count`` arrived."""
    deployment.stack.wait_for_run(dag_id, run_id)
    return deployment.wait_for_events(count, subject_id=dag_id, run_id=run_id)


def test_a_scheduled_run_that_succeeds_is_synccomplete_not_completed(
    deployment: Deployment, runs: dict[str, str]
) -> None:
    events = run_events(deployment, "segment_export", runs["segment_export"], 6)
    assert verbs(events) == Counter(started=1, syncing=1, synced=3, synccomplete=1)
    assert {e["subject_type"] for e in events} == {"segment"}  # from the DAG's tag
    assert {e["type"] for e in events} >= {"segment.synced", "segment.synccomplete"}
    assert {e["data"]["run_type"] for e in events} == {"scheduled"}
    synced = sorted(e["data"]["task_id"] for e in events if e["verb"] == "synced")
    assert synced == ["build_segment", "publish", "write_export"]


def test_a_run_that_fails_after_its_retries_is_failed_with_the_tasks_error(
    deployment: Deployment, runs: dict[str, str]
) -> None:
    run_id = runs["customer_import"]
    events = run_events(deployment, "customer_import", run_id, 4)
    assert verbs(events) == Counter(started=1, syncing=1, synced=1, failed=1)
    failed = next(e for e in events if e["verb"] == "failed")
    error = "MalformedRowError: customers-2026-11-27.csv: row 42 has 7 columns, expected 9"
    assert failed["data"]["state"] == "failed"
    assert failed["data"]["reason"] == "task_failure"
    # The error was recorded by the task process and read by the scheduler, through the outbox.
    assert failed["data"]["failed_tasks"] == [
        {"task_id": "load_customers", "map_index": -1, "try_number": 2, "error": error}
    ]
    assert failed["data"]["error"] == f"task load_customers failed: {error}"


def test_each_mapped_task_instance_is_one_synced(
    deployment: Deployment, runs: dict[str, str]
) -> None:
    events = run_events(deployment, "partner_sync", runs["partner_sync"], 8)
    assert verbs(events) == Counter(started=1, syncing=1, synced=5, synccomplete=1)
    synced = sorted(
        (e["data"]["task_id"], e["data"]["map_index"]) for e in events if e["verb"] == "synced"
    )
    assert synced == [
        ("list_partners", -1),
        ("summarize", -1),
        ("sync_partner", 0),
        ("sync_partner", 1),
        ("sync_partner", 2),
    ]
    mapped = next(e for e in events if e["data"].get("map_index") == 1)
    assert mapped["data"]["url"].endswith("/tasks/sync_partner/mapped/1")


def test_a_skipped_branch_reports_nothing(deployment: Deployment, runs: dict[str, str]) -> None:
    events = run_events(deployment, "report_branch", runs["report_branch"], 6)
    assert verbs(events) == Counter(started=1, syncing=1, synced=3, synccomplete=1)
    synced = sorted(e["data"]["task_id"] for e in events if e["verb"] == "synced")
    assert synced == ["choose", "full_report", "publish"]  # quick_report was skipped


def test_the_last_run_before_the_end_date_is_the_works_final_one(
    deployment: Deployment, runs: dict[str, str]
) -> None:
    events = run_events(deployment, "retired_feed", runs["retired_feed"], 4)
    assert verbs(events) == Counter(started=1, syncing=1, synced=1, synccomplete=1)
    # ``completed`` is batch-only: the batch subscription's test sees it.


def test_events_carry_the_source_timing_and_links(
    deployment: Deployment, runs: dict[str, str]
) -> None:
    run_id = runs["report_branch"]
    events = run_events(deployment, "report_branch", run_id, 6)
    base = deployment.stack.base
    for event in events:
        assert event["source"] == {"orchestrator": "airflow", "instance": "e2e", "version": "3.3.2"}
        data = event["data"]
        assert data["dag_id"] == "report_branch" and data["run_id"] == run_id
        assert data["run_type"] == "manual"
        assert data["url"].startswith(f"{base}/dags/report_branch/runs/")
    complete = next(e for e in events if e["verb"] == "synccomplete")["data"]
    assert complete["state"] == "success"
    assert complete["duration"] > 0 and complete["start_date"] < complete["end_date"]
    publish = next(e for e in events if e["data"].get("task_id") == "publish")["data"]
    assert publish["url"].endswith("/tasks/publish") and publish["try_number"] == 1
    assert publish["state"] == "success" and publish["duration"] >= 0


def test_every_request_is_signed_and_every_event_valid(
    deployment: Deployment, runs: dict[str, str]
) -> None:
    run_events(deployment, "report_branch", runs["report_branch"], 6)
    schema = json.loads(files("jobhooks_core").joinpath("schemas/event.schema.json").read_text())
    webhook = Webhook(SECRET)
    for request in deployment.main.requests:
        payload = webhook.verify(request.body, request.headers)
        jsonschema.validate(payload, schema)
        assert request.headers["webhook-id"] == payload["id"]
        assert request.headers["user-agent"].startswith("jobhooks/")


def test_a_failure_reported_again_is_one_event_and_a_rerun_fails_again(
    deployment: Deployment, runs: dict[str, str]
) -> None:
    stack, run_id = deployment.stack, runs["customer_import"]
    run_events(deployment, "customer_import", run_id, 4)
    # Setting the failed run to failed by hand reports the same failure a second time.
    stack.api("PATCH", f"dags/customer_import/dagRuns/{run_id}", {"state": "failed"})
    # Clearing the run runs it again: a bounce, which re-arms ``failed`` (never ``started``).
    stack.api("POST", f"dags/customer_import/dagRuns/{run_id}/clear", {"dry_run": False})
    events = deployment.wait_for_events(7, subject_id="customer_import", timeout=120)
    assert stack.wait_for_run("customer_import", run_id)["state"] == "failed"
    assert verbs(events) == Counter(started=1, syncing=2, synced=2, failed=2)
    assert len({e["id"] for e in events}) == len(events)
    second = [e for e in events if e["verb"] == "failed"][1]["data"]
    assert second["failed_tasks"][0]["try_number"] == 4  # two more tries after the clear
