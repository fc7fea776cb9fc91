"""The adapters' guard: jobhooks' own errors are logged and counted, never raised."""

from __future__ import annotations

import logging

import pytest

from jobhooks_core.guard import errors_swallowed, never_raise, swallowed


def test_an_error_inside_the_guard_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    before = errors_swallowed()
    with caplog.at_level(logging.ERROR, logger="jobhooks"), swallowed("reporting", "task"):
        raise RuntimeError("outbox exploded")
    assert errors_swallowed() == before + 1
    assert "jobhooks: reporting failed: RuntimeError: outbox exploded (no effect on the task)" \
        in caplog.text


def test_decorated_function_returns_the_default_on_error() -> None:
    @never_raise("hook", default=[])
    def hook() -> list[int]:
        raise ValueError("bad")

    assert hook() == []


def test_decorated_function_returns_its_value_when_fine() -> None:
    @never_raise("hook")
    def hook() -> int:
        return 7

    assert hook() == 7


def test_keyboard_interrupt_is_the_hosts_and_passes_through() -> None:
    with pytest.raises(KeyboardInterrupt), swallowed("anything"):
        raise KeyboardInterrupt
