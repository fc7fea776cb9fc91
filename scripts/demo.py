#!/usr/bin/env python3
"""``make demo``: jobhooks end to end on one machine, with the real ``jobhooks`` CLI.

1. a temp dir with a fresh ``whsec_`` secret, a JOBHOOKS_CONFIG with two subscriptions
   (``ops-alerts``: realtime, json; ``catalog``: batch, cloudevents) and a JOBHOOKS_HOME;
2. ``jobhooks receive`` verifying signatures and logging every event (JSON lines);
3. ``jobhooks check``, then ``jobhooks emit`` for three works' runs;
4. ``jobhooks relay`` until the batch subscription has flushed, ``jobhooks outbox status``;
5. a summary; exit 1 unless every event reached every subscription that should get it,
   signed and verified. Every process it starts is stopped, also on Ctrl-C or SIGTERM.

Needs only the project's environment: run it with that environment's python
(``.venv-prefect/bin/python scripts/demo.py``); ``jobhooks`` is taken from beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

BAR = "│"
RULE_WIDTH = 78
RECEIVER_START_TIMEOUT = 20.0
COMMAND_TIMEOUT = 60.0
DELIVERY_TIMEOUT = 45.0
STOP_TIMEOUT = 10.0
BATCH_SIZE = 5
BATCH_FLUSH_SECONDS = 2

# The vocabulary's delivery modes (DESIGN.md §2), kept here on purpose: the demo checks the
# CLI's routing against the specification, not against the code it is checking.
REALTIME_VERBS = {
    "created",
    "update",
    "deleted",
    "started",
    "syncing",
    "synced",
    "synccomplete",
    "failed",
}
BATCH_VERBS = {"created", "update", "deleted", "started", "completed", "failed"}
SUBSCRIPTIONS = {"ops-alerts": REALTIME_VERBS, "catalog": BATCH_VERBS}


# -- output -----------------------------------------------------------------------------------

_print_lock = threading.Lock()


def say(text: str = "") -> None:
    with _print_lock:
        print(text, flush=True)


def section(title: str) -> None:
    say()
    say(f"══ {title} " + "═" * max(RULE_WIDTH - len(title) - 4, 3))


def shown(argv: Sequence[str]) -> str:
    parts = ["jobhooks" if i == 0 else a for i, a in enumerate(argv)]
    return " ".join(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else f"'{a}'" for a in parts)


# -- the jobhooks command ---------------------------------------------------------------------


def jobhooks_command() -> list[str]:
    """``jobhooks`` of this interpreter's environment (its console script, else ``-m``)."""
    # Not resolved: a venv's python is a symlink to the base interpreter, its scripts are not.
    for name in ("jobhooks", "jobhooks.exe"):
        script = Path(sys.executable).parent / name
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script)]
    return [sys.executable, "-m", "jobhooks_core.cli"]


# -- background processes ---------------------------------------------------------------------


class Background:
    """A child process whose output is shown, line by line, behind a prefix."""

    def __init__(
        self, label: str, argv: list[str], env: dict[str, str], started: list[Background]
    ) -> None:
        self.label = label
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            # Its own session: a Ctrl-C in the terminal reaches only this script, which then
            # stops the children itself, in order (relay before receiver).
            start_new_session=True,
        )
        started.append(self)  # at once: from here on, cleanup stops it
        self.pid = self.proc.pid
        say(f"started {label} (pid {self.pid})")
        assert self.proc.stdout is not None
        self._reader = threading.Thread(
            target=self._pump, args=(self.proc.stdout,), name=f"{label}-output", daemon=True
        )
        self._reader.start()

    def _pump(self, stream: IO[str]) -> None:
        prefix = f"{self.label:>8} {BAR} "
        for raw in stream:
            line = raw.rstrip("\n")
            say(prefix + line)
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str] | None:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for line in self.lines:
                    match = regex.search(line)
                    if match:
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self._reader.is_alive():
                    return None
                self._seen.wait(min(left, 0.2))

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; returns the exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                say(
                    f"{self.label} (pid {self.pid}) ignored SIGTERM for {STOP_TIMEOUT:g} s: "
                    "killing it"
                )
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


# -- the story --------------------------------------------------------------------------------


@dataclass
class Emit:
    subject_type: str
    subject_id: str
    verb: str
    occurrence: str
    data: dict[str, Any] = field(default_factory=dict)
    wait: bool = False


