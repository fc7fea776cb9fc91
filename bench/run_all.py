"""Run every benchmark (each in its own interpreter) and print one combined JSON object.

    .venv-prefect/bin/python bench/run_all.py [--quick]

Each benchmark's progress goes to stderr; the combined object holds each one's full result
and a summary of the headline figures and targets.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from _common import HERE, log, output

BENCHMARKS = ("emit_cost", "throughput")


def run(name: str, quick: bool) -> dict[str, Any]:
    args = [sys.executable, str(HERE / f"{name}.py")] + (["--quick"] if quick else [])
    log(f"running {name} …")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        stdout, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        return {"error": f"{name} exited with status {process.returncode}"}
    return json.loads(stdout)  # type: ignore[no-any-return]


def summary(emit: dict[str, Any], throughput: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "error" not in emit:
        for scenario in ("healthy", "hanging"):
            part = emit[scenario]
            out[f"emit_{scenario}_p50_us"] = part["emit"]["p50_us"]
            out[f"emit_{scenario}_p99_us"] = part["emit"]["p99_us"]
            out[f"sync_post_{scenario}_p50_us"] = part["sync_post_baseline"]["p50_us"]
            out[f"ratio_{scenario}_p50"] = part["ratio_p50"]
            out[f"ratio_{scenario}_p99"] = part["ratio_p99"]
        out["emit_p99_healthy_over_hanging"] = emit["health_independence"][
            "emit_p99_healthy_over_hanging"
        ]
    if "error" not in throughput:
        out["naive_events_per_s"] = throughput["naive_baseline"]["events_per_s"]
        out["keepalive_loop_events_per_s"] = throughput["keepalive_loop"]["events_per_s"]
        for mode in ("realtime", "batch"):
            out[f"{mode}_events_per_s"] = throughput[mode]["events_per_s"]
            out[f"{mode}_ratio_to_naive"] = throughput[mode]["ratio_to_naive"]
            out[f"{mode}_target_met"] = throughput[mode]["target_met"]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs of every benchmark")
    quick = parser.parse_args(argv).quick
    started = time.perf_counter()
    results = {name: run(name, quick) for name in BENCHMARKS}
    return {
        "benchmark": "all",
        "mode": "quick" if quick else "full",
        "summary": summary(results["emit_cost"], results["throughput"]),
        "targets_met": all(r.get("targets_met") is True for r in results.values()),
        **results,
        "seconds": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    output(main(sys.argv[1:]))
