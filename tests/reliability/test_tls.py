"""TLS: certificates are verified by default (httpcore's context, certifi's bundle), and
JOBHOOKS_CA_BUNDLE makes jobhooks trust a private CA — against a real HTTPS receiver on
127.0.0.1 whose certificate comes from a throwaway CA (trustme)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from standardwebhooks import Webhook

from jobhooks_core import Subscription
from jobhooks_core.outbox import Delivery, Status
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings
from tests.core.clitools import cli_env, run, write_config
from tests.receiver import TestReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EMIT = ["emit", "--subject-type", "work", "--subject-id", "nightly", "--verb", "failed"]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def https_receiver(ca: trustme.CA, *names: str) -> TestReceiver:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return TestReceiver(tls=context)


@pytest.fixture
def receiver(ca: trustme.CA) -> Iterator[TestReceiver]:
    """HTTPS on 127.0.0.1 with a certificate for 127.0.0.1 and localhost from ``ca``."""
    with https_receiver(ca, "127.0.0.1", "localhost") as started:
        yield started


@pytest.fixture
def bundle(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Callable[..., Jobhooks]]:
    made: list[Jobhooks] = []

    def make(url: str, **env: str) -> Jobhooks:
        settings = Settings.from_env({"JOBHOOKS_HOME": str(tmp_path / "home"), **env},
                                     retry_schedule="0,0.05", poll_seconds=0.05)
        sub = Subscription.from_mapping("ops", {"url": url, "secret": SECRET})
        rt = Jobhooks(settings=settings, subscriptions=[sub], long_lived=True)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


def settled(rt: Jobhooks, status: Status, timeout: float = 10) -> Delivery:
    """The one outbox row, once it reached ``status`` (waiting on the dispatcher, no sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = rt.outbox.deliveries(limit=10)
        if rows and rows[0].status is status:
            return rows[0]
        assert time.monotonic() < deadline, f"the row never became {status.value}: {rows}"
        with rt.dispatcher._settled:
            rt.dispatcher._settled.wait(0.05)


def test_an_endpoint_whose_certificate_is_not_trusted_is_refused_retried_then_dead_lettered(
    runtime: Callable[..., Jobhooks], receiver: TestReceiver
) -> None:
    rt = runtime(receiver.url)
    rt.emit("failed", "work", "nightly")
    row = settled(rt, Status.DEAD)
    assert row.attempts == 2  # retried on the schedule like any failed attempt
    assert row.last_error is not None
    assert row.last_error.startswith("TLS certificate verification failed for 127.0.0.1")
    assert "JOBHOOKS_CA_BUNDLE" in row.last_error
    assert receiver.requests == []  # the handshake failed: no request was ever sent


def test_the_ca_bundle_setting_makes_the_same_endpoint_trusted(
    runtime: Callable[..., Jobhooks], receiver: TestReceiver, bundle: Path
) -> None:
    rt = runtime(receiver.url, JOBHOOKS_CA_BUNDLE=str(bundle))
    event = rt.emit("failed", "work", "nightly")
    assert event is not None
    row = settled(rt, Status.DELIVERED)
    assert row.last_status == 200
    (request,) = receiver.wait_for(1)
    assert Webhook(SECRET).verify(request.body, request.headers)["id"] == event.id


def test_the_host_name_is_verified_against_the_certificate(
    runtime: Callable[..., Jobhooks], ca: trustme.CA, bundle: Path
) -> None:
    # Trusted CA, but the certificate names another host: still refused.
    with https_receiver(ca, "hooks.example.com") as other:
        rt = runtime(other.url, JOBHOOKS_CA_BUNDLE=str(bundle))
        rt.emit("failed", "work", "nightly")
        row = settled(rt, Status.DEAD)
        assert row.last_error is not None
        assert "TLS certificate verification failed for 127.0.0.1" in row.last_error
        assert "mismatch" in row.last_error.lower()
        assert other.requests == []


def test_send_test_reports_an_untrusted_certificate_and_delivers_with_the_bundle(
    tmp_path: Path, receiver: TestReceiver, bundle: Path
) -> None:
    config = write_config(tmp_path / "jobhooks.json",
                          {"name": "ops", "url": receiver.url, "secret": SECRET})
    refused = run(["send-test", "ops"], cli_env(tmp_path / "home", config))
    assert refused.returncode == 1
    assert "TLS certificate verification failed for 127.0.0.1" in refused.stderr
    assert receiver.requests == []
    trusted = run(["send-test", "ops"],
                  cli_env(tmp_path / "home", config, ca_bundle=str(bundle)))
    assert trusted.returncode == 0, trusted.stderr
    assert "→ 200" in trusted.stdout
    assert len(receiver.wait_for(1)) == 1


def test_a_ca_bundle_that_is_not_a_file_is_refused_naming_the_setting(tmp_path: Path) -> None:
    config = write_config(tmp_path / "jobhooks.json",
                          {"name": "ops", "url": "https://hooks.example.com/"})
    result = run(["send-test", "ops"],
                 cli_env(tmp_path / "home", config, ca_bundle=str(tmp_path / "missing.pem")))
    assert result.returncode == 2
    assert "JOBHOOKS_CA_BUNDLE" in result.stderr and "missing.pem" in result.stderr
