"""The ``jobhooks`` command line.

jobhooks check [--config PATH] [--json]   validate the configuration, show what each
                                          subscription will receive
jobhooks secret                           print a new signing secret (whsec_…)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import CONFIG_ENV, load_subscriptions
from ..exceptions import ConfigurationError, JobhooksError, OutboxError
from ..netguard import literal_refusal
from ..outbox import open_outbox
from ..settings import Settings
from ..signing import generate_secret
from ..subscriptions import Subscription


def _print_subscription(sub: Subscription) -> None:
    d = sub.describe()
    state = "" if sub.enabled else "  [disabled]"
    print(f"{sub.name}{state}  ({sub.origin})" if sub.origin else f"{sub.name}{state}")
    signed = (
        f"signed ({d['secrets']} secret{'s' if d['secrets'] != 1 else ''})"
        if d["signed"]
        else "unsigned"
    )
    print(f"  url            {d['url']}")
    mode = d["mode"]
    if d["batch_size"]:
        mode += f" (up to {d['batch_size']} events or every {d['batch_flush_seconds']:g} s)"
    print(f"  mode           {mode}, format {d['format']}, {signed}")
    print(f"  verbs          {', '.join(d['verbs'])}")
    types = d["subject_types"]
    print(f"  subject types  {types if isinstance(types, str) else ', '.join(types)}")
    ids = d["subject_ids"]
    print(f"  subject ids    {ids if isinstance(ids, str) else ', '.join(ids)}")
    if d["headers"]:
        print(f"  extra headers  {', '.join(d['headers'])}")


def _disabled_in_outbox(errors: list[JobhooksError]) -> dict[str, str]:
    """Subscriptions the dispatcher disabled (410 Gone), when an outbox exists; an outbox that
    exists but cannot be read (a corrupt file) is added to ``errors``."""
    try:
        url = Settings.from_env().outbox_url
        if not url.startswith(("postgres://", "postgresql://")) and not Path(url).exists():
            return {}
        outbox = open_outbox(url)
        try:
            return {name: reason for name, (_, reason) in outbox.disabled().items()}
        finally:
            outbox.close()
    except OutboxError as exc:
        errors.append(exc)
        return {}
    except JobhooksError as exc:
        print(
            f"warning: cannot read the outbox to show disabled subscriptions: {exc}",
            file=sys.stderr,
        )
        return {}


def _guard_warnings(subs: Sequence[Subscription]) -> list[str]:
    """With the private-destination guard on: the subscriptions it will always refuse."""
    try:
        if not Settings.from_env().refuse_private_destinations:
            return []
    except ConfigurationError:
        return []  # _disabled_in_outbox reports a bad setting
    found = []
    for sub in subs:
        reason = literal_refusal(sub.url)
        if reason:
            found.append(f"subscription {sub.name!r}: every delivery will fail: {reason}")
    return found


def cmd_check(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    if args.config:
        environ[CONFIG_ENV] = args.config
    loaded = load_subscriptions(environ=environ, log_errors=False)
    subs, errors = loaded.subscriptions, list[JobhooksError](loaded.errors)
    gone = _disabled_in_outbox(errors)
    warnings = _guard_warnings(subs)
    for sub in subs:
        if sub.name in gone:
            errors.append(
                ConfigurationError(
                    f"disabled: {gone[sub.name]} (its events are dead letters; after fixing the "
                    f"endpoint run `jobhooks outbox retry --subscription {sub.name}`)",
                    subscription=sub.name,
                )
            )
    if args.json:
        print(
            json.dumps(
                {
                    "ok": not errors and bool(subs),
                    "errors": [str(e) for e in errors],
                    "warnings": warnings,
                    "subscriptions": [s.describe() for s in subs],
                },
                indent=2,
            )
        )
    else:
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for sub in subs:
            _print_subscription(sub)
        if not subs and not errors:
            print(
                f"no subscriptions configured: set {CONFIG_ENV} to a TOML or JSON file "
                "with a [[subscriptions]] list, or pass --config",
                file=sys.stderr,
            )
        else:
            n, e = len(subs), len(errors)
            print(
                f"\n{n} subscription{'s' if n != 1 else ''} ok, {e} error{'s' if e != 1 else ''}",
                file=sys.stderr if e else sys.stdout,
            )
    return 1 if errors or not subs else 0


def cmd_secret(args: argparse.Namespace) -> int:
    print(generate_secret())
    return 0
