"""Backlog drain: does the delivery rate hold when the outbox holds a million pending rows?

The outbox is filled with N pending rows for one subscription (the outbox's own enqueue API,
``outbox.transaction()`` + ``tx.enqueue``, 50,000 rows per transaction, then a WAL checkpoint;
timed separately), then a long-lived dispatcher drains it to the loopback receiver, timed until
no row is pending (``outbox.oldest_pending()``, an index probe, polled every 0.02 s). The
baseline is a small backlog (10,000 rows) drained the same way in the same run; the ratio
backlog rate ÷ baseline rate is 1.0 when the backlog's size costs nothing. Batch mode
(``batch_size`` 1000) and realtime mode (one request per event). The receiver
(bench/_receiver.py, its own process) counts what arrived, so nothing can look fast by not
delivering; the drain is also timed by halves, to show a rate that sinks as the run goes on.

    .venv-prefect/bin/python bench/backlog.py [--quick] [--rows N] [--realtime-rows N]

Realtime at ~3,000 events/s takes ~5 minutes per million rows: ``--realtime-rows`` (default:
``--rows``) shortens it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from _common import log, machine, output, ratio, receiver, resources, temp_home
from throughput import make_events

from jobhooks_core.formats import event_json
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings
from jobhooks_core.signing import generate_secret
from jobhooks_core.subscriptions import Subscription

CHUNK = 50_000  # rows per fill transaction
POLL = 0.02  # seconds between "anything pending?" polls (an index probe): a 10,000-row batch
# drain lasts ~0.3 s, so a coarse poll would blur the baseline


def drain(mode: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Fill the outbox with ``n`` pending rows, then time a long-lived dispatcher draining it."""
    fields: dict[str, Any] = {"secret": generate_secret()}
    if mode == "batch":
        fields |= {"mode": "batch", "batch_size": args.batch_size,
                   "batch_flush_seconds": args.batch_flush}
    with receiver() as rx, temp_home() as env:
        sub = Subscription.from_mapping("bench", {"url": rx.url, **fields})
        jh = Jobhooks(settings=Settings.from_env(env), subscriptions=[sub], long_lived=True)
        try:
            log(f"{mode}: filling the outbox with {n:,} pending rows …")
            outbox = jh.outbox
            started = time.perf_counter()
            for start in range(0, n, CHUNK):
                events = make_events(min(CHUNK, n - start), args.pad, f"{mode}-{n}-{start}")
                with outbox.transaction() as tx:
                    for event in events:
                        tx.enqueue(sub.name, event)
            # Emitting processes leave WAL checkpoints to dispatchers, which make them every
            # round; none ran during the fill, so make the one a dispatcher would have made.
            outbox.housekeeping()
            filled = time.perf_counter() - started
            before = resources()
            log(f"{mode}: filled in {filled:.1f} s; draining {n:,} rows …")
            started = time.perf_counter()
            deadline = started + args.timeout
            jh.dispatcher  # noqa: B018 - starts the dispatcher thread
            half: float | None = None  # when the receiver had half the events
            while time.perf_counter() < deadline:
                if outbox.oldest_pending() is None:
                    break
                if half is None and rx.count()["unique_events"] >= n // 2:
                    half = time.perf_counter() - started
                time.sleep(POLL)
            elapsed = time.perf_counter() - started
            after = resources()
            rows = outbox.counts().get(sub.name, {})
        finally:
            jh.close()
        received = rx.count()
    complete = rows.get("delivered") == n and received["unique_events"] >= n
    log(f"{mode}: {n:,} rows drained in {elapsed:.1f} s: {n / elapsed:,.0f} events/s"
        f"{'' if complete else ' (INCOMPLETE)'}")
    result: dict[str, Any] = {
        "rows": n,
        "fill_seconds": round(filled, 1),
        "fill_rows_per_s": round(n / filled),
        "seconds": round(elapsed, 3),
        "events_per_s": round(n / elapsed),
        "complete": complete,
        "timed_out": elapsed >= args.timeout,
        "outbox_rows": rows,
        "receiver": received,
        "process_before": before,
        "process_after": after,
    }
    if half is not None and elapsed > half:
        result["first_half_events_per_s"] = round(n / 2 / half)
        result["second_half_events_per_s"] = round((n - n // 2) / (elapsed - half))
    return result


def compare(mode: str, rows: int, args: argparse.Namespace) -> dict[str, Any]:
    baseline = drain(mode, args.baseline_rows, args)
    backlog = drain(mode, rows, args)
    return {
        "baseline": baseline,
        "backlog": backlog,
        "ratio_backlog_to_baseline": ratio(backlog["events_per_s"], baseline["events_per_s"]),
        "complete": baseline["complete"] and backlog["complete"],
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (100,000 rows)")
    parser.add_argument("--rows", type=int, help="rows of the big backlog (default 1,000,000)")
    parser.add_argument("--realtime-rows", type=int,
                        help="rows of the realtime big backlog (default: --rows)")
    parser.add_argument("--baseline-rows", type=int, default=10_000,
                        help="rows of the small backlog measured as the baseline")
    parser.add_argument("--modes", default="batch,realtime",
                        help="comma-separated: batch, realtime")
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--batch-flush", type=float, default=0.05,
                        help="batch_flush_seconds of the batch subscription")
    parser.add_argument("--pad", type=int, default=200, help="characters of event data")
    parser.add_argument("--timeout", type=float, default=3_600.0,
                        help="give up on a drain after this many seconds")
    args = parser.parse_args(argv)
    args.rows = args.rows or (100_000 if args.quick else 1_000_000)
    args.realtime_rows = args.realtime_rows or args.rows
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in args.modes:
        if mode not in ("batch", "realtime"):
            parser.error(f"--modes: {mode!r} is not a mode; valid choices: batch, realtime")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    started = time.perf_counter()
    facts = machine()
    sizes = {"batch": args.rows, "realtime": args.realtime_rows}
    results = {mode: compare(mode, sizes[mode], args) for mode in args.modes}
    return {
        "benchmark": "backlog",
        "mode": "quick" if args.quick else "full",
        "machine": facts,
        "setup": {
            "outbox": "SQLite (WAL, synchronous=NORMAL) in a temporary JOBHOOKS_HOME",
            "fill": f"outbox.transaction() + tx.enqueue, {CHUNK} rows per transaction, "
                    "then a WAL checkpoint (outbox.housekeeping())",
            "timing": f"dispatcher start until outbox.oldest_pending() is None ({POLL} s polls)",
            "baseline": f"the same drain of a {args.baseline_rows}-row backlog, same run",
            "realtime": "one request per event, signed (whsec_ secret), json",
            "batch": f"batch_size {args.batch_size}, batch_flush_seconds {args.batch_flush}, "
                     "signed, json",
            "body_bytes": len(event_json(make_events(1, args.pad, "size")[0])),
        },
        **results,
        "complete": all(r["complete"] for r in results.values()),
        "seconds": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    output(main(sys.argv[1:]))
