"""Running jobhooks as a user would: the installed console script, in its own process, with a
config file and an outbox of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

JOBHOOKS = str(Path(sys.executable).parent / "jobhooks")


def write_config(path: Path, *subscriptions: Mapping[str, Any]) -> Path:
    """A JOBHOOKS_CONFIG JSON file holding ``subscriptions`` (each with a name)."""
    path.write_text(json.dumps({"subscriptions": list(subscriptions)}), encoding="utf-8")
    return path


def cli_env(home: Path, config: Path | None = None, **settings: str) -> dict[str, str]:
    """The environment of a jobhooks process: its own home/outbox and config, fast retries."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBHOOKS_")}
    env["JOBHOOKS_HOME"] = str(home)
    env.setdefault("JOBHOOKS_RETRY_SCHEDULE", "0,0.1,0.1")
    env["JOBHOOKS_POLL_SECONDS"] = "0.1"
    if config is not None:
        env["JOBHOOKS_CONFIG"] = str(config)
    env.update({f"JOBHOOKS_{k.upper()}": v for k, v in settings.items()})
    if "JOBHOOKS_TEST_POSTGRES_URL" in os.environ:
        env["JOBHOOKS_TEST_POSTGRES_URL"] = os.environ["JOBHOOKS_TEST_POSTGRES_URL"]
    return env


def run(args: Sequence[str], env: Mapping[str, str], timeout: float = 60
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JOBHOOKS, *args], env=dict(env), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
