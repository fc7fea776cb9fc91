"""The dispatcher: a background thread that drains the outbox over a pooled HTTP connection pool
(httpcore, httpx's transport).

Per subscription one request is in flight at a time, in emission order; a failure ends that
subscription's round (the rest stay due), so a dead endpoint costs one attempt per round, not
one per row, and never holds up the other subscriptions.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence

import httpcore

from .delivery import RetryPolicy, new_pool, outcomes, send
from .outbox import Delivery, Outbox, Outcome, Status
from .subscriptions import Subscription
from .vocabulary import Mode

__all__ = ["Dispatcher"]

log = logging.getLogger("jobhooks")

REALTIME_CLAIM = 100  # rows leased per subscription per round


class Dispatcher:
    """Delivers due outbox rows of the ``subscriptions`` it knows.

    ``own_events_only``: deliver only events this process emitted (short-lived processes such
    as an Airflow task: they leave everything else to a long-lived dispatcher or the relay).
    """

    def __init__(
        self,
        outbox: Outbox,
        subscriptions: Sequence[Subscription],
        *,
        policy: RetryPolicy,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        own_events_only: bool = False,
        pool: httpcore.ConnectionPool | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.subscriptions = {s.name: s for s in subscriptions if s.enabled}
        self.policy = policy
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.own_events_only = own_events_only
        self._own: set[str] = set()
        self._http = pool or new_pool()
        self._owns_http = pool is None
        # One daemon thread per subscription with work: a hung request never blocks the
        # process from exiting (a pool's threads would be joined at interpreter exit).
        self._busy: dict[str, threading.Thread] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._settled = threading.Condition()
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._disabled: set[str] = set()

    # -- control ----------------------------------------------------------------------------
    def start(self) -> Dispatcher:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="jobhooks-dispatcher", daemon=True
            )
            self._thread.start()
        return self

    def wake(self, event_ids: Iterable[str] = ()) -> None:
        """New rows are in the outbox (``event_ids``: this process emitted them)."""
        self._own.update(event_ids)
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop, give back every lease this dispatcher holds, close the connections.

        Waits up to ``timeout`` for requests in flight; one still running after that is left
        to finish or die with the process (its row's lease expires and another process retries).
        """
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        for worker in list(self._busy.values()):
            worker.join(max(deadline - time.monotonic(), 0))
        running = any(w.is_alive() for w in self._busy.values())
        try:
            self.outbox.release_owner(self.owner)
        except Exception as exc:  # noqa: BLE001 - shutting down: report, carry on
            log.warning("jobhooks: could not release outbox leases: %s", exc)
        if self._owns_http and not running:
            self._http.close()

    def flush(self, timeout: float, event_ids: Iterable[str] | None = None) -> bool:
        """Deliver for at most ``timeout`` seconds; True when every row of ``event_ids``
        (default: this process's) is delivered, dead, or not due again within the window."""
        ids = list(self._own if event_ids is None else event_ids)
        self._deadline = self.clock() + timeout
        self.start()
        self._wake.set()
        with self._settled:
            while True:
                if self._all_settled(ids):
                    return True
                left = self._deadline - self.clock()
                if left <= 0:
                    return False
                self._settled.wait(min(left, 0.05))

    def _all_settled(self, ids: Sequence[str]) -> bool:
        """Nothing more to do for ``ids`` inside the window: delivered, dead, not due again
        before the deadline, or waiting for a batch (a long-lived dispatcher sends those)."""
        if not ids:
            return True
        assert self._deadline is not None
        realtime = {n for n, s in self.subscriptions.items() if s.mode is Mode.REALTIME}
        rows = self.outbox.deliveries(event_ids=ids, limit=len(ids) * 64)
        return all(
            r.status is not Status.PENDING
            or r.next_attempt_at > self._deadline
            or r.subscription not in realtime
            for r in rows
        )

    # -- the loop ---------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._round()
            except Exception as exc:  # noqa: BLE001 - the dispatcher must outlive a bad round
                log.error("jobhooks: dispatcher round failed: %s (will retry)", exc)
                self._wake.wait(self.poll_seconds)
            self._wake.wait(self._sleep_for())
            self._wake.clear()

    def _sleep_for(self) -> float:
        """Until the next row falls due (a retry, a batch's flush time), at most a poll."""
        if self._deadline is not None:
            return 0.02
        try:
            now = self.clock()
            names = [
                n
                for n, s in self.subscriptions.items()
                if n not in self._disabled and s.mode is Mode.REALTIME
            ]
            due = [self.outbox.next_due(names, now)]
            due += [
                self.outbox.next_batch_due(s.name, s.batch_flush_seconds)
                for s in self.subscriptions.values()
                if s.mode is Mode.BATCH
            ]
            soonest = min((d for d in due if d is not None), default=now + self.poll_seconds)
        except Exception:  # noqa: BLE001 - the next round reports outbox trouble
            return self.poll_seconds
        return min(self.poll_seconds, max(soonest - now, 0.05))

    def _round(self) -> None:
        self._disabled = set(self.outbox.disabled())
        if self._deadline is not None and self.clock() >= self._deadline:
            return
        for name, sub in self.subscriptions.items():
            if name in self._disabled:
                continue
            running = self._busy.get(name)
            if running is not None and running.is_alive():
                continue
            worker = threading.Thread(
                target=self._work, args=(sub,), daemon=True, name=f"jobhooks-delivery-{name}"
            )
            self._busy[name] = worker
            worker.start()

    def _work(self, sub: Subscription) -> None:
        try:
            worked = (
                self._deliver_batch(sub) if sub.mode is Mode.BATCH else self._deliver_realtime(sub)
            )
            if worked:
                self._wake.set()  # there may be more: look again now rather than after a poll
        except Exception as exc:  # noqa: BLE001 - one subscription's trouble stays its own
            log.error("jobhooks: delivering to subscription %r failed: %s", sub.name, exc)
        finally:
            with self._settled:
                self._settled.notify_all()

    def _window(self) -> float | None:
        """Seconds left in a flush window (short-lived process), else None."""
        return None if self._deadline is None else self._deadline - self.clock()

    def _deliver_realtime(self, sub: Subscription) -> bool:
        """Send due rows of ``sub`` in order; True if an attempt was made."""
        if self.own_events_only and not self._own:
            return False
        rows = self.outbox.claim(
            sub.name,
            self.owner,
            now=self.clock(),
            lease=self.lease_seconds + sub.timeout_seconds,
            limit=REALTIME_CLAIM,
            event_ids=list(self._own) if self.own_events_only else None,
        )
        done: list[Outcome] = []
        started = self.clock()
        for index, row in enumerate(rows):
            window = self._window()
            over_lease = self.clock() - started > self.lease_seconds / 2
            if self._stopping.is_set() or over_lease or (window is not None and window <= 0):
                done += [Outcome(r.id, None) for r in rows[index:]]
                break
            attempt = send(self._http, sub, [row], timeout=window)
            done += outcomes([row], attempt, self.policy, self.clock())
            if attempt.gone:
                self._gone(sub, done, rows[index + 1 :])
                return True
            if not attempt.delivered:
                self._report_failure(sub, done[-1])
                done += [Outcome(r.id, None) for r in rows[index + 1 :]]
                break
        if done:
            self.outbox.settle(done, self.clock())
        return any(o.status is not None for o in done)

    def _deliver_batch(self, sub: Subscription) -> bool:
        """Send one batch of ``sub`` if one is due; True if it was attempted."""
        if self.own_events_only:
            return False  # short-lived processes leave batches to a long-lived dispatcher
        rows = self.outbox.claim_batch(
            sub.name,
            self.owner,
            now=self.clock(),
            lease=self.lease_seconds + sub.timeout_seconds,
            batch_size=sub.batch_size,
            flush_seconds=sub.batch_flush_seconds,
        )
        if not rows:
            return False
        attempt = send(self._http, sub, rows)
        done = outcomes(rows, attempt, self.policy, self.clock())
        if attempt.gone:
            self._gone(sub, done, [])
            return True
        self.outbox.settle(done, self.clock())
        if not attempt.delivered:
            self._report_failure(sub, done[0])
        return True

    def _gone(self, sub: Subscription, done: list[Outcome], rest: Sequence[Delivery]) -> None:
        dead = [
            Outcome(o.delivery_id, Status.DEAD, "410 Gone: subscription disabled", 410)
            for o in done
            if o.http_status == 410
        ]
        keep = [o for o in done if o.http_status != 410]
        released = [Outcome(r.id, None) for r in rest]  # disable() dead-letters them next
        self.outbox.settle(keep + dead + released, self.clock())
        self.outbox.disable(sub.name, f"410 Gone from {sub.url}", self.clock())
        log.error(
            "jobhooks: subscription %r disabled: %s answered 410 Gone; its pending events "
            "are kept as dead letters (`jobhooks outbox retry --subscription %s` re-enables "
            "it)",
            sub.name,
            sub.url,
            sub.name,
        )

    def _report_failure(self, sub: Subscription, outcome: Outcome) -> None:
        if outcome.status is Status.DEAD:
            log.error(
                "jobhooks: subscription %r: delivery %s is a dead letter after its last "
                "attempt (%s); `jobhooks outbox retry` sends it again",
                sub.name,
                outcome.delivery_id,
                outcome.error,
            )
        else:
            wait = (outcome.next_attempt_at or self.clock()) - self.clock()
            log.warning(
                "jobhooks: subscription %r: attempt failed (%s); next attempt in %.0f s",
                sub.name,
                outcome.error,
                max(wait, 0),
            )
