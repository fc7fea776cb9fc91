"""Pieces every command shares: the runtime built from the environment, small parsers."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import re
import sys
from typing import NoReturn

from ..config import load_subscriptions
from ..events import Source
from ..exceptions import ConfigurationError, JobhooksError
from ..outbox import Outbox
from ..runtime import Jobhooks, jobhooks_version
from ..settings import Settings
from ..vocabulary import close_match

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"jobhooks: {message}", file=sys.stderr)
    raise SystemExit(code)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def runtime(*, long_lived: bool = False, report_errors: bool = True) -> Jobhooks:
    """The runtime for a command: settings and subscriptions from the environment."""
    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        fail(str(exc))
    loaded = load_subscriptions(log_errors=False)
    if report_errors:
        for error in loaded.errors:
            print(f"jobhooks: skipping: {error}", file=sys.stderr)
    source = Source("cli", settings.instance, jobhooks_version())
    return Jobhooks(settings=settings, source=source, subscriptions=loaded, long_lived=long_lived)


def outbox_of(rt: Jobhooks) -> Outbox:
    """The runtime's outbox, opened now; exit 1 naming it and what is wrong if it cannot be."""
    try:
        return rt.outbox
    except JobhooksError as exc:
        fail(str(exc), 1)


def duration(text: str) -> float:
    """'90', '45s', '30m', '12h', '7d', '2w' → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; use e.g. 90, 45s, 30m, 12h, 7d, 2w"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def choice(kind: str, value: str, choices: list[str]) -> str:
    """``value`` if valid, else exit 2 naming it, a close match and the valid choices."""
    if value.lower() in choices:
        return value.lower()
    hint = close_match(value, choices)
    did = f" did you mean {hint!r}?" if hint else ""
    fail(f"{value!r} is not a {kind};{did} valid: {', '.join(choices)}")


def ago(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "-"
    seconds = now - timestamp
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            text = f"{seconds / size:.0f}{unit}"
            break
    else:
        text = f"{seconds:.0f}s"
    return f"in {text}" if future else f"{text} ago"


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")
