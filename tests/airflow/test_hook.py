"""The hook behind the ``jobhooks`` connection type: the subscription it holds, and the
connection form's Test button."""

from __future__ import annotations

import json

import pytest

from jobhooks_airflow.hook import JobhooksHook
from jobhooks_core.exceptions import ConfigurationError
from jobhooks_core.vocabulary import Verb
from tests.receiver import Reply, TestReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def connection(monkeypatch: pytest.MonkeyPatch, url: str, **extra: object) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPS",
        json.dumps({"conn_type": "jobhooks", "host": url, "password": SECRET, "extra": extra}),
    )


def test_the_hook_holds_a_validated_subscription(monkeypatch: pytest.MonkeyPatch) -> None:
    connection(monkeypatch, "https://hooks.example.com/ops", verbs="failed")
    sub = JobhooksHook("ops").get_conn()
    assert (sub.name, sub.url, sub.verbs, sub.secrets) == (
        "ops",
        "https://hooks.example.com/ops",
        frozenset({Verb.FAILED}),
        (SECRET,),
    )


def test_a_bad_field_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    connection(monkeypatch, "https://hooks.example.com/ops", mode="bacth")
    with pytest.raises(ConfigurationError, match="field 'mode': 'bacth' is not a valid mode"):
        JobhooksHook("ops").get_conn()


def test_the_test_button_posts_a_signed_test_event(
    monkeypatch: pytest.MonkeyPatch, receiver: TestReceiver
) -> None:
    connection(monkeypatch, receiver.url)
    ok, message = JobhooksHook("ops").test_connection()
    assert ok and message == f"{receiver.url} answered 200: delivered"
    (event,) = receiver.events()
    assert event["subject_id"] == "jobhooks-send-test" and event["data"]["test"] is True
    assert "webhook-signature" in receiver.requests[0].headers


def test_the_test_button_reports_what_went_wrong(
    monkeypatch: pytest.MonkeyPatch, receiver: TestReceiver
) -> None:
    receiver.default = Reply(500)
    connection(monkeypatch, receiver.url)
    assert JobhooksHook("ops").test_connection() == (
        False,
        f"{receiver.url}: 500 Internal Server Error",
    )
    connection(monkeypatch, "ftp://hooks.example.com/ops")
    ok, message = JobhooksHook("ops").test_connection()
    assert not ok and "field 'url'" in message