def story() -> list[Emit]:
    """Three works' runs, interleaved as they would be on a busy night."""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    ui = "http://airflow.example.com/dags"
    seg_run = f"scheduled__{day}T01:00:00+00:00"
    orders_run = f"scheduled__{day}T02:00:00+00:00"
    rollup_run = f"manual__{day}T03:15:00+00:00"
    seg = ("segment", "nightly_segment_export")
    orders = ("work", "daily_orders_import")
    rollup = ("rollup", "weekly_rollup")

    def run(run_id: str, dag: str, **more: Any) -> dict[str, Any]:
        return {"run_id": run_id, "url": f"{ui}/{dag}/runs/{run_id}", **more}

    events = [
        Emit(*seg, "created", "created", {"owner": "growth", "schedule": "0 1 * * *"}),
        Emit(*seg, "started", "started", run(seg_run, seg[1])),
        Emit(*seg, "syncing", seg_run, run(seg_run, seg[1], state="running")),
        Emit(*orders, "syncing", orders_run, run(orders_run, orders[1], state="running")),
    ]
    for task in ("extract_segments", "transform_segments", "upload_to_s3"):
        events.append(
            Emit(
                *seg,
                "synced",
                f"{seg_run}/{task}/1",
                run(seg_run, seg[1], task_id=task, try_number=1, state="success"),
            )
        )
    events += [
        Emit(
            *orders,
            "synced",
            f"{orders_run}/fetch_orders/1",
            run(orders_run, orders[1], task_id="fetch_orders", try_number=1, state="success"),
        ),
        Emit(
            *orders,
            "failed",
            f"{orders_run}/failed",
            run(
                orders_run,
                orders[1],
                state="failed",
                task_id="load_orders",
                try_number=3,
                failed_tasks=["load_orders"],
                error="psycopg.errors.UniqueViolation: duplicate key value violates unique "
                'constraint "orders_pkey"',
            ),
        ),
        Emit(*rollup, "created", "created", {"owner": "finance", "schedule": "@once"}),
        Emit(*rollup, "started", "started", run(rollup_run, rollup[1])),
        Emit(*rollup, "syncing", rollup_run, run(rollup_run, rollup[1], state="running")),
        Emit(
            *rollup,
            "synced",
            f"{rollup_run}/aggregate_week/1",
            run(rollup_run, rollup[1], task_id="aggregate_week", try_number=1, state="success"),
        ),
        Emit(
            *rollup,
            "synccomplete",
            rollup_run,
            run(rollup_run, rollup[1], state="success", duration_seconds=312.4),
        ),
        Emit(
            *rollup,
            "completed",
            "completed",
            run(rollup_run, rollup[1], state="success", reason="no further scheduled run"),
        ),
        # Last, and realtime-only: `--wait` blocks until ops-alerts has it. (An event for the
        # batch subscription would wait for the relay, which is not running yet.)
        Emit(
            *seg,
            "synccomplete",
            seg_run,
            run(seg_run, seg[1], state="success", duration_seconds=187.9),
            wait=True,
        ),
    ]
    return events


def expected_subscriptions(verb: str) -> set[str]:
    return {name for name, verbs in SUBSCRIPTIONS.items() if verb in verbs}


# -- the demo ---------------------------------------------------------------------------------


class DemoFailed(Exception):
    pass


@dataclass
class Result:
    problems: list[str] = field(default_factory=list)
    emitted: dict[str, Emit] = field(default_factory=dict)  # event id → what was emitted
    expected: dict[str, set[str]] = field(default_factory=dict)  # subscription → event ids

    def problem(self, text: str) -> None:
        self.problems.append(text)
        say(f"!! {text}")


def write_config(tmp: Path, url: str, secret: str) -> Path:
    path = tmp / "jobhooks.toml"
    path.write_text(
        f"""\
# written by scripts/demo.py
[[subscriptions]]
name = "ops-alerts"
url = "{url}ops-alerts"
secret = "{secret}"
mode = "realtime"
format = "json"

[[subscriptions]]
name = "catalog"
url = "{url}catalog"
secret = "{secret}"
mode = "batch"
format = "cloudevents"
batch_size = {BATCH_SIZE}
batch_flush_seconds = {BATCH_FLUSH_SECONDS}
""",
        encoding="utf-8",
    )
    return path


