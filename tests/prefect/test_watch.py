"""``jobhooks prefect watch`` against a real Prefect server, beside served deployments (a real
runner) and flows with hooks: every flow is covered, crashes and cancellations included, each
state change is delivered once, and a restarted watcher reads what it missed."""

from __future__ import annotations

import datetime as dt
import os
import signal
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.deployments import run_deployment
from prefect.states import Cancelling

from tests.prefect.conftest import run
from tests.prefect.helpers import (
    BATCH,
    JOBHOOKS,
    CuttableProxy,
    Stack,
    Watch,
    deliveries_unique,
    jobhooks_env,
    wait_until,
)
from tests.receiver import TestReceiver


@task
def plain_step(n: int) -> int:
    return n + 1


@flow(name="watch-plain")
def plain_flow() -> int:
    return plain_step(1) + plain_step(2)


@flow(name="watch-resume")
def resume_flow() -> int:
    return plain_step(41)


def first_run(**verbs: int) -> dict[str, int]:
    """A work's first run, as the realtime subscription sees it."""
    return {"created": 1, "started": 1, "syncing": 1, "synccomplete": 1, **verbs}


def flow_run_end(flow_run_id: uuid.UUID) -> dt.datetime:
    def ended() -> dt.datetime | None:
        with get_client(sync_client=True) as client:
            found = client.read_flow_run(flow_run_id)
        return found.end_time if found.state is not None and found.state.is_final() else None

    return wait_until(ended, 90, f"flow run {flow_run_id} to end")  # type: ignore[no-any-return]


def wait_watched(stack: Stack, moment: dt.datetime) -> None:
    """Until the watcher has read the server's events up to ``moment``."""
    api_url = stack.env["PREFECT_API_URL"]

    def passed() -> bool:
        cursor = stack.cursor(api_url)
        return cursor is not None and dt.datetime.fromisoformat(cursor) >= moment

    wait_until(passed, 60, f"the watcher to read past {moment.isoformat()}")


def run_served(stack: Stack, name: str, **parameters: object) -> uuid.UUID:
    flow_run = run_deployment(name, parameters=parameters, timeout=0)
    return flow_run.id  # type: ignore[no-any-return,union-attr]


def test_a_flow_without_hooks_is_reported_by_the_watcher(in_stack: Stack) -> None:
    state = plain_flow(return_state=True)
    in_stack.wait_for_verb("watch-plain", "completed", path=BATCH)
    in_stack.wait_for_verb("watch-plain", "synccomplete")
    wait_watched(in_stack, flow_run_end(state.state_details.flow_run_id))
    in_stack.assert_verbs("watch-plain", first_run(synced=2))
    in_stack.assert_verbs("watch-plain", {"created": 1, "started": 1, "completed": 1}, BATCH)
    (done,) = in_stack.wait_for_verb("watch-plain", "synccomplete")
    assert done["data"]["flow_run_id"] == str(state.state_details.flow_run_id)
    assert done["data"]["url"].endswith(f"/runs/flow-run/{done['data']['flow_run_id']}")


def test_hooks_and_watcher_together_deliver_each_state_change_once(stack: Stack) -> None:
    subject = "segment-export/nightly"
    flow_run_id = run_served(stack, subject)
    end = flow_run_end(flow_run_id)
    stack.wait_for_verb(subject, "synccomplete")
    wait_watched(stack, end)

    def run_verbs() -> Counter[str]:
        return Counter(e["verb"] for e in stack.events(subject)
                       if e["data"].get("flow_run_id") == str(flow_run_id))

    expected = Counter({"started": 1, "syncing": 1, "synced": 3, "synccomplete": 1})
    wait_until(lambda: run_verbs() == expected, 30, f"{dict(expected)}, got {run_verbs()}")
    live = stack.events(subject)
    assert deliveries_unique(live)
    assert {e["subject_type"] for e in live} == {"segment"}  # the deployment's tag
    assert stack.verbs(subject)["created"] == 1  # the deployment, when `serve` created it
    # An active schedule stands behind the run: never `completed`.
    assert "completed" not in stack.verbs(subject, BATCH)
    assert stack.serve_log is not None
    assert "Hook 'jobhooks_flow_state' finished running successfully" in (
        stack.serve_log.read_text(errors="replace"))


def test_a_deployment_run_with_no_schedule_behind_it_completes(stack: Stack) -> None:
    subject = "quick-sync/manual"
    flow_run_id = run_served(stack, subject)
    stack.wait_for_verb(subject, "completed", path=BATCH)
    wait_watched(stack, flow_run_end(flow_run_id))
    stack.assert_verbs(subject, first_run(synced=3))
    stack.assert_verbs(subject, {"created": 1, "started": 1, "completed": 1}, BATCH)


def _start_sleepy(stack: Stack, name: str) -> tuple[uuid.UUID, int]:
    pid_file = Path(tempfile.mkdtemp(prefix="jobhooks-sleepy-")) / "pid"
    flow_run_id = run_served(stack, name, pid_file=str(pid_file))
    pid = wait_until(lambda: pid_file.exists() and int(pid_file.read_text()), 90,
                     f"{name} to write its process id")
    return flow_run_id, int(pid)


def test_a_flow_run_killed_with_sigkill_is_reported_crashed(stack: Stack) -> None:
    subject = "sleepy/kill-me"
    flow_run_id, pid = _start_sleepy(stack, subject)
    stack.wait_for_verb(subject, "syncing")
    os.kill(pid, signal.SIGKILL)  # no hook in that process will ever run again
    (failed,) = stack.wait_for_verb(subject, "failed")
    wait_watched(stack, flow_run_end(flow_run_id))
    assert failed["data"]["state"] == "crashed" and failed["data"]["state_name"] == "Crashed"
    assert "SIGKILL" in failed["data"]["error"] or "-9" in failed["data"]["error"]
    stack.assert_verbs(subject, {"created": 1, "started": 1, "syncing": 1, "failed": 1})
    stack.assert_verbs(subject, {"created": 1, "started": 1, "failed": 1}, BATCH)


