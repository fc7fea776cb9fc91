"""The package as Prefect sees it: the collection entry point, a cheap and safe import, a small
sorted public surface, thin modules."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import jobhooks_prefect
from jobhooks_prefect import flow_hooks, task_hooks

PACKAGE = Path(jobhooks_prefect.__file__).parent


def test_the_prefect_collections_entry_point_names_the_package() -> None:
    (entry,) = [e for e in entry_points(group="prefect.collections") if e.name == "jobhooks"]
    assert entry.value == "jobhooks_prefect"


def test_prefect_loads_the_collection_without_error() -> None:
    from prefect.plugins import load_prefect_collections

    loaded = load_prefect_collections()
    assert loaded["jobhooks"] is jobhooks_prefect


def test_importing_the_package_loads_the_block_and_not_the_runtime() -> None:
    code = ("import sys, json, jobhooks_prefect; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('jobhooks'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert json.loads(out.splitlines()[-1]) == ["jobhooks_prefect", "jobhooks_prefect._block"]


def test_the_public_surface_is_small_and_sorted() -> None:
    assert jobhooks_prefect.__all__ == sorted(jobhooks_prefect.__all__)
    assert jobhooks_prefect.__all__ == ["JobhooksSubscription", "flow_hooks", "task_hooks"]


def test_flow_hooks_cover_every_flow_state_prefect_reports_and_task_hooks_the_final_ones(
) -> None:
    assert sorted(flow_hooks()) == [
        "on_cancellation", "on_completion", "on_crashed", "on_failure", "on_running"]
    assert sorted(task_hooks()) == ["on_completion", "on_failure"]
    assert all(len(hooks) == 1 and callable(hooks[0]) for hooks in flow_hooks().values())


def test_adapter_modules_stay_thin() -> None:
    # Policy (verbs, once-per-work facts, delivery) lives in jobhooks_core.
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert max(sizes.values()) <= 300, sizes
