"""Shared parts of the benchmarks: the loopback receiver process, a temporary JOBHOOKS_HOME,
percentiles, machine facts, and output (one JSON object on stdout, progress on stderr)."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def output(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=2), flush=True)


class Receiver:
    """``bench/_receiver.py`` in its own process, on a free loopback port."""

    def __init__(self, hang: bool = False) -> None:
        args = [sys.executable, str(HERE / "_receiver.py"), "0"] + (["hang"] if hang else [])
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if not line or line[0] != "ready":
            self.stop()
            raise RuntimeError(f"receiver did not start (said {line!r})")
        self.port = int(line[1])
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    def count(self) -> dict[str, int]:
        """What the receiver has seen so far: requests, events, unique_events, bytes."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/count", timeout=10) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def receiver(hang: bool = False) -> Iterator[Receiver]:
    started = Receiver(hang)
    try:
        yield started
    finally:
        started.stop()


@contextmanager
def temp_home() -> Iterator[dict[str, str]]:
    """An environment mapping whose JOBHOOKS_HOME is a fresh temporary directory."""
    with tempfile.TemporaryDirectory(prefix="jobhooks-bench-") as home:
        yield {"JOBHOOKS_HOME": home}


def percentiles_us(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50, p90, p99 and max of ``samples_ns`` in microseconds (nearest rank)."""
    ordered = sorted(samples_ns)
    n = len(ordered)

    def rank(p: float) -> float:
        index = min(n - 1, max(0, -(-n * p // 100) - 1))
        return round(ordered[int(index)] / 1000, 1)

    return {
        "p50_us": rank(50),
        "p90_us": rank(90),
        "p99_us": rank(99),
        "max_us": round(ordered[-1] / 1000, 1),
        "samples": n,
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 1) if b else None


def code_version() -> dict[str, Any]:
    """The jobhooks commit measured, and whether jobhooks_core had uncommitted changes."""
    root = HERE.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        return done.stdout.strip()

    try:
        return {
            "commit": git("rev-parse", "--short", "HEAD") or None,
            "jobhooks_core_modified": bool(git("status", "--porcelain", "--", "jobhooks_core")),
        }
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "jobhooks_core_modified": None}


def resources() -> dict[str, int | None]:
    """Open file descriptors (Linux) and live threads of this process: leaks show here."""
    try:
        fds: int | None = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = None
    return {"open_fds": fds, "threads": threading.active_count()}


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, load when the run started, versions."""
    return {
        **code_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "httpx": version("httpx"),
        "httpcore": version("httpcore"),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
