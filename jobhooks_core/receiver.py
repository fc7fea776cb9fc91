"""A local webhook receiver: verifies Standard Webhooks signatures and prints each event.

The engine of ``jobhooks receive`` (demos and debugging), on the stdlib ThreadingHTTPServer;
:class:`LocalServer` is the plumbing it shares with the tests' programmable receiver.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, TextIO, cast

from .events import Event
from .exceptions import RenderError, SignatureError
from .formats import parse_body
from .signing import validate_secret, verify

__all__ = [
    "HTTPRequest",
    "HTTPResponse",
    "LocalServer",
    "Receiver",
    "SECRET_ENV",
    "add_arguments",
    "format_event",
    "run",
]

SECRET_ENV = "JOBHOOKS_RECEIVE_SECRET"
MAX_BODY_BYTES = 16 * 1024 * 1024
_DATA_ITEMS = 3  # key=value pairs printed per event; the --log file keeps everything
_VALUE_CHARS = 40
_ID_CHARS = 60


# Plumbing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HTTPRequest:
    """One request as read off the socket; header names in lower case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class HTTPResponse:
    """What to answer; Content-Length is added unless the status has no body."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


# Returns None to close the connection without answering (a receiver that stops mid-request).
RequestHandler = Callable[[HTTPRequest], HTTPResponse | None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handle: RequestHandler, family: int) -> None:
        self.address_family = family
        self.handle = handle
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        # Without this an idle keep-alive connection outlives the server and a pooled client's
        # next request is still answered after stop().
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away (timed out, reset): nothing to report
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a pooled client expects
    server_version = "jobhooks-receiver"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the handlers print what matters

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except ValueError as exc:
            self._answer(HTTPResponse(400, {"Content-Type": "text/plain"}, f"{exc}\n".encode()))
            self.close_connection = True
            return
        if body is None:
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = HTTPRequest(self.command, self.path, headers, body)
        try:
            response = cast(_Server, self.server).handle(request)
        except Exception:
            traceback.print_exc()
            response = HTTPResponse(500, {"Content-Type": "text/plain"}, b"receiver error\n")
        if response is None:
            self.close_connection = True
            return
        self._answer(response)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = _dispatch

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        if not length_header.isdigit():
            raise ValueError(f"Content-Length {length_header[:20]!r} is not a number")
        length = int(length_header)
        if length > MAX_BODY_BYTES:
            self.send_error(413, f"body over {MAX_BODY_BYTES} bytes")
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise ValueError(f"body over {MAX_BODY_BYTES} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _answer(self, response: HTTPResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.status not in (204, 304) and self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()


class LocalServer:
    """A threaded HTTP server calling ``handle`` for each request, in a background thread.

    ``stop()`` returns promptly: it also closes open connections, idle keep-alive ones included.
    Started again, it listens on the port it had, so its URL stays the same.
    """

    def __init__(
        self,
        handle: RequestHandler,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._handle = handle
        self._host, self._port = host, port
        self._ssl = ssl_context  # serve HTTPS with this server-side context
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError(f"the server at {self.url} is already running")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        server = _Server((self._host, self._port), self._handle, family)
        self._port = int(server.server_address[1])
        if self._ssl is not None:
            # The handshake happens on the first read, in the connection's own thread: a client
            # that refuses the certificate never stalls the accept loop.
            server.socket = self._ssl.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"jobhooks-receiver-{self._port}",
            daemon=True,
        )
        self._server = server
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The port it listens on, or listened on when stopped."""
        if not self._port:
            raise RuntimeError("the server has no port yet; call start() first")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{'https' if self._ssl else 'http'}://{host}:{self.port}/"

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()


# jobhooks receive -------------------------------------------------------------------------


def _printable(text: str, limit: int) -> str:
    # One line per event, and no terminal escape sequences from whoever sent the request.
    flat = " ".join(text.split())
    flat = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in flat)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _short_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return _printable(text, _VALUE_CHARS)


def _short_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def format_event(event: Event, verified: bool) -> str:
    """One event as one readable line: time, type, subject id, trust, a few data items."""
    items = [f"{_printable(str(k), 20)}={_short_value(v)}" for k, v in event.data.items()]
    if len(items) > _DATA_ITEMS:
        items = items[:_DATA_ITEMS] + [f"(+{len(items) - _DATA_ITEMS} more)"]
    parts = [
        _short_time(event.timestamp),
        event.type,
        _printable(event.subject_id, _ID_CHARS),
        "[verified]" if verified else "[unverified]",
    ]
    if items:
        parts.append(" ".join(items))
    return "  ".join(parts)


