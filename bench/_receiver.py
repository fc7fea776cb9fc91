"""A minimal, fast loopback HTTP receiver for benchmarks (asyncio, HTTP/1.1 keep-alive).

Run in its own process so it does not compete with the code under test for the GIL:
``python bench/_receiver.py PORT [hang]`` (PORT 0: any free port) prints "ready PORT" once
listening. It answers every POST 204 (or, with ``hang``, reads it and never answers) and counts
what arrived; ``GET /count`` answers, in either mode, with the counts as JSON: requests, events
(a JSON batch ``{"batch_id": …, "events": [...]}`` counts its events, any other body one),
unique event ids (``webhook-id`` of a single event, each ``id`` of a batch) and body bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

RESPONSE = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
BATCH_PREFIX = b'{"batch_id"'


class Counts:
    """What the receiver has seen, over every connection."""

    def __init__(self) -> None:
        self.requests = 0
        self.events = 0
        self.bytes = 0
        self.ids: set[str] = set()

    def add(self, webhook_id: str | None, body: bytes) -> None:
        self.requests += 1
        self.bytes += len(body)
        if body.startswith(BATCH_PREFIX):
            try:
                events = json.loads(body)["events"]
            except (ValueError, KeyError, TypeError):
                events = None
            if isinstance(events, list):
                self.events += len(events)
                self.ids.update(str(e.get("id")) for e in events if isinstance(e, dict))
                return
        self.events += 1
        if webhook_id:
            self.ids.add(webhook_id)

    def answer(self) -> bytes:
        body = json.dumps(
            {
                "requests": self.requests,
                "events": self.events,
                "unique_events": len(self.ids),
                "bytes": self.bytes,
            }
        ).encode()
        head = (
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


async def handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hang: bool, counts: Counts
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            webhook_id = None
            lines = head.split(b"\r\n")
            for line in lines[1:]:
                name = line[:16].lower()
                if name.startswith(b"content-length:"):
                    length = int(line[15:].strip())
                elif name.startswith(b"webhook-id:"):
                    webhook_id = line[11:].strip().decode("latin-1")
            body = await reader.readexactly(length) if length else b""
            if lines[0].startswith(b"GET /count"):
                writer.write(counts.answer())
                continue
            if not hang:
                writer.write(RESPONSE)  # answer first: counting a batch must not delay it
            counts.add(webhook_id, body)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, hang: bool) -> None:
    counts = Counts()
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, hang, counts), "127.0.0.1", port, backlog=1024
    )
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1]), len(sys.argv) > 2 and sys.argv[2] == "hang"))
