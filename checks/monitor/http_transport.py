"""The transport under the checks' `httpx.AsyncClient`: httpcore's HTTP/1.1 on plain asyncio.

Why not httpx's default transport: a round of 1,000 local checks spent most of its CPU
below httpx (profiled with py-spy). httpcore's pool re-scans every (waiting request ×
connection) pair on each request and each release, and asks every idle connection whether
the server closed it, which anyio answers by building a dict of socket attributes and
calling getpeername(); every read and write also opens an anyio cancel scope. So:

- `CheckTransport` keeps the client's connections itself, O(1) per request (below), each
  one httpcore's own HTTP/1.1 state machine (`httpcore.AsyncHTTP11Connection`: h11 does the
  parsing, as before);
- `AsyncioBackend` is httpcore's public network-backend interface implemented on an asyncio
  Protocol: a read that finds data buffered returns it without waiting, a timeout is one
  asyncio timer, and "did the server close this idle connection" is a flag the event loop
  already set.

Errors keep httpcore's then httpx's types with the OS or TLS error as their cause, so the
checks' reasons (refused, DNS, the TLS verification message, timeouts) read the same.
"""
from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any, AsyncIterator, Iterable

import httpcore
import httpx

# Bytes a connection buffers before it stops reading from the socket (a 50 MB body stays
# in the kernel until the check has read what it wants, then the connection is closed).
READ_BUFFER_LIMIT = 256 * 1024

_TLS_CONTEXTS: dict[bool, ssl.SSLContext] = {}


def tls_context(verify: bool) -> ssl.SSLContext:
    """One TLS context per mode for the whole process: loading the CA bundle costs ~0.2 s
    (measured), too much to pay for every client of every round."""
    if verify not in _TLS_CONTEXTS:
        _TLS_CONTEXTS[verify] = httpx.create_ssl_context(verify=verify)
    return _TLS_CONTEXTS[verify]


# --- httpcore's network backend on asyncio -----------------------------------------------------

