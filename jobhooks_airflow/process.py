"""The jobhooks runtime of one Airflow process, built on first use.

- A task process gets a short-lived runtime: it delivers only what it emitted and flushes for
  at most ``flush_timeout`` when the task ends.
- The scheduler gets a long-lived one (started from ``on_starting``): its dispatcher delivers
  everything the other processes left in the outbox, and the DAG watcher thread reports
  created, changed and removed DAGs. Subscriptions are re-read every ``dag_watch_interval``.
- Any other process that reports something (the API server, when a state is set by hand) gets
  a short-lived runtime, re-read at the same interval.
- The dag-processor and triggerer only record when jobhooks was installed, then let go.

With no subscription configured nothing is built: no outbox, no thread. Forked children (the
LocalExecutor forks the scheduler, the supervisor forks the task) start from scratch.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import Any

from jobhooks_core.config import LoadedSubscriptions
from jobhooks_core.events import Source
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings

from . import _compat, conf, connections, metrics

__all__ = ["Process", "current"]

log = logging.getLogger("jobhooks")

READ_TIMEOUT = 30.0  # seconds to read the subscriptions (connections) in a server process


class Process:
    """This process's role, settings, subscriptions and runtime."""

    def __init__(self) -> None:
        self.role = "other"  # task, scheduler, dag-processor, triggerer or other
        self._lock = threading.RLock()
        self._runtime: Jobhooks | None = None
        self._settings: Settings | None = None
        self._interval: float | None = None
        self._loaded: LoadedSubscriptions | None = None
        self._loaded_at = 0.0
        self._watcher: Any = None
        self._said_unconfigured = False
        self._reported: set[str] = set()

    @property
    def long_lived(self) -> bool:
        return self.role == "scheduler"

    # -- building -----------------------------------------------------------------------------
    def settings(self) -> Settings:
        with self._lock:
            if self._settings is None:
                self._settings = conf.settings()
            return self._settings

    def runtime(self) -> Jobhooks | None:
        """The runtime, or None when jobhooks has nothing to do in this deployment."""
        with self._lock:
            loaded, loaded_at = self._loaded, self._loaded_at
            runtime = self._runtime
        # A task reads the subscriptions once; the scheduler's watcher re-reads them itself;
        # any other process (the API server) when they are older than the watch interval.
        rereads = self.role not in ("task", "scheduler")
        if loaded is None or (rereads and time.monotonic() - loaded_at > self.interval()):
            self.refresh()
            with self._lock:
                runtime = self._runtime
        return runtime

    def interval(self) -> float:
        with self._lock:
            if self._interval is None:
                self._interval = conf.dag_watch_interval()
            return self._interval

    def refresh(self) -> None:
        """Re-read the subscriptions; rebuild the runtime when they changed."""
        settings = self.settings()
        loaded = self._load() if settings.enabled else LoadedSubscriptions()
        with self._lock:
            self._loaded_at = time.monotonic()
            self._report(loaded)
            if self._loaded is not None and loaded.subscriptions == self._loaded.subscriptions:
                return
            self._loaded = loaded
            old, self._runtime = self._runtime, None
            if old is not None:  # a flush may take flush_timeout: never in the caller's way
                threading.Thread(target=old.close, name="jobhooks-close", daemon=True).start()
            if not loaded.subscriptions:
                if settings.enabled:
                    self._say_unconfigured(loaded)
                return
            source = Source("airflow", settings.instance, _compat.airflow_version())
            metrics.install(self.role)  # counters as Airflow metrics (never raises)
            self._runtime = Jobhooks(
                settings=settings,
                source=source,
                subscriptions=loaded,
                long_lived=self.long_lived,
            )
            if self.long_lived:
                self._runtime.dispatcher  # noqa: B018 - start delivering leftovers now
            log.log(
                logging.DEBUG if self.role == "task" else logging.INFO,
                "jobhooks: %s reports to %d subscription(s): %s (outbox %s)",
                self.role,
                len(loaded.subscriptions),
                ", ".join(s.name for s in loaded.subscriptions),
                settings.outbox_url,
            )

    def _load(self) -> LoadedSubscriptions:
        """The subscriptions, read in a thread of their own outside task processes.

        In the scheduler a hook runs inside the scheduler's own database session, which is
        per thread: reading connections from the metadata DB on that thread would close it
        under the scheduler's feet. A thread of our own has a session of its own.
        """
        if self.role == "task":
            return connections.load()
        result: list[LoadedSubscriptions] = []
        reader = threading.Thread(
            target=lambda: result.append(connections.load()),
            name="jobhooks-subscriptions",
            daemon=True,
        )
        reader.start()
        reader.join(READ_TIMEOUT)
        if not result:
            raise TimeoutError(f"reading the subscriptions took over {READ_TIMEOUT:g} s")
        return result[0]

    def _report(self, loaded: LoadedSubscriptions) -> None:
        """Log each bad subscription once per process (the watcher re-reads them every scan)."""
        problems = [str(error) for error in loaded.errors]
        for problem in problems:
            if problem not in self._reported:
                log.error("jobhooks: %s (this subscription is skipped until it is fixed)", problem)
        self._reported = set(problems)

    def _say_unconfigured(self, loaded: LoadedSubscriptions) -> None:
        if self._said_unconfigured or loaded.errors:
            return  # the errors were logged by the loader
        self._said_unconfigured = True
        log.info(
            "jobhooks: no subscription configured (no Airflow connection %s, JOBHOOKS_CONFIG "
            "unset): nothing is reported",
            " or ".join(repr(c) for c in conf.subscriptions()),
        )

    # -- the components' lifecycle --------------------------------------------------------------
    def starting(self, role: str) -> None:
        """``on_starting``: a task records nothing yet; a server component records the
        installation instant (DESIGN §3 baseline); the scheduler starts delivering and watching
        DAGs (and re-reading the subscriptions, even when none is configured yet)."""
        self.role = role
        if role == "task" or not self.settings().enabled:
            return
        runtime = self.runtime()
        if runtime is not None:
            with runtime.outbox.transaction() as tx:
                tx.installed_at()
        if role == "scheduler":
            from .watcher import DagWatcher

            self._watcher = DagWatcher(self, self.interval()).start()
        elif role in ("dag-processor", "triggerer"):
            self.stopping()  # nothing else to do here: hold no connection, no thread

    def stopping(self) -> None:
        """``before_stopping``: stop the watcher, flush (tasks) and close the runtime."""
        with self._lock:
            watcher, self._watcher = self._watcher, None
            runtime, self._runtime = self._runtime, None
        if watcher is not None:
            watcher.stop()
        if runtime is not None:
            runtime.close()
            atexit.unregister(runtime.close)

    def forget(self) -> None:
        """In a forked child: drop what the parent built without touching it (its threads are
        not here, its database connections belong to the parent)."""
        _inherited.append((self._runtime, self._watcher))
        if self._runtime is not None:
            atexit.unregister(self._runtime.close)
        self.__init__()  # type: ignore[misc]


_inherited: list[Any] = []  # kept referenced so the parent's connections are never closed here
_process = Process()


def current() -> Process:
    """The Process of this interpreter."""
    return _process


os.register_at_fork(after_in_child=lambda: _process.forget())
