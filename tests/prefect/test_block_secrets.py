"""The ``jobhooks-subscription`` Block keeps its signing secret in a SecretStr: its repr, str,
dumps, JSON, a log line quoting the block and a validation error never reveal it; only the
subscription jobhooks builds from it (to sign requests) holds the value."""

from __future__ import annotations

import base64
import logging

import pytest
from pydantic import ValidationError

from jobhooks_prefect import JobhooksSubscription

SECRET = "whsec_" + base64.b64encode(b"canary-prefect-block-key-012345").decode()
KEY = SECRET.removeprefix("whsec_")


def block() -> JobhooksSubscription:
    return JobhooksSubscription(url="https://hooks.example.com/ops", secret=SECRET,
                                verbs=["failed"])


def test_repr_str_and_dumps_of_the_block_hide_the_secret() -> None:
    saved = block()
    shown = [repr(saved), str(saved), str(saved.model_dump()),
             saved.model_dump_json(), str(dict(saved)), repr(saved.secret)]
    for text in shown:
        assert SECRET not in text and KEY not in text, text
    assert saved.model_dump(mode="json")["secret"] == "**********"
    assert saved.subscription_fields()["secret"] == SECRET  # what jobhooks signs with


def test_a_log_line_quoting_the_block_hides_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    saved = block()
    logging.getLogger("jobhooks").info("loaded %s (%r); secret=%s", saved, saved,
                                                saved.secret)
    assert "hooks.example.com" in caplog.text
    assert SECRET not in caplog.text and KEY not in caplog.text


def test_a_malformed_secret_is_refused_without_echoing_it() -> None:
    bad = "whsec_canary-prefect-not-base64!"
    with pytest.raises(ValidationError) as error:
        JobhooksSubscription(url="https://hooks.example.com/ops", secret=bad)
    assert "secret" in str(error.value)
    assert "canary-prefect-not-base64" not in str(error.value)
