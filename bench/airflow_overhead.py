"""What jobhooks adds to a DAG run: wall time of a 50-task DAG run on a real Airflow 3 deployment
with jobhooks off, on with a healthy receiver, and on with a receiver that accepts requests and
never answers; medians, and the % each "on" case adds to "off".

The deployment is the end-to-end tests' harness (tests/airflow/stack.py): scheduler, API server
and dag-processor, LocalExecutor, SQLite metadata DB, in a temporary AIRFLOW_HOME, Airflow's
default parallelism. The DAG has five layers of ten tasks, each layer waiting for the one
before, each task a short Python callable: fan-out, fan-in and 50 task processes. Wall time is
the run's ``end_date - start_date`` as Airflow records it.

- **off**: ``[jobhooks] enabled = False`` (the plugin is installed and loaded, does nothing).
- **healthy**: one realtime subscription (a ``jobhooks`` connection) to bench/_receiver.py.
- **hanging**: the same, to a receiver that reads each request and never answers: every task
  process gives up after ``flush_timeout`` (default 5 s) and leaves its event in the outbox.

Switching configuration restarts the scheduler (its executor and task processes inherit the
setting); the first run after each restart warms it up and is not counted, so "hanging" is
measured in steady state, once the endpoint's first failures are in the outbox (before that, the
first task processes of an outage each wait out their flush window). The configurations take
turns, block by block, so a drift of the machine touches all three alike.

    .venv-airflow/bin/python bench/airflow_overhead.py [--rounds N] [--runs-per-block K] [--quick]

Target: at most 2 % added wall time in both "on" cases.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from _common import log, machine, output, receiver

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.airflow.stack import AirflowStack  # noqa: E402

TARGET_PCT = 2.0
DAG_ID = "bench_fifty_tasks"
DAG = f'''"""50 tasks: five layers of ten, each layer after the previous one."""
import datetime as dt

from airflow.sdk import dag, task


@task
def step(layer: int, index: int) -> int:
    return sum(range(10_000)) + layer * index


@dag(dag_id="{DAG_ID}", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
def bench_fifty_tasks():
    previous = []
    for layer in range(5):
        current = [step.override(task_id=f"l{{layer}}_t{{i}}")(layer, i) for i in range(10)]
        for upstream in previous:
            upstream >> current
        previous = current


bench_fifty_tasks()
'''
CONFIGS = ("off", "healthy", "hanging")


def run_once(stack: AirflowStack) -> float:
    run_id = stack.trigger(DAG_ID)
    run = stack.wait_for_run(DAG_ID, run_id, timeout=900)
    if run["state"] != "success":
        raise RuntimeError(f"run {run_id} ended {run['state']}")
    start, end = (datetime.fromisoformat(run[k]) for k in ("start_date", "end_date"))
    return (end - start).total_seconds()


def configure(stack: AirflowStack, config: str, urls: dict[str, str]) -> None:
    """Point jobhooks_default at the config's receiver and restart the scheduler with it."""
    if config != "off":
        stack.api(
            "PATCH",
            "connections/jobhooks_default",
            {"connection_id": "jobhooks_default", "conn_type": "jobhooks", "host": urls[config]},
        )
    enabled = "False" if config == "off" else "True"
    stack.restart_scheduler(AIRFLOW__JOBHOOKS__ENABLED=enabled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="turns of off/healthy/hanging")
    parser.add_argument("--runs-per-block", type=int, default=2, help="runs per turn")
    parser.add_argument("--quick", action="store_true", help="one round of one run each")
    args = parser.parse_args()
    rounds, per_block = (1, 1) if args.quick else (args.rounds, args.runs_per_block)
    started = time.monotonic()
    result: dict[str, Any] = {"benchmark": "airflow_overhead", "machine": machine()}
    with (
        tempfile.TemporaryDirectory(prefix="jobhooks-bench-airflow-") as tmp,
        receiver() as healthy,
        receiver(hang=True) as hanging,
    ):
        home = Path(tmp)
        stack = AirflowStack(
            home,
            home / "dags",
            {
                "AIRFLOW__CORE__PARALLELISM": "32",  # Airflow's default
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            },
        )
        urls = {"healthy": healthy.url, "hanging": hanging.url}
        stack.dags.mkdir(parents=True)
        stack.add_dag_file(f"{DAG_ID}.py", DAG)
        try:
            log("starting Airflow …")
            stack.start()
            stack.api(
                "POST",
                "connections",
                {"connection_id": "jobhooks_default", "conn_type": "jobhooks", "host": healthy.url},
            )
            stack.wait_for_dags(DAG_ID)
            log("warm-up run …")
            run_once(stack)
            walls: dict[str, list[float]] = {c: [] for c in CONFIGS}
            for turn in range(rounds):
                for config in CONFIGS:
                    configure(stack, config, urls)
                    run_once(stack)  # warm-up after the restart: not counted
                    for _ in range(per_block):
                        walls[config].append(run_once(stack))
                        log(f"round {turn + 1}: {config} {walls[config][-1]:.1f} s")
            counts = {"healthy": healthy.count(), "hanging": hanging.count()}
        finally:
            stack.stop()
    median = {c: statistics.median(v) for c, v in walls.items()}
    added = {
        c: round((median[c] - median["off"]) / median["off"] * 100, 2)
        for c in ("healthy", "hanging")
    }
    result.update(
        {
            "dag": {
                "tasks": 50,
                "shape": "5 layers x 10 tasks",
                "runs_per_config": rounds * per_block,
            },
            "wall_seconds": {c: [round(w, 2) for w in v] for c, v in walls.items()},
            "median_seconds": {c: round(m, 2) for c, m in median.items()},
            "added_pct": added,
            "target_pct": TARGET_PCT,
            "meets_target": all(v <= TARGET_PCT for v in added.values()),
            "receiver": counts,
            "seconds": round(time.monotonic() - started, 1),
        }
    )
    output(result)


if __name__ == "__main__":
    main()
