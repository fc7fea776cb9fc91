"""Secrets never leak: a canary signing secret and canary header values (``Authorization``,
``X-Api-Key``) are configured, jobhooks is driven through every path that writes text — emits,
deliveries that fail (500 echoing the token, timeout, connection refused, destination refused),
retries, dead letters, malformed configuration, every command with ``-v`` — and the canaries
must be absent from every output, every log record and the outbox file's bytes.
"""

from __future__ import annotations

import base64
import json
import logging
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobhooks_core import Subscription
from jobhooks_core.config import load_subscriptions
from jobhooks_core.exceptions import ConfigurationError
from jobhooks_core.outbox import Status, open_outbox
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.secrecy import redact_url, scrub, secret_values
from jobhooks_core.settings import Settings
from tests.core.clitools import JOBHOOKS, cli_env, run, write_config
from tests.receiver import Reply, TestReceiver

KEY_B64 = base64.b64encode(b"canary-signing-key-0123456789abc").decode()
SECRET = f"whsec_{KEY_B64}"
TOKEN = "canary-bearer-token-5f1e2d"
API_KEY = "canary-api-key-9b8c7a"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Api-Key": API_KEY, "X-Team": "data"}

# What malformed configuration carries, each of which must not be echoed back.
BAD_SECRET = "whsec_canary-malformed-secret!!"
SHORT_KEY_B64 = base64.b64encode(b"canary-short-key").decode()  # decodes to 16 bytes: too few
URL_PASSWORD, URL_USER = "canary-url-password", "canary-url-user"
BAD_HEADER = "canary-bad-header"
NON_LATIN = "canary-nonlatin"

CANARIES = [SECRET, KEY_B64, TOKEN, API_KEY, BAD_SECRET, "canary-malformed", SHORT_KEY_B64,
            URL_PASSWORD, URL_USER, BAD_HEADER, NON_LATIN]
EMIT = ["emit", "--subject-type", "work", "--subject-id", "nightly", "--verb", "failed"]


def leaks(text: str | bytes) -> list[str]:
    """The canaries found in ``text``."""
    if isinstance(text, bytes):
        return [c for c in CANARIES if c.encode() in text]
    return [c for c in CANARIES if c in text]


def good(name: str, url: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "url": url, "secret": SECRET, "headers": HEADERS, **fields}


BAD_SUBSCRIPTIONS: list[dict[str, Any]] = [
    {"name": "bad-secret", "url": "https://hooks.example.com/", "secret": BAD_SECRET},
    {"name": "short-secret", "url": "https://hooks.example.com/",
     "secret": f"whsec_{SHORT_KEY_B64}"},
    {"name": "second-secret", "url": "https://hooks.example.com/",
     "secret": f"{SECRET} {BAD_SECRET}"},
    {"name": "url-credentials",
     "url": f"https://{URL_USER}:{URL_PASSWORD}@hooks.example.com/ops"},
    {"name": "url-credentials-spaced",
     "url": f"https://{URL_USER}:{URL_PASSWORD}@hooks.example.com/a b"},
    {"name": "url-credentials-scheme", "url": f"ftp://{URL_USER}:{URL_PASSWORD}@hooks/x"},
    {"name": "url-credentials-port",
     "url": f"https://{URL_USER}:{URL_PASSWORD}@hooks.example.com:99999/"},
    {"name": "header-split", "url": "https://hooks.example.com/",
     "headers": {"Authorization": f"Bearer {BAD_HEADER}\r\nX-Injected: 1"}},
    {"name": "header-non-latin", "url": "https://hooks.example.com/",
     "headers": {"X-Api-Key": f"{NON_LATIN}-€"}},
    {"name": "header-not-text", "url": "https://hooks.example.com/",
     "headers": {"Authorization": ["Bearer", BAD_HEADER]}},
]


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def receivers() -> Iterator[dict[str, TestReceiver]]:
    """ok answers 200; rejects answers 401 echoing the credentials it got; slow never answers."""
    ok, rejects, slow = TestReceiver(), TestReceiver(), TestReceiver()
    rejects.default = Reply(
        401, {"WWW-Authenticate": f'Bearer error="{TOKEN}"'},
        f"invalid credentials: Bearer {TOKEN}, key {API_KEY}, secret {SECRET}".encode())
    slow.default = Reply.hang()
    with ok, rejects, slow:
        yield {"ok": ok, "rejects": rejects, "slow": slow}


