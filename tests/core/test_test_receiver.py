"""The delivery tests' TestReceiver: replies as programmed, never blocks stop, no sleeps.

Real HTTP on 127.0.0.1 through httpx, as the dispatcher will send it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import httpx
import pytest

from jobhooks_core.events import Event, Source
from jobhooks_core.formats import WireFormat, render_batch, render_event
from tests.receiver import Reply, TestReceiver


def event(subject_id: str) -> Event:
    return Event.create(
        "completed",
        "workflow",
        subject_id,
        source=Source("prefect", "local"),
        occurrence="1",
        timestamp=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    )


def test_requests_are_recorded_with_lower_case_headers(receiver: TestReceiver) -> None:
    httpx.post(receiver.url + "hooks?x=1", content=b"hi", headers={"X-Custom": "v"}, timeout=10)

    [request] = receiver.wait_for(1)
    assert (request.method, request.path, request.body) == ("POST", "/hooks?x=1", b"hi")
    assert request.headers["x-custom"] == "v"
    assert request.received_at <= time.monotonic()


def test_queued_replies_are_served_in_order_then_the_default(receiver: TestReceiver) -> None:
    receiver.respond(
        Reply(503),
        Reply(status=429, headers={"Retry-After": "2"}),
        Reply.redirect("https://example.invalid/elsewhere"),
        Reply(200, body=b"ok"),
    )
    receiver.default = Reply(410)

    with httpx.Client(timeout=10) as client:
        responses = [client.post(receiver.url, content=b"{}") for _ in range(6)]

    assert [r.status_code for r in responses] == [503, 429, 302, 200, 410, 410]
    assert responses[1].headers["retry-after"] == "2"
    assert responses[2].headers["location"] == "https://example.invalid/elsewhere"
    assert responses[3].content == b"ok"
    assert len(receiver.requests) == 6


def test_hung_request_is_recorded_and_does_not_block_stop() -> None:
    receiver = TestReceiver().start()
    receiver.respond(Reply.hang())
    outcome: list[BaseException | httpx.Response] = []

    def send() -> None:
        try:
            outcome.append(httpx.post(receiver.url, content=b"{}", timeout=60))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    client = threading.Thread(target=send)
    client.start()
    receiver.wait_for(1)
    started = time.monotonic()
    receiver.stop()
    client.join(timeout=10)

    assert time.monotonic() - started < 5
    assert not client.is_alive()
    assert isinstance(outcome[0], httpx.RemoteProtocolError)  # dropped, never answered


def test_delayed_reply_comes_after_the_delay(receiver: TestReceiver) -> None:
    receiver.respond(Reply(201, delay=0.3))

    started = time.monotonic()
    response = httpx.post(receiver.url, content=b"{}", timeout=10)

    assert response.status_code == 201
    assert time.monotonic() - started >= 0.3


def test_stopped_receiver_no_longer_answers_a_pooled_connection() -> None:
    receiver = TestReceiver().start()
    with httpx.Client(timeout=10) as client:
        assert client.post(receiver.url, content=b"{}").status_code == 200
        receiver.stop()  # the client still holds the idle keep-alive connection

        with pytest.raises(httpx.TransportError):
            client.post(receiver.url, content=b"{}")

    assert len(receiver.requests) == 1


def test_restarted_receiver_answers_at_the_same_url() -> None:
    receiver = TestReceiver().start()
    url = receiver.url
    receiver.stop()

    with receiver:
        response = httpx.post(receiver.url, content=b"{}", timeout=10)

    assert receiver.url == url
    assert response.status_code == 200
    assert len(receiver.requests) == 1


def test_wait_for_timeout_says_how_many_arrived(receiver: TestReceiver) -> None:
    httpx.post(receiver.url, content=b"{}", headers={"webhook-id": "msg_1"}, timeout=10)

    with pytest.raises(AssertionError) as raised:
        receiver.wait_for(3, timeout=0.2)

    message = str(raised.value)
    assert "expected at least 3 request(s)" in message
    assert "within 0.2 s, but 1 arrived" in message
    assert "POST / webhook-id=msg_1 (2 bytes)" in message


@pytest.mark.parametrize("fmt", list(WireFormat))
def test_events_flattens_batches_in_every_format(fmt: WireFormat, receiver: TestReceiver) -> None:
    one, two, three = event("a"), event("b"), event("c")
    for rendered in (render_event(fmt, one), render_batch(fmt, "batch-1", [two, three])):
        httpx.post(
            receiver.url,
            content=rendered.body,
            headers={"content-type": rendered.content_type},
            timeout=10,
        )

    assert receiver.events() == [one.to_dict(), two.to_dict(), three.to_dict()]
    assert receiver.event_ids() == [one.id, two.id, three.id]


def test_events_names_the_request_that_holds_no_events(receiver: TestReceiver) -> None:
    httpx.post(receiver.url, content=b"nope", headers={"content-type": "text/plain"}, timeout=10)

    with pytest.raises(AssertionError, match=r"request 0 \(POST / .*\) holds no jobhooks events"):
        receiver.events()
