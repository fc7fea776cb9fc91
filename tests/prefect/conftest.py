"""Fixtures for the Prefect adapter: a real Prefect server (one per session), real receivers, and
``jobhooks prefect watch`` / ``flow.serve()`` processes started and stopped by the tests.

Two kinds of test share the server:

- hooks-only tests run flows in this process with a fresh JOBHOOKS_HOME and receiver each
  (``local``); what they emitted is read from their own outbox;
- stack tests share one JOBHOOKS_HOME, receiver, watcher and serve process (``stack``), and
  look only at the events of their own subject ids.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.prefect.helpers import (
    REPO,
    Stack,
    Watch,
    jobhooks_env,
    start_process,
    stop_process,
    wait_until,
)
from tests.receiver import TestReceiver

PREFECT = str(Path(sys.executable).parent / "prefect")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connection refused)."""
    return _free_port()


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[dict[str, str]]:
    """``prefect server start`` on a free port, SQLite in a temporary PREFECT_HOME. Yields the
    environment a Prefect client process needs; this process is pointed at it too."""
    import httpx
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    home = Path(tempfile.mkdtemp(prefix="jobhooks-prefect-"))
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "JOBHOOKS_"))}
    env.update(
        PREFECT_HOME=str(home / "prefect-home"),
        PREFECT_API_URL=api_url,
        PREFECT_UI_URL=f"http://127.0.0.1:{port}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_LOGGING_TO_API_ENABLED="false",
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        PYTHONPATH=str(REPO),
    )
    server_env = dict(
        env,
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL="0.5",
        # No auto-scheduled runs: the tests start every run they expect.
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
    )
    log = home / "server.log"
    server = start_process(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        server_env, log,
    )
    try:
        def healthy() -> bool:
            if server.poll() is not None:
                raise AssertionError(f"prefect server exited:\n{log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{api_url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=90, what="the Prefect server to answer /health")
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update({k: v for k, v in env.items() if k.startswith("PREFECT_")})
        with temporary_settings(updates={PREFECT_API_URL: api_url,
                                         PREFECT_UI_URL: env["PREFECT_UI_URL"]}):
            yield env
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    finally:
        stop_process(server)


@pytest.fixture(autouse=True)
def _fresh_runtimes() -> Iterator[None]:
    """Each test starts with no jobhooks runtime or remembered flow run in this process."""
    from jobhooks_prefect import _runtime, hooks

    yield
    _runtime.close_all()
    hooks._runs.clear()


@pytest.fixture
def local(prefect_server: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[Stack]:
    """A JOBHOOKS_HOME, config and receiver of this test's own, for flows run in this process."""
    with TestReceiver() as receiver:
        stack = Stack(tmp_path / "jobhooks", receiver)
        for key, value in jobhooks_env(stack).items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("JOBHOOKS_PREFECT_SUBSCRIPTIONS", raising=False)
        yield stack


@pytest.fixture(scope="session")
def stack(prefect_server: dict[str, str]) -> Iterator[Stack]:
    """The shared stack: receiver, a watcher, and a serve process with the test deployments."""
    home = Path(tempfile.mkdtemp(prefix="jobhooks-stack-"))
    with TestReceiver() as receiver:
        shared = Stack(home / "jobhooks", receiver)
        env = {**prefect_server, **jobhooks_env(shared)}
        watch = Watch(env, home / "watch.log").start()
        serve = None
        try:
            watch.wait_connected()
            serve = start_process([sys.executable, str(REPO / "tests/prefect/served.py")], env,
                                  home / "serve.log")
            shared.serve_log = home / "serve.log"
            wait_until(lambda: _served(serve, home / "serve.log"), 120,
                       "the served deployments to exist")
            shared.watch = watch
            shared.env = env
            yield shared
        finally:
            if serve is not None:
                stop_process(serve)
            watch.stop()


SERVED = ("segment-export/nightly", "quick-sync/manual", "sleepy/kill-me", "sleepy/cancel-me")


def _served(serve: subprocess.Popen[bytes], log: Path) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    if serve.poll() is not None:
        raise AssertionError(f"the serve process exited:\n{log.read_text()[-3000:]}")
    with get_client(sync_client=True) as client:
        try:
            for name in SERVED:
                client.read_deployment_by_name(name)
        except ObjectNotFound:
            return False
    return "Your deployments are being served" in log.read_text(errors="replace")


@pytest.fixture
def in_stack(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """Flows run in this process report into the shared stack (watcher beside them)."""
    for key, value in jobhooks_env(stack).items():
        monkeypatch.setenv(key, value)
    return stack


def run(args: list[str], env: dict[str, str], timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=REPO)
