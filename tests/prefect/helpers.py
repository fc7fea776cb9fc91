"""Helpers for the Prefect tests: processes, polling, and reading what jobhooks emitted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobhooks_core.outbox import SQLiteOutbox
from tests.receiver import TestReceiver

REPO = Path(__file__).resolve().parents[2]
JOBHOOKS = str(Path(sys.executable).parent / "jobhooks")
LIVE, BATCH = "live", "batch"


def wait_until(predicate: Callable[[], Any], timeout: float = 30, what: str = "a condition",
               interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; that value. Fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def start_process(args: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child in its own process group (so it and its children can be stopped together)."""
    with open(log, "ab") as out:
        return subprocess.Popen(args, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=REPO, start_new_session=True)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """SIGTERM the process's group, then SIGKILL what is left after ``timeout`` (SIGABRT first:
    a Python child started with PYTHONFAULTHANDLER=1 writes every thread's stack to its log)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGABRT)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    with suppress(ProcessLookupError):  # children that outlived it (a runner's flow runs)
        os.killpg(process.pid, signal.SIGKILL)
    return int(process.returncode)


@dataclass
class Stack:
    """A jobhooks home (outbox), its receiver, and the processes reporting into it."""

    home: Path
    receiver: TestReceiver
    env: dict[str, str] = field(default_factory=dict)
    watch: Watch | None = None
    serve_log: Path | None = None

    @property
    def config(self) -> Path:
        return self.home.parent / "jobhooks.json"

    def events(self, subject_id: str, path: str = LIVE) -> list[dict[str, Any]]:
        """Events delivered to subscription ``path`` about ``subject_id`` (batches flattened)."""
        wanted = [r for r in self.receiver.requests if r.path.rstrip("/").endswith(path)]
        found: list[dict[str, Any]] = []
        for request in wanted:
            body = json.loads(request.body)
            for event in body.get("events", [body]):
                if event["subject_id"] == subject_id:
                    found.append(event)
        return found

    def verbs(self, subject_id: str, path: str = LIVE) -> Counter[str]:
        return Counter(e["verb"] for e in self.events(subject_id, path))

    def wait_for_verb(self, subject_id: str, verb: str, timeout: float = 60,
                      path: str = LIVE) -> list[dict[str, Any]]:
        def found() -> list[dict[str, Any]]:
            return [e for e in self.events(subject_id, path) if e["verb"] == verb]

        return wait_until(found, timeout, f"{verb!r} for {subject_id!r} at /{path}")  # type: ignore[no-any-return]

    def assert_verbs(self, subject_id: str, expected: Mapping[str, int], path: str = LIVE,
                     timeout: float = 30) -> None:
        """Until exactly ``expected`` has been delivered to ``path`` (rows still in flight
        arrive); fails showing what did arrive. A duplicate or an extra verb never matches."""
        wanted = Counter(expected)
        try:
            wait_until(lambda: self.verbs(subject_id, path) == wanted, timeout,
                       f"{dict(wanted)} for {subject_id!r} at /{path}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; got {dict(self.verbs(subject_id, path))}") from None

    def emitted(self, subject_id: str | None = None) -> Counter[tuple[str, str]]:
        """(subscription, verb) of every outbox row (about ``subject_id``), delivered or not."""
        outbox = SQLiteOutbox(self.home / "outbox.db")
        try:
            rows = outbox.deliveries(limit=100_000)
        finally:
            outbox.close()
        return Counter((r.subscription, r.event["verb"]) for r in rows
                       if subject_id is None or r.event["subject_id"] == subject_id)

    def cursor(self, api_url: str) -> str | None:
        outbox = SQLiteOutbox(self.home / "outbox.db")
        try:
            stored = outbox.get_meta(f"prefect.watch.cursor:{api_url}")
        finally:
            outbox.close()
        return None if stored is None else str(json.loads(stored)["occurred"])


def jobhooks_env(stack: Stack, **extra: str) -> dict[str, str]:
    """JOBHOOKS_* for a process reporting into ``stack``: a realtime subscription (/live) and a
    batch one (/batch, batch_size 1) on its receiver; fast retries, short flush."""
    stack.home.mkdir(parents=True, exist_ok=True)
    stack.config.write_text(json.dumps({"subscriptions": [
        {"name": LIVE, "url": f"{stack.receiver.url}/{LIVE}"},
        {"name": BATCH, "url": f"{stack.receiver.url}/{BATCH}", "mode": "batch",
         "batch_size": 1, "batch_flush_seconds": 0.1},
    ]}), encoding="utf-8")
    env = {
        "JOBHOOKS_HOME": str(stack.home),
        "JOBHOOKS_CONFIG": str(stack.config),
        "JOBHOOKS_RETRY_SCHEDULE": "0,0.2,0.2",
        "JOBHOOKS_POLL_SECONDS": "0.1",
        "JOBHOOKS_FLUSH_TIMEOUT": "2",
    }
    env.update({f"JOBHOOKS_{k.upper()}": v for k, v in extra.items()})
    return env


class Watch:
    """``jobhooks prefect watch`` in its own process."""

    def __init__(self, env: Mapping[str, str], log: Path, *args: str) -> None:
        self.env, self.log, self.args = dict(env), log, list(args)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Watch:
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        self.process = start_process([JOBHOOKS, "-v", "prefect", "watch", *self.args],
                                     {**self.env, "PYTHONFAULTHANDLER": "1"}, self.log)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")[self.offset:] if self.log.exists() else ""

    def wait_connected(self, timeout: float = 60) -> None:
        def connected() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the watcher exited:\n{self.output()[-3000:]}")
            return "jobhooks prefect watch: connected" in self.output()

        wait_until(connected, timeout, "the watcher to connect")

    def stop(self) -> int:
        """SIGTERM; its exit code. A watcher that has to be killed fails the test, showing
        where it was stuck."""
        assert self.process is not None
        code = stop_process(self.process)
        if code < 0 and code != -signal.SIGTERM:
            raise AssertionError(f"the watcher did not stop on SIGTERM (exit {code}):\n"
                                 f"{self.output()[-5000:]}")
        return code


def deliveries_unique(events: Iterable[dict[str, Any]]) -> bool:
    ids = [e["id"] for e in events]
    return len(ids) == len(set(ids))


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 in front of a real server, whose connections a test can cut
    (a dropped network, a server restart) and then let through again."""

    def __init__(self, target_port: int) -> None:
        import socket
        import threading

        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open = threading.Event()
        self._open.set()
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()  # refused while cut: the other side sees a dropped connection
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: Any, sink: Any) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until ``restore``."""
        import socket

        self._open.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                sock.close()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closing.set()
        self.cut()
        with suppress(OSError):
            self._listener.close()
