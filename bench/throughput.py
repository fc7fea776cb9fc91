"""Delivery throughput from the SQLite outbox to a loopback receiver, against a naive sender.

The outbox is filled with N events for one subscription first (not timed); then a long-lived
dispatcher starts and the clock runs until no row is pending (``outbox.oldest_pending()``,
polled every 0.1 s). Realtime mode sends one signed request per event; batch mode sends
``batch_size`` events per request. The baseline is the naive sender: ``httpx.post`` per event
(a new client, so a new connection, each time), signed the same way, over fewer events; a
keep-alive ``httpx.Client`` loop is reported alongside for context. The receiver
(bench/_receiver.py, its own process) counts what arrived, so nothing can look fast by not
delivering.

    .venv-prefect/bin/python bench/throughput.py [--quick]

Targets on a 2-core machine: realtime >= 2,000 events/s, batch >= 50,000 events/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import httpx
from _common import log, machine, output, ratio, receiver, resources, temp_home

from jobhooks_core.events import Event, Source
from jobhooks_core.formats import event_json
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings
from jobhooks_core.signing import generate_secret, webhook_headers
from jobhooks_core.subscriptions import Subscription

REALTIME_TARGET = 2_000.0
BATCH_TARGET = 50_000.0
SOURCE = Source("jobhooks", "bench", "0")
CHUNK = 5_000  # events per pre-fill transaction


def make_events(n: int, pad: int, tag: str) -> list[Event]:
    data = {"run_id": "scheduled__2027-01-15T00:00:00", "try_number": 1, "message": "x" * pad}
    return [
        Event.create("failed", "work", f"job_{i % 50}", source=SOURCE, occurrence=f"{tag}-{i}",
                     data=data)
        for i in range(n)
    ]


def deliver(mode: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Pre-fill the outbox with ``n`` events, then time a long-lived dispatcher draining it."""
    fields: dict[str, Any] = {"secret": generate_secret()}
    if mode == "batch":
        fields |= {"mode": "batch", "batch_size": args.batch_size,
                   "batch_flush_seconds": args.batch_flush}
    events = make_events(n, args.pad, mode)
    with receiver() as rx, temp_home() as env:
        sub = Subscription.from_mapping("bench", {"url": rx.url, **fields})
        jh = Jobhooks(settings=Settings.from_env(env), subscriptions=[sub], long_lived=True)
        try:
            log(f"{mode}: pre-filling the outbox with {n} events …")
            outbox = jh.outbox
            for start in range(0, n, CHUNK):
                with outbox.transaction() as tx:
                    for event in events[start : start + CHUNK]:
                        tx.enqueue(sub.name, event)
            before = resources()
            log(f"{mode}: delivering …")
            started = time.perf_counter()
            deadline = started + args.timeout
            jh.dispatcher  # noqa: B018 - starts the dispatcher thread
            polls, polling = 0, 0.0
            while time.perf_counter() < deadline:
                asked = time.perf_counter()
                pending = outbox.oldest_pending()
                polling += time.perf_counter() - asked
                polls += 1
                if pending is None:
                    break
                time.sleep(0.1)
            elapsed = time.perf_counter() - started
            after = resources()
            rows = outbox.counts().get(sub.name, {})
        finally:
            jh.close()
        received = rx.count()
    complete = (rows.get("delivered") == n and received["unique_events"] >= n)
    rate = n / elapsed
    return {
        "events": n,
        "seconds": round(elapsed, 3),
        "events_per_s": round(rate),
        "complete": complete,
        "timed_out": elapsed >= args.timeout,
        "polls": polls,
        "seconds_in_polls": round(polling, 3),
        "outbox_rows": rows,
        "receiver": received,
        "process_before": before,
        "process_after": after,
    }


def naive(n: int, args: argparse.Namespace, keep_alive: bool) -> dict[str, Any]:
    """One signed POST per event from a plain loop: a new client per event, or one client."""
    secrets = (generate_secret(),)
    events = make_events(n, args.pad, "naive")
    with receiver() as rx:
        started = time.perf_counter()
        errors = 0
        client = httpx.Client(timeout=10) if keep_alive else None
        try:
            for event in events:
                body = event_json(event).encode()
                headers = webhook_headers(event.id, body, secrets)
                headers["content-type"] = "application/json"
                try:
                    if client is None:
                        httpx.post(rx.url, content=body, headers=headers, timeout=10)
                    else:
                        client.post(rx.url, content=body, headers=headers)
                except httpx.HTTPError:
                    errors += 1
        finally:
            if client is not None:
                client.close()
        elapsed = time.perf_counter() - started
        received = rx.count()
    return {
        "events": n,
        "seconds": round(elapsed, 3),
        "events_per_s": round(n / elapsed),
        "errors": errors,
        "complete": received["unique_events"] >= n and not errors,
        "receiver": received,
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (seconds)")
    parser.add_argument("--realtime-events", type=int)
    parser.add_argument("--batch-events", type=int)
    parser.add_argument("--naive-events", type=int, help="events for the new-client baseline")
    parser.add_argument("--keepalive-events", type=int, help="events for the keep-alive loop")
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--batch-flush", type=float, default=0.05,
                        help="batch_flush_seconds of the batch subscription")
    parser.add_argument("--pad", type=int, default=200, help="characters of event data")
    parser.add_argument("--timeout", type=float, default=100.0,
                        help="give up on a delivery run after this many seconds")
    args = parser.parse_args(argv)
    quick = args.quick
    args.realtime_events = args.realtime_events or (3_000 if quick else 40_000)
    args.batch_events = args.batch_events or (20_000 if quick else 200_000)
    args.naive_events = args.naive_events or (100 if quick else 500)
    args.keepalive_events = args.keepalive_events or (500 if quick else 5_000)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    started = time.perf_counter()
    log(f"naive baseline: {args.naive_events} events, httpx.post (new client) each …")
    baseline = naive(args.naive_events, args, keep_alive=False)
    log(f"keep-alive loop: {args.keepalive_events} events on one httpx.Client …")
    keep_alive = naive(args.keepalive_events, args, keep_alive=True)
    realtime = deliver("realtime", args.realtime_events, args)
    batch = deliver("batch", args.batch_events, args)
    base = baseline["events_per_s"]
    for run, target in ((realtime, REALTIME_TARGET), (batch, BATCH_TARGET)):
        run["ratio_to_naive"] = ratio(run["events_per_s"], base)
        run["ratio_to_keepalive_loop"] = ratio(run["events_per_s"], keep_alive["events_per_s"])
        run["target_events_per_s"] = target
        run["target_met"] = run["complete"] and run["events_per_s"] >= target
    return {
        "benchmark": "throughput",
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "setup": {
            "outbox": "SQLite (WAL, synchronous=NORMAL) in a temporary JOBHOOKS_HOME",
            "prefill": f"outbox.transaction() + tx.enqueue, {CHUNK} per transaction, not timed",
            "timing": "dispatcher start until outbox.oldest_pending() is None (0.1 s polls)",
            "realtime": "one request per event, signed (whsec_ secret), json",
            "batch": f"batch_size {args.batch_size}, batch_flush_seconds {args.batch_flush}, "
                     "signed, json",
            "body_bytes": len(event_json(make_events(1, args.pad, "size")[0])),
        },
        "naive_baseline": baseline,
        "keepalive_loop": keep_alive,
        "realtime": realtime,
        "batch": batch,
        "targets_met": realtime["target_met"] and batch["target_met"],
        "seconds": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    output(main(sys.argv[1:]))
