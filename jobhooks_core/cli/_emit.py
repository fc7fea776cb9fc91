"""``jobhooks emit`` (report a job event from any script) and ``jobhooks send-test``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..delivery import new_pool, send
from ..events import MAX_DEPTH, Event, jsonable
from ..exceptions import RenderError
from ..formats import event_json
from ..outbox import Delivery, Status
from ..vocabulary import SubjectType, Verb
from ._common import fail, runtime


def cmd_emit(args: argparse.Namespace) -> int:
    verb = _choice("verb", args.verb, [v.value for v in Verb])
    subject_type = _choice("subject type", args.subject_type, [s.value for s in SubjectType])
    data: Any = {}
    if args.data:
        try:
            data = json.loads(args.data)
        except json.JSONDecodeError as exc:
            fail(f'--data is not valid JSON ({exc}); pass an object, e.g. \'{{"run_id": "r1"}}\'')
        except RecursionError:
            fail(f"--data is nested too deeply; event data may be {MAX_DEPTH} levels deep")
        if not isinstance(data, dict):
            kinds = {list: "an array", str: "a string", bool: "true/false", type(None): "null"}
            fail(
                f"--data must be a JSON object, got {kinds.get(type(data), 'a number')} "
                f'({args.data[:40]!r}); pass e.g. \'{{"run_id": "r1"}}\''
            )
        try:
            jsonable(data)
        except RenderError as exc:
            fail(f"--data: {exc}")
    rt = runtime()
    receivers = [
        s.name
        for s in rt.subscriptions
        if s.matches(_probe(rt, verb, subject_type, args.subject_id))
    ]
    event = rt.emit(verb, subject_type, args.subject_id, data=data, occurrence=args.occurrence)
    if event is None:
        rt.close()
        fail("the event could not be written to the outbox (see the error above)", 1)
    names = ", ".join(receivers) if receivers else "no subscription (nothing will be sent)"
    print(f"{event.type} {event.subject_id}  id {event.id}  → {names}")
    if not args.wait:
        rt.close()  # flushes for at most flush_timeout; the rest stays in the outbox
        return 0
    rows = rt.wait([event.id], args.timeout)
    rt.close()
    batched = {s.name for s in rt.subscriptions if s.mode.value == "batch"}
    return _report(rows, receivers, batched)


def _choice(kind: str, value: str, choices: list[str]) -> str:
    from ._common import choice

    return choice(kind, value, choices)


def _probe(rt: Any, verb: str, subject_type: str, subject_id: str) -> Event:
    return Event.create(verb, subject_type, subject_id, source=rt.source, occurrence="probe")


def _report(rows: list[Delivery], receivers: list[str], batched: set[str]) -> int:
    if not receivers:
        print("not delivered: no subscription receives this event", file=sys.stderr)
        return 1
    ok = True
    for row in rows:
        if row.status is Status.DELIVERED:
            print(f"  {row.subscription}: delivered ({row.last_status})")
            continue
        ok = False
        if row.status is Status.DEAD:
            state = f"dead letter: {row.last_error}"
        elif row.attempts:
            state = f"failed, will retry: {row.last_error}"
        elif row.subscription in batched:
            state = (
                "waiting for its batch (batch subscriptions are sent by a long-lived "
                "process: `jobhooks relay`)"
            )
        else:
            state = "not attempted yet: timed out waiting"
        print(f"  {row.subscription}: {state}", file=sys.stderr)
    return 0 if ok and len(rows) == len(receivers) else 1


def cmd_send_test(args: argparse.Namespace) -> int:
    rt = runtime()
    subs = {s.name: s for s in rt.subscriptions}
    if args.name not in subs:
        known = ", ".join(subs) or "none configured"
        fail(f"no subscription named {args.name!r}; configured: {known}")
    sub = subs[args.name]
    verb = sorted(sub.verbs, key=lambda v: v.value)[0]
    subject_type = sorted(sub.subject_types)[0] if sub.subject_types else SubjectType.WORK
    event = Event.create(
        verb,
        subject_type,
        "jobhooks-send-test",
        source=rt.source,
        occurrence=str(time.time()),
        data={"test": True, "message": "test delivery from jobhooks send-test"},
    )
    row = Delivery(
        0, sub.name, event.id, event_json(event), Status.PENDING, 0, 0.0, 0.0, batch_id=event.id
    )
    print(
        f"POST {sub.url}  ({event.type}, {sub.format.value}, "
        f"{'signed' if sub.secrets else 'unsigned'})"
    )
    started = time.perf_counter()
    with new_pool(rt.settings) as pool:
        attempt = send(pool, sub, [row])
    took = (time.perf_counter() - started) * 1000
    if attempt.delivered:
        print(f"→ {attempt.http_status} in {took:.0f} ms: delivered")
        return 0
    print(f"→ {attempt.error} after {took:.0f} ms: not delivered", file=sys.stderr)
    return 1


def add_commands(commands: Any) -> None:
    emit = commands.add_parser(
        "emit",
        help="report a job event from any script",
        description="Write a job event to the outbox for every matching subscription; it is "
        "delivered in the background (this command flushes for at most "
        "JOBHOOKS_FLUSH_TIMEOUT seconds, leaving the rest for `jobhooks relay`).",
    )
    emit.add_argument(
        "--subject-type",
        required=True,
        metavar="TYPE",
        help="e.g. work, segment, workflow (one of the 25 subject types)",
    )
    emit.add_argument("--subject-id", required=True, metavar="ID", help="e.g. daily_export")
    emit.add_argument(
        "--verb",
        required=True,
        help="created, update, deleted, started, "
        "syncing, synced, synccomplete, completed or failed",
    )
    emit.add_argument("--data", metavar="JSON", help="a JSON object of details")
    emit.add_argument(
        "--occurrence",
        metavar="KEY",
        help="what makes this occurrence unique (e.g. a run id): the same key "
        "gives the same event id, so a retried script reports once",
    )
    emit.add_argument(
        "--wait",
        action="store_true",
        help="block until every matching subscription has the event delivered, "
        "dead-lettered or failed; exit 1 unless delivered",
    )
    emit.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="with --wait: give up after this long (default 30)",
    )
    emit.set_defaults(func=cmd_emit)

    test = commands.add_parser(
        "send-test",
        help="send a test event to one subscription and print the answer",
        description="POST one test event (subject id 'jobhooks-send-test', data.test = true) "
        "straight to a subscription, signed as usual, and print the response.",
    )
    test.add_argument("name", metavar="NAME", help="the subscription's name")
    test.set_defaults(func=cmd_send_test)