def run_cli(
    jobhooks: list[str], args: list[str], env: dict[str, str], *, label: str = "jobhooks"
) -> subprocess.CompletedProcess[str]:
    say(f"$ {shown(['jobhooks', *args])}")
    done = subprocess.run(
        [*jobhooks, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    for line in done.stdout.splitlines():
        say(f"{label:>8} {BAR} {line}")
    if done.returncode:
        say(f"{label:>8} {BAR} (exit {done.returncode})")
    return done


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n"):  # a line still being written is read next time
                records.append(json.loads(line))
    return records


def delivered(records: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Subscription → event ids in the receiver's log. ``ops-alerts`` is realtime (one event
    per request, webhook-id = event id), ``catalog`` batch (webhook-id = batch id)."""
    got: dict[str, set[str]] = {name: set() for name in SUBSCRIPTIONS}
    for record in records:
        name = "catalog" if record.get("batch_id") else "ops-alerts"
        got[name].add(record["event"]["id"])
    return got


def missing(expected: dict[str, set[str]], records: list[dict[str, Any]]) -> int:
    got = delivered(records)
    return sum(len(ids - got[name]) for name, ids in expected.items())


def demo(tmp: Path, result: Result, started: list[Background]) -> None:
    jobhooks = jobhooks_command()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBHOOKS_")}
    env.update(
        JOBHOOKS_HOME=str(tmp / "home"),
        JOBHOOKS_INSTANCE="demo",
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp / "received.jsonl"

    section("1. setup")
    say(f"temp dir      {tmp}")
    say(f"jobhooks      {' '.join(jobhooks)}")
    secret_run = run_cli(jobhooks, ["secret"], env, label="secret")
    secret = secret_run.stdout.strip()
    if secret_run.returncode or not secret.startswith("whsec_"):
        raise DemoFailed(f"`jobhooks secret` printed {secret!r} (exit {secret_run.returncode})")
    (tmp / "secret").write_text(secret + "\n", encoding="utf-8")
    (tmp / "home").mkdir()

    section("2. receiver")
    receiver = Background(
        "receiver",
        [*jobhooks, "receive", "--port", "0", "--secret", secret, "--log", str(log_path)],
        env,
        started,
    )
    match = receiver.wait_for_line(r"listening on (http://\S+/)", RECEIVER_START_TIMEOUT)
    if match is None:
        raise DemoFailed(
            f"`jobhooks receive` did not say where it listens within {RECEIVER_START_TIMEOUT:g} s"
        )
    url = match.group(1)
    config = write_config(tmp, url, secret)
    env["JOBHOOKS_CONFIG"] = str(config)
    say(f"config        {config}  (ops-alerts → {url}ops-alerts, catalog → {url}catalog)")
    say(f"outbox        {tmp / 'home' / 'outbox.db'}")

    section("3. jobhooks check")
    if run_cli(jobhooks, ["check"], env, label="check").returncode:
        raise DemoFailed("`jobhooks check` found a problem in the demo's configuration")

    section("4. jobhooks emit: three works report their runs")
    for e in story():
        args = [
            "emit",
            "--subject-type",
            e.subject_type,
            "--subject-id",
            e.subject_id,
            "--verb",
            e.verb,
            "--occurrence",
            e.occurrence,
            "--data",
            json.dumps(e.data),
        ]
        if e.wait:
            args.append("--wait")
        done = run_cli(jobhooks, args, env, label="emit")
        routed = re.search(r"\bid ([0-9a-f-]{36})\s+→ (.*)$", done.stdout, re.MULTILINE)
        if done.returncode or routed is None:
            result.problem(f"emit {e.subject_id} {e.verb} failed (exit {done.returncode})")
            continue
        event_id, names = routed.group(1), routed.group(2)
        result.emitted[event_id] = e
        want = expected_subscriptions(e.verb)
        said = set() if names.startswith("no subscription") else set(names.split(", "))
        if said != want:
            result.problem(
                f"emit routed {e.subject_type}.{e.verb} to {sorted(said)}, the vocabulary says "
                f"{sorted(want)}"
            )
        for name in want:
            result.expected.setdefault(name, set()).add(event_id)
    for name in SUBSCRIPTIONS:
        result.expected.setdefault(name, set())
    now = delivered(read_log(log_path))
    say()
    for name, ids in result.expected.items():
        say(f"so far the receiver has {len(ids & now[name])} of {len(ids)} events for {name}")

    section("5. jobhooks relay: delivers what is left (the catalog batches)")
    relay = Background("relay", [*jobhooks, "relay"], env, started)
    total = sum(len(ids) for ids in result.expected.values())
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    say(
        f"waiting for the receiver's log to hold all {total} deliveries "
        f"(at most {DELIVERY_TIMEOUT:g} s)"
    )
    while True:
        left = missing(result.expected, read_log(log_path))
        if left == 0 or time.monotonic() >= deadline:
            break
        if relay.proc.poll() is not None:
            result.problem(f"the relay exited early (exit {relay.proc.returncode})")
            break
        time.sleep(0.1)  # polling the log file, not waiting blindly
    if left:
        result.problem(f"{left} deliveries still missing after {DELIVERY_TIMEOUT:g} s")

    # The receiver logs an event before it answers, and the relay marks the row delivered after
    # the answer: give the outbox a moment to catch up before showing it.
    settle_deadline = time.monotonic() + 10
    status: dict[str, Any] = {}
    while time.monotonic() < settle_deadline:
        probe = subprocess.run(
            [*jobhooks, "outbox", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if probe.returncode == 0:
            status = json.loads(probe.stdout)
            if status["totals"].get("pending", 0) == 0:
                break
        time.sleep(0.2)

    section("6. jobhooks outbox status")
    run_cli(jobhooks, ["outbox", "status"], env, label="outbox")
    for name, ids in result.expected.items():
        row = status.get("subscriptions", {}).get(name, {})
        if row.get("delivered", 0) != len(ids) or row.get("pending", 0) or row.get("dead", 0):
            result.problem(
                f"outbox for {name}: {row.get('delivered', 0)} delivered, "
                f"{row.get('pending', 0)} pending, {row.get('dead', 0)} dead; "
                f"expected {len(ids)} delivered"
            )

    section("7. stopping")
    code = relay.stop()
    say(f"relay (pid {relay.pid}) stopped, exit {code}")
    if code != 0:
        result.problem(f"`jobhooks relay` exited {code} on SIGTERM, expected 0")
    code = receiver.stop()
    say(f"receiver (pid {receiver.pid}) stopped, exit {code}")
    if code != 0:
        result.problem(f"`jobhooks receive` exited {code} on SIGTERM, expected 0")

    summarize(result, read_log(log_path), receiver.lines)


def summarize(result: Result, records: list[dict[str, Any]], receiver_lines: list[str]) -> None:
    section("summary")
    got = delivered(records)
    unverified = [r for r in records if not r.get("verified")]
    rejected = [line for line in receiver_lines if line.startswith("REJECTED")]
    ids_per_sub = {
        name: [
            r["event"]["id"]
            for r in records
            if (r.get("batch_id") is not None) == (name == "catalog")
        ]
        for name in SUBSCRIPTIONS
    }
    batches = {r["batch_id"] for r in records if r.get("batch_id")}
    say(f"events emitted       {len(result.emitted)}")
    for name, ids in result.expected.items():
        ok = len(ids & got[name])
        extra = len(ids_per_sub[name]) - len(set(ids_per_sub[name]))
        notes = f" in {len(batches)} batches" if name == "catalog" else ""
        if extra:
            notes += f", {extra} redelivered (receivers dedupe on webhook-id)"
        mark = "ok" if ok == len(ids) else "MISSING"
        say(f"delivered {name:<11}{ok}/{len(ids)}{notes}  {mark}")
        stray = got[name] - ids
        if stray:
            result.problem(f"{name} received {len(stray)} events it should not have")
        if ok != len(ids):
            result.problem(f"{name}: {len(ids) - ok} of {len(ids)} events not delivered")
    say(
        f"signatures verified  {len(records) - len(unverified)}/{len(records)}, "
        f"{len(rejected)} requests rejected"
    )
    if unverified:
        result.problem(f"{len(unverified)} events arrived without a verified signature")
    if rejected:
        result.problem(f"the receiver rejected {len(rejected)} requests")
    if not records:
        result.problem("the receiver logged nothing")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temp dir to look into")
    args = parser.parse_args(argv)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix="jobhooks-demo-"))
    result = Result()
    started: list[Background] = []
    interrupted = False
    try:
        demo(tmp, result, started)
    except KeyboardInterrupt:
        interrupted = True
        say("\ninterrupted: stopping what the demo started")
    except (DemoFailed, subprocess.TimeoutExpired, OSError) as exc:
        result.problem(str(exc))
    finally:
        # Whatever happened: every child stopped (relay first, then the receiver).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in reversed(started):
            proc.stop()
        pids = " ".join(str(p.pid) for p in started)
        say(f"\nprocesses started: {pids or 'none'}; all stopped")
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if interrupted:
        return 130
    if result.problems:
        say(f"\nDEMO FAILED: {len(result.problems)} problem(s):")
        for problem in result.problems:
            say(f"  - {problem}")
        return 1
    say(
        "\nDEMO OK: every event delivered to every subscription that should get it, "
        "every signature verified"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
