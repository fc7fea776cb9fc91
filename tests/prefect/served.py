"""The deployments the stack tests run, served by one ``flow.serve`` process (a Prefect runner).

- ``segment-export/nightly``: the example, with hooks, on an (active) interval schedule;
- ``quick-sync/manual``: no hooks at all, no schedule (only the watcher reports it);
- ``sleepy/kill-me``, ``sleepy/cancel-me``: write their process id to a file, then wait to be
  killed or cancelled.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from prefect import flow, serve, task

from jobhooks_prefect import flow_hooks

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "example_dags" / "prefect"))
from segment_export import segment_export  # noqa: E402


@task
def step(n: int) -> int:
    return n * 2


@flow(name="quick-sync")
def quick_sync() -> int:
    return sum(step(n) for n in range(3))


@flow(name="sleepy", **flow_hooks())
def sleepy(pid_file: str) -> None:
    Path(pid_file + ".tmp").write_text(str(os.getpid()))
    os.replace(pid_file + ".tmp", pid_file)
    time.sleep(300)


if __name__ == "__main__":
    serve(
        segment_export.to_deployment(name="nightly", interval=3600,
                                     tags=["jobhooks:subject_type=segment"]),
        quick_sync.to_deployment(name="manual"),
        sleepy.to_deployment(name="kill-me"),
        sleepy.to_deployment(name="cancel-me"),
    )
