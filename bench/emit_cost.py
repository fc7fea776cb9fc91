"""What ``Jobhooks.emit`` costs the caller, against a synchronous POST per event.

emit writes one row to the SQLite outbox while a long-lived dispatcher delivers in the
background to a loopback receiver (bench/_receiver.py, its own process); the baseline is
``httpx.Client.post`` per event (keep-alive, same body size) to the same receiver. Two
scenarios: the receiver answers at once, and the receiver accepts and never answers.

    .venv-prefect/bin/python bench/emit_cost.py [--quick]

Prints one JSON object: per-call latency percentiles (µs), ratios, and whether the targets hold
(emit p99 <= 1 ms; >= 50x below the synchronous POST; emit p99 independent of receiver health).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import httpx
from _common import (
    Receiver,
    log,
    machine,
    output,
    percentiles_us,
    ratio,
    receiver,
    resources,
    temp_home,
)

from jobhooks_core.events import Event, Source
from jobhooks_core.formats import event_json
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings
from jobhooks_core.subscriptions import Subscription

P99_TARGET_US = 1000.0
RATIO_TARGET = 50.0
HEALTH_TOLERANCE = 2.0  # "independent of receiver health": p99s within 2x of each other


def payload(pad: int) -> dict[str, Any]:
    """Event data shaped like a task's: ids, numbers, a message of ``pad`` characters."""
    return {"run_id": "scheduled__2027-01-15T00:00:00", "try_number": 1, "message": "x" * pad}


def measure_emit(rx: Receiver, args: argparse.Namespace, hang: bool) -> dict[str, Any]:
    """Per-call emit latency with the dispatcher running, as in a long-lived process."""
    with temp_home() as env:
        jh = Jobhooks(
            settings=Settings.from_env(env),
            subscriptions=[Subscription.from_mapping("bench", {"url": rx.url})],
            long_lived=True,
        )
        before = resources()
        received = rx.count()["events"]
        try:
            jh.dispatcher  # noqa: B018 - start it now, as the relay or a scheduler does
            data = payload(args.pad)
            for _ in range(args.warmup):
                jh.emit("failed", "work", "bench_job", data=data)
            samples = []
            clock = time.perf_counter_ns
            pause = args.interval_us / 1e6
            for _ in range(args.emits):
                start = clock()
                event = jh.emit("failed", "work", "bench_job", data=data)
                samples.append(clock() - start)
                if event is None:
                    raise RuntimeError("emit returned None: jobhooks could not record the event")
                if pause:
                    time.sleep(pause)
            result = percentiles_us(samples)
            result["failures"] = jh.failures
            result["outbox_rows"] = jh.outbox.counts().get("bench", {})
            result["received_meanwhile"] = rx.count()["events"] - received
            result["process_before"] = before
            result["process_after"] = resources()
            return result
        finally:
            if hang:
                rx.stop()  # else closing waits out the request in flight (up to 5 s)
            jh.close()


def measure_post(url: str, body: bytes, calls: int, warmup: int, timeout: float
                 ) -> dict[str, Any]:
    """Per-call latency of a synchronous POST on one keep-alive client."""
    headers = {"content-type": "application/json"}
    samples, errors = [], 0
    with httpx.Client(timeout=timeout) as client:
        for index in range(warmup + calls):
            start = time.perf_counter_ns()
            try:
                client.post(url, content=body, headers=headers).raise_for_status()
            except httpx.HTTPError:
                errors += 1
            if index >= warmup:
                samples.append(time.perf_counter_ns() - start)
    result = percentiles_us(samples)
    result["errors"] = errors
    return result


def scenario(hang: bool, body: bytes, args: argparse.Namespace) -> dict[str, Any]:
    name = "hanging" if hang else "healthy"
    with receiver(hang) as rx:
        if hang:
            calls, timeout = args.hang_posts, args.hang_timeout
            log(f"{name}: {calls} synchronous POSTs, each waiting out its {timeout:g} s timeout …")
            post = measure_post(rx.url, body, calls, 0, timeout)
            post["note"] = (
                f"only {calls} calls: each blocks the caller for the whole {timeout:g} s "
                "timeout (a real client's timeout is often 10 s or more)"
            )
        else:
            log(f"{name}: {args.posts} synchronous POSTs …")
            post = measure_post(rx.url, body, args.posts, args.warmup_posts, 10.0)
        log(f"{name}: {args.emits} emits (after {args.warmup} warm-up) …")
        emit = measure_emit(rx, args, hang)
    p50, p99 = ratio(post["p50_us"], emit["p50_us"]), ratio(post["p99_us"], emit["p99_us"])
    return {
        "receiver": "accepts, never answers" if hang else "answers 204 at once",
        "emit": emit,
        "sync_post_baseline": post,
        "ratio_p50": p50,
        "ratio_p99": p99,
        "targets": {
            "emit_p99_le_1ms": emit["p99_us"] <= P99_TARGET_US,
            "ratio_p50_ge_50x": p50 is not None and p50 >= RATIO_TARGET,
            "ratio_p99_ge_50x": p99 is not None and p99 >= RATIO_TARGET,
        },
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (seconds)")
    parser.add_argument("--emits", type=int, help="measured emits per scenario")
    parser.add_argument("--warmup", type=int, help="emits discarded first")
    parser.add_argument("--posts", type=int, help="measured POSTs to the healthy receiver")
    parser.add_argument("--hang-posts", type=int, default=5,
                        help="POSTs to the hanging receiver (each costs --hang-timeout)")
    parser.add_argument("--hang-timeout", type=float, default=1.0)
    parser.add_argument("--pad", type=int, default=200, help="characters of event data")
    parser.add_argument("--interval-us", type=float, default=0.0,
                        help="pause between emits (0: back to back)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.emits = args.emits or (2_000 if quick else 20_000)
    args.warmup = args.warmup if args.warmup is not None else (200 if quick else 1_000)
    args.posts = args.posts or (500 if quick else 5_000)
    args.warmup_posts = 50 if quick else 200
    if quick:
        args.hang_posts = min(args.hang_posts, 3)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    sample = Event.create("failed", "work", "bench_job", source=Source("jobhooks", "default"),
                          occurrence="sample", data=payload(args.pad))
    body = event_json(sample).encode()
    started = time.perf_counter()
    healthy = scenario(False, body, args)
    hanging = scenario(True, body, args)
    health = ratio(healthy["emit"]["p99_us"], hanging["emit"]["p99_us"])
    independent = health is not None and 1 / HEALTH_TOLERANCE <= health <= HEALTH_TOLERANCE
    result = {
        "benchmark": "emit_cost",
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "setup": {
            "outbox": "SQLite (WAL, synchronous=NORMAL) in a temporary JOBHOOKS_HOME",
            "subscription": "one realtime subscription, json format, unsigned",
            "dispatcher": "long-lived, running in the background while emitting",
            "body_bytes": len(body),
            "emits": args.emits,
            "warmup_discarded": args.warmup,
            "emit_interval_us": args.interval_us,
            "baseline": "httpx.Client.post per event: one client, keep-alive, same body size",
        },
        "healthy": healthy,
        "hanging": hanging,
        "health_independence": {
            "emit_p99_healthy_over_hanging": health,
            "tolerance": f"within {HEALTH_TOLERANCE:g}x either way",
            "met": independent,
        },
        "targets_met": all(
            [*healthy["targets"].values(), *hanging["targets"].values(), independent]
        ),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return result


if __name__ == "__main__":
    output(main(sys.argv[1:]))
