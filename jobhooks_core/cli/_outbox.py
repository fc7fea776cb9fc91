"""``jobhooks outbox status|list|retry|purge``: look into the outbox and act on it."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..exceptions import JobhooksError
from ..metrics import Counter
from ..outbox import Delivery, Outbox, Status, open_outbox
from ..settings import Settings
from ._common import ago, duration, fail, iso


def _open() -> Outbox:
    try:
        return open_outbox(Settings.from_env().outbox_url)
    except JobhooksError as exc:
        fail(str(exc), 1)


def cmd_status(args: argparse.Namespace) -> int:
    outbox, now = _open(), time.time()
    counts, disabled, oldest = outbox.counts(), outbox.disabled(), outbox.oldest_pending()
    counters = outbox.counters()
    totals = {s.value: sum(c.get(s.value, 0) for c in counts.values()) for s in Status}
    report: dict[str, Any] = {
        "outbox": outbox.url,
        "totals": totals,
        "oldest_pending": iso(oldest),
        "counters": {
            **{c.value: sum(n.get(c.value, 0) for n in counters.values()) for c in Counter},
            "disabled_subscriptions": len(disabled),
        },
        "subscriptions": {},
    }
    for name in sorted({*counts, *counters, *disabled}):
        at, reason = disabled.get(name, (None, None))
        report["subscriptions"][name] = {
            **counts.get(name, {s.value: 0 for s in Status}),
            "disabled": name in disabled,
            "disabled_reason": reason,
            **({"disabled_at": iso(at)} if name in disabled else {}),
            "counters": counters.get(name, {c.value: 0 for c in Counter}),
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"outbox  {outbox.url}")
    print(
        f"rows    {totals['pending']} pending, {totals['delivered']} delivered, "
        f"{totals['dead']} dead  (oldest pending: {ago(oldest, now)})"
    )
    if report["subscriptions"]:
        print(f"\n{'subscription':<24} {'pending':>8} {'delivered':>10} {'dead':>6}  state")
    for name, row in report["subscriptions"].items():
        state = f"DISABLED: {row['disabled_reason']}" if row["disabled"] else "ok"
        print(f"{name:<24} {row['pending']:>8} {row['delivered']:>10} {row['dead']:>6}  {state}")
    _print_counters(report)
    return 0


def _print_counters(report: dict[str, Any]) -> None:
    """The counters as a table: one line per subscription, then the totals."""
    total = report["counters"]
    print(
        f"\nevents since the outbox was created ({total['disabled_subscriptions']} "
        f"subscription{'s' if total['disabled_subscriptions'] != 1 else ''} disabled)"
    )
    widths = {c.value: max(len(c.value), 9) for c in Counter}
    heads = [f"{c.value.replace('_', '-'):>{widths[c.value]}}" for c in Counter]
    print(f"{'subscription':<24} " + " ".join(heads))
    lines = [(name, row["counters"]) for name, row in report["subscriptions"].items()]
    for name, values in [*lines, ("(total)", total)]:
        print(f"{name:<24} " + " ".join(f"{values[c]:>{w}}" for c, w in widths.items()))


def _row_dict(row: Delivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "subscription": row.subscription,
        "event_id": row.event_id,
        "type": row.event.get("type"),
        "subject_id": row.event.get("subject_id"),
        "status": row.status.value,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at) if row.status is Status.PENDING else None,
        "created_at": iso(row.created_at),
        "delivered_at": iso(row.delivered_at),
        "last_status": row.last_status,
        "last_error": row.last_error,
    }


def cmd_list(args: argparse.Namespace) -> int:
    outbox, now = _open(), time.time()
    status = Status(args.status) if args.status else None
    rows = outbox.deliveries(status=status, subscription=args.subscription, limit=args.limit)
    if args.json:
        print(json.dumps([_row_dict(r) for r in rows], indent=2))
        return 0
    if not rows:
        print("no rows")
        return 0
    print(
        f"{'id':>6}  {'subscription':<18} {'type':<20} {'subject id':<22} {'status':<9} "
        f"{'tries':>5}  next / last error"
    )
    for r in rows:
        tail = ago(r.next_attempt_at, now) if r.status is Status.PENDING else ""
        if r.last_error:
            tail = f"{tail}  {r.last_error}".strip()
        print(
            f"{r.id:>6}  {r.subscription:<18} {r.event.get('type', ''):<20} "
            f"{str(r.event.get('subject_id', ''))[:22]:<22} {r.status.value:<9} "
            f"{r.attempts:>5}  {tail[:80]}"
        )
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    outbox = _open()
    if args.subscription and outbox.enable(args.subscription):
        print(f"subscription {args.subscription!r} re-enabled")
    n = outbox.retry(ids=args.ids or None, subscription=args.subscription)
    print(
        f"{n} row{'s' if n != 1 else ''} due now; a running dispatcher (relay, scheduler) "
        "sends them, or run `jobhooks relay`"
    )
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    status = Status(args.status)
    if status is Status.PENDING and not args.yes:
        fail("purging pending rows drops events that were never delivered; add --yes to confirm", 2)
    n = _open().purge(status=status, older_than=args.older_than, subscription=args.subscription)
    print(f"purged {n} {status.value} row{'s' if n != 1 else ''}")
    return 0


def add_commands(commands: Any) -> None:
    outbox = commands.add_parser(
        "outbox",
        help="inspect and act on the outbox (status, list, retry, purge)",
        description="Inspect the outbox and act on it. The outbox is JOBHOOKS_OUTBOX (default "
        "$JOBHOOKS_HOME/outbox.db).",
    )
    sub = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)

    status = sub.add_parser(
        "status",
        help="rows per subscription and state, disabled ones, event counters",
        description="Rows per subscription and state, the subscriptions disabled by 410 Gone, "
        "and the counters of what happened to events since the outbox was created (enqueued, "
        "delivered, retried, dead-lettered, dropped).",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_status)

    lst = sub.add_parser("list", help="list rows, oldest first")
    lst.add_argument("--status", choices=[s.value for s in Status])
    lst.add_argument("--subscription", metavar="NAME")
    lst.add_argument("--limit", type=int, default=50)
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=cmd_list)

    retry = sub.add_parser(
        "retry",
        help="make pending and dead rows due now",
        description="Make pending and dead-lettered rows due now (dead ones get a fresh retry "
        "schedule). With no argument: every such row. --subscription also "
        "re-enables a subscription disabled by 410 Gone.",
    )
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="row ids (outbox list)")
    retry.add_argument("--subscription", metavar="NAME")
    retry.set_defaults(func=cmd_retry)

    purge = sub.add_parser(
        "purge",
        help="delete delivered (or dead) rows",
        description="Delete rows in a state, optionally only older ones.",
    )
    purge.add_argument("--status", default="delivered", choices=[s.value for s in Status])
    purge.add_argument(
        "--older-than",
        type=duration,
        default=0.0,
        metavar="DURATION",
        help="e.g. 7d, 12h (default: all)",
    )
    purge.add_argument("--subscription", metavar="NAME")
    purge.add_argument("--yes", action="store_true", help="confirm purging pending rows")
    purge.set_defaults(func=cmd_purge)
