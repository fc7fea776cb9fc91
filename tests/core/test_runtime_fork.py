"""``emit`` in a child forked after the parent started delivering (multiprocessing, executor
workers): the child delivers its own events with a dispatcher of its own instead of waiting out
its flush window on the parent's threads, which do not exist in the child."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.core.clitools import cli_env, write_config
from tests.receiver import TestReceiver

FORKING_SCRIPT = """
import os, sys, time
from jobhooks_core import emit
emit("started", "work", "parent-job")
pid = os.fork()
if pid == 0:
    emit("failed", "work", "child-job")
    sys.exit(0)  # atexit: the child's flush delivers it
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), flush=True)
"""


def test_a_forked_child_delivers_its_own_events(tmp_path: Path) -> None:
    with TestReceiver() as receiver:
        config = write_config(tmp_path / "c.json", {"name": "ops", "url": receiver.url})
        env = cli_env(tmp_path / "home", config)
        done = subprocess.run([sys.executable, "-c", FORKING_SCRIPT], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.split() == ["0"], done.stderr
        # both delivered by the processes that emitted them (no relay runs here)
        assert sorted(e["subject_id"] for e in receiver.events()) == ["child-job", "parent-job"]
