"""Subscriptions: where events go and which ones, validated field by field.

One model for every place a subscription is kept (config file, Airflow connection, Prefect
Block). Every bad value is a ConfigurationError naming the subscription, the field, the value
and the valid choices.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from .events import Event
from .exceptions import ConfigurationError
from .formats import WireFormat
from .secrecy import redact_url
from .signing import validate_secret
from .vocabulary import Mode, SubjectType, Verb, close_match, verbs_for_mode

__all__ = ["FIELDS", "Subscription"]

FIELDS = (
    "url",
    "secret",
    "subject_types",
    "subject_ids",
    "verbs",
    "mode",
    "format",
    "batch_size",
    "batch_flush_seconds",
    "headers",
    "timeout_seconds",
    "enabled",
)
# Headers jobhooks owns: a subscription may not override them.
_RESERVED_HEADERS = ("content-type", "content-length", "host", "transfer-encoding", "user-agent")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class Subscription:
    """A webhook endpoint and the events it receives (DESIGN §5)."""

    name: str
    url: str
    secrets: tuple[str, ...] = field(default=(), repr=False)
    subject_types: frozenset[SubjectType] | None = None
    subject_ids: tuple[str, ...] | None = None
    verbs: frozenset[Verb] = field(default_factory=lambda: verbs_for_mode(Mode.REALTIME))
    mode: Mode = Mode.REALTIME
    format: WireFormat = WireFormat.JSON
    batch_size: int = 100
    batch_flush_seconds: float = 60.0
    headers: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False, repr=False
    )  # like the secrets, the values may be credentials: never in a repr
    timeout_seconds: float = 10.0
    enabled: bool = True
    origin: str = field(default="", compare=False)

    def matches(self, event: Event) -> bool:
        """Whether this subscription receives ``event``."""
        if not self.enabled or event.verb not in self.verbs:
            return False
        if self.subject_types is not None and event.subject_type not in self.subject_types:
            return False
        if self.subject_ids is not None:
            return any(fnmatch.fnmatchcase(event.subject_id, p) for p in self.subject_ids)
        return True

    @classmethod
    def from_mapping(
        cls, name: str, values: Mapping[str, Any], *, origin: str = ""
    ) -> Subscription:
        """Validate ``values`` (the DESIGN §5 field names) into a Subscription.

        Raises one ConfigurationError listing every problem found.
        """
        name = str(name)
        if not name.strip():
            raise ConfigurationError("every subscription needs a non-empty name", field="name")
        parser = _Parser(name)
        sub = parser.parse(values, origin)
        if parser.problems:
            raise _combine(name, parser.problems)
        assert sub is not None
        return sub

    def describe(self) -> dict[str, Any]:
        """What this subscription receives, for ``jobhooks check`` (never the secrets)."""
        return {
            "name": self.name,
            "url": self.url,
            "origin": self.origin,
            "enabled": self.enabled,
            "mode": self.mode.value,
            "format": self.format.value,
            "verbs": sorted(v.value for v in self.verbs),
            "subject_types": (
                "all" if self.subject_types is None else sorted(s.value for s in self.subject_types)
            ),
            "subject_ids": "all" if self.subject_ids is None else list(self.subject_ids),
            "signed": bool(self.secrets),
            "secrets": len(self.secrets),
            "batch_size": self.batch_size if self.mode is Mode.BATCH else None,
            "batch_flush_seconds": self.batch_flush_seconds if self.mode is Mode.BATCH else None,
            "timeout_seconds": self.timeout_seconds,
            "headers": sorted(self.headers),
        }


def _combine(name: str, problems: list[ConfigurationError]) -> ConfigurationError:
    if len(problems) == 1:
        return problems[0]
    lines = "\n".join(f"  - {p}" for p in problems)
    error = ConfigurationError(f"{len(problems)} problems:\n{lines}", subscription=name)
    error.problems = problems  # type: ignore[attr-defined]
    return error


def _choices(values: Iterable[str]) -> str:
    return ", ".join(values)


class _Parser:
    """Collects every problem in one subscription instead of stopping at the first."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[ConfigurationError] = []

    def fail(self, fld: str, message: str) -> None:
        self.problems.append(ConfigurationError(message, subscription=self.name, field=fld))

    def parse(self, values: Mapping[str, Any], origin: str) -> Subscription | None:
        if not isinstance(values, Mapping):
            self.fail("*", f"must be a table of fields, got {type(values).__name__}")
            return None
        for key in values:
            if key == "name":
                continue
            if key not in FIELDS:
                hint = close_match(str(key), FIELDS)
                did = f"did you mean {hint!r}? " if hint else ""
                self.fail(str(key), f"unknown field {key!r}; {did}valid fields: {_choices(FIELDS)}")
        url = self.url(values.get("url"))
        mode = self.enum("mode", values.get("mode", "realtime"), Mode, Mode.REALTIME)
        fmt = self.enum("format", values.get("format", "json"), WireFormat, WireFormat.JSON)
        verbs = self.verbs(values.get("verbs"), mode)
        subject_types = self.subject_types(values.get("subject_types"))
        subject_ids = self.subject_ids(values.get("subject_ids"))
        secrets = self.secrets(values.get("secret"))
        headers = self.headers(values.get("headers"))
        batch_size = self.positive("batch_size", values.get("batch_size", 100), integer=True)
        flush = self.positive("batch_flush_seconds", values.get("batch_flush_seconds", 60))
        timeout = self.positive("timeout_seconds", values.get("timeout_seconds", 10))
        enabled = self.boolean("enabled", values.get("enabled", True))
        if self.problems:
            return None
        return Subscription(
            name=self.name,
            url=url,
            secrets=secrets,
            subject_types=subject_types,
            subject_ids=subject_ids,
            verbs=verbs,
            mode=mode,
            format=fmt,
            batch_size=int(batch_size),
            batch_flush_seconds=float(flush),
            headers=MappingProxyType(headers),
            timeout_seconds=float(timeout),
            enabled=enabled,
            origin=origin,
        )

    # -- one method per kind of field -------------------------------------------------------
    def url(self, value: Any) -> str:
        if value is None or value == "":
            self.fail("url", "is required: the http(s) endpoint to POST events to")
            return ""
        if not isinstance(value, str):
            self.fail("url", f"must be a string, got {type(value).__name__} {value!r}")
            return ""
        shown = redact_url(value)  # never echo user:password@ (an error is logged, printed)
        if any(c in value for c in "\r\n\t "):
            self.fail("url", f"{shown!r} contains whitespace or a line break")
            return ""
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            self.fail("url", f"{shown!r} is not a valid URL ({redact_url(str(exc))})")
            return ""
        if parts.scheme.lower() not in ("http", "https"):
            scheme = parts.scheme or "none"
            self.fail("url", f"{shown!r} has scheme {scheme!r}; valid schemes: http, https")
        elif parts.username is not None or parts.password is not None:
            self.fail(
                "url",
                f"{redact_url(value, marker=False)!r} carries credentials (user:password@, not "
                "shown); remove them and use 'secret' (signatures) or 'headers' (e.g. "
                "Authorization) instead",
            )
        elif not parts.hostname:
            self.fail("url", f"{shown!r} has no host; expected e.g. https://example.com/hooks")
        return value

    def enum(self, fld: str, value: Any, kind: type[Any], default: Any) -> Any:
        choices = [m.value for m in kind]
        if isinstance(value, str) and value.strip().lower() in choices:
            return kind(value.strip().lower())
        hint = close_match(str(value), choices) if isinstance(value, str) else None
        did = f"did you mean {hint!r}? " if hint else ""
        self.fail(fld, f"{value!r} is not a valid {fld}; {did}valid choices: {_choices(choices)}")
        return default

    def str_list(self, fld: str, value: Any) -> list[str] | None:
        """A list of strings, or one comma-separated string (handy in connection extras)."""
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",")]
        elif isinstance(value, (list, tuple)):
            if not all(isinstance(v, str) for v in value):
                bad = next(v for v in value if not isinstance(v, str))
                self.fail(fld, f"must be a list of strings; {bad!r} is a {type(bad).__name__}")
                return None
            items = [v.strip() for v in value]
        else:
            self.fail(fld, f"must be a list of strings, got {type(value).__name__} {value!r}")
            return None
        items = [v for v in items if v]
        if not items:
            self.fail(fld, "is empty, so nothing would match; leave the field out to receive all")
            return None
        return items

    def verbs(self, value: Any, mode: Mode) -> frozenset[Verb]:
        allowed = verbs_for_mode(mode)
        if value is None:
            return allowed
        names = self.str_list("verbs", value)
        if names is None:
            return allowed
        verbs: set[Verb] = set()
        for raw in names:
            word = raw.lower()
            if word not in Verb._value2member_map_:
                hint = close_match(word, [v.value for v in Verb])
                did = f"did you mean {hint!r}? " if hint else ""
                self.fail(
                    "verbs",
                    f"{raw!r} is not a verb; {did}valid verbs: {_choices(v.value for v in Verb)}",
                )
                continue
            verb = Verb(word)
            if mode not in verb.modes:
                other = "batch" if mode is Mode.REALTIME else "realtime"
                self.fail(
                    "verbs",
                    f"verb {verb.value!r} is {verb.describe_modes()}; a {mode.value} "
                    f"subscription cannot carry it. Set mode = {other!r} or remove it "
                    f"({mode.value} verbs: {_choices(sorted(v.value for v in allowed))})",
                )
                continue
            verbs.add(verb)
        return frozenset(verbs)

    def subject_types(self, value: Any) -> frozenset[SubjectType] | None:
        if value is None:
            return None
        names = self.str_list("subject_types", value)
        if names is None:
            return None
        found: set[SubjectType] = set()
        for raw in names:
            word = raw.lower()
            if word not in SubjectType._value2member_map_:
                hint = close_match(word, [s.value for s in SubjectType])
                did = f"did you mean {hint!r}? " if hint else ""
                self.fail(
                    "subject_types",
                    f"{raw!r} is not a subject type; {did}valid subject "
                    f"types: {_choices(s.value for s in SubjectType)}",
                )
                continue
            found.add(SubjectType(word))
        return frozenset(found)

    def subject_ids(self, value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        ids = self.str_list("subject_ids", value)
        return tuple(ids) if ids is not None else None

    def secrets(self, value: Any) -> tuple[str, ...]:
        if value is None or value == "":
            return ()
        if isinstance(value, str):
            items = value.replace(",", " ").split()
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            items = [v.strip() for v in value if v.strip()]
        else:
            self.fail(
                "secret",
                f"must be a 'whsec_…' string or a list of them, got {type(value).__name__}",
            )
            return ()
        for i, secret in enumerate(items, 1):
            try:
                validate_secret(secret)
            except ValueError as exc:
                which = f"secret #{i}" if len(items) > 1 else "the secret"
                self.fail("secret", f"{which} {exc}; generate one with `jobhooks secret`")
        return tuple(items)

    def headers(self, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail("headers", f"must be a table of name = value, got {type(value).__name__}")
            return {}
        out: dict[str, str] = {}
        for name, val in value.items():
            if not isinstance(name, str) or not _TOKEN.match(name):
                self.fail("headers", f"header name {name!r} is not a valid HTTP header name")
                continue
            lowered = name.lower()
            if lowered.startswith("webhook-") or lowered in _RESERVED_HEADERS:
                self.fail(
                    "headers",
                    f"header {name!r} is set by jobhooks and cannot be "
                    f"overridden (reserved: webhook-*, {_choices(_RESERVED_HEADERS)})",
                )
                continue
            if not isinstance(val, str):
                self.fail(
                    "headers", f"header {name!r} must have a string value, got {type(val).__name__}"
                )
                continue
            if any(c in val for c in "\r\n\0"):
                self.fail(
                    "headers",
                    f"header {name!r} value contains CR, LF or NUL, which would split the request",
                )
                continue
            if not val.isascii() and not all(ord(c) < 256 for c in val):
                self.fail(
                    "headers",
                    f"header {name!r} value has characters outside Latin-1, which HTTP header "
                    "values cannot carry (the value is not shown: it may be a credential)",
                )
                continue
            out[name] = val
        return out

    def positive(self, fld: str, value: Any, *, integer: bool = False) -> float:
        kind = "a positive integer" if integer else "a positive number"
        if isinstance(value, str):
            try:
                value = int(value) if integer else float(value)
            except ValueError:
                self.fail(fld, f"{value!r} is not {kind}")
                return 1
        ok_type = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_type):
            self.fail(fld, f"{value!r} is not {kind}")
            return 1
        if not integer:
            try:
                number = float(value)
            except OverflowError:  # an int beyond any float
                number = math.inf
            if number == math.inf:
                shown = repr(value) if len(str(value)) <= 20 else f"{str(value)[:20]}…"
                self.fail(fld, f"{shown} is not {kind}; it is too large")
                return 1
        if not value > 0:  # NaN too
            self.fail(fld, f"{value!r} is not {kind}; it must be greater than 0")
            return 1
        return value

    def boolean(self, fld: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.fail(fld, f"{value!r} is not a boolean; valid choices: true, false")
        return True
