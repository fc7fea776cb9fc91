"""The ``[jobhooks]`` settings of an Airflow deployment, one small accessor each.

Every accessor reads Airflow's configuration when called (never at import), so
``AIRFLOW__JOBHOOKS__*`` environment variables and ``airflow.cfg`` both work and tests need no
module reloading. :func:`settings` resolves them, over the core's ``JOBHOOKS_*`` variables,
into the one core :class:`~jobhooks_core.settings.Settings` a process uses.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from jobhooks_core.exceptions import ConfigurationError
from jobhooks_core.settings import Settings

__all__ = [
    "DEFAULT_CONNECTION",
    "base_url",
    "dag_watch_interval",
    "enabled",
    "flush_timeout",
    "instance",
    "outbox",
    "settings",
    "subscriptions",
]

log = logging.getLogger("jobhooks")

SECTION = "jobhooks"
DEFAULT_CONNECTION = "jobhooks_default"
DEFAULT_DAG_WATCH_INTERVAL = 30.0


def _get(option: str, section: str = SECTION) -> str | None:
    from airflow.configuration import conf

    value = conf.get(section, option, fallback=None)
    return None if value is None or not str(value).strip() else str(value).strip()


def subscriptions() -> list[str]:
    """[jobhooks] subscriptions: comma-separated ids of ``jobhooks`` connections
    (default ``jobhooks_default``)."""
    raw = _get("subscriptions")
    ids = [part.strip() for part in (raw or DEFAULT_CONNECTION).split(",")]
    return [conn_id for conn_id in ids if conn_id]


def subscriptions_configured() -> bool:
    """Whether [jobhooks] subscriptions was set (a missing default connection is no error)."""
    return _get("subscriptions") is not None


def outbox() -> str | None:
    """[jobhooks] outbox: a SQLite path or ``postgresql://…`` URL (default: JOBHOOKS_OUTBOX,
    else ``$AIRFLOW_HOME/jobhooks/outbox.db``)."""
    return _get("outbox")


def instance() -> str | None:
    """[jobhooks] instance: names this deployment in ``source.instance`` and in event ids
    (default: JOBHOOKS_INSTANCE, else ``default``)."""
    return _get("instance")


def flush_timeout() -> str | None:
    """[jobhooks] flush_timeout: seconds a task process spends delivering its events at exit
    (default 5; kept below [core] task_success_overtime)."""
    return _get("flush_timeout")


def enabled() -> str | None:
    """[jobhooks] enabled: ``false`` turns jobhooks off in every Airflow process (default true)."""
    return _get("enabled")


def dag_watch_interval() -> float:
    """[jobhooks] dag_watch_interval: seconds between the scheduler's scans of the metadata DB
    for created, changed and removed DAGs, and re-reads of the subscriptions (default 30)."""
    raw = _get("dag_watch_interval")
    if raw is None:
        return DEFAULT_DAG_WATCH_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ConfigurationError(
            f"{raw!r} is not a positive number of seconds", field="[jobhooks] dag_watch_interval"
        )
    return value


def base_url() -> str:
    """[api] base_url: where the Airflow UI is, for the links in events."""
    return (_get("base_url", "api") or "http://localhost:8080").rstrip("/")


def _task_success_overtime() -> float:
    try:
        return float(_get("task_success_overtime", "core") or 20)
    except ValueError:
        return 20.0


def _airflow_home() -> Path:
    from airflow.configuration import AIRFLOW_HOME

    return Path(os.environ.get("AIRFLOW_HOME") or AIRFLOW_HOME).expanduser()


def settings() -> Settings:
    """The core Settings of this process: ``[jobhooks]`` over ``JOBHOOKS_*`` over defaults.

    Raises ConfigurationError naming the setting when a value is unusable.
    """
    env = os.environ
    home = None
    if not env.get("JOBHOOKS_HOME") and not env.get("JOBHOOKS_OUTBOX"):
        home = str(_airflow_home() / "jobhooks")
    try:
        resolved = Settings.from_env(
            home=home,
            outbox=outbox(),
            instance=instance(),
            flush_timeout=flush_timeout(),
            enabled=enabled(),
            retention_seconds=_get("retention"),
            max_payload_bytes=_get("max_payload_bytes"),
            ca_bundle=_get("ca_bundle"),
            refuse_private_destinations=_get("refuse_private_destinations"),
        )
    except ConfigurationError as exc:
        # The core names its JOBHOOKS_* variable; name Airflow's place for it too.
        option = (exc.field or "").removeprefix("JOBHOOKS_").lower()  # as the option is named
        where = f"[jobhooks] {option} (or {exc.field})" if exc.field else "[jobhooks]"
        raise ConfigurationError(exc.detail, field=where) from exc
    overtime = _task_success_overtime()
    if resolved.flush_timeout >= overtime:
        capped = max(overtime - 1.0, overtime / 2)
        log.warning(
            "jobhooks: flush_timeout %.4g s is not below [core] task_success_overtime (%.4g s), "
            "after which Airflow kills the task process; using %.4g s",
            resolved.flush_timeout,
            overtime,
            capped,
        )
        resolved = resolved.replace(flush_timeout=capped)
    return resolved
