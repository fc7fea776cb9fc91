"""The durable outbox: every event a subscription should receive, until it is delivered.

One interface, two backends: SQLite in WAL mode (the embedded default, one file shared by every
process on a machine) and PostgreSQL (``postgresql://…``, for workers on several machines).
"""

from __future__ import annotations

from pathlib import Path

from ._base import Delivery, Outbox, OutboxTransaction, Outcome, Status, batch_id_for
from .sqlite import SQLiteOutbox

__all__ = [
    "Delivery",
    "Outbox",
    "OutboxTransaction",
    "Outcome",
    "SQLiteOutbox",
    "Status",
    "batch_id_for",
    "open_outbox",
]


def open_outbox(url: str) -> Outbox:
    """The outbox at ``url``: ``postgresql://…`` / ``postgres://…``, else a SQLite file path
    (``sqlite:///path`` also accepted)."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresOutbox

        return PostgresOutbox(url)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///") - 1 :]
    return SQLiteOutbox(Path(url).expanduser())
