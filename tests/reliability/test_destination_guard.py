"""The private-destination guard (JOBHOOKS_REFUSE_PRIVATE_DESTINATIONS): with it on, jobhooks
refuses to connect to loopback, private, link-local, multicast, reserved and unspecified
addresses, judged after DNS resolution, and connects to the address it judged.

Loopback is the one private class this machine can really show: the real receiver listens on
127.0.0.1, so every loopback spelling is tried for real (delivered with the guard off, refused
with it on). The other classes are judged without any connection (a test must not send
traffic there): the backend under the guard fails the test if it is ever asked to connect.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpcore
import pytest
import trustme

from jobhooks_core import Subscription
from jobhooks_core.delivery import send
from jobhooks_core.events import Event, Source
from jobhooks_core.formats import event_json
from jobhooks_core.netguard import DestinationRefused, GuardedBackend, classify
from jobhooks_core.outbox import Delivery, Status
from jobhooks_core.runtime import Jobhooks
from jobhooks_core.settings import Settings
from tests.core.clitools import cli_env, run, write_config
from tests.receiver import TestReceiver

GUARD = "refused because JOBHOOKS_REFUSE_PRIVATE_DESTINATIONS is on"
# Every way of writing "this machine" that reaches the receiver on 127.0.0.1 when unguarded.
LOOPBACK_SPELLINGS = [
    ("127.0.0.1", "127.0.0.1, a loopback address"),
    ("localhost", "localhost resolves to"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1, a loopback address"),  # IPv4-mapped IPv6
    ("0.0.0.0", "0.0.0.0, an unspecified address"),  # Linux connects it to this machine
    ("2130706433", "127.0.0.1, a loopback address"),  # 127.0.0.1 as one decimal number
]


@pytest.fixture
def receiver() -> Iterator[TestReceiver]:
    with TestReceiver() as started:
        yield started


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Callable[..., Jobhooks]]:
    made: list[Jobhooks] = []

    def make(url: str, *, guard: bool, schedule: str = "0,0.05") -> Jobhooks:
        env = {"JOBHOOKS_HOME": str(tmp_path / f"home{len(made)}"),
               "JOBHOOKS_REFUSE_PRIVATE_DESTINATIONS": "true" if guard else "false"}
        settings = Settings.from_env(env, retry_schedule=schedule, poll_seconds=0.05)
        sub = Subscription.from_mapping("ops", {"url": url, "timeout_seconds": 5})
        rt = Jobhooks(settings=settings, subscriptions=[sub], long_lived=True)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


def final_row(rt: Jobhooks, timeout: float = 10) -> Delivery:
    """The one outbox row once delivered or dead (waiting on the dispatcher, no sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = rt.outbox.deliveries(limit=10)
        if rows and rows[0].status in (Status.DELIVERED, Status.DEAD):
            return rows[0]
        assert time.monotonic() < deadline, f"the row never settled: {rows}"
        with rt.dispatcher._settled:
            rt.dispatcher._settled.wait(0.05)


def url_for(host: str, receiver: TestReceiver) -> str:
    return f"http://{host}:{receiver.port}/hooks"


@pytest.mark.parametrize(("host", "_"), LOOPBACK_SPELLINGS)
def test_with_the_guard_off_every_loopback_spelling_reaches_the_local_receiver(
    runtime: Callable[..., Jobhooks], receiver: TestReceiver, host: str, _: str
) -> None:
    rt = runtime(url_for(host, receiver), guard=False)
    rt.emit("failed", "work", "nightly")
    assert final_row(rt).status is Status.DELIVERED
    assert len(receiver.wait_for(1)) == 1


@pytest.mark.parametrize(("host", "reason"), LOOPBACK_SPELLINGS)
def test_with_the_guard_on_the_same_destinations_are_refused_and_never_contacted(
    runtime: Callable[..., Jobhooks], receiver: TestReceiver, host: str, reason: str
) -> None:
    rt = runtime(url_for(host, receiver), guard=True)
    rt.emit("failed", "work", "nightly")
    row = final_row(rt)
    assert row.status is Status.DEAD
    assert row.attempts == 2  # retried on the schedule, as DNS answers may change, then dead
    assert row.last_error is not None
    assert reason in row.last_error and GUARD in row.last_error
    assert "loopback" in row.last_error or "unspecified" in row.last_error
    assert receiver.requests == []


def test_localhost_resolves_to_loopback_here() -> None:
    # The loopback tests above rest on this machine's resolver answering loopback for it.
    answers = {str(info[4][0]) for info in socket.getaddrinfo("localhost", 80)}
    assert answers and all(classify(a) == "a loopback address" for a in answers)


# -- every class of address, judged without connecting -------------------------------------

REFUSED = [
    ("127.0.0.53", "a loopback address"),
    ("::1", "a loopback address"),
    ("10.1.2.3", "a private address"),
    ("172.16.0.1", "a private address"),
    ("192.168.1.10", "a private address"),
    ("fd12:3456::1", "a private address"),  # unique local
    ("169.254.169.254", "a link-local address"),  # the cloud metadata service
    ("fe80::1", "a link-local address"),
    ("224.0.0.251", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("0.0.0.0", "an unspecified address"),
    ("::", "an unspecified address"),
    ("100.64.0.1", "a special-purpose address that is not globally routable"),  # CGNAT
    ("::ffff:10.0.0.1", "a private address"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "a link-local address"),
    ("2002:a00:1::1", "a private address"),  # 6to4 carrying 10.0.0.1
]
PUBLIC = ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


class NeverConnect(httpcore.NetworkBackend):
    """The backend under the guard in tests that must not send traffic anywhere."""

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the guard let a connection to {host}:{port} through")


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_every_non_public_address_class_is_refused_before_connecting(
    address: str, kind: str
) -> None:
    assert classify(address) == kind
    guard = GuardedBackend(NeverConnect(), resolve=lambda host, port: [address])
    with pytest.raises(DestinationRefused) as refused:
        guard.connect_tcp("hooks.example.com", 443, timeout=1)
    assert str(refused.value) == f"hooks.example.com resolves to {address}, {kind}; {GUARD}"


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass_the_guard(address: str) -> None:
    assert classify(address) is None
    guard = GuardedBackend(NeverConnect(), resolve=lambda host, port: [address])
    assert guard.vetted("hooks.example.com", 443) == [address]


def test_a_name_with_any_private_address_among_its_answers_is_refused() -> None:
    guard = GuardedBackend(NeverConnect(), resolve=lambda host, port: ["1.1.1.1", "10.0.0.7"])
    with pytest.raises(DestinationRefused, match="resolves to 10.0.0.7, a private address"):
        guard.connect_tcp("mixed.example.com", 443, timeout=1)


# -- the address judged is the address connected to ------------------------------------------


def test_the_connection_goes_to_the_address_that_was_judged_not_to_a_second_lookup(
    receiver: TestReceiver,
) -> None:
    # DNS rebinding: a name that answers a harmless address when checked and a private one
    # when connected to. The guard resolves once and connects to that answer. Here the name
    # exists only in the guard's resolver (the system's cannot resolve it), and the judge
    # admits 127.0.0.1 alone; the request arriving proves the connection used the vetted
    # address, and the second, different answer was never asked for.
    answers = iter([["127.0.0.1"], ["127.0.0.2"]])
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return next(answers)

    guard = GuardedBackend(
        resolve=rebinding, judge=lambda a: None if a == "127.0.0.1" else "not the vetted one"
    )
    with httpcore.ConnectionPool(network_backend=guard) as pool:
        attempt = send(pool, subscription(f"http://rebind.invalid:{receiver.port}/"), [row()])
    assert attempt.delivered, attempt.error
    assert lookups == ["rebind.invalid"]
    (request,) = receiver.wait_for(1)
    assert request.path == "/"


def test_tls_still_verifies_the_url_host_name_when_connecting_to_the_vetted_address(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.internal.test").configure_cert(server)  # a name, no IP in the cert
    client = ssl.create_default_context()
    ca.configure_trust(client)
    guard = GuardedBackend(resolve=lambda host, port: ["127.0.0.1"],
                           judge=lambda a: None if a == "127.0.0.1" else "refused")
    with TestReceiver(tls=server) as https, httpcore.ConnectionPool(
        network_backend=guard, ssl_context=client
    ) as pool:
        by_name = send(pool, subscription(f"https://hooks.internal.test:{https.port}/"), [row()])
        assert by_name.delivered, by_name.error  # verified as hooks.internal.test
        # The certificate does not name the address: had TLS checked what was connected to
        # instead of the URL's host, the first attempt would have failed like this one.
        by_address = send(pool, subscription(f"https://127.0.0.1:{https.port}/"), [row()])
        assert not by_address.delivered
        assert "TLS certificate verification failed for 127.0.0.1" in str(by_address.error)
        assert len(https.requests) == 1


# -- the commands --------------------------------------------------------------------------


def test_send_test_shows_the_refusal(tmp_path: Path, receiver: TestReceiver) -> None:
    config = write_config(tmp_path / "jobhooks.json", {"name": "ops", "url": receiver.url})
    result = run(["send-test", "ops"], cli_env(tmp_path / "home", config,
                                               refuse_private_destinations="true"))
    assert result.returncode == 1
    assert f"127.0.0.1, a loopback address; {GUARD}" in result.stderr
    assert receiver.requests == []


def test_check_warns_about_subscriptions_the_guard_will_always_refuse(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "jobhooks.json",
        {"name": "local", "url": "http://localhost:8080/hooks"},
        {"name": "metadata", "url": "http://169.254.169.254/latest"},
        {"name": "mapped", "url": "https://[::ffff:10.0.0.1]/"},
        {"name": "public", "url": "https://hooks.example.com/ops"},
    )
    guarded = run(["check"], cli_env(tmp_path, config, refuse_private_destinations="true"))
    assert guarded.returncode == 0  # warnings, not errors: the configuration is valid
    warnings = [line for line in guarded.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3, guarded.stderr
    assert "subscription 'local'" in warnings[0] and "localhost is a loopback name" in warnings[0]
    assert "169.254.169.254, a link-local address" in warnings[1]
    assert "::ffff:10.0.0.1, a private address" in warnings[2]
    as_json = run(["check", "--json"],
                  cli_env(tmp_path, config, refuse_private_destinations="true"))
    assert len(json.loads(as_json.stdout)["warnings"]) == 3
    unguarded = run(["check"], cli_env(tmp_path, config))
    assert unguarded.returncode == 0 and "warning:" not in unguarded.stderr


def test_the_guard_refuses_a_connection_only_when_on(receiver: TestReceiver) -> None:
    # The default (guard off) is a plain pool: nothing judged, nothing resolved by jobhooks.
    from jobhooks_core.delivery import new_pool

    for guard, delivered in ((False, True), (True, False)):
        settings = Settings(refuse_private_destinations=guard)
        with new_pool(settings) as pool:
            assert send(pool, subscription(receiver.url), [row()]).delivered is delivered
    assert len(receiver.requests) == 1


# -- helpers -------------------------------------------------------------------------------


def subscription(url: str) -> Subscription:
    return Subscription.from_mapping("ops", {"url": url, "timeout_seconds": 5})


def row() -> Delivery:
    event = Event.create("failed", "work", "nightly", source=Source("test", "guard", "1"),
                         occurrence=str(time.time()))
    return Delivery(0, "ops", event.id, event_json(event), Status.PENDING, 0, 0.0, 0.0,
                    batch_id=event.id)
