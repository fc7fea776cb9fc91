"""``jobhooks prefect …``: the Prefect commands (the core CLI hands its arguments here).

jobhooks prefect watch     follow the Prefect server's event stream and report every flow
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sys
import threading
import traceback
from collections.abc import Sequence

from jobhooks_core.cli._common import duration, setup_logging
from jobhooks_core.exceptions import ConfigurationError
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings

from ._runtime import SUBSCRIPTIONS_ENV, block_names, prefect_source, subscriptions

__all__ = ["build_parser", "main"]

STOP_GRACE_SECONDS = 10.0


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
        return _follow_until_signalled(watcher)
    finally:
        print("jobhooks prefect watch: stopping, releasing leases", flush=True)
        runtime.close()


def _follow_until_signalled(watcher: object) -> int:
    """Run the watcher's event loop in a thread until SIGTERM/SIGINT, then stop it.

    The main thread owns the signals and the shutdown, so a stream that does not close (a
    websocket close handshake nobody answers, a stuck DNS lookup) cannot keep the process from
    exiting: after STOP_GRACE_SECONDS it is left behind, with its stack in the log.
    """
    from .watch import Watcher

    assert isinstance(watcher, Watcher)
    requested = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def follow() -> None:
        try:
            with asyncio.Runner(loop_factory=lambda: loop) as runner:
                runner.run(watcher.run(stop))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failure.append(exc)
        finally:
            requested.set()

    previous = {signum: signal.signal(signum, lambda *_: requested.set())
                for signum in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=follow, name="jobhooks-prefect-watch", daemon=True)
    thread.start()
    try:
        while not requested.wait(1.0):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if thread.is_alive():
        loop.call_soon_threadsafe(stop.set)
        thread.join(STOP_GRACE_SECONDS)
    if thread.is_alive():
        frame = sys._current_frames().get(thread.ident or 0)
        where = "".join(traceback.format_stack(frame)[-6:]) if frame else "?"
        print(f"jobhooks prefect watch: the event stream did not close within "
              f"{STOP_GRACE_SECONDS:g} s; leaving it behind. It was at:\n{where}",
              file=sys.stderr, flush=True)
        return 0
    if failure:
        print(f"jobhooks prefect watch: failed: {failure[0]!r}", file=sys.stderr, flush=True)
        return 1
    return 0


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(list(argv))
    setup_logging(args.verbose)
    return int(args.func(args))
