"""``jobhooks prefect …``: the Prefect commands (the core CLI hands its arguments here).

jobhooks prefect watch     follow the Prefect server's event stream and report every flow
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sys
from collections.abc import Sequence

from jobhooks_core.cli._common import duration, setup_logging
from jobhooks_core.exceptions import ConfigurationError
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings

from ._runtime import SUBSCRIPTIONS_ENV, block_names, prefect_source, subscriptions

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobhooks prefect", description="Prefect integration commands."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    watch = commands.add_parser(
        "watch",
        help="follow the Prefect server's event stream and report every flow",
        description="Follow the event stream of the Prefect server at PREFECT_API_URL and "
        "report deployment created/updated/deleted and every flow run's and task run's state "
        "changes (Crashed and Cancelled runs included), for every flow, with no change to "
        "flow code. Delivers everything in the outbox while it runs (as `jobhooks relay` "
        "does). Resumes where it stopped after a restart. Stops cleanly on SIGTERM/SIGINT.",
    )
    watch.add_argument(
        "--subscriptions", metavar="NAMES", default="",
        help=f"comma-separated jobhooks-subscription block names, added to ${SUBSCRIPTIONS_ENV}",
    )
    watch.add_argument(
        "--since", metavar="DURATION", type=duration,
        help="read events from this long ago (e.g. 30m, 2h) instead of where it stopped",
    )
    watch.set_defaults(func=cmd_watch)
    return parser


def cmd_watch(args: argparse.Namespace) -> int:
    from prefect.settings import PREFECT_API_URL

    from .watch import Watcher

    api_url = PREFECT_API_URL.value()
    if not api_url:
        print("jobhooks: set PREFECT_API_URL to the Prefect server to watch "
              "(e.g. http://127.0.0.1:4200/api)", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        print(f"jobhooks: {exc}", file=sys.stderr)
        return 2
    names = block_names([n for n in args.subscriptions.split(",") if n.strip()])
    loaded = subscriptions(names, log_errors=False)
    for error in loaded.errors:
        print(f"jobhooks: skipping: {error}", file=sys.stderr)
    runtime = Jobhooks(settings=settings, source=prefect_source(settings), subscriptions=loaded,
                       long_lived=True)
    since = None
    if args.since is not None:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=args.since)
    watcher = Watcher(runtime, str(api_url), since=since,
                      announce=lambda m: print(f"jobhooks prefect watch: {m}", flush=True))
    subs = ", ".join(s.name for s in runtime.subscriptions) or "none"
    print(f"jobhooks prefect watch: following {api_url}, delivering from {runtime.outbox.url} "
          f"for: {subs}", flush=True)
    runtime.dispatcher  # noqa: B018 - starts delivering now, as the relay does
    try:
        asyncio.run(_watch(watcher))
    finally:
        print("jobhooks prefect watch: stopping, releasing leases", flush=True)
        runtime.close()
    return 0


async def _watch(watcher: object) -> None:
    from .watch import Watcher

    assert isinstance(watcher, Watcher)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await watcher.run(stop)


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(list(argv))
    setup_logging(args.verbose)
    return int(args.func(args))
