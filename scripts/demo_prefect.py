#!/usr/bin/env python3
"""``make demo-prefect``: jobhooks with a real Prefect server, end to end, on one machine.

1. ``prefect server start`` (a temporary PREFECT_HOME, SQLite), ``jobhooks receive`` verifying
   signatures, a JOBHOOKS_CONFIG with ``ops-alerts`` (realtime) and ``catalog`` (batch);
2. ``jobhooks prefect watch`` beside the server (it also delivers the batch subscription);
3. the example flows of ``example_dags/prefect``: ``segment_export.py`` served on a 15 s
   schedule, ``adhoc_report.py`` run once, ``flaky_import.py`` failing after its retries;
4. a summary of what each subscription received; exit 1 unless every expected event arrived,
   signed and verified. Every process it starts is stopped, also on Ctrl-C or SIGTERM.

Run it with the Prefect environment's python: ``.venv-prefect/bin/python scripts/demo_prefect.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXAMPLES = REPO / "example_dags" / "prefect"
WAIT_SECONDS = 120.0
# What must arrive, per (subscription, subject id): at least these verbs.
EXPECTED = {
    ("ops-alerts", "segment-export/demo"): {"created", "started", "syncing", "synced",
                                            "synccomplete"},
    ("catalog", "segment-export/demo"): {"created", "started"},
    ("ops-alerts", "adhoc-report"): {"created", "started", "syncing", "synced", "synccomplete"},
    ("catalog", "adhoc-report"): {"created", "started", "completed"},
    ("ops-alerts", "flaky-import"): {"created", "started", "syncing", "failed"},
    ("catalog", "flaky-import"): {"created", "started", "failed"},
}


def say(message: str) -> None:
    print(f"\n== {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """Every process the demo starts, each in its own group, stopped in reverse order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "ab") as out:
            process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=REPO,
                                       start_new_session=True)
        self.running.append((name, process))
        return process

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        while self.running:
            name, process = self.running.pop()
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            print(f"   stopped {name}", flush=True)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: timed out waiting for {what}")
        time.sleep(0.3)


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="jobhooks-demo-prefect-"))
    procs = Processes(tmp)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        return run(tmp, procs)
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
        return 130
    finally:
        say("stopping everything the demo started")
        procs.stop_all()
        print(f"   logs kept in {tmp}", flush=True)


def run(tmp: Path, procs: Processes) -> int:
    secret = subprocess.run([str(BIN / "jobhooks"), "secret"], capture_output=True, text=True,
                            check=True).stdout.strip()
    port, receiver_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "JOBHOOKS_"))}
    env.update(
        PREFECT_HOME=str(tmp / "prefect"), PREFECT_API_URL=api_url,
        PREFECT_UI_URL=f"http://127.0.0.1:{port}", PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_RUNNER_POLL_FREQUENCY="2", JOBHOOKS_HOME=str(tmp / "jobhooks"),
        JOBHOOKS_CONFIG=str(tmp / "jobhooks.toml"), JOBHOOKS_FLUSH_TIMEOUT="3",
    )
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    (tmp / "jobhooks.toml").write_text(f"""
[[subscriptions]]
name = "ops-alerts"
url = "{receiver_url}/ops-alerts"
secret = "{secret}"

[[subscriptions]]
name = "catalog"
url = "{receiver_url}/catalog"
secret = "{secret}"
mode = "batch"
format = "cloudevents"
batch_size = 5
batch_flush_seconds = 2
""")
    say(f"prefect server start on 127.0.0.1:{port} (PREFECT_HOME {tmp / 'prefect'})")
    procs.start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                           "--port", str(port)],
                {**env, "PREFECT_API_DATABASE_CONNECTION_URL":
                 f"sqlite+aiosqlite:///{tmp / 'prefect.db'}",
                 "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5"})
    import httpx

    def healthy() -> bool:
        try:
            return httpx.get(f"{api_url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, "the Prefect server")
    block_type = httpx.get(f"{api_url}/block_types/slug/jobhooks-subscription", timeout=5)
    print(f"   block type jobhooks-subscription registered: {block_type.status_code == 200}")

    say(f"jobhooks receive on {receiver_url} (verifies signatures)")
    procs.start("receiver", [str(BIN / "jobhooks"), "receive", "--port", str(receiver_port),
                             "--secret", secret, "--log", str(tmp / "received.jsonl")], env)
    wait_for(lambda: "listening" in procs.log("receiver").lower() or _open(receiver_port),
             "the receiver")

    say("jobhooks prefect watch")
    procs.start("watch", [str(BIN / "jobhooks"), "prefect", "watch"], env)
    wait_for(lambda: "connected to the event stream" in procs.log("watch"), "the watcher")
    print("   " + procs.log("watch").strip().splitlines()[-1])

    say("serving segment_export.py as segment-export/demo, every 15 s")
    procs.start("serve", [sys.executable, str(EXAMPLES / "segment_export.py"), "--name", "demo",
                          "--interval", "15"], env)

    for example in ("adhoc_report.py", "flaky_import.py"):
        say(f"python example_dags/prefect/{example}")
        done = subprocess.run([sys.executable, str(EXAMPLES / example)], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        # The flow's own outcome: its printed result, or the exception it ended with.
        lines = [line for line in (done.stdout + done.stderr).splitlines()
                 if line.strip() and " | " not in line]
        print(f"   exit {done.returncode}: {lines[-1] if lines else ''}", flush=True)

    say("waiting for every expected event (a scheduled run of segment-export/demo included)")
    log = tmp / "received.jsonl"

    def complete() -> bool:
        got = received_by_path(log, receiver_url)
        return all(want <= set(got.get(key, {})) for key, want in EXPECTED.items())

    try:
        wait_for(complete, "the expected events")
    finally:
        got = received_by_path(log, receiver_url)
        say("received (verified signatures), per subscription and subject")
        for (sub, subject), verbs in sorted(got.items()):
            shown = ", ".join(f"{v}×{n}" if n > 1 else v for v, n in sorted(verbs.items()))
            print(f"   {sub:<11} {subject:<22} {shown}")
    missing = {k: sorted(w - set(got.get(k, {}))) for k, w in EXPECTED.items()
               if not w <= set(got.get(k, {}))}
    if missing:
        print(f"\nmissing: {missing}")
        return 1
    print("\nevery expected event arrived, signed and verified")
    return 0


def _open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def received_by_path(log: Path, receiver_url: str) -> dict[tuple[str, str], Counter[str]]:
    """(subscription, subject id) → verbs received with a verified signature, from the
    receiver's JSON-lines log: ``catalog`` is the batch subscription, so its events come in
    batches; ``ops-alerts`` is realtime, one event per request."""
    found: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    if not log.exists():
        return found
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if not record["verified"]:
            continue
        event = record["event"]
        sub = "catalog" if record.get("batch_id") else "ops-alerts"
        found[(sub, event["subject_id"])][event["verb"]] += 1
    return found


if __name__ == "__main__":
    sys.exit(main())
