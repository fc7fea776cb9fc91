"""The ``jobhooks`` command line.

jobhooks check                validate the configuration, show what each subscription gets
jobhooks emit …               report a job event from any script
jobhooks send-test NAME       send a test event to one subscription, print the answer
jobhooks outbox status|list|retry|purge
jobhooks relay                drain the outbox until stopped
jobhooks receive              a local receiver that verifies and prints events
jobhooks secret               print a new signing secret (whsec_…)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import receiver
from ..config import CONFIG_ENV
from ..exceptions import JobhooksError
from ..runtime import jobhooks_version
from . import _emit, _outbox, _relay
from ._check import cmd_check, cmd_secret
from ._common import setup_logging

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobhooks", description="Job-status webhooks for workflow orchestrators."
    )
    parser.add_argument("--version", action="version", version=f"jobhooks {jobhooks_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser(
        "check",
        help="validate the configuration and list what each subscription receives",
        description="Validate every subscription (exit 1 on any error, a subscription disabled "
        "by 410 Gone, or none configured) and list the verbs and subject types each "
        "one receives.",
    )
    check.add_argument(
        "--config", metavar="PATH", help=f"config file to check (default: ${CONFIG_ENV})"
    )
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(func=cmd_check)

    _emit.add_commands(commands)
    _outbox.add_commands(commands)
    _relay.add_commands(commands)

    receive = commands.add_parser(
        "receive",
        help="run a local receiver that verifies signatures and prints events",
        description="A local webhook receiver for demos and debugging: verifies Standard "
        "Webhooks signatures with the given secret(s) and prints each event.",
    )
    receiver.add_arguments(receive)
    receive.set_defaults(func=receiver.run)

    prefect = commands.add_parser(
        "prefect",
        help="Prefect commands: `jobhooks prefect watch` follows the server's event stream",
        description="Prefect integration commands (need the prefect extra).",
        add_help=False,
    )
    prefect.add_argument("prefect_args", nargs=argparse.REMAINDER)
    prefect.set_defaults(func=_prefect)

    secret = commands.add_parser(
        "secret",
        help="print a new whsec_ signing secret",
        description="Print a new random Standard Webhooks secret.",
    )
    secret.set_defaults(func=cmd_secret)
    return parser


def _prefect(args: argparse.Namespace) -> int:
    """Hand ``jobhooks prefect …`` to jobhooks_prefect, which alone imports Prefect."""
    try:
        from jobhooks_prefect.cli import main as prefect_main
    except ImportError as exc:
        print(
            f"jobhooks: the prefect commands need Prefect: pip install 'jobhooks[prefect]' ({exc})",
            file=sys.stderr,
        )
        return 2
    return int(prefect_main(args.prefect_args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "prefect":  # everything after `prefect` belongs to jobhooks_prefect
        args.prefect_args = [*args.prefect_args, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    setup_logging(args.verbose)
    try:
        return int(args.func(args))
    except JobhooksError as exc:  # an outbox damaged mid-file, say: the message, no traceback
        print(f"jobhooks: {exc}", file=sys.stderr)
        return 1
