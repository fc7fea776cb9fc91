"""End to end: states set by hand (the UI's "mark success/failed", here through the same REST
API) are job events too, reported by the API server that makes the change."""

from __future__ import annotations

from collections import Counter
from urllib.parse import quote

from tests.airflow.e2e.conftest import Deployment
from tests.airflow.stack import wait_until

DAG = "awaiting_approval"


def running(deployment: Deployment, run_id: str, task_id: str) -> None:
    def state() -> bool:
        tis = deployment.stack.task_instances(DAG, run_id)
        return any(ti["task_id"] == task_id and ti["state"] == "running" for ti in tis)

    wait_until(state, 90, f"{task_id} of {run_id} to run")


def test_a_task_marked_successful_by_hand_is_synced(deployment: Deployment) -> None:
    stack = deployment.stack
    run_id = stack.trigger(DAG)
    running(deployment, run_id, "wait_for_approval")
    stack.api(
        "PATCH",
        f"dags/{DAG}/dagRuns/{quote(run_id)}/taskInstances/wait_for_approval",
        {"new_state": "success"},
    )
    assert stack.wait_for_run(DAG, run_id)["state"] == "success"
    events = deployment.wait_for_events(5, subject_id=DAG, run_id=run_id)
    assert Counter(e["verb"] for e in events) == Counter(
        started=1, syncing=1, synced=2, synccomplete=1
    )
    approved = next(e for e in events if e["data"].get("task_id") == "wait_for_approval")
    assert approved["data"]["state"] == "success" and approved["data"]["run_type"] == "manual"


def test_a_run_marked_failed_by_hand_is_failed_with_the_tasks_it_stopped(
    deployment: Deployment,
) -> None:
    stack = deployment.stack
    run_id = stack.trigger(DAG)
    running(deployment, run_id, "wait_for_approval")
    stack.api("PATCH", f"dags/{DAG}/dagRuns/{quote(run_id)}", {"state": "failed"})
    (failed,) = deployment.wait_for_events(1, subject_id=DAG, run_id=run_id, verb="failed")
    data = failed["data"]
    assert data["state"] == "failed"
    assert data["reason"] == "Dag Run's state was manually set to `failed`."
    assert [t["task_id"] for t in data["failed_tasks"]] == ["wait_for_approval"]
    assert data["failed_tasks"][0]["error"] == "TaskInstance's state was manually set to `failed`."
