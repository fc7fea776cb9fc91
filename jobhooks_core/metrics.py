"""The counters jobhooks keeps, and one hook for a host's metrics system.

The outbox keeps the counters durably (``jobhooks outbox status``); every increment is also
handed, after its transaction commits, to the installed sink (the Airflow adapter installs one
that calls Airflow's StatsD ``Stats``). The default sink does nothing; a sink that raises is
logged, never raised into the host.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from enum import StrEnum

__all__ = ["Counter", "SUBSCRIPTION_DISABLED", "Sink", "count", "install", "report"]

log = logging.getLogger("jobhooks")


class Counter(StrEnum):
    """What happened to events, per subscription (each counts events, not requests)."""

    ENQUEUED = "enqueued"  # written to the outbox (again, when `outbox retry` revives a dead one)
    DELIVERED = "delivered"  # answered 2xx
    RETRIED = "retried"  # an attempt failed and another is scheduled
    DEAD_LETTERED = "dead_lettered"  # no further attempt: kept as a dead letter
    DROPPED = "dropped"  # accepted by emit/signal but never written (outbox unwritable, full)


# Not a stored counter (the disabled table is the record): a subscription disabled by 410 Gone.
SUBSCRIPTION_DISABLED = "subscription_disabled"

Sink = Callable[[str, str, int], None]  # (metric name, subscription, increment)

_sink: Sink | None = None
_said_failing = False
_lock = threading.Lock()


def install(sink: Sink | None) -> None:
    """Send every increment to ``sink`` from now on (None: to nowhere)."""
    global _sink, _said_failing
    with _lock:
        _sink, _said_failing = sink, False


def count(name: str, subscription: str, n: int = 1) -> None:
    """Hand one increment to the sink. Never raises."""
    sink = _sink
    if sink is None or n <= 0:
        return
    try:
        sink(str(name), subscription, n)
    except Exception as exc:  # noqa: BLE001 - metrics never break the host
        _failed(exc)


def report(increments: Mapping[tuple[str, str], int]) -> None:
    """Hand several ``{(subscription, name): n}`` increments to the sink."""
    if _sink is None:
        return
    for (subscription, name), n in increments.items():
        count(name, subscription, n)


def _failed(exc: Exception) -> None:
    global _said_failing
    first = not _said_failing
    _said_failing = True
    log.log(
        logging.WARNING if first else logging.DEBUG,
        "jobhooks: could not report a metric: %s: %s (counters in the outbox are unaffected)",
        type(exc).__name__,
        exc,
    )
