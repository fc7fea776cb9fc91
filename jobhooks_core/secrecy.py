"""What jobhooks keeps secret, in one place: a subscription's signing secrets and its header
values (``Authorization``, API keys).

They go on the wire to the endpoint and nowhere else: never into a log line, an outbox row,
command output or an error message. jobhooks' own messages never quote them; :func:`scrub` takes
them out of text that comes from elsewhere — an endpoint's answer that echoes the token it
refused, a transport error that quotes a header.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .subscriptions import Subscription

__all__ = ["MASK", "hidden_in_transport_logs", "redact_url", "scrub", "secret_values",
           "sensitive_header"]

MASK = "***"
MIN_HEADER_VALUE = 6  # shorter header values ("1", "v2", "data") are not credentials
# A header whose name holds one of these words carries a credential (Airflow's masker is told).
SENSITIVE_HEADER_WORDS = (
    "auth",
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "cookie",
    "session",
    "signature",
    "credential",
    "bearer",
)
_USERINFO = re.compile(r"^(?P<head>[^:/?#\s]*:?//)(?P<userinfo>[^?#]*)@")


@functools.lru_cache(maxsize=256)
def secret_values(sub: Subscription) -> tuple[str, ...]:
    """Every string of ``sub`` that must not be shown, longest first: each signing secret (with
    and without its ``whsec_`` prefix) and each header value."""
    values: set[str] = set()
    for secret in sub.secrets:
        values.add(secret)
        values.add(secret.removeprefix("whsec_"))
    for value in sub.headers.values():
        value = value.strip()
        if len(value) >= MIN_HEADER_VALUE:
            values.add(value)
            scheme, _, credential = value.partition(" ")  # "Bearer <token>": the token alone
            if scheme and len(credential.strip()) >= MIN_HEADER_VALUE:
                values.add(credential.strip())
    return tuple(sorted(values, key=len, reverse=True))


def scrub(text: str, values: Iterable[str]) -> str:
    """``text`` with every one of ``values`` replaced by ``***``."""
    for value in values:
        if value:
            text = text.replace(value, MASK)
    return text


def sensitive_header(name: str) -> bool:
    """Whether the header ``name`` carries a credential (``Authorization``, ``X-Api-Key``…)."""
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE_HEADER_WORDS)


def redact_url(url: str, *, marker: bool = True) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@`` (``marker=False``: removed);
    works on malformed URLs too, erring on the side of hiding more."""
    return _USERINFO.sub(lambda m: m.group("head") + (f"{MASK}@" if marker else ""), url, count=1)


# httpcore logs, at debug level, the response headers it reads: an endpoint that echoes a
# credential in one would put it in the host's logs. While jobhooks sends a request, the thread
# sending it carries that request's secrets, and a filter on httpcore's loggers scrubs them.
HTTPCORE_LOGGERS = ("httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy")
_sending = threading.local()
_installed = threading.Lock()


class _ScrubTransportLogs(logging.Filter):
    installed = False

    def filter(self, record: logging.LogRecord) -> bool:
        values = getattr(_sending, "values", None)
        if values:
            message = record.getMessage()
            clean = scrub(message, values)
            if clean != message:
                record.msg, record.args = clean, None
        return True


_FILTER = _ScrubTransportLogs()


@contextmanager
def hidden_in_transport_logs(values: tuple[str, ...]) -> Iterator[None]:
    """Scrub ``values`` from what httpcore logs in this thread inside the ``with`` block."""
    if not _FILTER.installed:
        with _installed:
            for name in HTTPCORE_LOGGERS:
                logger = logging.getLogger(name)
                if _FILTER not in logger.filters:
                    logger.addFilter(_FILTER)
            _FILTER.installed = True
    _sending.values = values
    try:
        yield
    finally:
        _sending.values = None
