"""Prefect's view of the jobhooks runtime: settings, the event source, and the subscriptions
(the ``JOBHOOKS_CONFIG`` file plus the named ``jobhooks-subscription`` blocks).

Everything is read when first needed, never at import. Flow processes share one short-lived
runtime per (settings, subscriptions); the watcher builds its own long-lived one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence

from jobhooks_core.config import LoadedSubscriptions, load_subscriptions
from jobhooks_core.events import Source
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings

from ._block import load_block_subscriptions

__all__ = ["SUBSCRIPTIONS_ENV", "block_names", "prefect_source", "runtime_for", "subscriptions"]

SUBSCRIPTIONS_ENV = "JOBHOOKS_PREFECT_SUBSCRIPTIONS"

_runtimes: dict[tuple[Settings, tuple[object, ...]], Jobhooks] = {}
_lock = threading.Lock()


def block_names(extra: Sequence[str] = (), environ: Mapping[str, str] | None = None
                ) -> tuple[str, ...]:
    """Block names from ``JOBHOOKS_PREFECT_SUBSCRIPTIONS`` (comma-separated), then ``extra``."""
    env = os.environ if environ is None else environ
    names = [n.strip() for n in env.get(SUBSCRIPTIONS_ENV, "").split(",")]
    names += [n.strip() for n in extra]
    return tuple(dict.fromkeys(n for n in names if n))


def subscriptions(names: Sequence[str], *, log_errors: bool = True) -> LoadedSubscriptions:
    """The config file's subscriptions and the named blocks'; bad ones are errors, logged."""
    return load_subscriptions(load_block_subscriptions(names), log_errors=log_errors)


def prefect_source(settings: Settings) -> Source:
    import prefect

    return Source("prefect", settings.instance, prefect.__version__)


def runtime_for(names: Sequence[str]) -> Jobhooks:
    """The short-lived runtime of a flow process for these subscriptions.

    Settings and subscriptions are read again for every flow run (a block edited between two
    runs takes effect); a runtime, with its dispatcher, is reused while they are unchanged.
    """
    settings = Settings.from_env()
    loaded = subscriptions(names)
    key = (settings, loaded.subscriptions)
    with _lock:
        runtime = _runtimes.get(key)
        if runtime is None:
            runtime = Jobhooks(settings=settings, source=prefect_source(settings),
                               subscriptions=loaded, long_lived=False)
            _runtimes[key] = runtime
        return runtime


def close_all() -> None:
    """Flush and close every runtime this process made (tests; an embedding host's shutdown)."""
    with _lock:
        runtimes = list(_runtimes.values())
        _runtimes.clear()
    for runtime in runtimes:
        runtime.close()
