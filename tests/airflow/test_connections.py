"""Subscriptions kept as Airflow connections: host = URL, password = secret(s), extras = the
other fields; read from environment variables in URI or JSON form (and the metadata DB, in the
end-to-end tests); a missing or malformed one is an error for that subscription only."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import pytest
from airflow.models.connection import Connection
from airflow.sdk import Connection as TaskConnection

from jobhooks_airflow import connections
from jobhooks_core.exceptions import ConfigurationError
from jobhooks_core.vocabulary import Mode, Verb

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def json_connection(**fields: object) -> str:
    return json.dumps({"conn_type": "jobhooks", **fields})


@pytest.mark.parametrize("kind", [Connection, TaskConnection])
def test_host_password_and_extras_make_the_fields(kind: type) -> None:
    conn = kind(
        conn_id="ops",
        conn_type="jobhooks",
        host="https://hooks.example.com/airflow?team=data",
        password=SECRET,
        extra=json.dumps({"verbs": "failed, completed", "mode": "batch", "batch_size": 5}),
    )
    assert connections.connection_fields("ops", conn) == {
        "url": "https://hooks.example.com/airflow?team=data",
        "secret": SECRET,
        "verbs": "failed, completed",
        "mode": "batch",
        "batch_size": 5,
    }


def test_a_uri_connection_carries_the_url_encoded_in_its_host() -> None:
    uri = (
        f"jobhooks://:{quote(SECRET, safe='')}@{quote('http://127.0.0.1:8765/hooks', safe='')}"
        "/?verbs=failed&subject_ids=export_%2A&enabled=false&headers=%7B%22X-Team%22%3A+%22data%22%7D"
    )
    fields = connections.connection_fields("ops", Connection(conn_id="ops", uri=uri))
    assert fields == {
        "url": "http://127.0.0.1:8765/hooks",
        "secret": SECRET,
        "verbs": "failed",
        "subject_ids": "export_*",
        "enabled": False,  # Airflow decodes JSON values in URI query strings
        "headers": {"X-Team": "data"},
    }


def test_a_bare_host_is_an_https_endpoint() -> None:
    conn = Connection(
        conn_id="ops",
        conn_type="jobhooks",
        host="hooks.example.com",
        port=8443,
        schema="airflow/events",
    )
    assert connections.connection_fields("ops", conn)["url"] == (
        "https://hooks.example.com:8443/airflow/events"
    )


def test_blank_form_fields_and_prefixed_form_fields_are_understood() -> None:
    extra = {"extra__jobhooks__verbs": "failed", "subject_types": "", "format": None}
    conn = Connection(
        conn_id="ops", conn_type="jobhooks", host="https://x.example/h", extra=json.dumps(extra)
    )
    assert connections.connection_fields("ops", conn) == {
        "url": "https://x.example/h",
        "verbs": "failed",
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("{not json", "subscription 'ops', field 'extra': the connection's extra is not valid"),
        ('["verbs"]', "the connection's extra must be a JSON object, got list"),
        ('{"headers": "X: 1"}', "field 'headers': is not a JSON object of header names"),
    ],
)
def test_a_malformed_extra_names_the_connection(extra: str, message: str) -> None:
    # The Task SDK's connection keeps the extra as it came (the server-side one refuses it).
    conn = TaskConnection(
        conn_id="ops", conn_type="jobhooks", host="https://x.example/h", extra=extra
    )
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        connections.connection_fields("ops", conn)


def test_load_reads_the_connections_named_in_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__JOBHOOKS__SUBSCRIPTIONS", "ops, catalog, nowhere, wrong_type")
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPS",
        json_connection(host="https://ops.example/h", password=SECRET, extra={"verbs": "failed"}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_CATALOG",
        json_connection(
            host="https://catalog.example/h", extra={"mode": "batch", "verbs": "faild"}
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_WRONG_TYPE", "http://ops.example/h")
    loaded = connections.load()
    (ops,) = loaded.subscriptions
    assert (ops.name, ops.url, ops.secrets) == ("ops", "https://ops.example/h", (SECRET,))
    assert ops.verbs == {Verb.FAILED} and ops.mode is Mode.REALTIME
    assert ops.origin == "Airflow connection ops"
    problems = sorted(str(e) for e in loaded.errors)
    assert problems[0].startswith("subscription 'catalog', field 'verbs': 'faild' is not a verb")
    assert problems[1].startswith(
        "subscription 'nowhere': is named in [jobhooks] subscriptions but no Airflow connection"
    )
    assert problems[2] == (
        "subscription 'wrong_type': the Airflow connection has type 'http'; a subscription "
        "needs type 'jobhooks'"
    )


def test_a_connection_variable_airflow_cannot_parse_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_JOBHOOKS_DEFAULT",
        '{"conn_type": "jobhooks", "host": "https://x.example/h", "extra": "{oops"}',
    )
    (error,) = connections.load().errors
    assert str(error).startswith(
        "subscription 'jobhooks_default': AIRFLOW_CONN_JOBHOOKS_DEFAULT is set but Airflow "
        "cannot read it as a connection"
    )


def test_the_default_connection_missing_is_no_error() -> None:
    loaded = connections.load()
    assert loaded.subscriptions == () and loaded.errors == ()


def test_the_config_file_and_connections_are_merged(
    monkeypatch: pytest.MonkeyPatch, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "jobhooks.json"
    config.write_text(
        json.dumps({"subscriptions": [{"name": "from_file", "url": "https://file.example/h"}]})
    )
    monkeypatch.setenv("JOBHOOKS_CONFIG", str(config))
    monkeypatch.setenv("AIRFLOW_CONN_JOBHOOKS_DEFAULT", json_connection(host="https://c.example/h"))
    with caplog.at_level(logging.ERROR, logger="jobhooks"):
        loaded = connections.load()
    assert [s.name for s in loaded.subscriptions] == ["from_file", "jobhooks_default"]
    assert not caplog.records  # problems are the caller's to log (once per process)
