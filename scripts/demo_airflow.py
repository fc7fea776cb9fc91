#!/usr/bin/env python3
"""``make demo``: jobhooks in a real Airflow 3 deployment on this machine.

1. a temp dir with a fresh ``whsec_`` secret and ``jobhooks receive`` verifying signatures and
   logging every event (JSON lines);
2. an Airflow stack (scheduler, API server, dag-processor; LocalExecutor, embedded SQLite) from
   ``tests/airflow/stack.py``, with the connection ``jobhooks_default`` pointing at the receiver
   (signed) and three example DAGs: ``segment_export`` (scheduled, succeeds),
   ``partner_sync`` (``@once``, mapped tasks) and ``customer_import`` (triggered, fails);
3. waits, by polling the stack's REST API and the receiver's log, until the runs finished and
   their events arrived;
4. a summary; exit 1 unless every expected event arrived, signed and verified. Every process it
   starts is stopped, also on Ctrl-C or SIGTERM.

Run it with the Airflow environment's python: ``.venv-airflow/bin/python scripts/demo_airflow.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import demo as core  # noqa: E402  (scripts/demo.py: output, background processes, the log)
from demo import Background, DemoFailed, Result, say, section  # noqa: E402

from tests.airflow.stack import AirflowStack, wait_until  # noqa: E402

EXAMPLES = ROOT / "example_dags" / "airflow"
RECEIVER_START_TIMEOUT = 20.0
STACK_START_TIMEOUT = 180.0
RUN_TIMEOUT = 240.0
EVENTS_TIMEOUT = 60.0

# What each run reports (docs/airflow.md, *verbs*): the DAG's subject type and its events.
EXPECTED: dict[str, tuple[str, Counter[str]]] = {
    "segment_export": ("segment", Counter(started=1, syncing=1, synced=3, synccomplete=1)),
    "partner_sync": ("account", Counter(started=1, syncing=1, synced=5, synccomplete=1)),
    "customer_import": ("work", Counter(started=1, syncing=1, synced=1, failed=1)),
}
TRIGGERED = ("customer_import",)  # the others are scheduled: they start with the scheduler
VERB_ORDER = ("created", "started", "syncing", "synced", "synccomplete", "completed", "failed")


def events_of(records: list[dict[str, Any]], dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The distinct events (by id) the receiver logged for one run."""
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        event = record["event"]
        if event.get("subject_id") == dag_id and event.get("data", {}).get("run_id") == run_id:
            seen.setdefault(event["id"], record)
    return list(seen.values())


def verbs(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["event"]["verb"] for r in records)


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def demo(tmp: Path, result: Result, started: list[Background], stacks: list[AirflowStack]) -> None:
    jobhooks = core.jobhooks_command()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBHOOKS_")}
    env["PYTHONUNBUFFERED"] = "1"
    log_path = tmp / "received.jsonl"

    section("1. receiver")
    say(f"temp dir      {tmp}")
    secret_run = core.run_cli(jobhooks, ["secret"], env, label="secret")
    secret = secret_run.stdout.strip()
    if secret_run.returncode or not secret.startswith("whsec_"):
        raise DemoFailed(f"`jobhooks secret` printed {secret!r} (exit {secret_run.returncode})")
    receiver = Background(
        "receiver",
        [*jobhooks, "receive", "--port", "0", "--secret", secret, "--log", str(log_path)],
        env,
        started,
    )
    match = receiver.wait_for_line(r"listening on (http://\S+/)", RECEIVER_START_TIMEOUT)
    if match is None:
        raise DemoFailed(f"`jobhooks receive` did not start within {RECEIVER_START_TIMEOUT:g} s")
    url = match.group(1) + "airflow"

    section("2. Airflow stack (LocalExecutor, SQLite)")
    home = tmp / "airflow-home"
    connection = {"conn_type": "jobhooks", "host": url, "password": secret}
    stack = AirflowStack(
        home,
        home / "dags",
        {
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW_CONN_JOBHOOKS_DEFAULT": json.dumps(connection),
            "AIRFLOW__JOBHOOKS__INSTANCE": "demo",
            "AIRFLOW__JOBHOOKS__FLUSH_TIMEOUT": "2",
            "JOBHOOKS_POLL_SECONDS": "0.2",
        },
    )
    stacks.append(stack)
    home.mkdir(parents=True)
    stack.dags.mkdir()
    for dag_id in EXPECTED:
        shutil.copy(EXAMPLES / f"{dag_id}.py", stack.dags / f"{dag_id}.py")
    say(f"AIRFLOW_HOME  {home}")
    say(f"DAGs          {', '.join(EXPECTED)}  (from {EXAMPLES.relative_to(ROOT)})")
    say(f"connection    jobhooks_default → {url} (signed)")
    t0 = time.monotonic()
    say("airflow db migrate; airflow dags reserialize")
    stack.airflow("db", "migrate", timeout=300)
    # Parsed before jobhooks first runs: the deployment's baseline, so no `created` events.
    stack.airflow("dags", "reserialize", timeout=300)
    say("starting api-server, dag-processor, scheduler")
    stack.start()  # registers every process with the stack at once: stop() stops them all
    for name, proc in stack.processes.items():
        say(f"started {name} (pid {proc.pid}, log {stack.logs / (name + '.log')})")
    stack.wait_for_dags(*EXPECTED, timeout=STACK_START_TIMEOUT)
    say(f"healthy at {stack.base} after {time.monotonic() - t0:.0f} s")

    section("3. runs")
    runs: dict[str, str] = {}
    for dag_id in TRIGGERED:
        runs[dag_id] = stack.trigger(dag_id)
        say(f"triggered {dag_id:<16} run {runs[dag_id]}")
    for dag_id in EXPECTED:
        if dag_id in runs:
            continue
        found = wait_until(lambda d=dag_id: stack.runs(d), 60, f"the scheduled run of {dag_id}")
        runs[dag_id] = found[0]["dag_run_id"]
        say(f"scheduled {dag_id:<16} run {runs[dag_id]}")
    states: dict[str, str] = {}
    for dag_id, run_id in runs.items():
        run = stack.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)
        states[dag_id] = run["state"]
        say(f"finished  {dag_id:<16} {run['state']}")

    want = sum(sum(c.values()) for _, c in EXPECTED.values())
    say(f"waiting for the receiver's log to hold all {want} events (at most {EVENTS_TIMEOUT:g} s)")

    def all_arrived() -> bool:
        records = core.read_log(log_path)
        return all(
            verbs(events_of(records, d, runs[d])) == counts for d, (_, counts) in EXPECTED.items()
        )

    try:
        wait_until(all_arrived, EVENTS_TIMEOUT, "the runs' events", 0.2)
    except AssertionError as exc:
        result.problem(str(exc))

    section("4. stopping")
    stack.stop()
    stacks.remove(stack)
    say("Airflow stopped (scheduler, dag-processor, api-server and their process groups)")
    code = receiver.stop()
    say(f"receiver (pid {receiver.pid}) stopped, exit {code}")
    if code != 0:
        result.problem(f"`jobhooks receive` exited {code} on SIGTERM, expected 0")

    summarize(result, core.read_log(log_path), receiver.lines, runs, states)
    if result.problems:
        for name in ("scheduler", "dag-processor"):
            say(f"\n-- last lines of the {name} log --\n{tail(stack.log(name))}")


