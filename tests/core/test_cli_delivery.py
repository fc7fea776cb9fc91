"""`jobhooks emit`, `send-test` and `outbox …` as a user runs them, against a real receiver."""

from __future__ import annotations

import json
from pathlib import Path

from standardwebhooks import Webhook

from tests.core.clitools import cli_env, run, write_config
from tests.receiver import Reply, TestReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EMIT = ["emit", "--subject-type", "work", "--subject-id", "daily_export", "--verb", "failed"]


def env_for(tmp_path: Path, receiver: TestReceiver, **fields: object) -> dict[str, str]:
    config = write_config(tmp_path / "jobhooks.json",
                          {"name": "ops", "url": receiver.url, "secret": SECRET, **fields})
    return cli_env(tmp_path / "home", config)


def test_emit_wait_reports_delivery_and_the_receiver_verifies_it(
    tmp_path: Path, receiver: TestReceiver
) -> None:
    result = run([*EMIT, "--data", '{"run_id": "r1", "error": "boom"}', "--wait"],
                 env_for(tmp_path, receiver))
    assert result.returncode == 0, result.stderr
    assert "work.failed daily_export" in result.stdout and "→ ops" in result.stdout
    assert "ops: delivered (200)" in result.stdout
    (request,) = receiver.wait_for(1)
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["data"] == {"run_id": "r1", "error": "boom"}


def test_emit_without_wait_still_delivers_before_exiting(
    tmp_path: Path, receiver: TestReceiver
) -> None:
    result = run(EMIT, env_for(tmp_path, receiver))
    assert result.returncode == 0, result.stderr
    assert len(receiver.wait_for(1)) == 1


def test_emit_wait_exits_1_when_the_endpoint_fails(tmp_path: Path,
                                                    receiver: TestReceiver) -> None:
    receiver.default = Reply(500, body=b"database unavailable")
    env = env_for(tmp_path, receiver)
    env["JOBHOOKS_RETRY_SCHEDULE"] = "0,3600"
    result = run([*EMIT, "--wait"], env)
    assert result.returncode == 1
    assert "ops: failed, will retry: 500" in result.stderr
    assert "database unavailable" in result.stderr


def test_emit_same_occurrence_twice_is_delivered_once(tmp_path: Path,
                                                       receiver: TestReceiver) -> None:
    env = env_for(tmp_path, receiver)
    for _ in range(2):
        assert run([*EMIT, "--occurrence", "run-7", "--wait"], env).returncode == 0
    receiver.wait_for(1)
    assert len(receiver.requests) == 1


def test_emit_refuses_a_misspelt_verb_with_a_suggestion(tmp_path: Path,
                                                        receiver: TestReceiver) -> None:
    result = run(["emit", "--subject-type", "work", "--subject-id", "x", "--verb", "faild"],
                 env_for(tmp_path, receiver))
    assert result.returncode == 2
    assert "'faild' is not a verb; did you mean 'failed'?" in result.stderr
    assert receiver.requests == []


def test_emit_refuses_an_unknown_subject_type(tmp_path: Path, receiver: TestReceiver) -> None:
    result = run(["emit", "--subject-type", "segmnt", "--subject-id", "x", "--verb", "failed"],
                 env_for(tmp_path, receiver))
    assert result.returncode == 2 and "did you mean 'segment'?" in result.stderr


def test_emit_refuses_data_that_is_not_a_json_object(tmp_path: Path,
                                                     receiver: TestReceiver) -> None:
    env = env_for(tmp_path, receiver)
    assert "not valid JSON" in run([*EMIT, "--data", "{oops"], env).stderr
    assert "must be a JSON object" in run([*EMIT, "--data", "[1]"], env).stderr


def test_emit_with_no_matching_subscription_says_so(tmp_path: Path,
                                                    receiver: TestReceiver) -> None:
    env = env_for(tmp_path, receiver, verbs=["started"])
    result = run([*EMIT, "--wait"], env)
    assert result.returncode == 1
    assert "no subscription" in result.stdout
    assert "not delivered: no subscription receives this event" in result.stderr


def test_send_test_prints_the_answer(tmp_path: Path, receiver: TestReceiver) -> None:
    result = run(["send-test", "ops"], env_for(tmp_path, receiver))
    assert result.returncode == 0, result.stderr
    assert "→ 200" in result.stdout and "delivered" in result.stdout
    (event,) = receiver.events()
    assert event["data"]["test"] is True and event["subject_id"] == "jobhooks-send-test"


def test_send_test_reports_a_failing_endpoint(tmp_path: Path, receiver: TestReceiver) -> None:
    receiver.default = Reply(404, body=b"no such hook")
    result = run(["send-test", "ops"], env_for(tmp_path, receiver))
    assert result.returncode == 1 and "404" in result.stderr and "no such hook" in result.stderr


def test_send_test_names_the_configured_subscriptions_for_an_unknown_name(
    tmp_path: Path, receiver: TestReceiver
) -> None:
    result = run(["send-test", "opps"], env_for(tmp_path, receiver))
    assert result.returncode == 2 and "no subscription named 'opps'" in result.stderr
    assert "configured: ops" in result.stderr


def test_outbox_status_list_retry_and_purge(tmp_path: Path, receiver: TestReceiver) -> None:
    receiver.default = Reply(500)
    env = env_for(tmp_path, receiver)
    env["JOBHOOKS_RETRY_SCHEDULE"] = "0"  # one attempt, then a dead letter
    assert run([*EMIT, "--wait"], env).returncode == 1
    receiver.wait_for(1)

    listed = json.loads(run(["outbox", "list", "--json"], env).stdout)
    assert [(r["subscription"], r["type"], r["status"], r["last_status"]) for r in listed] == [
        ("ops", "work.failed", "dead", 500)]
    text = run(["outbox", "list", "--status", "dead"], env).stdout
    assert "work.failed" in text and "daily_export" in text

    receiver.default = Reply(204)
    retried = run(["outbox", "retry"], env)
    assert retried.returncode == 0 and "1 row due now" in retried.stdout
    assert run([*EMIT, "--occurrence", "second", "--wait"], env).returncode == 0

    status = json.loads(run(["outbox", "status", "--json"], env).stdout)
    assert status["totals"]["delivered"] >= 1
    assert status["subscriptions"]["ops"]["disabled"] is False

    purged = run(["outbox", "purge"], env)
    assert purged.returncode == 0 and "purged" in purged.stdout
    refused = run(["outbox", "purge", "--status", "pending"], env)
    assert refused.returncode == 2 and "--yes" in refused.stderr


def test_410_shows_in_check_and_status_until_retry_reenables(
    tmp_path: Path, receiver: TestReceiver
) -> None:
    receiver.default = Reply(410)
    env = env_for(tmp_path, receiver)
    assert run([*EMIT, "--wait"], env).returncode == 1
    check = run(["check"], env)
    assert check.returncode == 1 and "disabled: 410 Gone" in check.stderr
    status = json.loads(run(["outbox", "status", "--json"], env).stdout)
    assert status["subscriptions"]["ops"]["disabled"] is True
    text = run(["outbox", "status"], env).stdout
    assert "DISABLED: 410 Gone" in text
    retried = run(["outbox", "retry", "--subscription", "ops"], env)
    assert "re-enabled" in retried.stdout
    assert run(["check"], env).returncode == 0
