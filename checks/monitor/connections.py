"""Connections a resident poller keeps open between its drift checks, one idle per database.

    catalog = CONNECTIONS.inspect(url, schemas)

A poller re-checks the same databases every minute. A new connection each time costs the
connect and authentication, and a new PostgreSQL backend whose catalog caches are cold: the
first catalog read on a backend costs it about half as much again as the next ones, and
every query is parsed and planned anew. Kept open, the connection's backend has its caches
warm and the catalog queries prepared (`inspect_database(..., prepare=True)`), so a re-check
costs PostgreSQL only their execution. The last rows read from each database are kept with the
catalog built from them (`BuildMemo`): unchanged rows give the same `Catalog` object back, not
thousands of dataclasses built again.

An idle connection holds no lock and no transaction (the inspection always rolls back), so it
blocks no migration. When the server dropped it while idle (a restart, idle_session_timeout,
a terminated backend), the inspection is tried once more on a new connection, so the check
reports the database as it is now, not the loss of a connection nobody was using. Only
connections back in the idle state are kept; one busy on another thread is not shared (a
second check of the same database at the same time opens its own, kept or closed after).
"""
from __future__ import annotations

import atexit
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Sequence

from ..errors import DatabaseError

if TYPE_CHECKING:
    import psycopg

    from ..catalog import Catalog
    from ..inspect.live import BuildMemo

__all__ = ["ResidentConnections", "CONNECTIONS"]


class ResidentConnections:
    """Idle connections by database URL: at most one per URL and `max_databases` URLs (the
    least recently used closed first)."""

    def __init__(self, max_databases: int = 16) -> None:
        self.max_databases = max_databases
        self._idle: OrderedDict[str, psycopg.Connection] = OrderedDict()
        self._memos: OrderedDict[str, BuildMemo] = OrderedDict()  # the last rows and catalog per URL
        self._lock = threading.Lock()
        self.opened = 0  # connections opened, for tests and benchmarks
        self.reused = 0

    def inspect(self, url: str, schemas: Sequence[str]) -> Catalog:
        """`inspect_database(url, schemas)` on this URL's kept connection (or a new one, kept
        afterwards when it is healthy). Raises what `inspect_database` raises."""
        import psycopg

        from ..inspect.live import inspect_database

        memo = self._memo(url)
        conn = self._take(url)
        if conn is not None:
            try:
                catalog = inspect_database(conn, schemas, prepare=True, memo=memo)
            except (DatabaseError, psycopg.Error):
                if _reusable(conn):  # the database answered: the error is the check's
                    self._give(url, conn)
                    raise
                _close(conn)  # lost while idle: try once on a new connection
            else:
                self.reused += 1
                self._give(url, conn)
                return catalog
        conn = self._connect(url)
        try:
            catalog = inspect_database(conn, schemas, prepare=True, memo=memo)
        except BaseException:
            if _reusable(conn):
                self._give(url, conn)
            else:
                _close(conn)
            raise
        self._give(url, conn)
        return catalog

    def _memo(self, url: str) -> BuildMemo:
        from ..inspect.live import BuildMemo

        with self._lock:
            memo = self._memos.get(url)
            if memo is None:
                memo = self._memos[url] = BuildMemo()
                while len(self._memos) > self.max_databases:
                    self._memos.popitem(last=False)
            else:
                self._memos.move_to_end(url)
            return memo

    def backend_pid(self, url: str) -> int | None:
        """The PostgreSQL backend of this URL's idle connection (benchmarks measure its CPU)."""
        with self._lock:
            conn = self._idle.get(url)
            return conn.info.backend_pid if conn is not None else None

    def close(self) -> None:
        """Close every idle connection (the poller stops; also at interpreter exit)."""
        with self._lock:
            idle, self._idle = list(self._idle.values()), OrderedDict()
            self._memos.clear()
        for conn in idle:
            _close(conn)

    def _connect(self, url: str) -> psycopg.Connection:
        from ..db import connect

        conn = connect(url)  # DatabaseError with a redacted one-line message
        with self._lock:
            self.opened += 1
        return conn

    def _take(self, url: str) -> psycopg.Connection | None:
        with self._lock:
            return self._idle.pop(url, None)

    def _give(self, url: str, conn: psycopg.Connection) -> None:
        if not _reusable(conn):
            _close(conn)
            return
        extra = []
        with self._lock:
            old = self._idle.pop(url, None)
            if old is not None:  # two checks of one database at once: keep one
                extra.append(old)
            self._idle[url] = conn
            while len(self._idle) > self.max_databases:
                extra.append(self._idle.popitem(last=False)[1])
        for c in extra:
            _close(c)


def _reusable(conn: psycopg.Connection) -> bool:
    from psycopg import pq

    return (not conn.closed and not conn.broken and conn.autocommit
            and conn.info.transaction_status == pq.TransactionStatus.IDLE)


def _close(conn: psycopg.Connection) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing a dead connection has nothing to report
        pass


CONNECTIONS = ResidentConnections()
atexit.register(CONNECTIONS.close)
