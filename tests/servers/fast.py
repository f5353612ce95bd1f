"""A small asyncio HTTP/1.1 server (keep-alive) answering `GET /health/N` with
`{"status": "ok", "n": N}`: the benchmark's 1,000 endpoints, served fast enough that the
round measures the checker, not the server. Everything else is 404.

    python -m tests.servers.fast [LATENCY_MS]   # prints the port (127.0.0.1, OS-chosen) first

LATENCY_MS (default 0) delays every answer, as a real endpoint's own work would: it is
what makes the number of checks in flight matter.
"""
from __future__ import annotations

import asyncio
import json
import sys

LATENCY_S = 0.0


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip() or 0)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            if length:
                await reader.readexactly(length)
            if LATENCY_S:
                await asyncio.sleep(LATENCY_S)
            if path.startswith("/health/"):
                status, body = "200 OK", json.dumps({"status": "ok", "n": path.rsplit("/", 1)[1]}).encode()
            else:
                status, body = "404 Not Found", b'{"error": "not found"}'
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(_serve_connection, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    LATENCY_S = float(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 0.0
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
