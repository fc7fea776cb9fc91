"""A real Airflow 3 deployment for tests and benchmarks: scheduler, API server and dag-processor
(LocalExecutor, SQLite metadata DB) in a temporary AIRFLOW_HOME, driven through the REST API.

Everything it starts it stops: each component runs in its own process group, and stopping
sends SIGTERM to the group (then SIGKILL), so task processes and parsing processes go too.
Waiting is always polling with a deadline, never a bare sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["AirflowStack", "free_port", "wait_until"]

AIRFLOW = str(Path(sys.executable).parent / "airflow")
COMPONENTS = ("api-server", "dag-processor", "scheduler")
FINISHED = ("success", "failed")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25
) -> T:
    """Poll ``probe`` until it returns something truthy; fail saying ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class AirflowStack:
    """``AirflowStack(home, dags).start()``; ``.trigger("dag")``; ``.stop()``."""

    def __init__(self, home: Path, dags: Path, env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.dags = dags
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.logs = home / "component-logs"
        self.extra_env = dict(env or {})
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._opened: list[Any] = []

    # -- environment --------------------------------------------------------------------------
    def env(self, **overrides: str | None) -> dict[str, str]:
        """The environment of every Airflow command of this stack (``None`` removes a key)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "JOBHOOKS_")) or k == "JOBHOOKS_TEST_POSTGRES_URL"
        }
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__BASE_URL": self.base,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secret(),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "1",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
                "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "1",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def _secret(self) -> str:
        path = self.home / "jwt_secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
        return path.read_text()

    def airflow(self, *args: str, timeout: float = 120, **env: str | None) -> str:
        """Run an ``airflow`` CLI command of this stack; its output (fails loudly)."""
        done = subprocess.run(
            [AIRFLOW, *args],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    # -- processes ----------------------------------------------------------------------------
    def start(self, components: Iterable[str] = COMPONENTS, **env: str | None) -> AirflowStack:
        self.logs.mkdir(parents=True, exist_ok=True)
        if not (self.home / "airflow.db").exists():
            self.airflow("db", "migrate", timeout=300)
        for name in components:
            self.start_component(name, **env)
        self.wait_healthy()
        return self

    def start_component(self, name: str, **env: str | None) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._opened.append(log)
        self.processes[name] = subprocess.Popen(
            [AIRFLOW, name],
            env=self.env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped with all its children
        )

    def stop_component(self, name: str, timeout: float = 30) -> None:
        proc = self.processes.pop(name, None)
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Children that outlived their parent (a task process, a parser) are still in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def restart_scheduler(self, **env: str | None) -> None:
        """A new scheduler process (its LocalExecutor and tasks inherit ``env``)."""
        before = self.scheduler_heartbeat()
        self.stop_component("scheduler")
        self.start_component("scheduler", **env)
        wait_until(
            lambda: self.scheduler_heartbeat() not in (None, before) and self.healthy(),
            90,
            "the restarted scheduler's heartbeat",
        )

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop_component(name)
        for log in self._opened:
            log.close()

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- REST API -----------------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base}/api/v2/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(
                f"{method} {path} → {exc.code}: {exc.read().decode(errors='replace')}"
            ) from exc
        return json.loads(raw) if raw else None

    def _health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.base}/api/v2/monitor/health", timeout=5) as r:
                return json.loads(r.read())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def healthy(self) -> bool:
        health = self._health()
        if not health:
            return False
        wanted = {"scheduler": "scheduler", "dag-processor": "dag_processor"}
        return all(
            health.get(key, {}).get("status") == "healthy"
            for name, key in wanted.items()
            if name in self.processes
        )

    def scheduler_heartbeat(self) -> str | None:
        health = self._health() or {}
        return health.get("scheduler", {}).get("latest_scheduler_heartbeat")

    def wait_healthy(self, timeout: float = 180) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited ({proc.returncode}):\n{self.log(name)}")
        wait_until(self.healthy, timeout, "the Airflow components to report healthy")

    def wait_for_dags(self, *dag_ids: str, timeout: float = 120) -> None:
        def parsed() -> bool:
            found = {d["dag_id"] for d in self.api("GET", "dags?limit=1000")["dags"]}
            return set(dag_ids) <= found

        wait_until(parsed, timeout, f"DAGs {', '.join(dag_ids)} to be parsed")

    def unpause(self, dag_id: str, paused: bool = False) -> None:
        self.api("PATCH", f"dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Start a manual run now; its run id."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        return str(self.api("POST", f"dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"dags/{dag_id}/dagRuns?limit=100")["dag_runs"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.api("GET", f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}"))

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 180) -> dict[str, Any]:
        """Block until the run finished; the run as the API shows it."""

        def finished() -> dict[str, Any] | None:
            run = self.run(dag_id, run_id)
            return run if run["state"] in FINISHED else None

        return wait_until(finished, timeout, f"run {run_id} of {dag_id} to finish", 0.5)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances?limit=100"
        return list(self.api("GET", path)["task_instances"])

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        path = (
            f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}/logs/"
            f"{try_number}?full_content=true&map_index={map_index}"
        )
        content = self.api("GET", path).get("content", [])
        return "\n".join(
            json.dumps(line) if not isinstance(line, str) else line for line in content
        )

    # -- DAG files ----------------------------------------------------------------------------
    def add_dag_file(self, name: str, source: str) -> Path:
        """Write a DAG file atomically (the dag-processor never parses half a file).

        Its modification time is set a moment ahead: the dag-processor re-parses a file
        only when it changed after the end of its previous parse, which an edit made within the
        same second as that parse would not be.
        """
        path = self.dags / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(source)
        ahead = time.time() + 1.5
        os.utime(tmp, (ahead, ahead))
        tmp.replace(path)
        return path

    def copy_dags(self, source: Path) -> None:
        self.dags.mkdir(parents=True, exist_ok=True)
        for path in sorted(source.glob("*.py")):
            shutil.copy(path, self.dags / path.name)
