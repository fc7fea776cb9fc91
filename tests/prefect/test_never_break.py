"""jobhooks never changes a flow's result or state: a broken or missing block, a receiver that
refuses or never answers, an outbox that cannot be written, a flow that raises."""

from __future__ import annotations

import logging
import time

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client

from jobhooks_prefect import JobhooksSubscription, flow_hooks, task_hooks
from tests.prefect.helpers import LIVE, Stack
from tests.receiver import Reply


@task(**task_hooks())
def add(a: int, b: int) -> int:
    return a + b


@flow(name="never-break", **flow_hooks(subscriptions=["missing-block", "broken-block"]))
def guarded_flow() -> int:
    return add(1, add(2, 3))


@flow(name="never-break-plain")
def unguarded_flow() -> int:
    return add.fn(1, add.fn(2, 3))


class Boom(ValueError):
    pass


@flow(name="never-break-raises", **flow_hooks())
def raising_flow() -> None:
    raise Boom("the flow's own error")


def save_broken_block() -> None:
    # Saved around the block's own validation, as the UI or the REST API could: a bad verb and
    # an ftp URL.
    with get_client(sync_client=True) as client:
        block_type = client.read_block_type_by_slug("jobhooks-subscription")
        schema = client.get_most_recent_block_schema_for_block_type(block_type.id)
        assert schema is not None
        from prefect.client.schemas.actions import BlockDocumentCreate

        try:
            existing = client.read_block_document_by_name("broken-block", "jobhooks-subscription")
            client.delete_block_document(existing.id)
        except Exception:  # noqa: BLE001 - not there yet
            pass
        client.create_block_document(BlockDocumentCreate(
            name="broken-block", block_type_id=block_type.id, block_schema_id=schema.id,
            data={"url": "ftp://files.example.com", "verbs": ["faild"]}))


def test_a_broken_and_a_missing_block_are_logged_and_skipped(
    local: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    save_broken_block()
    with caplog.at_level(logging.ERROR, logger="jobhooks"):
        state = guarded_flow(return_state=True)
    assert state.is_completed() and state.result() == 6
    assert "jobhooks-subscription/missing-block" in caplog.text
    assert "jobhooks-subscription/broken-block" in caplog.text
    assert "'faild' is not a verb" in caplog.text
    assert local.emitted()[(LIVE, "synccomplete")] == 1  # the config file's subscription works


def test_a_receiver_that_never_answers_does_not_slow_the_flow(
    local: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBHOOKS_FLUSH_TIMEOUT", "1")
    unguarded_flow()  # warm up: Prefect's own first-run costs are not jobhooks'
    started = time.monotonic()
    unguarded_flow()
    plain = time.monotonic() - started
    local.receiver.default = Reply.hang()
    started = time.monotonic()
    state = guarded_flow(return_state=True)
    hooked = time.monotonic() - started
    assert state.is_completed() and state.result() == 6
    local.receiver.wait_for(1)  # a request is hanging right now
    assert hooked < plain + 2.0, (plain, hooked)  # far below one request's 10 s timeout


def test_a_receiver_that_refuses_connections_changes_nothing(
    local: Stack, monkeypatch: pytest.MonkeyPatch, free_port: int
) -> None:
    local.config.write_text(
        f'{{"subscriptions": [{{"name": "gone", "url": "http://127.0.0.1:{free_port}/"}}]}}')
    state = guarded_flow(return_state=True)
    assert state.is_completed() and state.result() == 6
    assert local.emitted()[("gone", "synccomplete")] == 1  # kept for a long-lived process


def test_an_outbox_that_cannot_be_written_changes_nothing(
    local: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = local.home.parent / "not-a-directory"
    blocker.write_text("a file where the outbox directory should be")
    monkeypatch.setenv("JOBHOOKS_HOME", str(blocker / "jobhooks"))
    with caplog.at_level(logging.ERROR, logger="jobhooks"):
        state = guarded_flow(return_state=True)
    assert state.is_completed() and state.result() == 6
    assert "no effect on the" in caplog.text


def test_a_flow_error_reaches_the_caller_unchanged(local: Stack) -> None:
    with pytest.raises(Boom, match="the flow's own error"):
        raising_flow()
    state = raising_flow(return_state=True)
    assert state.is_failed()
    with pytest.raises(Boom):
        state.result()
    local.receiver.wait_for(1)
    assert any(e["verb"] == "failed" for e in local.receiver.events())


def test_jobhooks_disabled_emits_nothing(local: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBHOOKS_ENABLED", "false")
    assert guarded_flow() == 6
    assert local.emitted() == {}


def test_block_saved_with_validation_bypassed_is_refused_when_loaded(local: Stack) -> None:
    save_broken_block()
    from jobhooks_prefect._block import load_block_subscriptions

    loaded = load_block_subscriptions(["broken-block"])
    assert loaded.subscriptions == ()
    (error,) = loaded.errors
    assert "broken-block" in str(error) and "faild" in str(error)
    with pytest.raises(RuntimeError, match="failed validation"):  # Prefect's own message
        JobhooksSubscription.load("broken-block")
