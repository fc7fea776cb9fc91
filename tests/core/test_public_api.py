"""The public surface stays small, sorted and orchestrator-neutral."""

from __future__ import annotations

import subprocess
import sys

import jobhooks_core
from jobhooks_core import exceptions


def test_all_is_sorted_and_importable() -> None:
    assert jobhooks_core.__all__ == sorted(jobhooks_core.__all__)
    for name in jobhooks_core.__all__:
        assert hasattr(jobhooks_core, name), name


def test_every_error_is_a_jobhooks_error() -> None:
    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), exceptions.JobhooksError)


def test_core_imports_neither_orchestrator() -> None:
    code = (
        "import sys, jobhooks_core, jobhooks_core.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'prefect')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
