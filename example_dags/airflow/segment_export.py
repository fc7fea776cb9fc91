"""Nightly export of the "high-value customers" audience to the ad platforms.

Tagged ``jobhooks:subject_type=segment``: its job-status events report it as a *segment*, so a
catalog subscribed to ``subject_types = "segment"`` hears about exports and nothing else. It is
scheduled (02:00 UTC, no catch-up), so a successful run is ``synccomplete`` and never
``completed``: another night always follows.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task


@dag(
    dag_id="segment_export",
    schedule="0 2 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["exports", "jobhooks:subject_type=segment"],
    doc_md=__doc__,
)
def segment_export() -> None:
    @task
    def build_segment() -> list[str]:
        """Select the members of the segment (a fixed sample here)."""
        return [f"customer-{n:04d}" for n in range(0, 500, 7)]

    @task
    def write_export(members: list[str]) -> dict[str, int]:
        """Write the export file the ad platforms pick up."""
        return {"rows": len(members), "bytes": sum(len(m) + 1 for m in members)}

    @task
    def publish(summary: dict[str, int]) -> None:
        print(f"published {summary['rows']} rows ({summary['bytes']} bytes)")

    publish(write_export(build_segment()))


segment_export()
