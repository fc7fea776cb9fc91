"""``make demo`` (scripts/demo.py) end to end: real receiver, real CLI, real relay.

The demo runs ``jobhooks`` from beside ``sys.executable``; PATH also gets this interpreter's
bin dir, so whichever it picks is this environment's console script.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"
TIMEOUT = 120.0


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBHOOKS_")}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _started_pids(output: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^started (\w+) \(pid (\d+)\)$", output, re.M)}


def _assert_gone(pids: dict[str, int]) -> None:
    for label, pid in pids.items():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        # A zombie is gone too, for our purpose, but the demo reaps its children: not expected.
        raise AssertionError(f"the demo's {label} (pid {pid}) is still running")


def test_demo_delivers_and_verifies_everything_and_cleans_up() -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO)],
        env=_env(),
        cwd=DEMO.parent.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"demo exited {done.returncode}\n{out}\n{done.stderr}"
    assert "DEMO OK" in out, out

    summary = out.split("══ summary", 1)[1]
    emitted = re.search(r"^events emitted\s+(\d+)$", summary, re.M)
    assert emitted is not None and int(emitted[1]) > 0, summary
    delivered = {
        m[1]: (int(m[2]), int(m[3]))
        for m in re.finditer(r"^delivered (\S+)\s+(\d+)/(\d+)", summary, re.M)
    }
    assert set(delivered) == {"ops-alerts", "catalog"}, summary
    for name, (got, expected) in delivered.items():
        assert expected > 0 and got == expected, f"{name}: {got}/{expected}\n{summary}"
    verified = re.search(
        r"^signatures verified\s+(\d+)/(\d+), (\d+) requests rejected", summary, re.M
    )
    assert verified is not None, summary
    assert verified[1] == verified[2] and int(verified[2]) >= sum(e for _, e in delivered.values())
    assert verified[3] == "0"

    pids = _started_pids(out)
    assert set(pids) == {"receiver", "relay"}, out
    _assert_gone(pids)
    # The temp dir (secret, config, outbox) is removed.
    tmp = re.search(r"^temp dir\s+(\S+)$", out, re.M)
    assert tmp is not None and not Path(tmp[1]).exists()


def test_demo_interrupted_stops_what_it_started() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(DEMO)],
        env=_env(),
        cwd=DEMO.parent.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        # Interrupt once the receiver runs and the emits have begun.
        while not any(line.startswith("$ jobhooks emit") for line in seen):
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            assert line is not None, "".join(seen)
            seen.append(line)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    while not lines.empty():
        line = lines.get_nowait()
        if line is not None:
            seen.append(line)
    out = "".join(seen)
    assert code == 130, out
    assert "interrupted" in out
    pids = _started_pids(out)
    assert "receiver" in pids, out
    _assert_gone(pids)
