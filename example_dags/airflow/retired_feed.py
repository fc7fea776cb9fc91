"""A daily partner feed that was retired: its ``end_date`` is past, so after its last run the
scheduler plans no other. That last successful run is the work's final one: ``completed``.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task


@dag(
    dag_id="retired_feed",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    end_date=dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC),
    catchup=True,
    max_active_runs=1,
    tags=["feeds", "jobhooks:subject_type=stream"],
    doc_md=__doc__,
)
def retired_feed() -> None:
    @task
    def deliver_feed() -> None:
        print("feed delivered")

    deliver_feed()


retired_feed()
