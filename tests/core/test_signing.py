"""Signing: receivers verify with the public standardwebhooks library, unchanged."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import importlib.metadata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from jobhooks_core.events import Event
from jobhooks_core.exceptions import SignatureError
from jobhooks_core.formats import WireFormat, render_event
from jobhooks_core.signing import (
    SECRET_PREFIX,
    generate_secret,
    sign,
    validate_secret,
    verify,
    webhook_headers,
)
from tests.strategies import events

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"n" * 24).decode()
BODY = b'{"id":"e1","subject_id":"daily_export","data":{"note":"\xc3\xbc"}}'


def expected_signature(secret: str, msg_id: str, seconds: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{seconds}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed(
    msg_id: str = "msg_1",
    body: bytes = BODY,
    secrets: tuple[str, ...] = (SECRET,),
    age: dt.timedelta = dt.timedelta(0),
) -> dict[str, str]:
    return webhook_headers(msg_id, body, secrets, timestamp=dt.datetime.now(dt.UTC) - age)


# Interoperability ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(WireFormat))
@given(event=events())
def test_any_rendered_event_verifies_with_the_public_library(fmt: WireFormat, event: Event) -> None:
    body = render_event(fmt, event).body
    headers = signed(event.id, body)

    assert Webhook(SECRET).verify(body, headers, json_parse=False) is None
    verify([SECRET], body, headers)


def test_signature_is_hmac_sha256_of_id_timestamp_body() -> None:
    # A non-UTC time: the header and the signature must both use the true Unix seconds.
    moment = dt.datetime(2026, 11, 27, 3, 2, 3, 900_000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    seconds = 1_795_741_323  # 2026-11-27T01:02:03Z, fraction dropped

    headers = webhook_headers("msg_1", BODY, [SECRET], timestamp=moment)

    assert headers["webhook-timestamp"] == str(seconds)
    assert headers["webhook-signature"] == expected_signature(SECRET, "msg_1", seconds, BODY)
    assert sign([SECRET], "msg_1", moment, BODY) == headers["webhook-signature"]


def test_rotation_signs_with_every_secret_and_each_verifies() -> None:
    headers = signed(secrets=(SECRET, OTHER_SECRET))

    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(SECRET).verify(BODY, headers)
    Webhook(OTHER_SECRET).verify(BODY, headers)
    verify([OTHER_SECRET], BODY, headers)


def test_verify_passes_when_any_configured_secret_matches() -> None:
    headers = signed(secrets=(OTHER_SECRET,))

    verify([SECRET, OTHER_SECRET], BODY, headers)


# Rejections ------------------------------------------------------------------------------


def test_tampered_body_fails() -> None:
    headers = signed()
    tampered = BODY.replace(b"daily_export", b"daily_exporT")

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, headers)
    with pytest.raises(SignatureError, match="webhook-signature matches none"):
        verify([SECRET], tampered, headers)


def test_wrong_secret_fails_without_naming_it() -> None:
    with pytest.raises(SignatureError) as info:
        verify([OTHER_SECRET], BODY, signed())

    assert OTHER_SECRET not in str(info.value)
    assert OTHER_SECRET.removeprefix(SECRET_PREFIX) not in str(info.value)


def test_old_timestamp_fails() -> None:
    headers = signed(age=dt.timedelta(minutes=10))

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY, headers)
    with pytest.raises(
        SignatureError, match=r"webhook-timestamp is 60[01] s old; the tolerance is 300 s"
    ):
        verify([SECRET], BODY, headers)


def test_future_timestamp_fails() -> None:
    with pytest.raises(SignatureError, match="in the future"):
        verify([SECRET], BODY, signed(age=-dt.timedelta(minutes=10)))


def test_tolerance_narrows_the_window() -> None:
    headers = signed(age=dt.timedelta(minutes=2))

    verify([SECRET], BODY, headers)
    with pytest.raises(SignatureError, match="tolerance is 60 s"):
        verify([SECRET], BODY, headers, tolerance=dt.timedelta(minutes=1))


def test_tolerance_wider_than_the_library_window_is_refused() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        verify([SECRET], BODY, signed(), tolerance=dt.timedelta(hours=1))


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_fails_and_is_named(header: str) -> None:
    headers = signed()
    del headers[header]

    with pytest.raises(SignatureError, match=header):
        verify([SECRET], BODY, headers)


@pytest.mark.parametrize("value", ["soon", "1.5e9", "-5", "1_795_741_323", ""])
def test_malformed_timestamp_fails(value: str) -> None:
    headers = signed() | {"webhook-timestamp": value}

    with pytest.raises(SignatureError, match="webhook-timestamp"):
        verify([SECRET], BODY, headers)


@pytest.mark.parametrize("value", ["garbage", "v1,%%%", "v2,abc"])
def test_malformed_signature_fails(value: str) -> None:
    headers = signed() | {"webhook-signature": value}

    with pytest.raises(SignatureError, match="webhook-signature"):
        verify([SECRET], BODY, headers)


def test_body_that_is_not_utf8_fails() -> None:
    with pytest.raises(SignatureError, match="not UTF-8"):
        verify([SECRET], b"\xff\xfe", signed())


def test_header_names_are_matched_case_insensitively() -> None:
    headers = {name.title(): value for name, value in signed().items()}

    verify([SECRET], BODY, headers)


# Secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "says"),
    [
        ("c2VjcmV0LXdpdGhvdXQtcHJlZml4LWF0LWFsbA==", "does not start with 'whsec_'"),
        ("WHSEC_" + base64.b64encode(b"k" * 32).decode(), "does not start with 'whsec_'"),
        ("whsec_this is *not* base64 at all!", "not 'whsec_' followed by base64"),
        (
            "whsec_" + base64.b64encode(b"short secret").decode(),
            "decodes to 12 bytes; use 24 to 64",
        ),
        ("whsec_" + base64.b64encode(b"L" * 65).decode(), "decodes to 65 bytes; use 24 to 64"),
        ("whsec_", "decodes to 0 bytes"),
    ],
)
def test_malformed_secret_is_refused_without_echoing_it(secret: str, says: str) -> None:
    for call in (
        lambda: validate_secret(secret),
        lambda: sign([secret], "m", dt.datetime.now(dt.UTC), BODY),
        lambda: webhook_headers("m", BODY, [secret]),
        lambda: verify([secret], BODY, signed()),
    ):
        with pytest.raises(ValueError, match=says) as info:
            call()
        encoded = secret.removeprefix(SECRET_PREFIX)
        if encoded:
            assert encoded not in str(info.value)
            assert encoded not in str(info.value.__cause__ or "")


def test_secret_without_padding_is_accepted_like_the_library_does() -> None:
    unpadded = "whsec_" + base64.b64encode(b"p" * 25).decode().rstrip("=")

    assert validate_secret(unpadded) == unpadded
    Webhook(unpadded).verify(BODY, signed(secrets=(unpadded,)))


def test_generated_secrets_are_valid_random_and_32_bytes() -> None:
    first, second = generate_secret(), generate_secret()

    assert validate_secret(first) == first
    assert first != second
    assert len(base64.b64decode(first.removeprefix(SECRET_PREFIX))) == 32


@given(secret_bytes=st.binary(min_size=24, max_size=64), msg_id=st.text(min_size=1))
def test_any_valid_secret_signs_what_the_library_verifies(secret_bytes: bytes, msg_id: str) -> None:
    secret = SECRET_PREFIX + base64.b64encode(secret_bytes).decode()

    Webhook(validate_secret(secret)).verify(BODY, signed(msg_id, secrets=(secret,)))


# Headers ---------------------------------------------------------------------------------


def test_headers_without_secrets_carry_id_timestamp_and_user_agent_only() -> None:
    before = int(dt.datetime.now(dt.UTC).timestamp())

    headers = webhook_headers("batch-7", BODY)

    assert headers.keys() == {"webhook-id", "webhook-timestamp", "user-agent"}
    assert headers["webhook-id"] == "batch-7"
    assert before <= int(headers["webhook-timestamp"]) <= before + 2
    assert headers["user-agent"] == f"jobhooks/{importlib.metadata.version('jobhooks')}"


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        webhook_headers("m", BODY, [SECRET], timestamp=dt.datetime(2026, 11, 27))
