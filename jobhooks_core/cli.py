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

from .config import CONFIG_ENV, load_subscriptions
from .signing import generate_secret
from .subscriptions import Subscription

__all__ = ["main"]


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


def cmd_check(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    if args.config:
        environ[CONFIG_ENV] = args.config
    loaded = load_subscriptions(environ=environ, log_errors=False)
    subs, errors = loaded.subscriptions, loaded.errors
    if args.json:
        print(
            json.dumps(
                {
                    "ok": not errors and bool(subs),
                    "errors": [str(e) for e in errors],
                    "subscriptions": [s.describe() for s in subs],
                },
                indent=2,
            )
        )
    else:
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobhooks",
        description="Job-status webhooks for workflow orchestrators.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser(
        "check",
        help="validate the configuration and list what each subscription receives",
        description="Validate every subscription (exit 1 on any error, or when none is "
        "configured) and list the verbs and subject types each one receives.",
    )
    check.add_argument(
        "--config", metavar="PATH", help=f"config file to check (default: ${CONFIG_ENV})"
    )
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(func=cmd_check)

    secret = commands.add_parser(
        "secret",
        help="print a new whsec_ signing secret",
        description="Print a new random Standard Webhooks secret.",
    )
    secret.set_defaults(func=cmd_secret)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
