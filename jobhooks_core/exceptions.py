"""Every error jobhooks raises, in one tree.

    JobhooksError
    ├── ConfigurationError      a bad subscription, setting or config file
    ├── RenderError             an event that cannot be put on the wire
    ├── SignatureError          a request whose webhook signature does not verify
    └── OutboxError             the outbox database cannot be opened or written

Lower-level errors (OSError, sqlite3, psycopg, json) are translated at the boundary with
``raise … from exc`` so callers catch one family.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "JobhooksError",
    "OutboxError",
    "RenderError",
    "SignatureError",
]


class JobhooksError(Exception):
    """Base class of every jobhooks error."""


class ConfigurationError(JobhooksError, ValueError):
    """A subscription, setting or configuration file holds a value jobhooks cannot use.

    ``subscription`` and ``field`` name where the problem is, when known.
    """

    def __init__(
        self, message: str, *, subscription: str | None = None, field: str | None = None
    ) -> None:
        prefix = ""
        if subscription is not None and field is not None:
            prefix = f"subscription {subscription!r}, field {field!r}: "
        elif subscription is not None:
            prefix = f"subscription {subscription!r}: "
        elif field is not None:
            prefix = f"setting {field!r}: "
        super().__init__(prefix + message)
        self.subscription = subscription
        self.field = field
        self.detail = message


class RenderError(JobhooksError):
    """An event could not be rendered in the requested wire format."""


class SignatureError(JobhooksError):
    """A webhook request's signature, id or timestamp does not verify."""


class OutboxError(JobhooksError):
    """The outbox database could not be opened, migrated or written."""
