"""Loading subscriptions from the JOBHOOKS_CONFIG file (TOML or JSON) and merging sources."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from jobhooks_core import Verb, load_config_file, load_subscriptions, parse_subscriptions

TOML = """
[[subscriptions]]
name = "ops-alerts"
url = "https://hooks.example.com/ops"
verbs = ["failed"]
subject_ids = ["export_*"]

[[subscriptions]]
name = "catalog"
url = "https://catalog.example.com/jobs"
mode = "batch"
batch_size = 500
format = "cloudevents"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_file_loads_every_subscription(tmp_path: Path) -> None:
    loaded = load_config_file(write(tmp_path, "jobhooks.toml", TOML))
    assert loaded.errors == ()
    ops, catalog = loaded.subscriptions
    assert ops.name == "ops-alerts" and ops.verbs == {Verb.FAILED}
    assert catalog.batch_size == 500 and catalog.format.value == "cloudevents"
    assert ops.origin == f"config file {tmp_path / 'jobhooks.toml'}"


def test_json_file_loads_the_same_model(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "jobhooks.json",
        json.dumps(
            {"subscriptions": [{"name": "a", "url": "https://a.example.com", "verbs": ["started"]}]}
        ),
    )
    (sub,) = load_config_file(path).subscriptions
    assert sub.verbs == {Verb.STARTED}


def test_one_bad_subscription_is_skipped_and_the_others_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.toml",
        TOML + '\n[[subscriptions]]\nname = "bad"\n'
        'url = "https://x.example.com"\nverbs = ["faild"]\n',
    )
    loaded = load_config_file(path)
    assert [s.name for s in loaded.subscriptions] == ["ops-alerts", "catalog"]
    (error,) = loaded.errors
    assert "subscription 'bad', field 'verbs'" in str(error) and "'failed'" in str(error)


def test_duplicate_names_keep_the_first_and_report_the_second(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.toml",
        TOML + '\n[[subscriptions]]\nname = "catalog"\nurl = "https://other.example.com"\n',
    )
    loaded = load_config_file(path)
    assert [s.url for s in loaded.subscriptions if s.name == "catalog"] == [
        "https://catalog.example.com/jobs"
    ]
    assert "defined twice" in str(loaded.errors[0])


def test_subscription_without_a_name_is_reported(tmp_path: Path) -> None:
    loaded = load_config_file(
        write(tmp_path, "c.toml", '[[subscriptions]]\nurl = "https://x.example.com"\n')
    )
    assert loaded.subscriptions == ()
    assert "subscription #1 has no 'name'" in str(loaded.errors[0])


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("broken.toml", "[[subscriptions]\n", "is not valid TOML"),
        ("broken.json", "{", "is not valid JSON"),
        ("list.json", "[]", "must hold a table"),
        ("wrong.toml", 'subscriptions = "all"\n', "'subscriptions' must be a list"),
        (
            "typo.toml",
            "[[subscription]]\nname='a'\n",
            "unknown top-level key 'subscription'; did you mean 'subscriptions'?",
        ),
    ],
)
def test_unusable_files_are_one_clear_error(
    tmp_path: Path, name: str, text: str, fragment: str
) -> None:
    loaded = load_config_file(write(tmp_path, name, text))
    assert loaded.subscriptions == ()
    assert any(fragment in str(e) for e in loaded.errors), loaded.errors


def test_missing_file_is_named(tmp_path: Path) -> None:
    loaded = load_config_file(tmp_path / "nope.toml")
    assert "does not exist" in str(loaded.errors[0])
    assert str(tmp_path / "nope.toml") in str(loaded.errors[0])


def test_environment_file_and_adapter_sources_are_merged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, "c.toml", TOML)
    from_connection = parse_subscriptions(
        [
            ("jobhooks_default", {"url": "https://airflow.example.com/h", "verbs": "failed"}),
            ("broken_conn", {"url": "gopher://x"}),
        ],
        origin="airflow connection",
    )
    with caplog.at_level(logging.ERROR, logger="jobhooks"):
        loaded = load_subscriptions(from_connection, environ={"JOBHOOKS_CONFIG": str(path)})
    assert [s.name for s in loaded.subscriptions] == ["ops-alerts", "catalog", "jobhooks_default"]
    assert len(loaded.errors) == 1
    assert "broken_conn" in caplog.text and "jobhooks check" in caplog.text


def test_no_config_file_means_no_subscriptions_and_no_error() -> None:
    loaded = load_subscriptions(environ={})
    assert loaded.subscriptions == () and loaded.errors == ()
