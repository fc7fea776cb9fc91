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
from .outbox import Delivery, Outbox, Outcome, Status, batch_id_for
from .outbox._base import PURGE_ROUND
from .settings import Settings
from .subscriptions import Subscription
from .vocabulary import Mode

__all__ = ["Dispatcher"]

log = logging.getLogger("jobhooks")

REALTIME_CLAIM = 100  # rows leased per subscription per round
PURGE_EVERY = 300.0  # seconds between retention purges (sooner while expired rows remain)
OWN_SWEEP = 1_000  # own event ids held before a sweep forgets those with nothing left to send


class Dispatcher:
    """Delivers due outbox rows of the ``subscriptions`` it knows.

    ``own_events_only``: deliver only events this process emitted (short-lived processes such
    as an Airflow task: they leave everything else to a long-lived dispatcher or the relay).
    Such a process also leaves its own events of a subscription whose older events failed and
    wait for a retry: the endpoint is failing, and attempting it would only hold the process
    up for its whole flush window (a long-lived dispatcher delivers them).

    ``retention_seconds``: a long-lived dispatcher purges delivered rows older than this
    (0: never); short-lived ones leave that to it.
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
        retention_seconds: float = 0.0,
        pool: httpcore.ConnectionPool | None = None,
        settings: Settings | None = None,
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
        self.retention_seconds = 0.0 if own_events_only else retention_seconds
        self._purge_due = 0.0  # time.monotonic() of the next retention purge: first round
        self._purged = 0  # rows purged since the last log line
        # Event ids this process emitted whose rows are not all settled yet (see _forget).
        self._own: set[str] = set()
        self._own_lock = threading.Lock()
        self._work_errors: dict[str, str] = {}  # subscription → its last failed turn's error
        self._own_sweep_at = OWN_SWEEP
        # Ours unless handed in: built from settings (CA bundle, private-destination guard).
        self._http = pool or new_pool(settings)
        self._owns_http = pool is None
        # One daemon worker thread per subscription, kept for the dispatcher's life (one
        # outbox connection each); daemon, so a hung request never blocks the process's exit.
        self._workers: dict[str, threading.Thread] = {}
        self._kicks: dict[str, threading.Event] = {}
        self._hint: float | None = None  # when the earliest known retry / batch flush falls due
        self._hint_lock = threading.Lock()
        self._disabled_read = 0.0
        self._failing: set[str] = set()  # logged as failing, not yet as delivering again
        self._dead_lettering: set[str] = set()  # logged as making dead letters, likewise
        self._deferred: set[str] = set()  # short-lived: subscriptions left to a long-lived one
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
        with self._own_lock:
            self._own.update(event_ids)
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop, give back every lease this dispatcher holds, close the connections.

        Waits up to ``timeout`` for requests in flight; one still running after that is left
        to finish or die with the process (its row's lease expires and another process retries).
        """
        self._stopping.set()
        self._wake.set()
        for kick in list(self._kicks.values()):
            kick.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        for worker in list(self._workers.values()):
            worker.join(max(deadline - time.monotonic(), 0))
        running = any(w.is_alive() for w in self._workers.values())
        try:
            self.outbox.release_owner(self.owner)
        except Exception as exc:  # noqa: BLE001 - shutting down: report, carry on
            log.warning("jobhooks: could not release outbox leases: %s", exc)
        if self._owns_http and not running:
            self._http.close()

    def flush(self, timeout: float, event_ids: Iterable[str] | None = None) -> bool:
        """Deliver for at most ``timeout`` seconds; True when every row of ``event_ids``
        (default: this process's) is delivered, dead, or not due again within the window."""
        if event_ids is None:
            with self._own_lock:
                event_ids = list(self._own)
        ids = list(event_ids)
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
        realtime = {
            n
            for n, s in self.subscriptions.items()
            if s.mode is Mode.REALTIME and n not in self._deferred
        }
        rows = self.outbox.deliveries(event_ids=ids, limit=len(ids) * 64)
        return all(
            r.status is not Status.PENDING
            or r.next_attempt_at > self._deadline
            or r.subscription not in realtime
            for r in rows
        )

    # -- the loop ---------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._round()
                except Exception as exc:  # noqa: BLE001 - the dispatcher outlives a bad round
                    log.error("jobhooks: dispatcher round failed: %s (will retry)", exc)
                    self._wake.wait(self.poll_seconds)
                self._wake.wait(self._sleep_for())
                self._wake.clear()
        finally:
            self.outbox.close()  # this thread's connection

    def _note_due(self, when: float | None) -> None:
        """A worker learnt when its next row falls due (a retry, a batch's flush time)."""
        if when is None or when <= self.clock():
            return  # due already but not ours to take (leased elsewhere): the poll finds it
        with self._hint_lock:
            if self._hint is None or when < self._hint:
                self._hint = when
                self._wake.set()  # re-plan the main loop's sleep

    def _sleep_for(self) -> float:
        """Until the next known due time, at most a poll (other processes add rows too)."""
        if self._deadline is not None:
            return 0.02
        now = self.clock()
        with self._hint_lock:
            if self._hint is not None and self._hint <= now:
                self._hint = None
                return 0.0
            hint = self._hint
        return self.poll_seconds if hint is None else min(self.poll_seconds, hint - now)

    def _round(self) -> None:
        if self._deadline is not None and self.clock() >= self._deadline:
            return
        if time.monotonic() - self._disabled_read > 1.0:
            self._disabled = set(self.outbox.disabled())
            self._disabled_read = time.monotonic()
            self._housekeeping()
            if len(self._own) > self._own_sweep_at:
                # Ids whose rows no worker here settles (a short-lived process's batch events).
                with self._own_lock:
                    held = list(self._own)
                self._forget(held)
                self._own_sweep_at = max(OWN_SWEEP, 2 * len(self._own))
        for name, sub in self.subscriptions.items():
            if name in self._disabled:
                continue
            if name not in self._workers:
                self._kicks[name] = threading.Event()
                self._workers[name] = threading.Thread(
                    target=self._worker,
                    args=(sub, self._kicks[name]),
                    daemon=True,
                    name=f"jobhooks-delivery-{name}",
                )
                self._workers[name].start()
            self._kicks[name].set()

    def _housekeeping(self) -> None:
        """The outbox's upkeep (SQLite: a WAL checkpoint) each round, with a retention purge
        at most every PURGE_EVERY seconds, or sooner while expired rows remain."""
        due = self.retention_seconds > 0 and time.monotonic() >= self._purge_due
        purged = self.outbox.housekeeping(self.retention_seconds if due else 0.0, self.clock())
        if not due:
            return
        self._purged += purged
        more = purged >= PURGE_ROUND
        self._purge_due = time.monotonic() + (0.0 if more else PURGE_EVERY)
        if self._purged and not more:
            log.info(
                "jobhooks: outbox retention: purged %d delivered row(s) older than %g s",
                self._purged,
                self.retention_seconds,
            )
            self._purged = 0

    def _forget(self, event_ids: Sequence[str]) -> None:
        """Forget own event ids that have no pending row left in a subscription this
        dispatcher delivers (short-lived: its realtime ones), so the set of own ids stays as
        small as the work in hand instead of growing with every event emitted."""
        with self._own_lock:
            ids = [i for i in dict.fromkeys(event_ids) if i in self._own]
        delivering = {
            n
            for n, s in self.subscriptions.items()
            if not self.own_events_only or s.mode is Mode.REALTIME
        }
        done: list[str] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            limit = len(chunk) * 64
            rows = self.outbox.deliveries(status=Status.PENDING, event_ids=chunk, limit=limit)
            if len(rows) >= limit:
                continue  # maybe more rows than read: keep this chunk
            busy = {r.event_id for r in rows if r.subscription in delivering}
            done += [i for i in chunk if i not in busy]
        if done:
            with self._own_lock:
                self._own.difference_update(done)

    def _worker(self, sub: Subscription, kick: threading.Event) -> None:
        try:
            while not self._stopping.is_set():
                kick.wait()
                kick.clear()
                if self._stopping.is_set():
                    break
                if self._work(sub):
                    kick.set()  # there may be more: go on without waiting for a round
        finally:
            self.outbox.close()  # this thread's connection

    def _work(self, sub: Subscription) -> bool:
        try:
            if sub.mode is Mode.BATCH:
                worked = self._deliver_batch(sub)
            else:
                worked = self._deliver_realtime(sub)
            if worked:  # a turn that found nothing to do proves nothing
                self._work_errors.pop(sub.name, None)
            return worked
        except Exception as exc:  # noqa: BLE001 - one subscription's trouble stays its own
            # Logged once while it persists (a full disk fails every turn): repeats at debug.
            again = self._work_errors.get(sub.name) == str(exc)
            self._work_errors[sub.name] = str(exc)
            log.log(logging.DEBUG if again else logging.ERROR,
                    "jobhooks: delivering to subscription %r failed: %s%s", sub.name, exc,
                    " (repeats are logged at debug level until it works again)" if not again
                    else "")
            return False
        finally:
            with self._settled:
                self._settled.notify_all()

    def _window(self) -> float | None:
        """Seconds left in a flush window (short-lived process), else None."""
        return None if self._deadline is None else self._deadline - self.clock()

    def _deliver_realtime(self, sub: Subscription) -> bool:
        """Send due rows of ``sub`` in order; True if an attempt was made."""
        with self._own_lock:
            own = list(self._own) if self.own_events_only else None
        if own is not None and not own:
            return False
        if own is not None and self._left_to_long_lived(sub, own):
            return False
        rows = self.outbox.claim(
            sub.name,
            self.owner,
            now=self.clock(),
            lease=self.lease_seconds + sub.timeout_seconds,
            limit=REALTIME_CLAIM,
            event_ids=own,
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
            if attempt.delivered:
                self._report_success(sub)
            if attempt.gone:
                self._gone(sub, done, rows[index + 1 :])
                return True
            if not attempt.delivered:
                self._report_failure(sub, done[-1])
                self._note_due(done[-1].next_attempt_at)
                done += [Outcome(r.id, None) for r in rows[index + 1 :]]
                break
        if done:
            self.outbox.settle(done, self.clock())
            self._forget([r.event_id for r in rows])
        return any(o.status is not None for o in done)

    def _left_to_long_lived(self, sub: Subscription, own: Sequence[str]) -> bool:
        """Short-lived: whether older events of ``sub`` failed and wait for a retry, in which
        case this process's events of ``sub`` (``own``) are left to a long-lived dispatcher."""
        mine = self.outbox.deliveries(
            status=Status.PENDING, subscription=sub.name, event_ids=own, limit=1
        )
        if mine and self.outbox.failing_before(sub.name, mine[0].id):
            self._deferred.add(sub.name)
            return True
        self._deferred.discard(sub.name)
        return False

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
            self._note_due(self.outbox.next_batch_due(sub.name, sub.batch_flush_seconds))
            return False
        attempt = send(self._http, sub, rows)
        done = outcomes(rows, attempt, self.policy, self.clock(), batch_id_for(rows))
        if attempt.gone:
            self._gone(sub, done, [])
            return True
        self.outbox.settle(done, self.clock())
        self._forget([r.event_id for r in rows])
        if attempt.delivered:
            self._report_success(sub)
        else:
            self._report_failure(sub, done[0])
            self._note_due(done[0].next_attempt_at)
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
        self._disabled.add(sub.name)  # this dispatcher stops now, not at its next re-read
        self._failing.add(sub.name)  # re-enabled, its first delivery is logged
        if not self.outbox.disable(sub.name, f"410 Gone from {sub.url}", self.clock()):
            return  # already disabled (another process, or a request already in flight)
        log.error(
            "jobhooks: subscription %r disabled: %s answered 410 Gone; its pending events "
            "are kept as dead letters (`jobhooks outbox retry --subscription %s` re-enables "
            "it)",
            sub.name,
            sub.url,
            sub.name,
        )

    def _report_failure(self, sub: Subscription, outcome: Outcome) -> None:
        """One warning when a subscription starts failing, one error when its dead letters
        start appearing (repeats: debug); :meth:`_report_success` says when it recovers,
        which re-arms both."""
        if outcome.status is Status.DEAD:
            first = sub.name not in self._dead_lettering
            self._dead_lettering.add(sub.name)
            self._failing.add(sub.name)
            log.log(
                logging.ERROR if first else logging.DEBUG,
                "jobhooks: subscription %r: delivery %s is a dead letter after its last "
                "attempt (%s); until it delivers again further dead letters are logged at "
                "debug level (`jobhooks outbox list --status dead` shows them, `jobhooks "
                "outbox retry --subscription %s` sends them again)",
                sub.name,
                outcome.delivery_id,
                outcome.error,
                sub.name,
            )
            return
        wait = max((outcome.next_attempt_at or self.clock()) - self.clock(), 0)
        first = sub.name not in self._failing
        self._failing.add(sub.name)
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "jobhooks: subscription %r is failing: %s (events are kept and retried; next "
            "attempt in %.0f s)",
            sub.name,
            outcome.error,
            wait,
        )

    def _report_success(self, sub: Subscription) -> None:
        self._dead_lettering.discard(sub.name)
        if sub.name in self._failing:
            self._failing.discard(sub.name)
            log.warning("jobhooks: subscription %r is delivering again", sub.name)
