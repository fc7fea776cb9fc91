"""A flow that fails after its retries: the upstream it imports from is down.

    python example_dags/prefect/flaky_import.py

The task tries three times, the flow twice; jobhooks reports syncing once (a retry is the same
run), then one ``failed`` with the error and the failed task in ``data.failed_tasks``. The
process exits 1, exactly as it would without jobhooks.
"""

from __future__ import annotations

from prefect import flow, task

from jobhooks_prefect import flow_hooks, task_hooks


class UpstreamDown(RuntimeError):
    pass


@task(**task_hooks(), retries=2, retry_delay_seconds=0)
def fetch_batch(source: str) -> list[str]:
    raise UpstreamDown(f"{source} answered 503")


@flow(name="flaky-import", retries=1, retry_delay_seconds=0, **flow_hooks())
def flaky_import(source: str = "crm") -> int:
    return len(fetch_batch(source))


if __name__ == "__main__":
    flaky_import()
