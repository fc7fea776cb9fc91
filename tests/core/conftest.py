"""Fixtures for core tests: a real webhook receiver on 127.0.0.1 per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.receiver import TestReceiver


@pytest.fixture
def receiver() -> Iterator[TestReceiver]:
    """A started TestReceiver, stopped after the test (hung requests included)."""
    with TestReceiver() as started:
        yield started


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
