"""`jobhooks check`: validates the configuration and shows what each subscription receives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """
[[subscriptions]]
name = "ops-alerts"
url = "https://hooks.example.com/ops"
verbs = ["failed", "started"]
subject_types = ["segment"]
subject_ids = ["export_*"]
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""
BAD = (
    GOOD
    + """
[[subscriptions]]
name = "late"
url = "https://hooks.example.com/late"
verbs = ["completed"]
"""
)


def jobhooks(*args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "JOBHOOKS_CONFIG"}
    if config is not None:
        env["JOBHOOKS_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "jobhooks_core.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "jobhooks.toml"
    path.write_text(GOOD)
    return path


def test_check_lists_what_each_subscription_receives(good: Path) -> None:
    result = jobhooks("check", config=good)
    assert result.returncode == 0, result.stderr
    assert "ops-alerts" in result.stdout
    assert "failed, started" in result.stdout
    assert "segment" in result.stdout and "export_*" in result.stdout
    assert "signed (1 secret)" in result.stdout
    assert "1 subscription ok, 0 errors" in result.stdout
    assert "whsec_" not in result.stdout


def test_check_fails_and_explains_a_bad_subscription(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(BAD)
    result = jobhooks("check", config=path)
    assert result.returncode == 1
    assert "subscription 'late', field 'verbs'" in result.stderr
    assert "batch-only" in result.stderr
    assert "ops-alerts" in result.stdout  # the good one is still listed


def test_check_with_config_flag_overrides_the_environment(good: Path, tmp_path: Path) -> None:
    result = jobhooks("check", "--config", str(good), config=tmp_path / "missing.toml")
    assert result.returncode == 0, result.stderr


def test_check_without_any_configuration_fails_with_a_hint() -> None:
    result = jobhooks("check")
    assert result.returncode == 1
    assert "no subscriptions configured" in result.stderr and "JOBHOOKS_CONFIG" in result.stderr


def test_check_json_output(good: Path) -> None:
    result = jobhooks("check", "--json", config=good)
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["errors"] == []
    (sub,) = report["subscriptions"]
    assert sub["verbs"] == ["failed", "started"] and sub["secrets"] == 1


def test_secret_prints_a_usable_secret() -> None:
    from jobhooks_core.signing import validate_secret

    result = jobhooks("secret")
    assert result.returncode == 0
    validate_secret(result.stdout.strip())


def test_help_describes_each_command() -> None:
    result = jobhooks("check", "--help")
    assert result.returncode == 0 and "--config" in result.stdout


def test_installed_console_script_runs() -> None:
    script = Path(sys.executable).parent / "jobhooks"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "check" in result.stdout
