"""A report that is either quick or full: a branch picks the full one and the quick one is
skipped. A skipped task is not a sync unit that finished, so it reports nothing; the run
still succeeds (``synccomplete``, and ``completed``: it has no schedule).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task


@dag(
    dag_id="report_branch",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["reports", "jobhooks:subject_type=report"],
    doc_md=__doc__,
)
def report_branch() -> None:
    @task.branch
    def choose() -> str:
        return "full_report"

    @task
    def quick_report() -> None:
        print("quick report")

    @task
    def full_report() -> None:
        print("full report")

    @task(trigger_rule="none_failed_min_one_success")
    def publish() -> None:
        print("report published")

    branch = choose()
    branch >> [quick_report(), full_report()] >> publish()


report_branch()