def summarize(
    result: Result,
    records: list[dict[str, Any]],
    receiver_lines: list[str],
    runs: dict[str, str],
    states: dict[str, str],
) -> None:
    section("summary")
    expected_state = {"customer_import": "failed"}
    for dag_id, (subject_type, counts) in EXPECTED.items():
        got = events_of(records, dag_id, runs[dag_id])
        have = verbs(got)
        ok_verified = all(r.get("verified") for r in got)
        shown = ", ".join(f"{v} {have[v]}/{counts[v]}" for v in VERB_ORDER if have[v] or counts[v])
        mark = "ok" if have == counts and ok_verified else "MISSING"
        say(f"{subject_type + '.' + dag_id:<24} run {states.get(dag_id, '?'):<8} {shown}  {mark}")
        if states.get(dag_id) != expected_state.get(dag_id, "success"):
            result.problem(f"{dag_id}: run ended {states.get(dag_id)}")
        if have != counts:
            result.problem(f"{dag_id}: got {dict(have)}, expected {dict(counts)}")
        types = {r["event"]["type"] for r in got}
        if any(not t.startswith(subject_type + ".") for t in types):
            result.problem(f"{dag_id}: event types {sorted(types)}, expected {subject_type}.*")
    failed = [
        r["event"]
        for r in records
        if r["event"].get("verb") == "failed" and r["event"].get("subject_id") == "customer_import"
    ]
    if failed:
        say(f"customer_import failed: {failed[0].get('data', {}).get('error')}")
    ours = {r["event"]["id"] for d in EXPECTED for r in events_of(records, d, runs[d])}
    others = Counter(r["event"]["type"] for r in records if r["event"]["id"] not in ours)
    if others:
        say(f"other events         {dict(others)}")
    unverified = [r for r in records if not r.get("verified")]
    rejected = [line for line in receiver_lines if line.startswith("REJECTED")]
    say(
        f"signatures verified  {len(records) - len(unverified)}/{len(records)}, "
        f"{len(rejected)} requests rejected"
    )
    if unverified:
        result.problem(f"{len(unverified)} events arrived without a verified signature")
    if rejected:
        result.problem(f"the receiver rejected {len(rejected)} requests")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temp dir to look into")
    args = parser.parse_args(argv)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix="jobhooks-demo-airflow-"))
    result = Result()
    started: list[Background] = []
    stacks: list[AirflowStack] = []
    interrupted = False
    t0 = time.monotonic()
    try:
        demo(tmp, result, started, stacks)
    except KeyboardInterrupt:
        interrupted = True
        say("\ninterrupted: stopping what the demo started")
    except (DemoFailed, AssertionError, subprocess.TimeoutExpired, OSError) as exc:
        result.problem(str(exc))
        for stack in stacks:
            for name in ("scheduler", "dag-processor", "api-server"):
                say(f"\n-- last lines of the {name} log --\n{tail(stack.log(name))}")
    finally:
        # Whatever happened: Airflow first (it reports to the receiver), then the receiver.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for stack in stacks:
            stack.stop()
        for proc in reversed(started):
            proc.stop()
        say(f"\nall processes stopped; wall time {time.monotonic() - t0:.0f} s")
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
    say("\nDEMO OK: every run reported its events to the receiver, every signature verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