class Receiver:
    """Receives job-status webhooks on ``host:port``, prints them and optionally logs them.

    With ``secrets`` a request must carry a Standard Webhooks signature by one of them (401
    otherwise); every accepted request is answered ``status``. ``log_path`` gets one JSON line
    per event: ``{"webhook_id", "batch_id", "verified", "event"}``. ``out`` defaults to
    whatever ``sys.stdout`` is when a line is printed.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        secrets: Sequence[str] = (),
        log_path: str | None = None,
        out: TextIO | None = None,
        status: int = 204,
    ) -> None:
        if isinstance(secrets, str):
            raise TypeError("secrets is a sequence of secrets, not one string")
        self.secrets = tuple(validate_secret(secret) for secret in secrets)
        if not 200 <= status <= 599:
            raise ValueError(f"status {status} is not an HTTP status a receiver can answer")
        self.status = status
        self.log_path = log_path
        self._out = out
        # Re-entrant: a request's lines and log records are written together under it.
        self._lock = threading.RLock()
        self._log: TextIO | None = None
        self._server = LocalServer(self._handle, host, port)
        self._stopped = threading.Event()
        self._events = self._rejected = 0

    # lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> Receiver:
        """Listen in a background thread; returns self."""
        if self._server.running:
            raise RuntimeError(f"the receiver at {self.url} is already running")
        if self.log_path is not None:
            self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 (open until stop)
        try:
            self._server.start()
        except BaseException:
            self._close_log()
            raise
        self._stopped.clear()
        if self.secrets:
            n = len(self.secrets)
            checked = f"signatures checked ({n} secret{'s' if n != 1 else ''})"
        else:
            checked = "signatures NOT checked (no secret given)"
        log_note = f", logging to {self.log_path}" if self.log_path else ""
        self._print(
            f"jobhooks receive: listening on {self.url}  {checked}, "
            f"answering {self.status}{log_note}"
        )
        return self

    def stop(self) -> None:
        """Stop listening and close the log; returns promptly, idempotent."""
        if not self._server.running:
            return
        self._server.stop()
        self._close_log()
        events = f"{self._events} event{'s' if self._events != 1 else ''}"
        self._print(f"jobhooks receive: stopped ({events}, {self._rejected} rejected)")
        self._stopped.set()

    def serve_forever(self) -> None:
        """Listen in the foreground until KeyboardInterrupt (the caller maps SIGTERM to it)."""
        if not self._server.running:
            self.start()
        try:
            self._stopped.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # requests -----------------------------------------------------------------------------

    def _handle(self, request: HTTPRequest) -> HTTPResponse:
        if request.method != "POST":
            text = b"jobhooks receive: POST webhooks to this URL\n"
            return HTTPResponse(405, {"Allow": "POST", "Content-Type": "text/plain"}, text)
        webhook_id = request.headers.get("webhook-id", "")
        verified = False
        if self.secrets:
            try:
                verify(self.secrets, request.body, request.headers)
            except SignatureError as exc:
                return self._reject(webhook_id, 401, f"bad signature: {exc}")
            verified = True
        try:
            batch_id, events = parse_body(request.headers.get("content-type", ""), request.body)
        except RenderError as exc:
            return self._reject(webhook_id, 400, f"unreadable body: {exc}")
        self._accept(webhook_id, batch_id, events, verified)
        return HTTPResponse(self.status)

    def _reject(self, webhook_id: str, status: int, reason: str) -> HTTPResponse:
        shown = _printable(webhook_id, _ID_CHARS) if webhook_id else "(no webhook-id)"
        with self._lock:
            self._rejected += 1
            self._print(f"REJECTED {shown}: {_printable(reason, 300)} (answered {status})")
        return HTTPResponse(status, {"Content-Type": "text/plain"}, f"{reason}\n".encode())

    def _accept(
        self, webhook_id: str, batch_id: str | None, events: list[Event], verified: bool
    ) -> None:
        lines = [format_event(event, verified) for event in events]
        if batch_id is not None:
            n = len(events)
            header = f"batch {_printable(batch_id, _ID_CHARS)}: {n} event{'s' if n != 1 else ''}"
            lines = [header] + ["  " + line for line in lines]
        with self._lock:
            self._events += len(events)
            self._print("\n".join(lines))
            if self._log is not None:
                for event in events:
                    record = {
                        "webhook_id": webhook_id or None,
                        "batch_id": batch_id,
                        "verified": verified,
                        "event": event.to_dict(),
                    }
                    self._log.write(json.dumps(record, ensure_ascii=False) + "\n")
                self._log.flush()

    def _print(self, text: str) -> None:
        with self._lock:
            print(text, file=self._out or sys.stdout, flush=True)

    def _close_log(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None


# CLI --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``jobhooks receive`` options."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port to listen on (8765; 0 picks a free one)"
    )
    parser.add_argument(
        "--secret",
        action="append",
        metavar="WHSEC",
        help="verify signatures with this whsec_ secret; repeat for rotation "
        f"(default: ${SECRET_ENV}, comma-separated; without one, signatures are not checked)",
    )
    parser.add_argument("--log", metavar="PATH", help="append each event to PATH as a JSON line")
    parser.add_argument(
        "--status",
        type=int,
        default=204,
        metavar="CODE",
        help="answer every accepted request with CODE (204; e.g. 503 to rehearse retries)",
    )


def _secrets(args: argparse.Namespace) -> list[str]:
    if args.secret:
        return list(args.secret)
    return [s for s in re.split(r"[\s,]+", os.environ.get(SECRET_ENV, "")) if s]


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """``jobhooks receive``: serve until SIGINT or SIGTERM, then exit 0."""
    try:
        receiver = Receiver(
            args.host, args.port, _secrets(args), log_path=args.log, status=args.status
        )
        receiver.start()
    except (ValueError, TypeError, OSError) as exc:
        print(f"jobhooks receive: error: {exc}", file=sys.stderr)
        return 2
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt) if in_main_thread else None
    try:
        receiver.serve_forever()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
