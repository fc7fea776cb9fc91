"""One delivery attempt: build the request for a subscription, send it, judge the answer.

2xx delivered; 410 Gone disables the subscription; 3xx is a failure (redirects are never
followed); 429/503 honour Retry-After; anything else, or no answer, is retried on the schedule
until the attempts are spent, then the row is a dead letter.
"""

from __future__ import annotations

import email.utils
import random
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import httpcore

from .formats import Rendered, render_stored
from .netguard import DestinationRefused, GuardedBackend, ssl_context
from .outbox import Delivery, Outcome, Status, batch_id_for
from .secrecy import hidden_in_transport_logs, scrub, secret_values
from .settings import Settings
from .signing import webhook_headers
from .subscriptions import Subscription

__all__ = ["Attempt", "RetryPolicy", "build_request", "judge", "new_pool", "send"]

MAX_RETRY_AFTER = 24 * 3600.0
_jitter = random.Random()  # our own: never disturbs the host's global random state


@dataclass(frozen=True)
class RetryPolicy:
    """``schedule[k]`` is the delay before attempt k+1; its length is the number of attempts."""

    schedule: Sequence[float]
    jitter: float = 0.1

    def next_attempt_at(
        self, attempts: int, now: float, retry_after: float | None = None
    ) -> float | None:
        """When to try again after ``attempts`` failed attempts; None: spent, dead-letter."""
        if attempts >= len(self.schedule):
            return None
        delay = self.schedule[attempts] * _jitter.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return now + delay


@dataclass(frozen=True)
class Attempt:
    """What the endpoint did with one request."""

    delivered: bool
    gone: bool = False
    http_status: int | None = None
    error: str | None = None
    retry_after: float | None = None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def build_request(
    sub: Subscription, rows: Sequence[Delivery]
) -> tuple[str, Rendered, dict[str, str]]:
    """(webhook id, body, headers) for ``rows``: one event, or a batch sharing a batch id."""
    stored = [row.event_json for row in rows]
    if sub.mode.value == "batch":
        msg_id = batch_id_for(rows)
        rendered = render_stored(sub.format, stored, msg_id)
    else:
        msg_id = rows[0].event_id
        rendered = render_stored(sub.format, stored, None)
    headers = dict(sub.headers)
    headers.update(webhook_headers(msg_id, rendered.body, sub.secrets))
    headers["content-type"] = rendered.content_type
    return msg_id, rendered, headers


def new_pool(settings: Settings | None = None) -> httpcore.ConnectionPool:
    """The connection pool a dispatcher keeps: keep-alive, TLS verified, never redirects.

    ``settings`` (default: from the environment) choose the CA bundle TLS trusts
    (``ca_bundle``; default certifi's) and whether private destinations are refused
    (``refuse_private_destinations``: see :mod:`.netguard`).

    httpcore is httpx's own transport; the dispatcher uses it directly because the request and
    response models httpx builds on top cost more than the whole rest of a delivery: in
    bench/throughput.py a bare keep-alive ``httpx.Client`` loop sends ~2,200 loopback
    requests/s, the dispatcher (outbox claims, signing and all) ~3,400.
    """
    settings = settings or Settings.from_env()
    return httpcore.ConnectionPool(
        ssl_context=ssl_context(settings.ca_bundle),
        max_connections=64,
        max_keepalive_connections=32,
        keepalive_expiry=30.0,
        retries=0,
        network_backend=GuardedBackend() if settings.refuse_private_destinations else None,
    )


def send(
    pool: httpcore.ConnectionPool,
    sub: Subscription,
    rows: Sequence[Delivery],
    *,
    timeout: float | None = None,
) -> Attempt:
    """POST ``rows`` to ``sub``; never raises for network trouble: it becomes a failed Attempt.

    The attempt's error never holds the subscription's secrets or header values (an endpoint
    may echo the token it refused): they are replaced by ``***``.
    """
    _, rendered, headers = build_request(sub, rows)
    limit = max(
        sub.timeout_seconds if timeout is None else min(timeout, sub.timeout_seconds), 0.001
    )
    timeouts = {"connect": limit, "read": limit, "write": limit, "pool": limit}
    secrets = secret_values(sub)
    try:
        wire_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        with hidden_in_transport_logs(secrets):
            response = pool.request(
                "POST",
                sub.url,
                headers=wire_headers,
                content=rendered.body,
                extensions={"timeout": timeouts},
            )
    except httpcore.TimeoutException as exc:
        return Attempt(False, error=f"timeout: no answer within {limit:g} s ({type(exc).__name__})")
    except Exception as exc:  # noqa: BLE001 - every transport failure is a failed attempt
        return Attempt(False, error=scrub(_transport_error(sub, exc), secrets))
    attempt = judge(
        response.status,
        {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers},
        response.content,
        response.extensions.get("reason_phrase", b""),
    )
    if attempt.error:
        attempt = replace(attempt, error=scrub(attempt.error, secrets))
    return attempt


def _transport_error(sub: Subscription, exc: Exception) -> str:
    if isinstance(exc, DestinationRefused):
        return str(exc)  # "<host> resolves to <address>, a loopback address; refused because…"
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        host = urlsplit(sub.url).hostname
        return (
            f"TLS certificate verification failed for {host}: {cause.verify_message} (the "
            "certificate is not trusted; a private CA's bundle goes in JOBHOOKS_CA_BUNDLE)"
        )
    return f"{type(exc).__name__}: {exc}"


def judge(code: int, headers: dict[str, str], content: bytes, reason: bytes = b"") -> Attempt:
    """What an HTTP answer means for the rows it carried."""
    if 200 <= code < 300:
        return Attempt(True, http_status=code)
    if code == 410:
        return Attempt(False, gone=True, http_status=code, error="410 Gone")
    if 300 <= code < 400:
        where = headers.get("location", "?")
        return Attempt(
            False,
            http_status=code,
            error=f"{code} redirect to {where} (redirects are not followed)",
        )
    retry_after = None
    if code in (429, 503):
        retry_after = parse_retry_after(headers.get("retry-after"), time.time())
    phrase = reason.decode("latin-1") if reason else ""
    snippet = content[:200].decode("utf-8", "replace").strip()
    detail = f": {snippet}" if snippet else ""
    return Attempt(
        False, http_status=code, retry_after=retry_after, error=f"{code} {phrase}".strip() + detail
    )


def outcomes(
    rows: Sequence[Delivery],
    attempt: Attempt,
    policy: RetryPolicy,
    now: float,
    batch_id: str | None = None,
) -> list[Outcome]:
    """The outbox update for every row the attempt carried (a failed batch keeps its id)."""
    if attempt.delivered:
        return [Outcome(r.id, Status.DELIVERED, http_status=attempt.http_status) for r in rows]
    result = []
    for row in rows:
        nxt = policy.next_attempt_at(row.attempts + 1, now, attempt.retry_after)
        status = Status.DEAD if nxt is None else Status.PENDING
        result.append(Outcome(row.id, status, attempt.error, attempt.http_status, nxt, batch_id))
    return result
