"""Runtime settings, resolved once, lazily, from JOBHOOKS_* environment variables.

Adapters pass their own values (Airflow's ``[jobhooks]`` section, say) as overrides; nothing
is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .exceptions import ConfigurationError

__all__ = ["DEFAULT_RETRY_SCHEDULE", "Settings"]

# Standard Webhooks' schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (
    0,
    5,
    300,
    1800,
    7200,
    18000,
    36000,
    50400,
    72000,
    86400,
)


def default_home(environ: Mapping[str, str]) -> Path:
    if environ.get("JOBHOOKS_HOME"):
        return Path(environ["JOBHOOKS_HOME"]).expanduser()
    state = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "jobhooks"


@dataclass(frozen=True)
class Settings:
    """Every runtime setting, with its environment variable and default.

    ============================ ======================== ==============================
    field                        environment variable     default
    ============================ ======================== ==============================
    home                         JOBHOOKS_HOME            ~/.local/state/jobhooks
    outbox                       JOBHOOKS_OUTBOX          <home>/outbox.db (SQLite)
    instance                     JOBHOOKS_INSTANCE        default
    enabled                      JOBHOOKS_ENABLED         true
    flush_timeout                JOBHOOKS_FLUSH_TIMEOUT   5 (seconds)
    retry_schedule               JOBHOOKS_RETRY_SCHEDULE  0,5,300,1800,7200,…,86400
    lease_seconds                JOBHOOKS_LEASE_SECONDS   60
    poll_seconds                 JOBHOOKS_POLL_SECONDS    1
    retention_seconds            JOBHOOKS_RETENTION       604800 (7 days; delivered rows)
    max_payload_bytes            JOBHOOKS_MAX_PAYLOAD_BYTES  262144 (256 KiB per event)
    ca_bundle                    JOBHOOKS_CA_BUNDLE       none (certifi's bundle)
    refuse_private_destinations  JOBHOOKS_REFUSE_PRIVATE_DESTINATIONS  false
    ============================ ======================== ==============================
    """

    home: Path = field(default_factory=lambda: default_home(os.environ))
    outbox: str = ""
    instance: str = "default"
    enabled: bool = True
    flush_timeout: float = 5.0
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    lease_seconds: float = 60.0
    poll_seconds: float = 1.0
    retention_seconds: float = 7 * 86400.0
    max_payload_bytes: int = 256 * 1024
    ca_bundle: Path | None = None
    refuse_private_destinations: bool = False

    @property
    def outbox_url(self) -> str:
        """The outbox location: a PostgreSQL URL, or a SQLite file path."""
        return self.outbox or str(self.home / "outbox.db")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``environ`` (default: os.environ); ``overrides`` win when not None."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"home": default_home(env)}
        raw = {
            "outbox": env.get("JOBHOOKS_OUTBOX"),
            "instance": env.get("JOBHOOKS_INSTANCE"),
            "enabled": env.get("JOBHOOKS_ENABLED"),
            "flush_timeout": env.get("JOBHOOKS_FLUSH_TIMEOUT"),
            "retry_schedule": env.get("JOBHOOKS_RETRY_SCHEDULE"),
            "lease_seconds": env.get("JOBHOOKS_LEASE_SECONDS"),
            "poll_seconds": env.get("JOBHOOKS_POLL_SECONDS"),
            "retention_seconds": env.get("JOBHOOKS_RETENTION"),
            "max_payload_bytes": env.get("JOBHOOKS_MAX_PAYLOAD_BYTES"),
            "ca_bundle": env.get("JOBHOOKS_CA_BUNDLE"),
            "refuse_private_destinations": env.get("JOBHOOKS_REFUSE_PRIVATE_DESTINATIONS"),
        }
        raw.update({k: v for k, v in overrides.items() if v is not None})
        for name, value in raw.items():
            if value is None or value == "":
                continue
            values[name] = _parse(name, value)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)


ENV_NAMES = {"retention_seconds": "JOBHOOKS_RETENTION"}


def _parse(name: str, value: Any) -> Any:
    env = ENV_NAMES.get(name, f"JOBHOOKS_{name.upper()}")
    if name in ("outbox", "instance"):
        text = str(value).strip()
        if not text:
            raise ConfigurationError("must not be empty", field=env)
        return text
    if name == "home":
        return Path(str(value)).expanduser()
    if name == "ca_bundle":
        path = Path(str(value)).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"{str(value)!r} is not a readable file of PEM certificates", field=env
            )
        return path
    if name == "max_payload_bytes":
        try:
            size = int(str(value).strip())
        except ValueError:
            size = 0
        if size < 1024:
            raise ConfigurationError(
                f"{value!r} is not a whole number of bytes of at least 1024", field=env
            )
        return size
    if name == "retention_seconds":
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = -1.0
        if not seconds >= 0 or seconds == float("inf"):
            raise ConfigurationError(
                f"{value!r} is not a number of seconds (0 keeps delivered rows forever)",
                field=env,
            )
        return seconds
    if name in ("enabled", "refuse_private_destinations"):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ConfigurationError(
            f"{value!r} is not a boolean; valid choices: true, false", field=env
        )
    if name == "retry_schedule":
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        try:
            schedule = tuple(float(str(v).strip()) for v in items)
        except ValueError:
            schedule = ()
        if not schedule or any(s < 0 for s in schedule):
            raise ConfigurationError(
                f"{value!r} is not a list of delays in seconds, e.g. '0,5,300,1800' "
                "(one attempt per entry, each delay counted from the previous failure)",
                field=env,
            )
        return schedule
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0 or number == float("inf"):
        raise ConfigurationError(f"{value!r} is not a positive number of seconds", field=env)
    return number
