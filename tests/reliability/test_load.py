"""Load: 100,000 events through a realtime and a batch subscription, via the real dispatcher to
real receivers: each event arrives exactly once per subscription, and the process's memory
stays flat. Memory, not time, is asserted: measured at a warm checkpoint and at the end, as
the Python heap (``sys.getallocatedblocks``: anything kept per event adds at least one block
per event) and as resident size (generous: SQLite's page caches fill as the outbox grows).

The receivers (tests/receiver.py's TestReceiver, which keeps every request) run in a process of
their own, so that what they hold does not count as the emitting process's memory.
"""

from __future__ import annotations

import gc
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from jobhooks_core import Subscription
from jobhooks_core.outbox import Status
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MASK = 2**128 - 1
# From the checkpoint to the end the Python heap may grow by at most one block per BLOCKS_PER
# events (a leak of one id per event is one block per event), and the resident size by at most
# RSS_BOUND (holding on to a row or request, ~1 KB, per event exceeds it).
BLOCKS_PER = 8
RSS_BOUND = 32 * 2**20

RECEIVERS = """
import hashlib, json, sys
from tests.receiver import TestReceiver

def tally(rx, batches):
    # A realtime request carries one event, its id in webhook-id; batches are parsed.
    if batches:
        ids = [e["id"] for e in rx.events()]
    else:
        ids = [r.headers["webhook-id"] for r in rx.requests if r.method == "POST"]
    unique = set(ids)
    digest = sum(int.from_bytes(hashlib.blake2b(i.encode(), digest_size=16).digest(), "big")
                 for i in unique)
    return {"events": len(ids), "unique": len(unique), "digest": digest & (2**128 - 1)}

with TestReceiver() as live, TestReceiver() as bulk:
    print(live.url, bulk.url, flush=True)
    for line in sys.stdin:
        print(json.dumps({"live": tally(live, False), "bulk": tally(bulk, True)}), flush=True)
"""


class Receivers:
    """Two TestReceivers (realtime: ``live``, batch: ``bulk``) in a process of their own."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", RECEIVERS], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        self.live, self.bulk = self.process.stdout.readline().split()

    def tally(self) -> dict[str, dict[str, int]]:
        """Per receiver: events arrived, distinct events, and the digest of the distinct ids."""
        assert self.process.stdout is not None and self.process.stdin is not None
        self.process.stdin.write("tally\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())  # type: ignore[no-any-return]


@contextmanager
def receivers() -> Iterator[Receivers]:
    started = Receivers()
    try:
        yield started
    finally:
        assert started.process.stdin is not None and started.process.stdout is not None
        started.process.stdin.close()
        started.process.wait(timeout=30)
        started.process.stdout.close()


def digest(event_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=16).digest(), "big")


@dataclass(frozen=True)
class Memory:
    blocks: int  # Python heap blocks allocated, after a collection
    rss: int  # resident bytes (Linux)

    @classmethod
    def now(cls) -> Memory:
        gc.collect()
        blocks = sys.getallocatedblocks()
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return cls(blocks, int(line.split()[1]) * 1024)
        raise AssertionError("no VmRSS in /proc/self/status")


def assert_flat(at: dict[int, Memory]) -> None:
    (first, warm), (last, end) = sorted(at.items())
    blocks, rss = end.blocks - warm.blocks, end.rss - warm.rss
    report = (f"from {first} to {last} events: Python heap {warm.blocks} -> {end.blocks} "
              f"blocks ({blocks:+}), RSS {warm.rss / 2**20:.1f} -> {end.rss / 2**20:.1f} MiB "
              f"({rss / 2**20:+.1f})")
    print(report)
    assert blocks < (last - first) / BLOCKS_PER, f"the Python heap grew {report}"
    assert rss < RSS_BOUND, f"resident memory grew {report}"


def wait(predicate: Callable[[], bool], rt: Jobhooks, timeout: float = 600) -> None:
    """Poll the outbox until ``predicate`` holds (the deadline only guards against a hang)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"outbox never settled: {rt.outbox.counts()}"
        with rt.dispatcher._settled:
            rt.dispatcher._settled.wait(0.2)


def subscriptions(rx: Receivers) -> list[Subscription]:
    return [
        Subscription.from_mapping("live", {"url": rx.live}),
        Subscription.from_mapping(
            "bulk",
            {"url": rx.bulk, "mode": "batch", "batch_size": 1000, "batch_flush_seconds": 0.1},
        ),
    ]


def test_100k_events_arrive_once_each_in_realtime_and_batches_and_memory_stays_flat(
    tmp_path: Path,
) -> None:
    events, checkpoint = 100_000, 20_000
    sent, total = 0, 0  # events emitted, and the sum of their id digests
    memory: dict[int, Memory] = {}
    with receivers() as rx:
        settings = Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)}, poll_seconds=0.1)
        rt = Jobhooks(settings=settings, subscriptions=subscriptions(rx), long_lived=True)
        try:
            for upto in (checkpoint, events):
                while sent < upto:
                    event = rt.emit("failed", "work", f"export_{sent % 500}",
                                    data={"rows": sent})
                    assert event is not None
                    total = (total + digest(event.id)) & MASK
                    sent += 1
                wait(lambda: rt.outbox.oldest_pending() is None, rt)
                memory[upto] = Memory.now()
            counts = rt.outbox.counts()
        finally:
            rt.close()
        arrived = rx.tally()
    assert rt.failures == 0
    assert counts == {name: {"pending": 0, "delivered": events, "dead": 0}
                      for name in ("live", "bulk")}
    expected = {"events": events, "unique": events, "digest": total}
    assert arrived == {"live": expected, "bulk": expected}
    assert_flat(memory)


def test_a_short_lived_process_that_emits_for_long_forgets_what_it_delivered(
    tmp_path: Path,
) -> None:
    """A script or task process (short-lived mode) delivers its own realtime events and leaves
    batches to a long-lived dispatcher; however many it emits, it keeps no per-event state
    (a set of every event id it ever emitted, say) once their rows are settled."""
    events, checkpoint = 12_000, 2_000
    sent, total, realtime = 0, 0, 0
    memory: dict[int, Memory] = {}
    with receivers() as rx:
        settings = Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)}, poll_seconds=0.1,
                                     flush_timeout=60)
        rt = Jobhooks(settings=settings, subscriptions=subscriptions(rx), long_lived=False)

        def live_settled() -> bool:
            return not rt.outbox.deliveries(status=Status.PENDING, subscription="live", limit=1)

        try:
            for upto in (checkpoint, events):
                while sent < upto:
                    # One in four is a batch-only verb: no realtime row, left to the batch.
                    verb = "completed" if sent % 4 == 0 else "failed"
                    event = rt.emit(verb, "work", f"export_{sent % 500}", data={"rows": sent})
                    assert event is not None
                    if verb == "failed":
                        total = (total + digest(event.id)) & MASK
                        realtime += 1
                    sent += 1
                wait(live_settled, rt)
                memory[upto] = Memory.now()
            assert rt.flush() is True
            counts = rt.outbox.counts()
        finally:
            rt.close()
        arrived = rx.tally()
    assert rt.failures == 0
    assert counts == {
        "live": {"pending": 0, "delivered": realtime, "dead": 0},
        "bulk": {"pending": events, "delivered": 0, "dead": 0},  # for a long-lived dispatcher
    }
    assert arrived["live"] == {"events": realtime, "unique": realtime, "digest": total}
    assert_flat(memory)
