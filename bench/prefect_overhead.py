"""What jobhooks' Prefect hooks add to a flow's wall time.

A flow of 50 sequential tasks runs against a real Prefect server (``prefect server start``, its
own temporary home) in three modes, each in fresh processes, interleaved over rounds:

- ``off``: the flow and tasks without jobhooks (the baseline);
- ``healthy``: ``flow_hooks()`` / ``task_hooks()``, a receiver that answers 204 at once;
- ``hang``: the same hooks, a receiver that accepts every request and never answers.

The figure is the flow call's wall time (from calling the flow to its return), median per mode,
and the % it adds over ``off``. Timed runs start ``--gap`` seconds apart: back to back, a run
overlaps the server's recording of the previous one and varies by ±50 %. Separately: how long
the process takes to exit after its last flow returned; with hooks that includes the bounded
exit flush (at most JOBHOOKS_FLUSH_TIMEOUT, 5 s by default, when the receiver never answers).

    .venv-prefect/bin/python bench/prefect_overhead.py [--quick] [--rounds N] [--runs N]

Prints one JSON object; target: <= 2 % added wall time in both hook modes.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import log, machine, output, receiver

TARGET_PERCENT = 2.0
MODES = ("off", "healthy", "hang")
HERE = Path(__file__).resolve()


# -- the worker: runs the flow in one mode ------------------------------------------------------
def worker(mode: str, runs: int, tasks: int, gap: float) -> None:
    from prefect import flow, task

    from jobhooks_prefect import flow_hooks, task_hooks

    hooked = mode != "off"

    def step(n: int) -> int:
        return n + 1

    unit = task(step, name="step", **(task_hooks() if hooked else {}))

    def fifty(count: int) -> int:
        total = 0
        for n in range(count):
            total = unit(total + n)
        return total

    pipeline = flow(fifty, name=f"bench-{tasks}-tasks", **(flow_hooks() if hooked else {}))
    pipeline(tasks)  # warm-up: Prefect's first-run costs (flow registration, clients)
    samples = []
    for _ in range(runs):
        time.sleep(gap)  # let the server finish recording the previous run (not timed)
        start = time.perf_counter()
        pipeline(tasks)
        samples.append(time.perf_counter() - start)
    print(json.dumps({"mode": mode, "samples": samples}), flush=True)


# -- the parent: a server, receivers, and rounds of workers -------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def prefect_server(home: Path) -> Iterator[dict[str, str]]:
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "JOBHOOKS_"))}
    env.update(PREFECT_HOME=str(home / "prefect"), PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
               PREFECT_LOGGING_LEVEL="WARNING", PREFECT_LOGGING_TO_API_ENABLED="false")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env={**env, "PREFECT_API_DATABASE_CONNECTION_URL":
             f"sqlite+aiosqlite:///{home / 'prefect.db'}"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the Prefect server did not start")
            time.sleep(0.2)
        yield env
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


def run_worker(mode: str, env: dict[str, str], url: str | None, home: Path,
               args: argparse.Namespace) -> tuple[list[float], float]:
    """(flow wall times, seconds from the last flow's return to the process's exit)."""
    env = dict(env, JOBHOOKS_HOME=str(home / mode))
    if url is not None:
        config = home / f"{mode}.json"
        config.write_text(json.dumps({"subscriptions": [{"name": mode, "url": url}]}))
        env["JOBHOOKS_CONFIG"] = str(config)
    process = subprocess.Popen(
        [sys.executable, str(HERE), "--worker", mode, "--runs", str(args.runs), "--tasks",
         str(args.tasks), "--gap", str(args.gap)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    returned = time.perf_counter()
    process.wait(120)
    exit_seconds = time.perf_counter() - returned
    if not line:
        raise RuntimeError(f"worker {mode} printed nothing (exit {process.returncode})")
    return json.loads(line)["samples"], exit_seconds


def summary(samples: list[float], base: float | None) -> dict[str, Any]:
    median = statistics.median(samples)
    result: dict[str, Any] = {"median_s": round(median, 4), "min_s": round(min(samples), 4),
                              "max_s": round(max(samples), 4), "samples": len(samples),
                              "all_s": [round(x, 3) for x in samples]}
    if base:
        result["added_percent"] = round((median - base) / base * 100, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3, help="processes per mode")
    parser.add_argument("--runs", type=int, default=6, help="timed flow runs per process")
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--gap", type=float, default=3.0,
                        help="idle seconds before each timed run (the server settles)")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 runs")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.runs, args.tasks, args.gap)
        return
    if args.quick:
        args.rounds, args.runs = 1, 3
    started = machine()
    with tempfile.TemporaryDirectory(prefix="jobhooks-bench-") as tmp:
        home = Path(tmp)
        samples: dict[str, list[float]] = {m: [] for m in MODES}
        exits: dict[str, list[float]] = {m: [] for m in MODES}
        log("starting a Prefect server")
        with prefect_server(home) as env, receiver() as healthy, receiver(hang=True) as hang:
            urls = {"off": None, "healthy": healthy.url, "hang": hang.url}
            for round_ in range(args.rounds):
                for mode in MODES:
                    log(f"round {round_ + 1}/{args.rounds}: {mode}")
                    flows, exit_seconds = run_worker(mode, env, urls[mode], home, args)
                    samples[mode] += flows
                    exits[mode].append(exit_seconds)
            delivered = healthy.count()
    base = statistics.median(samples["off"])
    result: dict[str, Any] = {
        "benchmark": "prefect_overhead",
        "flow": f"{args.tasks} sequential tasks, in-process, real Prefect server",
        "gap_s": args.gap,
        "modes": {m: summary(samples[m], None if m == "off" else base) for m in MODES},
        "process_exit_s": {m: round(statistics.median(exits[m]), 3) for m in MODES},
        "healthy_receiver_got": delivered,
        "target_added_percent": TARGET_PERCENT,
        "machine": started,
    }
    result["target_met"] = all(result["modes"][m]["added_percent"] <= TARGET_PERCENT
                               for m in ("healthy", "hang"))
    output(result)


if __name__ == "__main__":
    main()