class _Protocol(asyncio.Protocol):
    """Bytes received, waiting to be read; end of stream; write flow control."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.eof = False
        self.error: BaseException | None = None
        self.reader: asyncio.Future[None] | None = None
        self.writer: asyncio.Future[None] | None = None
        self.reading_paused = False
        self.writing_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > READ_BUFFER_LIMIT and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        if self.writer is not None and not self.writer.done():
            self.writer.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.writer is not None and not self.writer.done():
            self.writer.set_result(None)

    def _wake_reader(self) -> None:
        if self.reader is not None and not self.reader.done():
            self.reader.set_result(None)


async def _until(future: asyncio.Future[None], timeout: float | None, on_timeout: type[Exception]) -> None:
    """Wait for the protocol to wake `future` (data arrived, the buffer drained), at most
    `timeout` seconds; httpcore's timeout exception after that. No timer when there is no
    timeout: this is on the path of every read."""
    if timeout is None:
        await future
        return
    try:
        async with asyncio.timeout(timeout):
            await future
    except TimeoutError:
        raise on_timeout("timed out") from None


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self.transport = transport
        self.protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        p = self.protocol
        if not p.chunks and not p.eof:
            p.reader = asyncio.get_running_loop().create_future()
            try:
                await _until(p.reader, timeout, httpcore.ReadTimeout)
            finally:
                p.reader = None
        if p.chunks:
            data = p.chunks.popleft()
            if len(data) > max_bytes:
                p.chunks.appendleft(data[max_bytes:])
                data = data[:max_bytes]
            p.buffered -= len(data)
            if p.reading_paused and p.buffered <= READ_BUFFER_LIMIT // 2:
                p.reading_paused = False
                self.transport.resume_reading()
            return data
        if p.error is not None:
            raise httpcore.ReadError(str(p.error) or type(p.error).__name__) from p.error
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        p = self.protocol
        if self.transport.is_closing() or p.error is not None:
            raise httpcore.WriteError("the connection is closed") from p.error
        self.transport.write(buffer)
        if p.writing_paused:
            p.writer = asyncio.get_running_loop().create_future()
            try:
                await _until(p.writer, timeout, httpcore.WriteTimeout)
            finally:
                p.writer = None
            if p.error is not None:
                raise httpcore.WriteError(str(p.error)) from p.error

    async def aclose(self) -> None:
        self.transport.close()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(self.transport, self.protocol, ssl_context,
                                                 server_hostname=server_hostname)
        except TimeoutError:
            self.transport.close()
            raise httpcore.ConnectTimeout("timed out during the TLS handshake") from None
        except (OSError, EOFError) as exc:  # ssl.SSLError is an OSError
            self.transport.close()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self.protocol.transport = transport  # type: ignore[assignment]
        return AsyncioStream(transport, self.protocol)  # type: ignore[arg-type]

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # asked of idle connections: did the server send or close?
            return bool(self.protocol.chunks) or self.protocol.eof
        if info == "ssl_object":
            return self.transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self.transport.get_extra_info("sockname")
        if info == "server_addr":
            return self.transport.get_extra_info("peername")
        if info == "socket":
            return self.transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio's own transports (no anyio in the data path)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol, host, port, local_addr=(local_address, 0) if local_address else None,
                    happy_eyeballs_delay=0.25)
        except TimeoutError:
            raise httpcore.ConnectTimeout("timed out") from None
        except OSError as exc:  # refused, unreachable, socket.gaierror (DNS)
            raise httpcore.ConnectError(str(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(transport, protocol)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_unix_connection(_Protocol, path)
        except TimeoutError:
            raise httpcore.ConnectTimeout("timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# --- the client's transport: small httpcore pools -------------------------------------------------

_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    # most specific first
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def _httpx_error(exc: Exception) -> Exception:
    """httpcore's exception as the httpx one httpx's own transport would raise (cause kept)."""
    for core, mapped in _EXCEPTIONS:
        if isinstance(exc, core):
            error = mapped(str(exc))
            error.__cause__ = exc
            return error
    return exc


# (verified TLS, scheme, host, port): connections are kept per origin and TLS mode
_Key = tuple[bool, bytes, bytes, "int | None"]


class CheckTransport(httpx.AsyncBaseTransport):
    """The client's connections: at most `concurrency`, kept alive per origin, O(1) per request.

    httpcore's own pool re-scans every (waiting request × connection) pair whenever a request
    starts or ends and checks every idle connection each time; with 64 connections in one
    pool, 1,000 local checks took 40 s and some timed out, and even split into pools of 8 the
    scans were a fifth of a round's CPU (measured). Checks need less: a request takes the most
    recently used idle connection to its origin (LIFO, so a round reuses few connections), or
    opens one, closing the least recently used idle connection of any origin when the client
    is at its limit; at most `concurrency` requests are in flight (the checker's own bound is
    the same). Each connection is httpcore's HTTP/1.1 state machine over `AsyncioBackend`.
    A request marked `extensions["driftwatch_verify"] = False` uses unverified TLS.
    """

    def __init__(self, *, concurrency: int, verify: bool | ssl.SSLContext, keepalive_expiry: float = 30) -> None:
        self.limit = max(1, concurrency)
        self.verify = verify
        self.keepalive_expiry = keepalive_expiry
        self.backend = AsyncioBackend()
        self.gate = asyncio.Semaphore(self.limit)
        self.contexts: dict[bool, ssl.SSLContext] = {}
        # idle connections by (verified, origin), oldest first; dict order = least recently used origin first
        self.idle: dict[_Key, list[httpcore.AsyncHTTP11Connection]] = {}
        self.open = 0  # connections open or opening, idle or busy
        self.closed = False

    def _context(self, verified: bool) -> ssl.SSLContext:
        if verified not in self.contexts:
            verify = self.verify if verified else False
            context = tls_context(verify) if isinstance(verify, bool) else verify
            context.set_alpn_protocols(["http/1.1"])
            self.contexts[verified] = context
        return self.contexts[verified]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):  # httpx's own words
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{url.scheme}://'." if scheme
                else "Request URL is missing an 'http://' or 'https://' protocol.")
        verified = bool(request.extensions.get("driftwatch_verify", True))
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions)
        key = (verified, scheme, url.raw_host, url.port)
        await self.gate.acquire()
        connection: httpcore.AsyncHTTP11Connection | None = None
        try:
            connection = await self._connection(key, core_request)
            response = await connection.handle_async_request(core_request)
        except BaseException as exc:
            if connection is not None:
                await self._done(key, connection)
            self.gate.release()
            mapped = _httpx_error(exc) if isinstance(exc, Exception) else exc
            if mapped is exc:
                raise
            raise mapped from exc
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_Released(response.stream, self, key, connection),
                              extensions=response.extensions)

    async def _connection(self, key: _Key,
                          request: httpcore.Request) -> httpcore.AsyncHTTP11Connection:
        idle = self.idle.get(key)
        while idle:
            connection = idle.pop()
            if not idle:
                del self.idle[key]
            if connection.is_idle() and not connection.has_expired():
                return connection
            await self._close(connection)  # the server closed it, or it sat idle too long
            idle = self.idle.get(key)
        await self._sweep()
        while self.open >= self.limit and self.idle:
            oldest = next(iter(self.idle))  # the least recently used origin
            connections = self.idle[oldest]
            connection = connections.pop(0)
            if not connections:
                del self.idle[oldest]
            await self._close(connection)
        self.open += 1  # counted while connecting, so a request arriving meanwhile sees it
        try:
            stream = await self._connect(key, request)
        except BaseException:
            self.open -= 1
            raise
        return _Connection(origin=request.url.origin, stream=stream, keepalive_expiry=self.keepalive_expiry)

    async def _sweep(self) -> None:
        """Close idle connections the server closed or that outlived keepalive_expiry (run
        before opening a connection, which is rare once a round's connections exist)."""
        dead = []
        for key in list(self.idle):
            alive = [c for c in self.idle[key] if c.is_idle() and not c.has_expired()]
            dead += [c for c in self.idle[key] if c not in alive]
            if alive:
                self.idle[key] = alive
            else:
                del self.idle[key]
        for connection in dead:
            await self._close(connection)

    async def _connect(self, key: _Key, request: httpcore.Request) -> httpcore.AsyncNetworkStream:
        origin = request.url.origin
        timeout = request.extensions.get("timeout", {}).get("connect")
        host = origin.host.decode("ascii")
        stream = await self.backend.connect_tcp(host, origin.port, timeout=timeout)
        if origin.scheme == b"https":
            server_hostname = request.extensions.get("sni_hostname") or host
            stream = await stream.start_tls(self._context(key[0]), server_hostname=server_hostname, timeout=timeout)
        return stream

    async def _done(self, key: _Key, connection: httpcore.AsyncHTTP11Connection) -> None:
        """A response is finished with: keep its connection for the next request, or close it."""
        if connection.is_idle() and not self.closed:
            idle = self.idle.pop(key, [])  # re-inserted: this origin is now the most recently used
            idle.append(connection)
            self.idle[key] = idle
        else:
            await self._close(connection)

    async def _close(self, connection: httpcore.AsyncHTTP11Connection) -> None:
        self.open -= 1
        try:
            await connection.aclose()
        except Exception:  # closing a broken connection: nothing more to do with it
            pass

    async def aclose(self) -> None:
        self.closed = True
        idle, self.idle = self.idle, {}
        for connections in idle.values():
            for connection in connections:
                await self._close(connection)


class _Connection(httpcore.AsyncHTTP11Connection):
    """httpcore's HTTP/1.1 connection with an asyncio lock for its state.

    httpcore guards a connection's state with an anyio lock, whose every acquisition costs
    an extra event-loop pass and a task lookup (8-10% of a round's CPU, measured). Here a
    connection serves one request at a time by construction (CheckTransport hands it to one
    request until the response is closed), so the lock is never contended and asyncio's,
    which takes a free lock without yielding, does the same job. (If a later httpcore renames
    the attribute, this only costs the time back.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._state_lock = asyncio.Lock()  # type: ignore[assignment]


class _Released(httpx.AsyncByteStream):
    """A connection's response stream as httpx's (errors mapped) that hands the connection
    back to the transport when closed."""

    def __init__(self, stream: Any, owner: CheckTransport, key: Any, connection: Any) -> None:
        self.stream = stream
        self.owner: CheckTransport | None = owner
        self.key = key
        self.connection = connection

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.stream:
                yield chunk
        except Exception as exc:
            mapped = _httpx_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        owner, self.owner = self.owner, None
        if owner is None:
            return
        try:
            await self.stream.aclose()
        finally:
            try:
                await owner._done(self.key, self.connection)
            finally:
                owner.gate.release()
