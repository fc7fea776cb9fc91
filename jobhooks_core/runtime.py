"""The jobhooks runtime of one process: subscriptions, outbox and dispatcher, and ``emit``.

``emit`` and ``signal`` write the matching rows to the outbox in one transaction and wake the
dispatcher; they never do network I/O and never raise into the caller: a failure is logged
("… (no effect on the job)") and counted in ``Jobhooks.failures``.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .config import LoadedSubscriptions, load_subscriptions
from .delivery import RetryPolicy
from .dispatcher import Dispatcher
from .events import Event, Source
from .formats import event_json
from .lifecycle import LifecycleSignal, events_for, work_key
from .metrics import Counter
from .metrics import count as count_metric
from .outbox import Delivery, Outbox, OutboxTransaction, Status, open_outbox
from .payload import fit
from .settings import Settings
from .subscriptions import Subscription
from .vocabulary import Verb

__all__ = ["Jobhooks", "default_runtime", "emit", "jobhooks_version"]

log = logging.getLogger("jobhooks")

DISABLED_CACHE_SECONDS = 2.0
NOTE = "note/"  # remember()/recall() keys, apart from the lifecycle's own values


def jobhooks_version() -> str:
    try:
        return version("jobhooks")
    except PackageNotFoundError:
        return "0+unknown"


class Jobhooks:
    """Everything jobhooks does in one process.

    ``long_lived``: this process drains every row of its subscriptions (the relay, the Airflow
    scheduler, the Prefect watcher). Otherwise it delivers only what it emitted itself and, at
    exit, flushes for at most ``settings.flush_timeout`` seconds.
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        source: Source | None = None,
        subscriptions: LoadedSubscriptions | Sequence[Subscription] | None = None,
        long_lived: bool = False,
        outbox: Outbox | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.source = source or Source("jobhooks", self.settings.instance, jobhooks_version())
        if subscriptions is None:
            subscriptions = load_subscriptions()
        if isinstance(subscriptions, LoadedSubscriptions):
            self.errors = subscriptions.errors
            subscriptions = subscriptions.subscriptions
        else:
            self.errors = ()
        self.subscriptions: tuple[Subscription, ...] = tuple(subscriptions)
        self.long_lived = long_lived
        self.failures = 0
        self.dropped = 0  # events accepted but never written (see _failed)
        self._unsaved_drops: dict[str, int] = {}  # per subscription, not yet in the counters
        self._drops_lock = threading.Lock()
        self._outbox = outbox
        self._dispatcher: Dispatcher | None = None
        self._lock = threading.Lock()
        _runtimes.add(self)
        self._closed = False
        self._disabled: Mapping[str, tuple[float, str]] = {}
        self._disabled_read = -DISABLED_CACHE_SECONDS

    # -- parts, created on first use ----------------------------------------------------------
    @property
    def outbox(self) -> Outbox:
        with self._lock:
            if self._outbox is None:
                self._outbox = open_outbox(self.settings.outbox_url)
            return self._outbox

    @property
    def dispatcher(self) -> Dispatcher:
        outbox = self.outbox
        with self._lock:
            if self._dispatcher is None:
                self._dispatcher = Dispatcher(
                    outbox,
                    self.subscriptions,
                    policy=RetryPolicy(self.settings.retry_schedule),
                    lease_seconds=self.settings.lease_seconds,
                    poll_seconds=self.settings.poll_seconds,
                    own_events_only=not self.long_lived,
                    retention_seconds=self.settings.retention_seconds,
                    settings=self.settings,  # its pool: CA bundle, private-destination guard
                )
                self._dispatcher.start()
                if not self.long_lived:
                    atexit.register(self.close)
            return self._dispatcher

    # -- emitting -----------------------------------------------------------------------------
    def emit(
        self,
        verb: str,
        subject_type: str,
        subject_id: str,
        *,
        data: Mapping[str, Any] | None = None,
        occurrence: str | None = None,
        timestamp: dt.datetime | None = None,
    ) -> Event | None:
        """Report one job event. Returns it, or None when jobhooks could not (logged)."""
        event: Event | None = None
        try:
            event = Event.create(
                verb,
                subject_type,
                subject_id,
                source=self.source,
                occurrence=occurrence or uuid.uuid4().hex,
                data=data,
                timestamp=timestamp,
            )
            written = self._write(lambda tx: [event])
            return written[0] if written else event  # as enqueued: cut to max_payload_bytes
        except Exception as exc:  # noqa: BLE001 - never raise into the host
            # An event refused before it existed (bad input) was never accepted: not dropped.
            what = f"emit({str(verb)!r}, {str(subject_type)!r}, {subject_id!r:.80})"
            self._failed(what, exc, [] if event is None else self._receivers([event]))
            return None

    def signal(self, signal: LifecycleSignal) -> list[Event]:
        """Apply a lifecycle signal: its events, with the once-per-work facts, in one write."""
        decided: list[list[Event]] = []

        def make(tx: OutboxTransaction) -> list[Event]:
            decided.append(events_for(signal, self.source, tx))
            return decided[-1]

        try:
            return self._write(make)
        except Exception as exc:  # noqa: BLE001 - never raise into the host
            lost = self._receivers(decided[-1]) if decided else self._listening(signal)
            self._failed(f"{signal.signal.value} for {signal.subject_id!r}", exc, lost)
            return []

    # -- facts handed from one process to another --------------------------------------------
    def remember(self, subject_id: str, key: str, value: str | None) -> None:
        """Keep ``value`` under ``key`` for the work ``subject_id``, in the outbox, for another
        process of the deployment to :meth:`recall` (a task's error for the process that decides
        its run failed, say). ``None`` forgets the key. Never raises."""
        if not self.settings.enabled:
            return
        try:
            with self.outbox.transaction() as tx:
                tx.swap(work_key(self.source, subject_id), NOTE + key, value)
        except Exception as exc:  # noqa: BLE001 - never raise into the host
            self._failed(f"a note for {subject_id!r}", exc)

    def recall(self, subject_id: str, prefix: str = "", *, forget: bool = False) -> dict[str, str]:
        """What :meth:`remember` kept for ``subject_id`` under keys starting with ``prefix``
        (``forget``: and delete it). Never raises: {} when the outbox cannot be read."""
        if not self.settings.enabled:
            return {}
        work = work_key(self.source, subject_id)
        try:
            with self.outbox.transaction() as tx:
                found = tx.values(work, NOTE + prefix)
                if forget:
                    for key in found:
                        tx.swap(work, key, None)
        except Exception as exc:  # noqa: BLE001 - never raise into the host
            self._failed(f"the notes of {subject_id!r}", exc)
            return {}
        return {key.removeprefix(NOTE): value for key, value in found.items()}

    def _write(self, make: Any) -> list[Event]:
        if not self.settings.enabled:
            return []
        disabled = self._disabled_subscriptions()
        with self.outbox.transaction() as tx:
            fitted = self._fit(make(tx))
            events = [event for event, _ in fitted]
            ids = self._enqueue(tx, fitted, disabled)
            saved = self._save_drops(tx)
        if saved:
            self._saved_drops(saved)
        if ids:
            try:
                self.dispatcher.wake(ids)
            except Exception as exc:  # noqa: BLE001 - written: a long-lived dispatcher sends it
                self._failed("the start of delivery", exc)
        return events

    def _fit(self, events: list[Event]) -> list[tuple[Event, str]]:
        """Each event cut to ``max_payload_bytes`` (jobhooks_core.payload), a warning per cut,
        with its JSON: made once, for the size check and every subscription's row."""
        limit = self.settings.max_payload_bytes
        fitted = []
        for event in events:
            text = event_json(event)
            event, cut = fit(event, limit, text)
            if cut is not None:
                log.warning("jobhooks: %s", cut.describe(event, limit))
                text = event_json(event)
            fitted.append((event, text))
        return fitted

    def _disabled_subscriptions(self) -> Mapping[str, tuple[float, str]]:
        """Subscriptions disabled by 410 Gone, re-read at most every few seconds."""
        now = time.monotonic()
        if self.subscriptions and now - self._disabled_read > DISABLED_CACHE_SECONDS:
            self._disabled = self.outbox.disabled()
            self._disabled_read = now
        return self._disabled

    def _enqueue(
        self,
        tx: OutboxTransaction,
        events: Sequence[tuple[Event, str]],
        disabled: Mapping[str, tuple[float, str]],
    ) -> list[str]:
        ids: list[str] = []
        for event, text in events:
            for sub in self.subscriptions:
                if sub.matches(event):
                    reason = disabled.get(sub.name)
                    dead = f"subscription disabled: {reason[1]}" if reason else None
                    if tx.enqueue(sub.name, event, dead_reason=dead, text=text) and not dead:
                        ids.append(event.id)
        return ids

    def _failed(self, what: str, exc: Exception, lost: Sequence[str] = ()) -> None:
        """Log a failure; ``lost``: a subscription name per event it would have received,
        counted as dropped (here, in metrics now, in the outbox's counters once writable)."""
        self.failures += 1
        drops: dict[str, int] = {}
        for name in lost:
            drops[name] = drops.get(name, 0) + 1
        with self._drops_lock:
            self.dropped += len(lost)
            for name, n in drops.items():
                self._unsaved_drops[name] = self._unsaved_drops.get(name, 0) + n
        for name, n in drops.items():
            count_metric(Counter.DROPPED, name, n)
        dropped = (
            f"; dropped {len(lost)} event(s) for {', '.join(sorted(drops))}" if lost else ""
        )
        log.error(
            "jobhooks: could not record %s: %s%s (no effect on the job)",
            what,
            exc,
            dropped,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )

    def _receivers(self, events: Sequence[Event]) -> list[str]:
        """A subscription name for every (event, subscription) row ``events`` make."""
        return [s.name for e in events for s in self.subscriptions if s.matches(e)]

    def _listening(self, signal: LifecycleSignal) -> list[str]:
        """A signal lost before its events were decided (the outbox holds the facts that
        decide them): once for each subscription that receives some event of its subject."""
        probe = Event("", Verb.CREATED, signal.subject_type, signal.subject_id,
                      dt.datetime.now(dt.UTC), self.source)
        return [
            s.name
            for s in self.subscriptions
            if any(s.matches(dataclasses.replace(probe, verb=v)) for v in s.verbs)
        ]

    def _save_drops(self, tx: OutboxTransaction) -> dict[str, int]:
        """Add the drops not yet in the outbox's counters to ``tx``; what was added."""
        with self._drops_lock:
            saved = dict(self._unsaved_drops)
        for name, n in saved.items():
            tx.count(name, Counter.DROPPED, n, report=False)  # reported when they happened
        return saved

    def _saved_drops(self, saved: dict[str, int]) -> None:
        with self._drops_lock:
            for name, n in saved.items():
                left = self._unsaved_drops.get(name, 0) - n
                if left > 0:
                    self._unsaved_drops[name] = left
                else:
                    self._unsaved_drops.pop(name, None)

    # -- waiting and shutting down ------------------------------------------------------------
    def wait(self, event_ids: Sequence[str], timeout: float) -> list[Delivery]:
        """Block until every row of ``event_ids`` was delivered, dead-lettered or attempted and
        failed (or ``timeout``); returns the rows as they stand."""
        deadline = time.monotonic() + timeout
        dispatcher = self.dispatcher
        while True:
            rows = self.outbox.deliveries(event_ids=list(event_ids), limit=1000)
            if all(r.status is not Status.PENDING or r.attempts > 0 for r in rows):
                return rows
            if time.monotonic() >= deadline:
                return rows
            with dispatcher._settled:
                dispatcher._settled.wait(0.05)

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver what this process emitted for at most ``timeout`` (default flush_timeout)."""
        if self._dispatcher is None:
            return True
        try:
            return self._dispatcher.flush(
                self.settings.flush_timeout if timeout is None else timeout
            )
        except Exception as exc:  # noqa: BLE001 - never raise into the host
            self._failed("flush", exc)
            return False

    def _forked(self) -> None:
        """In a child forked from this process: the parent's dispatcher threads do not exist
        here, so deliver through a dispatcher of the child's own, started on first use (the
        parent's is kept, never used or closed: its connections are the parent's)."""
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._drops_lock = threading.Lock()
        if self._dispatcher is not None:
            _inherited.append(self._dispatcher)
            self._dispatcher = None

    def close(self) -> None:
        """Flush (short-lived processes), stop the dispatcher, release its leases."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._dispatcher is not None:
                if not self.long_lived:
                    self.flush()
                # After a flush, requests in flight were capped to its window: don't wait long.
                self._dispatcher.stop(timeout=5.0 if self.long_lived else 1.0)
            if self._outbox is not None:
                self._save_drops_at_exit()
                self._outbox.close()
        except Exception as exc:  # noqa: BLE001 - never raise into the host
            self._failed("shutdown", exc)

    def _save_drops_at_exit(self) -> None:
        """Last chance to count this process's drops in the outbox (best effort)."""
        if not self._unsaved_drops:
            return
        try:
            with self.outbox.transaction() as tx:
                saved = self._save_drops(tx)
            self._saved_drops(saved)
        except Exception as exc:  # noqa: BLE001 - the loss was logged when it happened
            log.debug("jobhooks: could not count dropped events in the outbox: %s", exc)


