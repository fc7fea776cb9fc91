"""An ad-hoc flow: run it directly, no deployment.

    python example_dags/prefect/adhoc_report.py

Its subject id is the flow name, ``adhoc-report``. The first run jobhooks records announces the
work (created, started); every successful run reports syncing, synced (per task), synccomplete
and, as no schedule stands behind it, completed (batch subscriptions).
"""

from __future__ import annotations

import asyncio

from prefect import flow, task

from jobhooks_prefect import flow_hooks, task_hooks


@task(**task_hooks())
async def count_rows(table: str) -> int:
    await asyncio.sleep(0)
    return len(table) * 100


@flow(name="adhoc-report", **flow_hooks())
async def adhoc_report(tables: tuple[str, ...] = ("orders", "customers")) -> int:
    counts = await asyncio.gather(*(count_rows(table) for table in tables))
    return sum(counts)


if __name__ == "__main__":
    print(asyncio.run(adhoc_report()))
