"""An HTTP server on 127.0.0.1 (port 0) with one route per way an endpoint can go wrong.

    /ok                200 {"status": "ok"}
    /degraded          200 {"status": "degraded"}          (a 200 with an error body)
    /status/NNN        that status, JSON body {"status": "NNN"}
    /html              200 text/html: a proxy's error page
    /hang              never answers (until the server stops)
    /trickle           headers, then one byte every 0.2 s of a promised 1 MB
    /big               200 with a 50 MB body, streamed
    /loop              302 → /loop2 → /loop … forever
    /slow?ms=N         answers after N ms
    /echo              echoes the request's headers and body as JSON (a leaky API)
    /health/N          200 {"status": "ok", "n": N} (the benchmark's 1,000 endpoints)
    /api/projects      POST → 201 {"id": …} or, with `projects_fail`, 400 {"error": …};
                       DELETE /api/projects/ID → 204, or 404 if unknown

`start(tls=(certfile, keyfile))` serves HTTPS. Run `python -m tests.servers.misbehaving` to
serve in a process of its own (the benchmark does, so the client does not share its GIL);
it prints the port on its first line.
"""
from __future__ import annotations

import itertools
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BIG_BYTES = 50 * 1024 * 1024


@dataclass
class State:
    """What the server was asked, and switches a test may flip."""

    projects: dict[int, dict[str, Any]] = field(default_factory=dict)
    deleted: list[int] = field(default_factory=list)
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    connections: set[int] = field(default_factory=set)  # client ports: one per TCP connection
    inflight: int = 0
    max_inflight: int = 0
    projects_fail: bool = False
    ids: Any = field(default_factory=lambda: itertools.count(41))
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes | dict[str, Any] | None = None, *,
              content_type: str = "application/json", headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def _route(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        path = parts.path
        body = self._body()
        with state.lock:
            state.calls.append((self.command, self.path, dict(self.headers)))
            state.connections.add(self.client_address[1])
            state.inflight += 1
            state.max_inflight = max(state.max_inflight, state.inflight)
        try:
            if path == "/ok":
                self._send(200, {"status": "ok"})
            elif path == "/degraded":
                self._send(200, {"status": "degraded", "error": "database unreachable"})
            elif path.startswith("/status/"):
                code = int(path.rsplit("/", 1)[1])
                self._send(code, {"status": str(code)})
            elif path == "/html":
                self._send(200, b"<!doctype html><html><head><title>502 Bad Gateway</title></head>"
                                b"<body><h1>Bad Gateway</h1></body></html>", content_type="text/html; charset=utf-8")
            elif path == "/hang":
                state.stop.wait(120)
                self.close_connection = True
            elif path == "/trickle":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(1024 * 1024))
                self.end_headers()
                for _ in range(600):
                    if state.stop.wait(0.2):
                        break
                    self.wfile.write(b" ")
                    self.wfile.flush()
                self.close_connection = True
            elif path == "/big":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(BIG_BYTES))
                self.end_headers()
                chunk = b"[" + b"0," * (64 * 1024 // 2 - 1) + b"0"
                sent = 0
                while sent < BIG_BYTES and not state.stop.is_set():
                    piece = chunk[: BIG_BYTES - sent]
                    self.wfile.write(piece)
                    sent += len(piece)
                self.close_connection = True
            elif path in ("/loop", "/loop2"):
                self._send(302, b"", headers={"Location": "/loop2" if path == "/loop" else "/loop"})
            elif path == "/slow":
                ms = float(parse_qs(parts.query).get("ms", ["100"])[0])
                if not state.stop.wait(ms / 1000):
                    self._send(200, {"status": "ok", "slept_ms": ms})
            elif path == "/echo":
                self._send(200, {"headers": dict(self.headers), "body": body.decode("utf-8", "replace")})
            elif path.startswith("/health/"):
                self._send(200, {"status": "ok", "n": int(path.rsplit("/", 1)[1])})
            elif path == "/api/projects" and self.command == "POST":
                if state.projects_fail:
                    self._send(400, {"error": 'relation "avatar_projects" does not exist',
                                     "auth": self.headers.get("Authorization", "")})
                else:
                    with state.lock:
                        pid = next(state.ids)
                        state.projects[pid] = json.loads(body or b"{}")
                    self._send(201, {"id": pid, **state.projects[pid]})
            elif path.startswith("/api/projects/") and self.command == "DELETE":
                pid = int(path.rsplit("/", 1)[1])
                with state.lock:
                    known = state.projects.pop(pid, None)
                    if known is not None:
                        state.deleted.append(pid)
                self._send(204 if known is not None else 404, b"" if known is not None else {"error": "not found"})
            else:
                self._send(404, {"error": "not found"})
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            with state.lock:
                state.inflight -= 1


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = State()
        self.scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.socket = context.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (a check's deadline) is what these tests are about

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def start(self) -> Server:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.stop.set()
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(5)


def start(tls: tuple[str, str] | None = None) -> Server:
    return Server(tls).start()


if __name__ == "__main__":
    server = Server()
    print(server.port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
