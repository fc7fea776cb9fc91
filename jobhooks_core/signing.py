"""Standard Webhooks headers and signatures, through the public ``standardwebhooks`` library.

Receivers verify with that library unchanged; several secrets (rotation) give several signatures.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import importlib.metadata
import math
import secrets as _random
from collections.abc import Mapping, Sequence

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .exceptions import SignatureError

__all__ = [
    "SECRET_PREFIX",
    "generate_secret",
    "sign",
    "validate_secret",
    "verify",
    "webhook_headers",
]

SECRET_PREFIX = "whsec_"
_SECRET_BYTES = (24, 64)  # what the Standard Webhooks spec allows
# standardwebhooks' Webhook.verify has this window built in; a tolerance can only narrow it.
_LIBRARY_TOLERANCE = dt.timedelta(minutes=5)


def validate_secret(secret: str) -> str:
    """``secret`` unchanged if it is ``whsec_`` + base64 of 24 to 64 bytes, else ValueError.

    The message says what is wrong and never repeats the secret.
    """
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"signing secret does not start with {SECRET_PREFIX!r}")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        # Unpadded base64 is accepted, as standardwebhooks accepts it.
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"signing secret is not {SECRET_PREFIX!r} followed by base64") from exc
    low, high = _SECRET_BYTES
    if not low <= len(raw) <= high:
        raise ValueError(f"signing secret decodes to {len(raw)} bytes; use {low} to {high}")
    return secret


def generate_secret() -> str:
    """A new random signing secret: ``whsec_`` + base64 of 32 bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(32)).decode("ascii")


def _utc(timestamp: dt.datetime) -> dt.datetime:
    if timestamp.tzinfo is None:
        raise ValueError(f"timestamp {timestamp!r} has no time zone; pass an aware datetime")
    # Webhook.sign replaces tzinfo with UTC rather than converting, so convert first.
    return timestamp.astimezone(dt.UTC)


def sign(secrets: Sequence[str], msg_id: str, timestamp: dt.datetime, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64>`` per secret, separated by spaces."""
    if not secrets:
        raise ValueError("sign needs at least one secret")
    when, text = _utc(timestamp), body.decode("utf-8")
    return " ".join(Webhook(validate_secret(secret)).sign(msg_id, when, text) for secret in secrets)


@functools.cache
def _user_agent() -> str:
    try:
        version = importlib.metadata.version("jobhooks")
    except importlib.metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"jobhooks/{version}"


def webhook_headers(
    msg_id: str,
    body: bytes,
    secrets: Sequence[str] = (),
    *,
    timestamp: dt.datetime | None = None,
) -> dict[str, str]:
    """Standard Webhooks headers for one request; ``webhook-signature`` only with secrets."""
    when = _utc(timestamp) if timestamp is not None else dt.datetime.now(dt.UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(when.timestamp())),
        "user-agent": _user_agent(),
    }
    if secrets:
        headers["webhook-signature"] = sign(secrets, msg_id, when, body)
    return headers


def verify(
    secrets: Sequence[str],
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance: dt.timedelta = _LIBRARY_TOLERANCE,
) -> None:
    """Return if ``headers`` sign ``body`` with any of ``secrets``, else raise SignatureError.

    ``tolerance`` bounds the distance between ``webhook-timestamp`` and now; it may narrow,
    not widen, the five minutes standardwebhooks enforces.
    """
    if not secrets:
        raise ValueError("verify needs at least one secret")
    if not dt.timedelta(0) <= tolerance <= _LIBRARY_TOLERANCE:
        raise ValueError(f"tolerance {tolerance} is outside 0 to {_LIBRARY_TOLERANCE}")
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [
        h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lowered.get(h)
    ]
    if missing:
        raise SignatureError(f"request lacks the header(s) {', '.join(missing)}")
    _check_timestamp(lowered["webhook-timestamp"], tolerance)
    webhooks = [Webhook(validate_secret(secret)) for secret in secrets]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SignatureError("the body is not UTF-8, so no signature can match it") from exc
    failure: WebhookVerificationError | None = None
    for webhook in webhooks:
        try:
            webhook.verify(text, lowered, json_parse=False)
            return
        except WebhookVerificationError as exc:
            failure = exc
        except ValueError as exc:  # the library unpacks and base64-decodes the header as is
            raise SignatureError(
                "webhook-signature is not space-separated 'v1,<base64>' signatures"
            ) from exc
    raise SignatureError(
        f"webhook-signature matches none of the {len(secrets)} configured secret(s) ({failure})"
    ) from failure


def _check_timestamp(header: str, tolerance: dt.timedelta) -> None:
    try:
        if not (header.isascii() and header.isdigit()):
            raise ValueError(header)
        sent = dt.datetime.fromtimestamp(int(header), dt.UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureError(f"webhook-timestamp {header[:40]!r} is not Unix seconds") from exc
    skew = dt.datetime.now(dt.UTC) - sent
    if abs(skew) > tolerance:
        when = "old" if skew > dt.timedelta(0) else "in the future"
        raise SignatureError(
            f"webhook-timestamp is {abs(skew.total_seconds()):.0f} s {when}; "
            f"the tolerance is {tolerance.total_seconds():.0f} s"
        )
