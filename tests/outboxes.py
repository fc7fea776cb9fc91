"""Both outbox backends for tests that run against each: SQLite in ``tmp_path``, and
PostgreSQL in a schema of its own (dropped afterwards) when ``JOBHOOKS_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from jobhooks_core.outbox import Outbox, SQLiteOutbox

__all__ = ["BACKENDS", "POSTGRES_URL", "backend", "postgres_url"]

POSTGRES_URL = os.environ.get("JOBHOOKS_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgres"]


def postgres_url() -> str:
    """The test PostgreSQL's URL; the calling test skips, saying how to run it, when unset."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL: set JOBHOOKS_TEST_POSTGRES_URL=postgresql://… to run")
    return POSTGRES_URL


@contextmanager
def backend(kind: str, tmp_path: Path) -> Iterator[Outbox]:
    """A fresh outbox of ``kind``; PostgreSQL skips with a reason when no URL is set."""
    if kind == "sqlite":
        box: Outbox = SQLiteOutbox(tmp_path / "outbox.db")
        try:
            yield box
        finally:
            box.close()
        return
    url = postgres_url()
    import psycopg

    from jobhooks_core.outbox.postgres import PostgresOutbox

    schema = f"jobhooks_test_{uuid.uuid4().hex[:12]}"
    box = PostgresOutbox(url, schema=schema)
    try:
        yield box
    finally:
        box.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
