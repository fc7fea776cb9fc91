"""A served deployment on a schedule: exports a customer segment every few minutes.

    python example_dags/prefect/segment_export.py [--interval SECONDS] [--name NAME]

serves ``segment-export/<name>`` (default ``nightly``) with an interval schedule, tagged
``jobhooks:subject_type=segment`` so its events report subject type ``segment`` and subject id
``segment-export/nightly``. Its runs report started (first run only), syncing, synced (one per
task), synccomplete; never completed while the schedule is active.
"""

from __future__ import annotations

import argparse

from prefect import flow, task

from jobhooks_prefect import flow_hooks, task_hooks


@task(**task_hooks(), retries=1, retry_delay_seconds=0)
def extract(segment: str) -> list[int]:
    return [len(segment) * n for n in range(10)]


@task(**task_hooks())
def transform(rows: list[int]) -> list[int]:
    return [row * 2 for row in rows]


@task(**task_hooks())
def load(rows: list[int]) -> int:
    return len(rows)


@flow(name="segment-export", **flow_hooks())
def segment_export(segment: str = "vip") -> int:
    return load(transform(extract(segment)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=300.0, help="seconds between runs")
    parser.add_argument("--name", default="nightly", help="deployment name")
    args = parser.parse_args()
    segment_export.serve(
        name=args.name, interval=args.interval, tags=["jobhooks:subject_type=segment"]
    )


if __name__ == "__main__":
    main()