def test_a_canary_secret_and_header_values_appear_in_no_output_log_or_outbox_byte(
    tmp_path: Path, receivers: dict[str, TestReceiver], free_port: int
) -> None:
    home = tmp_path / "home"
    config = write_config(
        tmp_path / "jobhooks.json",
        good("ok", receivers["ok"].url),
        good("rejects", receivers["rejects"].url),
        good("slow", receivers["slow"].url, timeout_seconds=0.3),
        good("down", f"http://127.0.0.1:{free_port}/"),
    )
    env = cli_env(home, config, retry_schedule="0,0.05", flush_timeout="3")
    guarded = {**env, "JOBHOOKS_REFUSE_PRIVATE_DESTINATIONS": "true"}
    outputs: dict[str, str] = {}

    def jobhooks(label: str, *args: str, environ: dict[str, str] = env) -> int:
        result = run(["-v", *args], environ)
        outputs[label] = result.stdout + result.stderr
        return result.returncode

    jobhooks("check", "check")
    jobhooks("check --json", "check", "--json")
    # Short-lived emits: one delivery, failures retried and dead-lettered within the flush.
    jobhooks("emit --wait", *EMIT, "--occurrence", "run-1", "--wait", "--timeout", "10")
    jobhooks("emit", *EMIT, "--occurrence", "run-2")
    jobhooks("emit, guard on", *EMIT, "--occurrence", "run-3", environ=guarded)
    # A relay draining what is left (and what is emitted while it runs).
    relay = subprocess.Popen([JOBHOOKS, "-v", "relay"], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        jobhooks("emit during relay", *EMIT, "--occurrence", "run-4")
        rows = wait_until_settled(home / "outbox.db", expected=16)
    finally:
        relay.send_signal(signal.SIGTERM)
        out, err = relay.communicate(timeout=30)
    outputs["relay"] = out + err
    for name in ("ok", "rejects", "slow", "down"):
        jobhooks(f"send-test {name}", "send-test", name)
        jobhooks(f"send-test {name}, guard on", "send-test", name, environ=guarded)
    for args in (["status"], ["status", "--json"], ["list", "--limit", "100"],
                 ["list", "--json", "--limit", "100"], ["list", "--status", "dead"]):
        jobhooks(f"outbox {' '.join(args)}", "outbox", *args)
    bad = write_config(tmp_path / "bad.json", *BAD_SUBSCRIPTIONS)
    bad_env = cli_env(home, bad)
    jobhooks("check, bad config", "check", environ=bad_env)
    jobhooks("check --json, bad config", "check", "--json", environ=bad_env)
    jobhooks("emit, bad config", *EMIT, environ=bad_env)
    jobhooks("send-test, bad config", "send-test", "url-credentials", environ=bad_env)

    # The scenario happened: every kind of failure is in the outbox, and the outputs say so.
    by_sub = {name: [r for r in rows if r.subscription == name]
              for name in ("ok", "rejects", "slow", "down")}
    assert sorted(r.status.value for r in by_sub["ok"]) == ["dead"] + ["delivered"] * 3
    assert all(r.status is Status.DEAD for name in ("rejects", "slow", "down")
               for r in by_sub[name])
    errors = " | ".join(str(r.last_error) for r in rows)
    assert "401" in errors and "invalid credentials: ***, key ***, secret ***" in errors
    assert "timeout" in errors and "ConnectError" in errors
    assert "refused because JOBHOOKS_REFUSE_PRIVATE_DESTINATIONS is on" in errors
    assert receivers["rejects"].requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert "dead letter" in outputs["relay"] or "dead letter" in outputs["emit --wait"]
    assert "carries credentials" in outputs["check, bad config"]
    assert "10 errors" in outputs["check, bad config"]

    leaked = {label: found for label, text in outputs.items() if (found := leaks(text))}
    assert leaked == {}, f"canaries in command output: {leaked}"
    for path in sorted(home.glob("outbox.db*")):  # the database, its WAL and shared memory
        assert leaks(path.read_bytes()) == [], f"canaries in {path.name}"


def wait_until_settled(db: Path, expected: int, timeout: float = 30) -> list[Any]:
    """The outbox's rows once ``expected`` exist and none is pending (polled, with a deadline)."""
    outbox = open_outbox(str(db))
    try:
        deadline = time.monotonic() + timeout
        while True:
            rows = outbox.deliveries(limit=1000)
            if len(rows) >= expected and all(r.status is not Status.PENDING for r in rows):
                return rows
            assert time.monotonic() < deadline, f"rows never settled: {rows}"
            time.sleep(0.05)  # polling another process's writes: nothing to wait on
    finally:
        outbox.close()


@pytest.mark.parametrize("fields", BAD_SUBSCRIPTIONS, ids=lambda f: f["name"])
def test_a_configuration_error_names_the_problem_without_echoing_the_secret(
    fields: dict[str, Any],
) -> None:
    values = {k: v for k, v in fields.items() if k != "name"}
    with pytest.raises(ConfigurationError) as error:
        Subscription.from_mapping(fields["name"], values)
    message = str(error.value)
    assert leaks(message) == [], message
    assert f"subscription {fields['name']!r}" in message
    assert "field 'secret'" in message or "field 'url'" in message or "field 'headers'" in message


def test_logs_at_debug_level_hold_no_secret(
    tmp_path: Path, receivers: dict[str, TestReceiver], free_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpcore's and the root's too
    bad = write_config(tmp_path / "bad.json", *BAD_SUBSCRIPTIONS)
    loaded = load_subscriptions(environ={"JOBHOOKS_CONFIG": str(bad)})  # logs each error
    subs = [Subscription.from_mapping(f["name"], {k: v for k, v in f.items() if k != "name"})
            for f in (good("rejects", receivers["rejects"].url),
                      good("slow", receivers["slow"].url, timeout_seconds=0.3),
                      good("down", f"http://127.0.0.1:{free_port}/"))]
    settings = Settings.from_env({"JOBHOOKS_HOME": str(tmp_path)}, retry_schedule="0,0.05",
                                 poll_seconds=0.05)
    rt = Jobhooks(settings=settings, subscriptions=subs, long_lived=True)
    try:
        rt.emit("failed", "work", "nightly")
        deadline = time.monotonic() + 15
        while any(r.status is Status.PENDING for r in rt.outbox.deliveries(limit=10)):
            assert time.monotonic() < deadline
            with rt.dispatcher._settled:
                rt.dispatcher._settled.wait(0.05)
    finally:
        rt.close()
    assert len(loaded.errors) == len(BAD_SUBSCRIPTIONS)
    text = "\n".join(f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}"
                     for r in caplog.records)
    assert "is a dead letter" in text and "is failing" in text
    assert leaks(text) == []


def test_scrub_replaces_secrets_header_values_and_bearer_tokens() -> None:
    sub = Subscription.from_mapping("ops", {"url": "https://hooks.example.com/",
                                            "secret": SECRET, "headers": HEADERS})
    text = f"got {SECRET} / {KEY_B64} / Bearer {TOKEN} / {TOKEN} / {API_KEY} / team data"
    assert scrub(text, secret_values(sub)) == "got *** / *** / *** / *** / *** / team data"
    assert redact_url(f"https://{URL_USER}:{URL_PASSWORD}@h.example.com/x") == \
        "https://***@h.example.com/x"


def test_a_subscriptions_repr_shows_neither_secrets_nor_header_values() -> None:
    sub = Subscription.from_mapping("ops", {"url": "https://hooks.example.com/",
                                            "secret": SECRET, "headers": HEADERS})
    assert "hooks.example.com" in repr(sub) and leaks(repr(sub)) == []


def test_check_and_outbox_json_never_carry_header_values_or_secrets(tmp_path: Path) -> None:
    # What the commands do show of a subscription: header names, the number of secrets.
    config = write_config(tmp_path / "jobhooks.json", good("ops", "https://hooks.example.com/"))
    result = run(["check", "--json"], cli_env(tmp_path, config))
    (described,) = json.loads(result.stdout)["subscriptions"]
    assert described["headers"] == ["Authorization", "X-Api-Key", "X-Team"]
    assert described["signed"] is True and described["secrets"] == 1
    assert leaks(result.stdout + result.stderr) == []
