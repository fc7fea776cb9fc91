"""A release that waits for a person: ``wait_for_approval`` sleeps until someone marks it
successful in the Airflow UI (or the REST API). States set by hand are job events too: the
task marked successful reports ``synced`` from the API server, and the run then finishes.
"""

from __future__ import annotations

import datetime as dt
import time

from airflow.sdk import dag, task


@dag(
    dag_id="awaiting_approval",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["releases"],
    doc_md=__doc__,
)
def awaiting_approval() -> None:
    @task(execution_timeout=dt.timedelta(minutes=30))
    def wait_for_approval() -> None:
        time.sleep(30 * 60)

    @task
    def release() -> None:
        print("released")

    wait_for_approval() >> release()


awaiting_approval()
