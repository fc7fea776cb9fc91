"""jobhooks' counters as Airflow metrics, sent through Airflow's own ``Stats``.

Every increment of the outbox's counters (see ``jobhooks_core.metrics``) becomes a StatsD
counter, under Airflow's ``[metrics] statsd_prefix`` like Airflow's own metrics:

- ``jobhooks.enqueued``, ``jobhooks.delivered``, ``jobhooks.retried``,
  ``jobhooks.dead_lettered``, ``jobhooks.dropped``, ``jobhooks.subscription_disabled``,
  tagged ``subscription=<name>`` (sent where Airflow's backend sends tags: StatsD with
  ``statsd_influxdb_enabled``, Datadog, OpenTelemetry);
- with ``[metrics] legacy_names_on`` (Airflow's default), also ``jobhooks.<counter>.<name>``,
  the subscription in the name, for plain StatsD.

Nothing to configure on jobhooks' side: the metrics go wherever Airflow's go (``statsd_on``,
``statsd_host``, ``metrics_allow_list``, …), and nowhere when Airflow sends none.
"""

from __future__ import annotations

import importlib
import logging
import re
import warnings
from typing import Any

from jobhooks_core import metrics

__all__ = ["StatsSink", "install", "stats_for"]

log = logging.getLogger("jobhooks")

# Task processes send through the Task SDK's Stats (initialised by the task runner), the other
# components through airflow-core's (initialised by the scheduler, API server, …); Airflow 3.0
# and 3.1 have one, airflow.stats (a deprecated alias from 3.2).
_STATS_MODULES = {
    "task": ("airflow.sdk.observability.stats", "airflow.stats"),
    "other": ("airflow.observability.stats", "airflow.stats"),
}
_NOT_IN_A_NAME = re.compile(r"[^A-Za-z0-9_-]")


def stats_for(role: str) -> Any:
    """Airflow's ``Stats`` for a process of ``role`` (task, scheduler, …)."""
    candidates = _STATS_MODULES["task" if role == "task" else "other"]
    for name in candidates:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return importlib.import_module(name).Stats
        except ImportError:
            continue
    raise ImportError(f"none of {', '.join(candidates)} can be imported")


def _legacy_names_on() -> bool:
    from airflow.configuration import conf

    return bool(conf.getboolean("metrics", "legacy_names_on", fallback=True))


class StatsSink:
    """The sink :func:`jobhooks_core.metrics.install` takes: increments to ``stats``."""

    def __init__(self, stats: Any, legacy_names: bool) -> None:
        self.stats = stats
        self.legacy_names = legacy_names

    def __call__(self, name: str, subscription: str, n: int) -> None:
        self.stats.incr(f"jobhooks.{name}", n, tags={"subscription": subscription})
        if self.legacy_names:
            self.stats.incr(f"jobhooks.{name}.{_NOT_IN_A_NAME.sub('_', subscription)}", n)


def install(role: str) -> None:
    """Send jobhooks' counters through Airflow's metrics in this process. Never raises."""
    try:
        metrics.install(StatsSink(stats_for(role), _legacy_names_on()))
    except Exception as exc:  # noqa: BLE001 - no metrics is no reason to fail the host
        log.warning("jobhooks: Airflow metrics unavailable: %s: %s", type(exc).__name__, exc)
