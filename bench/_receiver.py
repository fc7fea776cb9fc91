"""A minimal, fast loopback HTTP receiver for benchmarks (asyncio, HTTP/1.1 keep-alive).

Run in its own process so it does not compete with the code under test for the GIL:
``python bench/_receiver.py PORT [hang]`` prints "ready" once listening. It answers every
request 204 (or, with ``hang``, reads requests and never answers) and counts events.
"""

from __future__ import annotations

import asyncio
import sys

RESPONSE = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hang: bool) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:].strip())
            if length:
                await reader.readexactly(length)
            if hang:
                continue
            writer.write(RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, hang: bool) -> None:
    server = await asyncio.start_server(lambda r, w: handle(r, w, hang), "127.0.0.1", port,
                                        backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), len(sys.argv) > 2 and sys.argv[2] == "hang"))
