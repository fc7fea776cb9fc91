"""jobhooks receive: what a user sees when real, signed webhooks reach the local receiver."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobhooks_core.events import Event, Source
from jobhooks_core.formats import Rendered, WireFormat, render_batch, render_event
from jobhooks_core.receiver import SECRET_ENV, Receiver
from jobhooks_core.signing import webhook_headers

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()
SOURCE = Source("airflow", "prod", "3.3.2")
WHEN = dt.datetime(2026, 11, 27, 1, 2, 3, 456789, tzinfo=dt.UTC)


def failed(subject_id: str = "daily_export", **data: object) -> Event:
    return Event.create(
        "failed",
        "work",
        subject_id,
        source=SOURCE,
        occurrence=f"run-{subject_id}",
        data=data or {"run_id": "scheduled__2026-11-26", "state": "failed", "error": "boom"},
        timestamp=WHEN,
    )


def post(
    url: str, rendered: Rendered, msg_id: str, secrets: tuple[str, ...] = ()
) -> httpx.Response:
    headers = webhook_headers(msg_id, rendered.body, secrets)
    headers["content-type"] = rendered.content_type
    return httpx.post(url, content=rendered.body, headers=headers, timeout=10)


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


def lines(out: io.StringIO) -> list[str]:
    return [line for line in out.getvalue().splitlines() if not line.startswith("jobhooks ")]


# Signatures ------------------------------------------------------------------------------


def test_signed_event_is_answered_204_and_printed_on_one_line(out: io.StringIO) -> None:
    event = failed()
    with Receiver(secrets=[SECRET], out=out) as receiver:
        response = post(receiver.url, render_event("json", event), event.id, (SECRET,))

    assert response.status_code == 204
    assert lines(out) == [
        "2026-11-27T01:02:03Z  work.failed  daily_export  [verified]  "
        "run_id=scheduled__2026-11-26 state=failed error=boom"
    ]


def test_startup_line_gives_the_url_and_whether_signatures_are_checked(out: io.StringIO) -> None:
    with Receiver(secrets=[SECRET, OTHER_SECRET], out=out) as checked:
        url = checked.url
    with Receiver(out=out) as unchecked:
        unchecked_url = unchecked.url

    startup = [line for line in out.getvalue().splitlines() if "listening" in line]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
    assert url in startup[0] and "signatures checked (2 secrets)" in startup[0]
    assert unchecked_url in startup[1] and "signatures NOT checked" in startup[1]


def test_event_signed_with_another_secret_is_rejected_401(out: io.StringIO, tmp_path: Path) -> None:
    event = failed()
    log = tmp_path / "events.jsonl"
    with Receiver(secrets=[SECRET], out=out, log_path=str(log)) as receiver:
        response = post(receiver.url, render_event("json", event), event.id, (OTHER_SECRET,))

    assert response.status_code == 401
    assert "matches none of the 1 configured secret" in response.text
    [line] = lines(out)
    assert line.startswith(f"REJECTED {event.id}: bad signature: webhook-signature matches none")
    assert line.endswith("(answered 401)")
    assert log.read_text() == ""


def test_unsigned_request_is_rejected_when_a_secret_is_configured(out: io.StringIO) -> None:
    event = failed()
    with Receiver(secrets=[SECRET], out=out) as receiver:
        response = post(receiver.url, render_event("json", event), event.id)

    assert response.status_code == 401
    assert lines(out) == [
        f"REJECTED {event.id}: bad signature: request lacks the header(s) webhook-signature "
        "(answered 401)"
    ]


def test_any_configured_secret_verifies_during_rotation(out: io.StringIO) -> None:
    event = failed()
    with Receiver(secrets=[SECRET, OTHER_SECRET], out=out) as receiver:
        response = post(receiver.url, render_event("json", event), event.id, (OTHER_SECRET,))

    assert response.status_code == 204
    assert "[verified]" in lines(out)[0]


def test_unsigned_event_is_accepted_without_a_secret(out: io.StringIO) -> None:
    event = failed()
    with Receiver(out=out) as receiver:
        response = post(receiver.url, render_event("json", event), event.id)

    assert response.status_code == 204
    [line] = lines(out)
    assert "  work.failed  daily_export  [unverified]  " in line


def test_malformed_secret_is_refused_before_listening() -> None:
    with pytest.raises(ValueError, match="does not start with 'whsec_'"):
        Receiver(secrets=["hunter2"])


# Bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(WireFormat))
def test_every_wire_format_is_parsed_and_printed(fmt: WireFormat, out: io.StringIO) -> None:
    event = failed("export/é")
    with Receiver(secrets=[SECRET], out=out) as receiver:
        response = post(receiver.url, render_event(fmt, event), event.id, (SECRET,))

    assert response.status_code == 204
    assert lines(out) == [
        "2026-11-27T01:02:03Z  work.failed  export/é  [verified]  "
        "run_id=scheduled__2026-11-26 state=failed error=boom"
    ]


@pytest.mark.parametrize("fmt", list(WireFormat))
def test_batch_is_printed_one_line_per_event(fmt: WireFormat, out: io.StringIO) -> None:
    events = [failed(f"export_{n}") for n in range(3)]
    with Receiver(secrets=[SECRET], out=out) as receiver:
        response = post(receiver.url, render_batch(fmt, "batch-7", events), "batch-7", (SECRET,))

    assert response.status_code == 204
    printed = lines(out)
    assert printed[0] == "batch batch-7: 3 events"
    assert [line.split("  ")[3] for line in printed[1:]] == ["export_0", "export_1", "export_2"]
    assert all(line.startswith("  2026-11-27T01:02:03Z  work.failed  ") for line in printed[1:])


def test_unreadable_body_is_answered_400_with_the_reason(out: io.StringIO) -> None:
    body = Rendered(b'{"hello": "world"}', "application/json")
    with Receiver(out=out) as receiver:
        response = post(receiver.url, body, "msg_1")

    assert response.status_code == 400
    assert lines(out) == [
        "REJECTED msg_1: unreadable body: application/json body does not hold jobhooks events: "
        "missing field 'source' (answered 400)"
    ]


def test_long_or_multiline_data_stays_on_one_short_line(out: io.StringIO) -> None:
    event = failed(error="Traceback:\n  " + "x" * 200, state="failed", b=1, c=2, url="u")
    with Receiver(out=out) as receiver:
        post(receiver.url, render_event("json", event), event.id)

    [line] = lines(out)
    assert line.endswith("error=Traceback: " + "x" * 28 + "… state=failed b=1 (+2 more)")


def test_log_holds_one_json_line_per_event(out: io.StringIO, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    single, batch = failed("one"), [failed("two"), failed("three")]
    with Receiver(secrets=[SECRET], out=out, log_path=str(log)) as receiver:
        post(receiver.url, render_event("cloudevents", single), single.id, (SECRET,))
        post(receiver.url, render_batch("json", "b1", batch), "b1", (SECRET,))
        assert len(log.read_text().splitlines()) == 3  # written before the answer, not at stop

    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records == [
        {"webhook_id": single.id, "batch_id": None, "verified": True, "event": single.to_dict()},
        {"webhook_id": "b1", "batch_id": "b1", "verified": True, "event": batch[0].to_dict()},
        {"webhook_id": "b1", "batch_id": "b1", "verified": True, "event": batch[1].to_dict()},
    ]


def test_log_is_appended_to_not_replaced(out: io.StringIO, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text('{"earlier": true}\n')
    event = failed()
    with Receiver(out=out, log_path=str(log)) as receiver:
        post(receiver.url, render_event("json", event), event.id)

    earlier, record = log.read_text().splitlines()
    assert json.loads(earlier) == {"earlier": True}
    assert json.loads(record)["verified"] is False


def test_configured_status_is_answered_to_rehearse_failures(out: io.StringIO) -> None:
    event = failed()
    with Receiver(out=out, status=503) as receiver:
        response = post(receiver.url, render_event("json", event), event.id)

    assert response.status_code == 503
    assert len(lines(out)) == 1  # the event was still received and printed


def test_get_is_answered_405(out: io.StringIO) -> None:
    with Receiver(out=out) as receiver:
        response = httpx.get(receiver.url, timeout=10)

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


# The CLI engine --------------------------------------------------------------------------

CLI = (
    "import argparse, sys\n"
    "from jobhooks_core.receiver import add_arguments, run\n"
    "parser = argparse.ArgumentParser()\n"
    "add_arguments(parser)\n"
    "sys.exit(run(parser.parse_args(sys.argv[1:])))\n"
)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str]]]:
    env = {**os.environ, SECRET_ENV: f"{OTHER_SECRET},{SECRET}", "PYTHONUNBUFFERED": "1"}
    args = ["--port", "0", "--status", "503", "--log", str(tmp_path / "log.jsonl")]
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        env=env,
    )
    output: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    try:
        yield proc, output
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_verifies_answers_the_status_and_exits_0_on_a_signal(
    cli: tuple[subprocess.Popen[str], queue.Queue[str]], stop_signal: signal.Signals
) -> None:
    proc, output = cli
    startup = output.get(timeout=30)
    match = re.search(r"http://127\.0\.0\.1:\d+/", startup)
    assert match, startup
    assert "signatures checked (2 secrets)" in startup and "answering 503" in startup
    event = failed()

    response = post(match.group(), render_event("form", event), event.id, (SECRET,))

    assert response.status_code == 503
    assert output.get(timeout=10).endswith(
        "  work.failed  daily_export  [verified]  "
        "run_id=scheduled__2026-11-26 state=failed error=boom"
    )
    proc.send_signal(stop_signal)
    assert proc.wait(timeout=10) == 0
    assert output.get(timeout=10) == "jobhooks receive: stopped (1 event, 0 rejected)"
