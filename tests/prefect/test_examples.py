"""The example flows, run as a user runs them: ``python example_dags/prefect/<flow>.py`` in its own
process, which delivers what it emitted before it exits."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from tests.prefect.conftest import run
from tests.prefect.helpers import BATCH, LIVE, REPO, Stack, jobhooks_env
from tests.receiver import TestReceiver

EXAMPLES = REPO / "example_dags" / "prefect"


def test_the_ad_hoc_example_reports_its_first_run(
    prefect_server: dict[str, str], tmp_path: Path
) -> None:
    with TestReceiver() as receiver:
        stack = Stack(tmp_path / "jobhooks", receiver)
        done = run([sys.executable, str(EXAMPLES / "adhoc_report.py")],
                   {**prefect_server, **jobhooks_env(stack)})
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().splitlines()[-1] == "1500"
        # Delivered by the flow process itself, before it exited (its exit flush).
        assert stack.verbs("adhoc-report") == Counter(
            {"created": 1, "started": 1, "syncing": 1, "synced": 2, "synccomplete": 1})
        # A batch is left to a long-lived process (the watcher or `jobhooks relay`).
        assert stack.emitted("adhoc-report") == Counter(
            {(LIVE, "created"): 1, (LIVE, "started"): 1, (LIVE, "syncing"): 1,
             (LIVE, "synced"): 2, (LIVE, "synccomplete"): 1,
             (BATCH, "created"): 1, (BATCH, "started"): 1, (BATCH, "completed"): 1})


def test_the_failing_example_fails_exactly_as_without_jobhooks_and_reports_it_once(
    prefect_server: dict[str, str], tmp_path: Path
) -> None:
    with TestReceiver() as receiver:
        stack = Stack(tmp_path / "jobhooks", receiver)
        done = run([sys.executable, str(EXAMPLES / "flaky_import.py")],
                   {**prefect_server, **jobhooks_env(stack)})
        assert done.returncode == 1
        assert "UpstreamDown: crm answered 503" in done.stderr
        assert stack.verbs("flaky-import") == Counter(
            {"created": 1, "started": 1, "syncing": 1, "failed": 1})
        (failed,) = [e for e in stack.events("flaky-import") if e["verb"] == "failed"]
        assert "crm answered 503" in failed["data"]["error"]
        assert failed["data"]["failed_tasks"][0]["task_run_name"].startswith("fetch_batch")
