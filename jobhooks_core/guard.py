"""One guard for every adapter entry point: jobhooks' own errors never reach the host.

Catches ``Exception`` (never ``BaseException``: a KeyboardInterrupt or SystemExit belongs to
the host), logs "jobhooks: … (no effect on the <host>)" and counts it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["errors_swallowed", "never_raise", "swallowed"]

log = logging.getLogger("jobhooks")
F = TypeVar("F", bound=Callable[..., Any])

_count = 0
_lock = threading.Lock()


def errors_swallowed() -> int:
    """How many errors the guard has kept from the host in this process."""
    return _count


@contextmanager
def swallowed(what: str, host: str = "job") -> Iterator[None]:
    """``with swallowed("reporting task success"): …`` — log and count, never raise."""
    global _count
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the whole point: never break the host
        with _lock:
            _count += 1
        log.error(
            "jobhooks: %s failed: %s: %s (no effect on the %s)",
            what,
            type(exc).__name__,
            exc,
            host,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )


def never_raise(what: str, host: str = "job", default: Any = None) -> Callable[[F], F]:
    """Decorator form of :func:`swallowed`; the wrapped call returns ``default`` on error."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with swallowed(what, host):
                return func(*args, **kwargs)
            return default

        return wrapper  # type: ignore[return-value]

    return decorate
