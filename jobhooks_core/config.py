"""Loading subscriptions from the config file named by JOBHOOKS_CONFIG and from plain dicts.

A bad subscription is reported (logged, and listed by ``jobhooks check``) and skipped; the
others keep working. A config file that cannot be read or parsed yields no subscriptions and
one error naming the file.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exceptions import ConfigurationError
from .subscriptions import Subscription
from .vocabulary import close_match

__all__ = [
    "CONFIG_ENV",
    "LoadedSubscriptions",
    "load_config_file",
    "load_subscriptions",
    "parse_subscriptions",
]

log = logging.getLogger("jobhooks")

CONFIG_ENV = "JOBHOOKS_CONFIG"
TOP_LEVEL_KEYS = ("subscriptions",)


@dataclass(frozen=True)
class LoadedSubscriptions:
    """The usable subscriptions, and every problem met while loading them."""

    subscriptions: tuple[Subscription, ...] = ()
    errors: tuple[ConfigurationError, ...] = ()

    def __add__(self, other: LoadedSubscriptions) -> LoadedSubscriptions:
        return _dedupe(self.subscriptions + other.subscriptions, self.errors + other.errors)


def _dedupe(
    subs: Iterable[Subscription], errors: Iterable[ConfigurationError]
) -> LoadedSubscriptions:
    seen: dict[str, Subscription] = {}
    errs = list(errors)
    for sub in subs:
        if sub.name in seen:
            errs.append(
                ConfigurationError(
                    f"defined twice ({seen[sub.name].origin or 'first'} and "
                    f"{sub.origin or 'again'}); "
                    "the second is ignored — give each subscription its own name",
                    subscription=sub.name,
                )
            )
            continue
        seen[sub.name] = sub
    return LoadedSubscriptions(tuple(seen.values()), tuple(errs))


def parse_subscriptions(
    entries: Iterable[tuple[str, Mapping[str, Any]]], *, origin: str = ""
) -> LoadedSubscriptions:
    """Validate (name, fields) pairs; bad ones become errors, the rest subscriptions."""
    subs: list[Subscription] = []
    errors: list[ConfigurationError] = []
    for name, values in entries:
        try:
            subs.append(Subscription.from_mapping(name, values, origin=origin))
        except ConfigurationError as exc:
            errors.append(exc)
    return _dedupe(subs, errors)


def _read_file(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"config file {str(path)!r} does not exist", field=CONFIG_ENV
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"config file {str(path)!r} cannot be read: {exc}", field=CONFIG_ENV
        ) from exc
    as_json = path.suffix.lower() == ".json" or (
        path.suffix.lower() != ".toml" and text.lstrip().startswith("{")
    )
    kind = "JSON" if as_json else "TOML"
    try:
        data: Any = json.loads(text) if as_json else tomllib.loads(text)
    except ValueError as exc:  # decode errors, and integers of more than 4300 digits
        raise ConfigurationError(
            f"config file {str(path)!r} is not valid {kind}: {exc}", field=CONFIG_ENV
        ) from exc
    except RecursionError as exc:
        raise ConfigurationError(
            f"config file {str(path)!r} is {kind} nested thousands of levels deep; "
            "a config file needs a list of flat tables",
            field=CONFIG_ENV,
        ) from exc
    if not isinstance(data, Mapping):
        raise ConfigurationError(
            f"config file {str(path)!r} must hold a table/object at the top", field=CONFIG_ENV
        )
    return data


def load_config_file(path: str | os.PathLike[str]) -> LoadedSubscriptions:
    """The subscriptions of one TOML or JSON config file (a list ``subscriptions``)."""
    path = Path(path)
    origin = f"config file {path}"
    try:
        data = _read_file(path)
    except ConfigurationError as exc:
        return LoadedSubscriptions(errors=(exc,))
    errors: list[ConfigurationError] = []
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            hint = close_match(str(key), TOP_LEVEL_KEYS)
            did = f"; did you mean {hint!r}?" if hint else ""
            errors.append(
                ConfigurationError(
                    f"{origin}: unknown top-level key {key!r}{did} (valid: "
                    f"{', '.join(TOP_LEVEL_KEYS)})",
                    field=str(key),
                )
            )
    raw = data.get("subscriptions", [])
    if not isinstance(raw, list):
        errors.append(
            ConfigurationError(
                f"{origin}: 'subscriptions' must be a list of tables ([[subscriptions]] in TOML)",
                field="subscriptions",
            )
        )
        raw = []
    entries: list[tuple[str, Mapping[str, Any]]] = []
    for index, item in enumerate(raw, 1):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name.strip():
            errors.append(
                ConfigurationError(
                    f"{origin}: subscription #{index} has no 'name'; every subscription needs a "
                    "unique name",
                    field="name",
                )
            )
            continue
        entries.append((name, item))
    loaded = parse_subscriptions(entries, origin=origin)
    return LoadedSubscriptions(loaded.subscriptions, tuple(errors) + loaded.errors)


def load_subscriptions(
    *sources: LoadedSubscriptions,
    environ: Mapping[str, str] | None = None,
    log_errors: bool = True,
) -> LoadedSubscriptions:
    """Every configured subscription: the JOBHOOKS_CONFIG file, then ``sources`` (adapters').

    Errors are logged (once per call) so a bad subscription is loud but never fatal.
    """
    env = os.environ if environ is None else environ
    result = LoadedSubscriptions()
    path = env.get(CONFIG_ENV, "").strip()
    if path:
        result = result + load_config_file(path)
    for source in sources:
        result = result + source
    if log_errors:
        for error in result.errors:
            log.error("jobhooks: %s (this subscription is skipped; run `jobhooks check`)", error)
    return result