def test_a_cancelled_flow_run_is_reported_failed_with_state_cancelled(stack: Stack) -> None:
    subject = "sleepy/cancel-me"
    flow_run_id, _ = _start_sleepy(stack, subject)
    stack.wait_for_verb(subject, "syncing")
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Cancelling(), force=True)
    (failed,) = stack.wait_for_verb(subject, "failed")
    wait_watched(stack, flow_run_end(flow_run_id))
    assert failed["data"]["state"] == "cancelled"
    stack.assert_verbs(subject, {"created": 1, "started": 1, "syncing": 1, "failed": 1})


def test_the_deployment_lifecycle_is_created_update_deleted(stack: Stack) -> None:
    subject = "lifecycle-flow/lifecycle"
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("lifecycle-flow")
        deployment_id = client.create_deployment(
            flow_id, "lifecycle", tags=["jobhooks:subject_type=report"])
        stack.wait_for_verb(subject, "created")
        client.update_deployment(deployment_id, DeploymentUpdate(description="v2"))
        stack.wait_for_verb(subject, "update")
        client.delete_deployment(deployment_id)
    stack.wait_for_verb(subject, "deleted")
    stack.assert_verbs(subject, {"created": 1, "update": 1, "deleted": 1})
    stack.assert_verbs(subject, {"created": 1, "update": 1, "deleted": 1}, BATCH)
    events = {e["verb"]: e for e in stack.events(subject)}
    assert {e["subject_type"] for e in events.values()} == {"report"}
    assert events["update"]["data"]["updated_fields"] == ["description"]
    assert events["deleted"]["data"]["deployment_id"] == str(deployment_id)


def test_a_restarted_watcher_reports_what_happened_while_it_was_down(
    prefect_server: dict[str, str], tmp_path: Path
) -> None:
    with TestReceiver() as receiver:
        own = Stack(tmp_path / "jobhooks", receiver)
        env = {**prefect_server, **jobhooks_env(own)}
        own.env = env
        watch = Watch(env, tmp_path / "watch.log").start()
        watch.wait_connected()
        assert watch.stop() == 0
        assert "jobhooks prefect watch: stopping" in watch.output()

        state = resume_flow(return_state=True)  # nobody is watching
        assert receiver.requests == []

        watch.start()
        try:
            own.wait_for_verb("watch-resume", "completed", path=BATCH)
            wait_watched(own, flow_run_end(state.state_details.flow_run_id))
            own.assert_verbs("watch-resume", first_run(synced=1))
        finally:
            watch.stop()
        assert deliveries_unique(own.events("watch-resume"))


def test_a_watcher_without_a_server_keeps_trying_and_stops_on_sigterm(
    prefect_server: dict[str, str], tmp_path: Path, free_port: int
) -> None:
    with TestReceiver() as receiver:
        own = Stack(tmp_path / "jobhooks", receiver)
        env = {**prefect_server, **jobhooks_env(own),
               "PREFECT_API_URL": f"http://127.0.0.1:{free_port}/api"}
        watch = Watch(env, tmp_path / "watch.log").start()
        try:
            wait_until(lambda: "reconnecting in" in watch.output(), 60,
                       "the watcher to report the missing server")
            assert watch.process is not None and watch.process.poll() is None
        finally:
            assert watch.stop() == 0


def test_the_prefect_commands_explain_themselves(prefect_server: dict[str, str]) -> None:
    helped = run([JOBHOOKS, "prefect", "watch", "--help"], prefect_server)
    assert helped.returncode == 0 and "SIGTERM" in helped.stdout
    bare = run([JOBHOOKS, "prefect"], prefect_server)
    assert bare.returncode == 2 and "watch" in bare.stderr
    no_api = {k: v for k, v in prefect_server.items() if k != "PREFECT_API_URL"}
    refused = run([JOBHOOKS, "prefect", "watch"], no_api)
    assert refused.returncode == 2 and "PREFECT_API_URL" in refused.stderr


@flow(name="watch-dropped")
def dropped_flow() -> int:
    return plain_step(6)


def test_a_dropped_connection_loses_no_event(prefect_server: dict[str, str], tmp_path: Path
                                              ) -> None:
    server_port = int(prefect_server["PREFECT_API_URL"].split(":")[2].split("/")[0])
    proxy = CuttableProxy(server_port)
    try:
        with TestReceiver() as receiver:
            own = Stack(tmp_path / "jobhooks", receiver)
            env = {**prefect_server, **jobhooks_env(own),
                   "PREFECT_API_URL": f"http://127.0.0.1:{proxy.port}/api"}
            own.env = env
            watch = Watch(env, tmp_path / "watch.log").start()
            try:
                watch.wait_connected()
                proxy.cut()  # the watcher's stream and API connections drop
                wait_until(lambda: "reconnecting in" in watch.output(), 30,
                           "the watcher to notice the dropped connection")
                state = dropped_flow(return_state=True)  # straight to the server
                proxy.restore()
                own.wait_for_verb("watch-dropped", "completed", path=BATCH)
                wait_watched(own, flow_run_end(state.state_details.flow_run_id))
                own.assert_verbs("watch-dropped", first_run(synced=1))
            finally:
                watch.stop()
    finally:
        proxy.close()
