"""Flow and task hooks against a real Prefect server: the exact verbs each kind of run reports.

Flows run in this process with a JOBHOOKS_HOME of the test's own; ``emitted`` counts the outbox
rows per (subscription, verb): ``live`` is realtime (every realtime verb), ``batch`` is batch
(created, update, deleted, started, completed, failed).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest
from prefect import flow, tags, task

from jobhooks_prefect import flow_hooks, task_hooks
from tests.prefect.helpers import BATCH, LIVE, Stack

attempts: Counter[str] = Counter()


@task(**task_hooks())
def extract() -> list[int]:
    return [1, 2, 3]


@task(**task_hooks())
def transform(rows: list[int]) -> list[int]:
    return [r * 10 for r in rows]


@task(**task_hooks())
def load(rows: list[int]) -> int:
    return sum(rows)


@flow(name="hooks-success", **flow_hooks())
def success_flow() -> int:
    return load(transform(extract()))


@task(**task_hooks(), retries=2, retry_delay_seconds=0)
def flaky_once(key: str) -> str:
    attempts[key] += 1
    if attempts[key] == 1:
        raise ConnectionError("first attempt drops")
    return "ok"


@flow(name="hooks-task-retry", **flow_hooks())
def task_retry_flow(key: str) -> str:
    return flaky_once(key)


class UpstreamDown(RuntimeError):
    pass


@task(**task_hooks(), retries=1, retry_delay_seconds=0)
def always_down() -> None:
    raise UpstreamDown("crm answered 503")


@flow(name="hooks-failure", retries=1, retry_delay_seconds=0, **flow_hooks())
def failure_flow() -> None:
    always_down()


@task(**task_hooks())
async def count(table: str) -> int:
    await asyncio.sleep(0)
    return len(table)


@flow(name="hooks-async", **flow_hooks())
async def async_flow() -> int:
    return sum(await asyncio.gather(count("orders"), count("customers")))


def first_run(synced: int) -> Counter[tuple[str, str]]:
    return Counter({(LIVE, "created"): 1, (LIVE, "started"): 1, (LIVE, "syncing"): 1,
                    (LIVE, "synced"): synced, (LIVE, "synccomplete"): 1,
                    (BATCH, "created"): 1, (BATCH, "started"): 1, (BATCH, "completed"): 1})


def test_a_successful_ad_hoc_flow_reports_its_first_run_and_a_bounce(local: Stack) -> None:
    assert success_flow() == 60
    assert local.emitted() == first_run(synced=3)
    events = local.receiver.wait_for(6)
    assert {e["subject_id"] for e in local.receiver.events()} == {"hooks-success"}
    assert all(r.path == f"/{LIVE}" for r in events)

    assert success_flow() == 60  # the second run: no created/started, completed re-armed
    assert local.emitted() - first_run(synced=3) == Counter(
        {(LIVE, "syncing"): 1, (LIVE, "synced"): 3, (LIVE, "synccomplete"): 1,
         (BATCH, "completed"): 1})


def test_the_events_carry_the_run_details_and_a_ui_link(local: Stack) -> None:
    state = success_flow(return_state=True)
    local.receiver.wait_for(6)
    events = {e["verb"]: e for e in local.receiver.events()}
    done = events["synccomplete"]
    assert done["type"] == "work.synccomplete" and done["subject_type"] == "work"
    assert done["source"]["orchestrator"] == "prefect"
    data = done["data"]
    assert data["flow_run_id"] == str(state.state_details.flow_run_id)
    assert data["flow"] == "hooks-success" and data["deployment"] is None
    assert data["state"] == "completed" and data["state_name"] == "Completed"
    assert data["duration_seconds"] >= 0 and data["start_time"] <= data["end_time"]
    assert data["url"].endswith(f"/runs/flow-run/{data['flow_run_id']}")
    synced = events["synced"]["data"]
    assert synced["task_run_name"].startswith(("extract", "transform", "load"))


def test_a_task_retried_then_successful_is_synced_once(local: Stack) -> None:
    assert task_retry_flow("retry-once") == "ok"
    assert attempts["retry-once"] == 2
    assert local.emitted() == first_run(synced=1)


def test_a_flow_failing_after_its_retries_reports_one_failed(local: Stack) -> None:
    with pytest.raises(UpstreamDown, match="crm answered 503"):
        failure_flow()
    assert local.emitted() == Counter(
        {(LIVE, "created"): 1, (LIVE, "started"): 1, (LIVE, "syncing"): 1, (LIVE, "failed"): 1,
         (BATCH, "created"): 1, (BATCH, "started"): 1, (BATCH, "failed"): 1})
    local.receiver.wait_for(4)
    (failed,) = [e for e in local.receiver.events() if e["verb"] == "failed"]
    assert failed["data"]["state"] == "failed"
    assert "crm answered 503" in failed["data"]["error"]
    assert {t["task_run_name"].split("-")[0] for t in failed["data"]["failed_tasks"]} == {
        "always_down"}


def test_an_async_flow_reports_like_a_sync_one(local: Stack) -> None:
    assert asyncio.run(async_flow()) == len("orders") + len("customers")
    assert local.emitted() == first_run(synced=2)


def test_a_subject_type_tag_on_the_flow_run_sets_the_subject_type(local: Stack) -> None:
    with tags("jobhooks:subject_type=segment"):
        success_flow()
    local.receiver.wait_for(6)
    assert {e["subject_type"] for e in local.receiver.events()} == {"segment"}
    assert {e["type"] for e in local.receiver.events()} >= {"segment.synccomplete"}


def test_a_bad_subject_type_tag_is_logged_and_falls_back_to_work(
    local: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="jobhooks"), tags("jobhooks:subject_type=segmnet"):
        assert success_flow() == 60
    local.receiver.wait_for(6)
    assert {e["subject_type"] for e in local.receiver.events()} == {"work"}
    assert "did you mean 'segment'" in caplog.text


def test_a_task_run_outside_a_flow_reports_nothing_and_works(local: Stack) -> None:
    assert extract() == [1, 2, 3]
    assert local.emitted() == Counter()