_default: Jobhooks | None = None
_default_lock = threading.Lock()
_runtimes: weakref.WeakSet[Jobhooks] = weakref.WeakSet()
_inherited: list[Dispatcher] = []  # a forked child's copies of its parent's dispatchers


def _after_fork_in_child() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    for runtime in list(_runtimes):
        runtime._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


def default_runtime() -> Jobhooks:
    """The process-wide runtime ``emit`` uses, built from the environment on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Jobhooks()
        return _default


def emit(
    verb: str,
    subject_type: str,
    subject_id: str,
    *,
    data: Mapping[str, Any] | None = None,
    occurrence: str | None = None,
    timestamp: dt.datetime | None = None,
) -> Event | None:
    """Report a job event from any script: written to the outbox, delivered in the background.

    ``occurrence`` makes the event id deterministic (pass a run id to make a retried script
    report once); by default every call is a new occurrence. Never raises: returns None and
    logs when jobhooks could not record the event.
    """
    try:
        runtime = default_runtime()
    except Exception as exc:  # noqa: BLE001 - never raise into the host
        log.error("jobhooks: could not start: %s (no effect on the job)", exc)
        return None
    return runtime.emit(
        verb, subject_type, subject_id, data=data, occurrence=occurrence, timestamp=timestamp
    )
