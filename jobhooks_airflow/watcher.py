"""The DAG watcher: Airflow has no listener for DAGs being added, changed or removed, so a thread
in the scheduler reads the metadata DB every ``dag_watch_interval`` seconds.

Each scan reports what it sees to the core (WORK_SEEN with the DAG's revision: its serialized
hash and paused flag; WORK_REMOVED for a stale or deleted DAG), which decides ``created``,
``update`` and ``deleted`` once per change, across restarts, from the facts in the outbox.
Only DAGs that changed since this process's previous scan are reported again.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import TYPE_CHECKING, Any

from jobhooks_core.guard import swallowed
from jobhooks_core.runtime import Jobhooks

from . import conf, signals

if TYPE_CHECKING:
    from .process import Process

__all__ = ["DagWatcher", "read_dags"]

log = logging.getLogger("jobhooks")


def read_dags() -> dict[str, dict[str, Any]]:
    """Every DAG of the metadata DB that has a serialized version, as plain rows."""
    import sqlalchemy as sa
    from airflow.models.dag import DagModel, DagTag
    from airflow.models.dag_version import DagVersion
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        dags = session.execute(
            sa.select(
                DagModel.dag_id,
                DagModel.is_paused,
                DagModel.is_stale,
                DagModel.timetable_summary,
                DagModel.relative_fileloc,
                DagModel.last_parsed_time,
            )
        ).all()
        versions = {
            dag_id: (first, latest)
            for dag_id, first, latest in session.execute(
                sa.select(
                    DagVersion.dag_id,
                    sa.func.min(DagVersion.created_at),
                    sa.func.max(DagVersion.version_number),
                ).group_by(DagVersion.dag_id)
            )
        }
        hashes = dict(
            session.execute(
                sa.select(SerializedDagModel.dag_id, SerializedDagModel.dag_hash).order_by(
                    SerializedDagModel.last_updated
                )
            ).all()
        )  # the newest serialization of each DAG wins
        tags: dict[str, list[str]] = {}
        for dag_id, name in session.execute(sa.select(DagTag.dag_id, DagTag.name)):
            tags.setdefault(dag_id, []).append(name)
    rows: dict[str, dict[str, Any]] = {}
    for dag_id, paused, stale, schedule, fileloc, parsed in dags:
        if dag_id not in versions or dag_id not in hashes:
            continue  # not serialized yet: the next scan sees it
        created_at, version = versions[dag_id]
        rows[dag_id] = {
            "dag_id": dag_id,
            "is_paused": bool(paused),
            "stale": bool(stale),
            "schedule": schedule,
            "fileloc": fileloc,
            "version": version,
            "created_at": created_at,
            "last_parsed_time": parsed,
            "tags": sorted(tags.get(dag_id, [])),
            "revision": f"{hashes[dag_id]}:{'paused' if paused else 'active'}",
        }
    return rows


class DagWatcher:
    """A daemon thread: re-read the subscriptions, then scan the DAGs, every ``interval``."""

    def __init__(self, process: Process, interval: float) -> None:
        self.process = process
        self.interval = interval
        self._known: dict[str, dict[str, Any]] | None = None  # None: no scan yet
        self._installed_at: dt.datetime | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobhooks-dag-watcher", daemon=True)

    def start(self) -> DagWatcher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with swallowed("watching DAGs", "scheduler"):
                self.process.refresh()
                runtime = self.process.runtime()
                if runtime is not None:
                    self.scan(runtime)
            self._stop.wait(self.interval)

    def scan(self, runtime: Jobhooks) -> int:
        """One pass; returns how many DAGs were reported to the core."""
        if self._installed_at is None:
            with runtime.outbox.transaction() as tx:
                self._installed_at = tx.installed_at()
        rows = read_dags()
        first = self._known is None
        known = dict(self._known or {})
        observed = dt.datetime.now(dt.UTC).isoformat()
        base = conf.base_url()
        reported = 0

        def report(make: Any, row: dict[str, Any]) -> bool:
            nonlocal reported
            failures = runtime.failures
            runtime.signal(make(row, observed, base))
            reported += 1
            return runtime.failures == failures  # else: try again next scan

        for dag_id, row in rows.items():
            before = known.get(dag_id)
            if row["stale"]:
                gone = before is not None and not before["stale"]
                if before is None and first:  # removed while no scheduler watched?
                    parsed = row["last_parsed_time"]
                    gone = parsed is not None and parsed >= self._installed_at
                if gone and not report(signals.dag_removed, row):
                    continue
            elif (
                before is None or before["stale"] or before["revision"] != row["revision"]
            ) and not report(signals.dag_seen, row):
                continue
            known[dag_id] = row
        for dag_id in set(known) - set(rows):  # deleted from the metadata DB
            row = known[dag_id]
            if row["stale"] or report(signals.dag_removed, {**row, "stale": True}):
                del known[dag_id]
        self._known = known
        if first:
            log.info("jobhooks: watching %d DAGs for changes every %g s", len(rows), self.interval)
        return reported
