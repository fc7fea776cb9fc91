"""One delivery attempt: build the request for a subscription, send it, judge the answer.

2xx delivered; 410 Gone disables the subscription; 3xx is a failure (redirects are never
followed); 429/503 honour Retry-After; anything else, or no answer, is retried on the schedule
until the attempts are spent, then the row is a dead letter.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from .formats import Rendered, render_batch, render_event
from .outbox import Delivery, Outcome, Status
from .signing import webhook_headers
from .subscriptions import Subscription

__all__ = ["Attempt", "RetryPolicy", "build_request", "send"]

MAX_RETRY_AFTER = 24 * 3600.0


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
        delay = self.schedule[attempts] * random.uniform(1 - self.jitter, 1 + self.jitter)
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
    events = [row.to_event() for row in rows]
    if sub.mode.value == "batch":
        msg_id = rows[0].batch_id or rows[0].event_id
        rendered = render_batch(sub.format, msg_id, events)
    else:
        msg_id = rows[0].event_id
        rendered = render_event(sub.format, events[0])
    headers = dict(sub.headers)
    headers.update(webhook_headers(msg_id, rendered.body, sub.secrets))
    headers["content-type"] = rendered.content_type
    return msg_id, rendered, headers


def send(
    client: httpx.Client,
    sub: Subscription,
    rows: Sequence[Delivery],
    *,
    timeout: float | None = None,
) -> Attempt:
    """POST ``rows`` to ``sub``; never raises for network trouble: it becomes a failed Attempt."""
    _, rendered, headers = build_request(sub, rows)
    limit = sub.timeout_seconds if timeout is None else min(timeout, sub.timeout_seconds)
    try:
        response = client.post(
            sub.url, content=rendered.body, headers=headers, timeout=max(limit, 0.001)
        )
    except httpx.TimeoutException:
        return Attempt(False, error=f"no answer within {limit:g} s (timeout)")
    except httpx.HTTPError as exc:
        return Attempt(False, error=f"{type(exc).__name__}: {exc}")
    return judge(response)


def judge(response: httpx.Response) -> Attempt:
    code = response.status_code
    if 200 <= code < 300:
        return Attempt(True, http_status=code)
    if code == 410:
        return Attempt(False, gone=True, http_status=code, error="410 Gone")
    if 300 <= code < 400:
        where = response.headers.get("location", "?")
        return Attempt(
            False,
            http_status=code,
            error=f"{code} redirect to {where} (redirects are not followed)",
        )
    retry_after = None
    if code in (429, 503):
        retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
    snippet = response.text[:200].strip() if response.content else ""
    detail = f": {snippet}" if snippet else ""
    return Attempt(
        False,
        http_status=code,
        retry_after=retry_after,
        error=f"{code} {response.reason_phrase}{detail}",
    )


def outcomes(
    rows: Sequence[Delivery], attempt: Attempt, policy: RetryPolicy, now: float
) -> list[Outcome]:
    """The outbox update for every row the attempt carried."""
    if attempt.delivered:
        return [Outcome(r.id, Status.DELIVERED, http_status=attempt.http_status) for r in rows]
    result = []
    for row in rows:
        nxt = policy.next_attempt_at(row.attempts + 1, now, attempt.retry_after)
        status = Status.DEAD if nxt is None else Status.PENDING
        result.append(Outcome(row.id, status, attempt.error, attempt.http_status, nxt))
    return result
