"""jobhooks for Prefect 3: job-status webhooks from flow and task state changes.

Usage::

    from prefect import flow, task
    from jobhooks_prefect import flow_hooks, task_hooks

    @task(**task_hooks())
    def extract() -> int: ...

    @flow(**flow_hooks())
    def nightly_export() -> None: ...

and, to cover every flow with no code change (crashes included), run ``jobhooks prefect watch``
beside the Prefect server. Subscriptions come from the ``JOBHOOKS_CONFIG`` file and from
``jobhooks-subscription`` blocks named in ``JOBHOOKS_PREFECT_SUBSCRIPTIONS``. See docs/prefect.md.

Prefect imports this package through the ``prefect.collections`` entry point so that the
``JobhooksSubscription`` block registers; that import loads only the block class (Prefect and
pydantic), and the hooks load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._block import JobhooksSubscription

if TYPE_CHECKING:
    from .hooks import flow_hooks, task_hooks

__all__ = ["JobhooksSubscription", "flow_hooks", "task_hooks"]


def __getattr__(name: str) -> Any:
    if name in ("flow_hooks", "task_hooks"):
        from . import hooks

        return getattr(hooks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
