"""Import of the partner's customer file: the file is downloaded, but loading it fails on a
malformed row, on every try. After its retry the task fails for good, the run fails, and the
``failed`` event names the task and carries its error.

Triggered on demand (no schedule), like an import started when a partner uploads a file.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task


class MalformedRowError(ValueError):
    """A row of the partner's file does not match the agreed layout."""


@dag(
    dag_id="customer_import",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["imports"],
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=1)},
    doc_md=__doc__,
)
def customer_import() -> None:
    @task
    def download() -> str:
        return "customers-2026-11-27.csv"

    @task
    def load_customers(path: str) -> None:
        raise MalformedRowError(f"{path}: row 42 has 7 columns, expected 9")

    load_customers(download())


customer_import()
