"""A programmable webhook receiver for delivery tests: real HTTP on 127.0.0.1, ephemeral port.

It records every request, answers from a queue of Replies (then ``default``), can hang, delay
or redirect, and lets tests wait for requests on a Condition instead of sleeping.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from jobhooks_core.exceptions import RenderError
from jobhooks_core.formats import parse_body
from jobhooks_core.receiver import HTTPRequest, HTTPResponse, LocalServer

__all__ = ["Reply", "Request", "TestReceiver"]


@dataclass(frozen=True)
class Request:
    """One request as received; header names in lower case, ``received_at`` time.monotonic()."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    def describe(self) -> str:
        webhook_id = self.headers.get("webhook-id", "-")
        return f"{self.method} {self.path} webhook-id={webhook_id} ({len(self.body)} bytes)"


@dataclass(frozen=True)
class Reply:
    """How the receiver answers one request: ``status``, ``headers`` and ``body`` after ``delay``.

    ``Reply(429, {"Retry-After": "2"})``, ``Reply.hang()``, ``Reply.redirect(url)``.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    hangs: bool = False

    @classmethod
    def hang(cls) -> Reply:
        """Accept the request and never answer; the connection closes when the receiver stops."""
        return cls(hangs=True)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status, {"Location": location})


class TestReceiver:
    """Records requests and answers them as programmed; ``with TestReceiver() as r: r.url``."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, port: int = 0, *, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: serve HTTPS with this server-side context (e.g. from a ``trustme`` CA:
        ``ca.issue_cert("127.0.0.1").configure_cert(context)``); ``url`` is then https."""
        self.default = Reply()
        self._replies: deque[Reply] = deque()
        self._requests: list[Request] = []
        self._arrived = threading.Condition()
        self._released = threading.Event()
        self._server = LocalServer(self._handle, "127.0.0.1", port, ssl_context=tls)

    # lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> TestReceiver:
        self._released = threading.Event()
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop promptly: hung and delayed requests are dropped unanswered. Idempotent."""
        self._released.set()
        self._server.stop()

    def __enter__(self) -> TestReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # programming --------------------------------------------------------------------------

    def respond(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order, then with ``default``."""
        with self._arrived:
            self._replies.extend(replies)

    def _handle(self, http: HTTPRequest) -> HTTPResponse | None:
        request = Request(http.method, http.path, http.headers, http.body, time.monotonic())
        released = self._released
        with self._arrived:
            self._requests.append(request)
            reply = self._replies.popleft() if self._replies else self.default
            self._arrived.notify_all()
        if reply.hangs:
            released.wait()
            return None
        if reply.delay and released.wait(reply.delay):
            return None
        return HTTPResponse(reply.status, reply.headers, reply.body)

    # observing ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """A snapshot of every request received so far, in arrival order."""
        with self._arrived:
            return list(self._requests)

    def wait_for(self, count: int, timeout: float = 10) -> list[Request]:
        """Block until at least ``count`` requests have arrived; all of them, in order."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._requests) >= count, timeout):
                got = len(self._requests)
                seen = "".join(f"\n  {r.describe()}" for r in self._requests)
                raise AssertionError(
                    f"expected at least {count} request(s) at {self.url} within {timeout:g} s, "
                    f"but {got} arrived{':' if seen else ''}{seen}"
                )
            return list(self._requests)

    def events(self) -> list[dict[str, Any]]:
        """Every event received, batches flattened, as wire JSON objects (retries repeat)."""
        events: list[dict[str, Any]] = []
        for index, request in enumerate(self.requests):
            if not request.body:
                continue
            content_type = request.headers.get("content-type", "")
            try:
                _, parsed = parse_body(content_type, request.body)
            except RenderError as exc:
                raise AssertionError(
                    f"request {index} ({request.describe()}) holds no jobhooks events: {exc}"
                ) from exc
            events.extend(event.to_dict() for event in parsed)
        return events

    def event_ids(self) -> list[str]:
        return [event["id"] for event in self.events()]
