"""What the example services share: an HTTP server on a background thread, and a foreground
run that ends cleanly on SIGTERM or Ctrl-C (how `driftwatch demo` and the tests stop them)."""
from __future__ import annotations

import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

Self = TypeVar("Self", bound="BackgroundServer")


class BackgroundServer:
    """`start()` binds (port 0: any free one, then `port` is the real one) and serves on a
    daemon thread; `stop()` shuts down and closes the socket; also a context manager.
    A subclass says which handler serves it (`handler()`) and may prepare in `_starting()`."""

    thread_name = "example-service"
    poll_interval = 0.5  # how often serve_forever looks for a shutdown: the longest `stop()` waits

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def _starting(self) -> None:
        """Runs before the socket is bound."""

    def _stopping(self) -> None:
        """Runs before the server shuts down."""

    def start(self: Self) -> Self:
        self._starting()
        self._httpd = ThreadingHTTPServer((self.host, self.port), self.handler())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": self.poll_interval},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self: Self) -> Self:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def serve_until_stopped(server: BackgroundServer, announce: str) -> int:
    """Start `server`, print `announce: URL` (the line `driftwatch demo` reads), and keep it
    up until SIGTERM or Ctrl-C; then stop it. The exit code for `main`."""
    server.start()
    print(f"{announce}: {server.url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


def quiet(_handler: Any, *_args: Any) -> None:
    """`log_message` for the handlers: request lines would carry tokens in query strings and
    headers; the services log nothing per request."""
