"""One-off synchronisation of every partner account, one mapped task per partner.

``@once``: after its single successful run the work is done for good, so besides
``synccomplete`` it reports ``completed`` (batch subscriptions only). Each mapped task instance
that succeeds is one ``synced`` event (its ``data.map_index`` says which).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task


@dag(
    dag_id="partner_sync",
    schedule="@once",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["partners", "jobhooks:subject_type=account"],
    doc_md=__doc__,
)
def partner_sync() -> None:
    @task
    def list_partners() -> list[str]:
        return ["acme", "globex", "initech"]

    @task
    def sync_partner(partner: str) -> int:
        return len(partner)

    @task
    def summarize(synced: list[int]) -> None:
        print(f"synced {len(list(synced))} partners")

    summarize(sync_partner.expand(partner=list_partners()))


partner_sync()
