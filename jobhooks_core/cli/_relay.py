"""``jobhooks relay``: a long-running process that drains the outbox."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from ._common import outbox_of, runtime


def cmd_relay(args: argparse.Namespace) -> int:
    rt = runtime(long_lived=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    names = ", ".join(s.name for s in rt.subscriptions) or "none"
    url = outbox_of(rt).url  # a corrupt or unwritable outbox: exit 1 before delivering
    print(f"jobhooks relay: delivering from {url} for: {names}", flush=True)
    rt.dispatcher  # noqa: B018 - starts the background delivery thread
    stop.wait()
    print("jobhooks relay: stopping, releasing leases", flush=True)
    rt.close()
    return 0


def add_commands(commands: Any) -> None:
    relay = commands.add_parser(
        "relay",
        help="deliver everything in the outbox until stopped (SIGTERM/SIGINT)",
        description="Run a dispatcher for every configured subscription: deliver what "
        "short-lived processes left in the outbox, retry on schedule. Stops cleanly "
        "on SIGTERM or SIGINT, giving back its leases.",
    )
    relay.set_defaults(func=cmd_relay)
