"""The write guard: the one way Driftwatch changes a production database.

Fix plans, `migrate deploy`, `migrate resolve` and runbooks all write through this module,
so that every write has the same protections: Prisma Migrate's advisory lock (Driftwatch
and `prisma migrate deploy` can never write at once), bounded waits for locks, bounded
statement time, one transaction that is all-or-nothing, and errors that say which
statement failed, why, and what was (not) changed.

API
---

``ADVISORY_LOCK_KEY = 72707369``
    The key of ``pg_advisory_lock(72707369)``, the session lock `prisma migrate deploy`
    and `migrate resolve` take. Advisory locks are per database.

``Limits(lock_timeout=5.0, statement_timeout=60.0, advisory_wait=10.0, idle_in_transaction=30.0)``
    Seconds. ``lock_timeout`` bounds each wait for a table/row lock (a statement that
    waits longer fails with `LockTimeout` instead of queueing every query of the
    application behind it); ``statement_timeout`` bounds each statement;
    ``advisory_wait`` is how long `exclusive_session` waits for Prisma's lock (Prisma
    itself waits 10 s); ``idle_in_transaction`` makes the server end our session, and
    so release its locks, if this process stalls inside a transaction (Ctrl-Z, a hung
    callback). Invalid values raise UsageError.

``exclusive_session(url, limits=Limits(), *, application_name="driftwatch")``
    Context manager yielding an autocommit ``psycopg.Connection`` that holds Prisma's
    advisory lock. It retries ``pg_try_advisory_lock`` for up to ``advisory_wait`` s,
    then raises `LockBusy` naming the holder(s)::

        another migration holds Prisma's advisory lock: pid 123 (prisma-migrate / app_user) for 42 s: <query>

    The lock is always released on exit (``pg_advisory_unlock``, and in any case by
    closing the session). Connection failures raise DatabaseError (no password).

``advisory_lock_holders(conn, key=ADVISORY_LOCK_KEY) -> list[LockHolder]``
    Other sessions of this database holding the lock (pg_locks ⨝ pg_stat_activity).

``run_in_transaction(conn, statements, limits=Limits(), *, rehearse=False) -> TransactionOutcome``
    Runs a list of statements (one SQL statement per item; use `split_statements` for
    a script) as: ``BEGIN``; ``SET LOCAL lock_timeout / statement_timeout /
    idle_in_transaction_session_timeout``; each statement, timed; ``COMMIT`` — or
    ``ROLLBACK`` when ``rehearse`` is true or anything fails. Statements that cannot
    run inside a transaction (`needs_own_transaction`: CREATE INDEX CONCURRENTLY,
    VACUUM, …) run afterwards, each on its own with the same timeouts, only if the
    transaction committed; in a rehearsal they are reported as "skipped".
    Refused before anything runs (UsageError): a string instead of a list, an empty
    item, an item holding several statements, transaction control (BEGIN, COMMIT,
    ROLLBACK, …: the guard owns the transaction), a connection already in a transaction.
    Failures:

    * `StatementFailed` — which statement (1-based "statement 2/5" plus its first line
      in the message; ``.index`` is 0-based), PostgreSQL's code and message, and that
      the transaction was rolled back (``.committed`` is True only for a failing
      own-transaction statement, which runs after the commit);
    * `LockTimeout` (a StatementFailed) — waited longer than lock_timeout; names the
      relation, the lock mode and the blocking sessions, seen by a watcher that polls
      ``pg_locks``/``pg_blocking_pids`` from a second connection while a statement runs
      longer than a fraction of lock_timeout (best effort: without it, the message
      still says it was a lock timeout);
    * `ConnectionLost` — the session died (terminated, restart, network): PostgreSQL
      rolled the transaction back, nothing was committed; if it died during COMMIT,
      ``.maybe_committed`` is True and the message says to check before retrying.

    The outcome lists every statement with its status: "applied" (committed),
    "rehearsed" (ran, rolled back on purpose), "rolled_back" (ran, undone by a later
    failure), "failed", "not_run", "skipped".

``run_script(conn, script, limits=Limits()) -> ScriptOutcome``
    Runs a whole SQL file as one simple-protocol query, exactly as Prisma's native
    engine applies a migration: PostgreSQL runs it as one implicit transaction (all or
    nothing) unless the file has its own BEGIN/COMMIT. Session-level lock_timeout and
    statement_timeout apply to each statement. Failures raise the same errors as
    above; the failing statement is located when PostgreSQL reports a position.

``split_statements``, ``statement_spans``, ``needs_own_transaction``,
``is_transaction_control``, ``first_line``
    The SQL lexer lives in `checks.sqltext`; these names are re-exported here because the
    guard's refusals and reports are phrased in their terms.

Typical use (a fix plan)::

    with exclusive_session(url, limits) as conn:
        outcome = run_in_transaction(conn, split_statements(plan_sql), limits, rehearse=dry_run)
"""
from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from .db import connect, scrub
from .errors import ConnectionLost, DatabaseError, LockBusy, LockTimeout, StatementFailed, UsageError
from .sqltext import first_line, is_transaction_control, needs_own_transaction, split_statements, statement_spans

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "ADVISORY_LOCK_KEY",
    "Limits",
    "LockHolder",
    "LockWait",
    "ScriptOutcome",
    "StatementResult",
    "TransactionOutcome",
    "advisory_lock_holders",
    "exclusive_session",
    "first_line",
    "is_transaction_control",
    "needs_own_transaction",
    "run_in_transaction",
    "run_script",
    "split_statements",
    "statement_spans",
]

ADVISORY_LOCK_KEY = 72707369

# SQLSTATEs
_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"


# ---------------------------------------------------------------------------------------------
# Limits and reports


@dataclass(frozen=True)
class Limits:
    """Time bounds of a guarded write, in seconds (see the module docstring)."""

    lock_timeout: float = 5.0
    statement_timeout: float = 60.0
    advisory_wait: float = 10.0
    idle_in_transaction: float = 30.0

    def __post_init__(self) -> None:
        for name in ("lock_timeout", "statement_timeout", "idle_in_transaction", "advisory_wait"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0 or (value == 0 and name != "advisory_wait"):
                what = "zero or more" if name == "advisory_wait" else "a positive number of"
                raise UsageError(f"{name} must be {what} seconds, not {value!r}")


def _ms(seconds: float) -> int:
    return max(1, int(round(seconds * 1000)))


@dataclass(frozen=True)
class LockHolder:
    """A session holding (or blocking on) a lock, as pg_stat_activity shows it.

    `age` is in seconds: for Prisma's advisory lock, how long the session has been
    connected; for a blocker, how long its transaction has been open (upper bounds on
    how long it has held the lock; PostgreSQL does not record when a lock was granted).
    `query` is its current or last statement (or "<insufficient privilege>").
    """

    pid: int
    application_name: str
    usename: str | None
    client_addr: str | None
    age: float | None
    state: str | None
    query: str | None

    def describe(self) -> str:
        """`pid 123 (prisma-migrate / app_user) for 42 s: <query>`"""
        who = f"{self.application_name or 'no application_name'} / {self.usename or '?'}"
        if self.client_addr:
            who += f" from {self.client_addr}"
        text = f"pid {self.pid} ({who})"
        if self.age is not None:
            text += f" for {self.age:.1f} s" if self.age < 10 else f" for {self.age:.0f} s"
        if self.state and self.state != "active":
            text += f", {self.state}"
        query = " ".join((self.query or "").split())
        if query:
            text += ": " + (query if len(query) <= 120 else query[:119] + "…")
        return text


@dataclass(frozen=True)
class LockWait:
    """What a statement was seen waiting for: a lock and the sessions blocking it."""

    locktype: str
    mode: str
    relation: str | None
    transactionid: str | None
    blockers: tuple[LockHolder, ...]

    def describe(self) -> str:
        article = "an" if self.mode[:1].upper() in "AEIOU" else "a"
        if self.relation:
            what = f"{article} {self.mode} on {self.relation}"
        elif self.locktype == "transactionid":
            what = f"a row lock (waiting for transaction {self.transactionid} to finish)"
        else:
            what = f"{article} {self.mode} ({self.locktype} lock)"
        if self.blockers:
            return what + " held by " + "; ".join(b.describe() for b in self.blockers)
        return what


@dataclass(frozen=True)
class StatementResult:
    """One statement of a guarded write and what happened to it."""

    index: int  # 0-based position in the list given
    sql: str
    status: str  # applied | rehearsed | rolled_back | failed | not_run | skipped
    own_transaction: bool = False
    seconds: float | None = None
    command: str | None = None  # PostgreSQL's command tag, e.g. "CREATE TABLE"
    rowcount: int | None = None
    error: str | None = None

    @property
    def first_line(self) -> str:
        return first_line(self.sql)


@dataclass(frozen=True)
class TransactionOutcome:
    """The result of `run_in_transaction`: every statement, in the order given."""

    committed: bool
    rehearsed: bool
    statements: tuple[StatementResult, ...]
    seconds: float
    notices: tuple[str, ...] = ()

    def report_lines(self) -> list[str]:
        """One line per statement: status, time, position, first line."""
        total = len(self.statements)
        lines = []
        for r in self.statements:
            took = f"{r.seconds:8.3f} s" if r.seconds is not None else " " * 10
            own = " (own transaction)" if r.own_transaction else ""
            lines.append(f"{r.status:<11} {took}  {r.index + 1}/{total}  {r.first_line}{own}")
        return lines


@dataclass(frozen=True)
class ScriptOutcome:
    """The result of `run_script`: a whole file run as one simple query."""

    seconds: float
    statements: int  # as counted by split_statements (None-safe: 0 if it could not split)
    commands: tuple[str, ...] = ()  # PostgreSQL's command tags, in order
    notices: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Sessions and Prisma's advisory lock


@cache
def _query(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _holder(row: Sequence[Any]) -> LockHolder:
    pid, app, user, addr, age, state, query = row
    return LockHolder(int(pid), app or "", user, addr, float(age) if age is not None else None, state, query)


def advisory_lock_holders(conn: "psycopg.Connection", key: int = ADVISORY_LOCK_KEY) -> list[LockHolder]:
    """Other sessions of this database that hold the advisory lock `key` (Prisma's by default)."""
    import psycopg

    try:
        rows = conn.execute(_query("guard_holders.sql"), {"key": key}).fetchall()
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot list the holders of advisory lock {key}: {_first(exc)}") from None
    return [_holder(r) for r in rows]


def _target(conn: "psycopg.Connection") -> str:
    """`postgresql://user@host:port/db` from the live connection: never a password."""
    try:
        info = conn.info
        host = info.host or ""
        port = f":{info.port}" if info.port and not host.startswith("/") else ""
        return f"postgresql://{info.user}@{host}{port}/{info.dbname}"
    except Exception:  # a closed connection
        return "the database"


@contextmanager
def exclusive_session(
    url: str, limits: Limits | None = None, *, application_name: str = "driftwatch"
) -> Iterator["psycopg.Connection"]:
    """Yield an autocommit connection holding Prisma Migrate's advisory lock; always release it."""
    import psycopg

    limits = limits or Limits()
    conn = connect(url, autocommit=True, application_name=application_name)
    try:
        try:
            _acquire(conn, limits)
        except psycopg.Error as exc:
            raise DatabaseError(
                f"{_target(conn)}: cannot take Prisma's advisory lock: {scrub(_first(exc), url)}"
            ) from None
        try:
            yield conn
        finally:
            _release(conn)
    finally:
        conn.close()  # ends the session: PostgreSQL releases every lock it still holds


def _acquire(conn: "psycopg.Connection", limits: Limits) -> None:
    deadline = time.monotonic() + limits.advisory_wait
    pause = 0.05
    while True:
        got = conn.execute("SELECT pg_try_advisory_lock(%s::int8)", (ADVISORY_LOCK_KEY,)).fetchone()
        if got and got[0]:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(pause, left))
        pause = min(pause * 1.5, 0.5)
    holders = advisory_lock_holders(conn)
    if not holders:  # it was released between our last try and the look-up: one more try
        got = conn.execute("SELECT pg_try_advisory_lock(%s::int8)", (ADVISORY_LOCK_KEY,)).fetchone()
        if got and got[0]:
            return
    named = "; ".join(h.describe() for h in holders) or "a session that has since let go"
    raise LockBusy(
        f"another migration holds Prisma's advisory lock ({ADVISORY_LOCK_KEY}) on {_target(conn)}: {named} "
        f"(waited {limits.advisory_wait:g} s; nothing was changed — retry when it has finished)",
        holders=tuple(holders),
    )


def _release(conn: "psycopg.Connection") -> None:
    from psycopg import pq

    if conn.closed or conn.broken:
        return
    try:
        if conn.info.transaction_status != pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
        conn.execute("SELECT pg_advisory_unlock(%s::int8)", (ADVISORY_LOCK_KEY,))
    except Exception:
        conn.close()  # closing the session releases the lock too


# ---------------------------------------------------------------------------------------------
# Watching lock waits from a second connection


class _LockWatcher:
    """Poll what a busy session waits for, from a second connection, while a statement runs.

    It connects only when a statement has been running for `delay` seconds, then polls
    every `interval` seconds (both a fraction of lock_timeout, so that a wait is seen
    before it times out). Everything here is best effort: any failure just means the
    error message will lack the relation and the blockers.
    """

    def __init__(self, conn: "psycopg.Connection", limits: Limits) -> None:
        self._pid = conn.info.backend_pid
        self._conninfo = _conninfo(conn)
        self._delay = min(0.1, limits.lock_timeout / 4)
        self._interval = max(0.02, min(0.25, limits.lock_timeout / 5))
        self._cap = max(self._interval, limits.lock_timeout / 3)
        self._cond = threading.Condition()
        self._generation = 0
        self._since: float | None = None
        self._seen: LockWait | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def started(self) -> None:
        with self._cond:
            self._generation += 1
            self._since = time.monotonic()
            self._seen = None
            if self._thread is None and self._conninfo is not None:
                self._thread = threading.Thread(target=self._run, name="driftwatch-lockwatch", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def finished(self) -> LockWait | None:
        with self._cond:
            self._since = None
            seen, self._seen = self._seen, None
            return seen

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        import psycopg

        watch: psycopg.Connection | None = None
        try:
            while True:
                with self._cond:
                    while not self._closed and (
                        self._since is None or time.monotonic() - self._since < self._delay
                    ):
                        timeout = None if self._since is None else self._delay - (time.monotonic() - self._since)
                        self._cond.wait(timeout)
                    if self._closed:
                        return
                    generation = self._generation
                interval = self._interval
                while True:
                    if watch is None:
                        watch = psycopg.connect(self._conninfo, autocommit=True)
                        watch.execute("SET statement_timeout = 2000")
                    rows = watch.execute(_query("guard_lock_waits.sql"), {"pid": self._pid}).fetchall()
                    wait = _lock_wait(rows)
                    with self._cond:
                        if self._closed or generation != self._generation or self._since is None:
                            break
                        if wait is not None:
                            self._seen = wait
                        self._cond.wait(interval)
                        if self._closed or generation != self._generation or self._since is None:
                            break
                    interval = min(interval * 1.5, self._cap)
        except Exception:
            return
        finally:
            if watch is not None:
                try:
                    watch.close()
                except Exception:
                    pass


def _conninfo(conn: "psycopg.Connection") -> str | None:
    """The parameters libpq used for `conn` (password included), for a second session."""
    from psycopg.conninfo import make_conninfo

    try:
        params = {
            o.keyword.decode(): o.val.decode(errors="replace")
            for o in conn.pgconn.info
            if o.val is not None and o.keyword
        }
    except Exception:
        return None
    params["application_name"] = "driftwatch-lockwatch"
    params["connect_timeout"] = "5"
    return make_conninfo("", **params)


def _lock_wait(rows: list[tuple[Any, ...]]) -> LockWait | None:
    if not rows:
        return None
    locktype, mode, relation, xid = rows[0][:4]
    blockers = tuple(_holder(r[4:]) for r in rows if r[4] is not None)
    return LockWait(locktype, mode, relation, xid, blockers)


# ---------------------------------------------------------------------------------------------
# Running statements


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _db_error(exc: "psycopg.Error") -> str:
    """PostgreSQL's message (primary text, plus detail/hint) on one line."""
    diag = getattr(exc, "diag", None)
    primary = (diag.message_primary if diag is not None else None) or _first(exc)
    extra = []
    if diag is not None and diag.message_detail:
        extra.append(f"detail: {diag.message_detail}")
    if diag is not None and diag.message_hint:
        extra.append(f"hint: {diag.message_hint}")
    return " ".join([primary, *(f"({e})" for e in extra)]).replace("\n", " ")


def _is_dead(conn: "psycopg.Connection") -> bool:
    """After an error: did the session end (terminated, server restart, network)?"""
    return bool(conn.closed or conn.broken)


def _validate(statements: Sequence[str]) -> list[str]:
    if isinstance(statements, str):
        raise UsageError("run_in_transaction takes a list of statements; split a script with split_statements()")
    checked = []
    for i, s in enumerate(statements, 1):
        if not isinstance(s, str):
            raise UsageError(f"statement {i} is a {type(s).__name__}, not SQL text")
        spans = statement_spans(s)
        if not spans:
            raise UsageError(f"statement {i} is empty (only whitespace or comments)")
        if len(spans) > 1:
            raise UsageError(
                f"statement {i} ({first_line(s)}) holds {len(spans)} statements; pass them as separate items"
            )
        if is_transaction_control(s):
            raise UsageError(
                f"statement {i} ({first_line(s)}) controls the transaction; the guard owns BEGIN/COMMIT/ROLLBACK"
            )
        checked.append(s)
    return checked


def _timeouts(limits: Limits, local: bool) -> str:
    scope = "SET LOCAL" if local else "SET"
    parts = [f"{scope} lock_timeout = {_ms(limits.lock_timeout)}",
             f"{scope} statement_timeout = {_ms(limits.statement_timeout)}"]
    if local:
        parts.append(f"SET LOCAL idle_in_transaction_session_timeout = {_ms(limits.idle_in_transaction)}")
    return "; ".join(parts)


class _Notices:
    def __init__(self, conn: "psycopg.Connection") -> None:
        self.conn = conn
        self.items: list[str] = []

    def __call__(self, diag: Any) -> None:
        self.items.append(f"{diag.severity or 'NOTICE'}: {diag.message_primary}")

    def __enter__(self) -> "_Notices":
        self.conn.add_notice_handler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.conn.remove_notice_handler(self)
        except Exception:
            pass


def run_in_transaction(
    conn: "psycopg.Connection",
    statements: Sequence[str],
    limits: Limits | None = None,
    *,
    rehearse: bool = False,
    before_rollback: Callable[["psycopg.Connection"], None] | None = None,
) -> TransactionOutcome:
    """Run `statements` all-or-nothing with bounded waits (see the module docstring).

    In a rehearsal, `before_rollback(conn)` runs after the last statement and before the
    ROLLBACK, inside the same transaction: it sees the database as the statements left it
    (a runbook's rehearsal inspects the catalog there to say what would still be missing).
    It must not end the transaction; an exception from it fails the rehearsal."""
    from psycopg import pq

    limits = limits or Limits()
    stmts = _validate(statements)
    if conn.closed or conn.broken:
        raise DatabaseError("the connection is closed")
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise UsageError("the connection is already inside a transaction; the guard needs an idle one")
    version = conn.info.server_version
    own = [needs_own_transaction(s, server_version_num=version) for s in stmts]
    n = len(stmts)
    results: list[StatementResult | None] = [None] * n
    target = _target(conn)
    started = time.monotonic()
    autocommit = conn.autocommit
    conn.autocommit = True  # we send BEGIN/COMMIT ourselves, nothing implicit
    watcher = _LockWatcher(conn, limits)
    committed = False

    def outcome() -> TransactionOutcome:
        filled = tuple(
            r if r is not None else StatementResult(i, stmts[i], "not_run", own_transaction=own[i])
            for i, r in enumerate(results)
        )
        return TransactionOutcome(committed, rehearse and not committed, filled,
                                  time.monotonic() - started, tuple(notices.items))

    try:
        with _Notices(conn) as notices:
            in_tx = [i for i in range(n) if not own[i]]
            if in_tx:
                committed = _run_transaction(conn, stmts, in_tx, n, limits, rehearse, results, watcher,
                                             target, outcome, before_rollback)
            else:
                committed = not rehearse
            for i in (i for i in range(n) if own[i]):
                if rehearse:
                    results[i] = StatementResult(i, stmts[i], "skipped", own_transaction=True,
                                                 error="cannot run inside a transaction, so not rehearsed")
                    continue
                _run_alone(conn, stmts, i, n, limits, results, watcher, target, outcome)
            return outcome()
    finally:
        watcher.close()
        if not conn.closed and not conn.broken:
            try:
                conn.autocommit = autocommit
            except Exception:
                pass


def _run_transaction(conn, stmts, in_tx, n, limits, rehearse, results, watcher, target, outcome,  # type: ignore[no-untyped-def]
                     before_rollback=None) -> bool:
    """BEGIN … COMMIT (or ROLLBACK) around the statements that can share a transaction."""
    import psycopg

    current: int | None = None
    seen: LockWait | None = None
    phase = "BEGIN"
    try:
        conn.execute("BEGIN", prepare=False)
        conn.execute(_timeouts(limits, local=True), prepare=False)
        for i in in_tx:
            current, phase = i, "statement"
            t0 = time.monotonic()
            watcher.started()
            try:
                cur = conn.execute(stmts[i], prepare=False)
            finally:
                seen = watcher.finished()
            results[i] = StatementResult(i, stmts[i], "rehearsed" if rehearse else "applied",
                                         seconds=time.monotonic() - t0, command=cur.statusmessage,
                                         rowcount=cur.rowcount if cur.rowcount >= 0 else None)
        current = None
        if rehearse:
            if before_rollback is not None:
                before_rollback(conn)
            phase = "ROLLBACK"
            conn.execute("ROLLBACK", prepare=False)
            return False
        phase = "COMMIT"
        cur = conn.execute("COMMIT", prepare=False)
        if cur.statusmessage != "COMMIT":  # PostgreSQL answers ROLLBACK to COMMIT in a failed transaction
            raise DatabaseError(f"{target}: COMMIT answered {cur.statusmessage!r}: nothing was committed")
        return True
    except psycopg.Error as exc:
        if phase != "statement":
            seen = None
        _mark_undone(results, rehearse)
        if current is not None:
            results[current] = StatementResult(current, stmts[current], "failed", error=_db_error(exc))
        if _is_dead(conn):
            raise _lost(exc, target, current, n, stmts, phase, outcome()) from None
        _rollback(conn)
        if phase == "COMMIT":
            raise StatementFailed(
                f"{target}: COMMIT failed: {exc.sqlstate or ''} {_db_error(exc)}; the transaction was rolled back, "
                f"nothing was changed", sqlstate=exc.sqlstate, database_error=_db_error(exc), outcome=outcome(),
            ) from None
        raise _statement_error(exc, target, current, n, stmts, limits, seen, outcome(), done=_ROLLED_BACK) from None
    except BaseException:
        # KeyboardInterrupt or a bug between statements: never leave the transaction open.
        _mark_undone(results, rehearse)
        _rollback(conn)
        raise


def _run_alone(conn, stmts, i, n, limits, results, watcher, target, outcome) -> None:  # type: ignore[no-untyped-def]
    """A statement that cannot run in a transaction block: session timeouts, autocommit."""
    import psycopg

    seen = None
    try:
        conn.execute(_timeouts(limits, local=False), prepare=False)
        t0 = time.monotonic()
        watcher.started()
        try:
            cur = conn.execute(stmts[i], prepare=False)
        finally:
            seen = watcher.finished()
        results[i] = StatementResult(i, stmts[i], "applied", own_transaction=True,
                                     seconds=time.monotonic() - t0, command=cur.statusmessage)
    except psycopg.Error as exc:
        results[i] = StatementResult(i, stmts[i], "failed", own_transaction=True, error=_db_error(exc))
        if _is_dead(conn):
            raise _lost(exc, target, i, n, stmts, "own", outcome()) from None
        raise _statement_error(exc, target, i, n, stmts, limits, seen, outcome(), done=_AFTER_COMMIT,
                               committed=True) from None
    finally:
        if not conn.closed and not conn.broken:
            try:
                conn.execute("RESET lock_timeout; RESET statement_timeout", prepare=False)
            except Exception:
                pass


def _mark_undone(results: list[StatementResult | None], rehearse: bool) -> None:
    for j, r in enumerate(results):
        if r is not None and r.status in ("applied", "rehearsed") and not r.own_transaction:
            results[j] = StatementResult(r.index, r.sql, "rolled_back", seconds=r.seconds, command=r.command,
                                         rowcount=r.rowcount)


def _rollback(conn: "psycopg.Connection") -> None:
    """Roll back; if even that fails, close the session so that nothing can be committed later."""
    from psycopg import pq

    if conn.closed:
        return
    try:
        if conn.info.transaction_status != pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK", prepare=False)
    except Exception:
        conn.close()


def _where(i: int | None, n: int, stmts: Sequence[str]) -> str:
    if i is None:
        return ""
    return f"statement {i + 1}/{n} ({first_line(stmts[i])})"


def _lost(exc: BaseException, target: str, i: int | None, n: int, stmts: Sequence[str], phase: str,
          outcome: TransactionOutcome) -> ConnectionLost:
    reason = _first(exc)
    if phase == "COMMIT":
        return ConnectionLost(
            f"lost the connection to {target} while committing ({reason}): the transaction may or may not "
            f"have been committed — check the database before retrying",
            maybe_committed=True, outcome=outcome,
        )
    where = _where(i, n, stmts) or phase
    if phase == "own":
        tail = ("it ran on its own after the transaction had committed; if it was CREATE INDEX CONCURRENTLY, "
                "an INVALID index may be left behind — drop it before retrying")
    else:
        tail = "PostgreSQL rolled back the open transaction: nothing was committed"
    return ConnectionLost(f"lost the connection to {target} during {where}: {reason}; {tail}",
                          index=i, outcome=outcome)


_ROLLED_BACK = "the transaction was rolled back: nothing was changed"
_AFTER_COMMIT = ("it ran on its own after the transaction had committed, so the statements before it are applied; "
                 "an interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index — drop it before retrying")


def _statement_error(exc: "psycopg.Error", target: str, i: int | None, n: int, stmts: Sequence[str],
                     limits: Limits, seen: LockWait | None, outcome: Any, *, done: str,
                     committed: bool = False) -> StatementFailed:
    message = _db_error(exc)
    sqlstate = exc.sqlstate
    where = _where(i, n, stmts) or "the script"
    common = dict(index=i, statement=stmts[i] if i is not None else None, sqlstate=sqlstate,
                  database_error=message, outcome=outcome, committed=committed)
    if sqlstate == _LOCK_NOT_AVAILABLE and "lock timeout" in message:
        if seen is not None:
            waited = f"waited more than lock_timeout = {limits.lock_timeout:g} s for {seen.describe()}"
        else:
            waited = f"waited more than lock_timeout = {limits.lock_timeout:g} s for a lock another session holds"
        return LockTimeout(f"{target}: {where} {waited}; {done}",
                           relation=seen.relation if seen else None, mode=seen.mode if seen else None,
                           blockers=seen.blockers if seen else (), **common)  # type: ignore[arg-type]
    if sqlstate == _QUERY_CANCELED and "statement timeout" in message:
        return StatementFailed(
            f"{target}: {where} ran longer than statement_timeout = {limits.statement_timeout:g} s; {done}",
            **common)  # type: ignore[arg-type]
    return StatementFailed(f"{target}: {where} failed: {sqlstate or ''} {message}; {done}",
                           **common)  # type: ignore[arg-type]


def run_script(conn: "psycopg.Connection", script: str, limits: Limits | None = None) -> ScriptOutcome:
    """Run a whole SQL file as one simple query, as Prisma's native engine applies a migration."""
    import psycopg
    from psycopg import pq

    limits = limits or Limits()
    if conn.closed or conn.broken:
        raise DatabaseError("the connection is closed")
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise UsageError("the connection is already inside a transaction; the guard needs an idle one")
    try:
        spans: list[tuple[int, int]] | None = statement_spans(script)
    except UsageError:
        spans = None  # PostgreSQL will say what is wrong; we only lose the statement's position
    stmts = [script[s:e] for s, e in spans] if spans else []
    own_control = any(is_transaction_control(s) for s in stmts)
    target = _target(conn)
    autocommit = conn.autocommit
    conn.autocommit = True
    watcher = _LockWatcher(conn, limits)
    t0 = time.monotonic()
    try:
        with _Notices(conn) as notices:
            conn.execute(_timeouts(limits, local=False), prepare=False)
            watcher.started()
            try:
                cur = conn.execute(script, prepare=False)
                commands = [cur.statusmessage or ""]
                while cur.nextset():
                    commands.append(cur.statusmessage or "")
            except psycopg.Error as exc:
                seen = watcher.finished()
                i = _locate(script, spans, exc)
                n = len(stmts)
                if own_control:
                    done = "the script has its own transaction control: what it committed before the error stays"
                else:
                    done = "its implicit transaction was rolled back: nothing was changed"
                if _is_dead(conn):
                    raise ConnectionLost(
                        f"lost the connection to {target} while running the script: {_first(exc)}; {done}",
                        index=i,
                    ) from None
                _rollback(conn)  # a script with its own BEGIN leaves the session in a failed transaction
                raise _statement_error(exc, target, i, n, stmts, limits, seen, None, done=done) from None
            watcher.finished()
            if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                # BEGIN without COMMIT: its work would vanish when the session ends; do not
                # let the caller record it as applied.
                _rollback(conn)
                raise StatementFailed(
                    f"{target}: the script opened a transaction (BEGIN) and did not commit it; that transaction "
                    f"was rolled back (anything the script committed before it stays)", database_error="transaction left open by the script")
            return ScriptOutcome(time.monotonic() - t0, len(stmts), tuple(commands), tuple(notices.items))
    finally:
        watcher.close()
        if not conn.closed and not conn.broken:
            try:
                conn.execute("RESET lock_timeout; RESET statement_timeout", prepare=False)
                conn.autocommit = autocommit
            except Exception:
                pass


@dataclass(frozen=True)
class ScriptRehearsal:
    """What `rehearse_scripts` saw of one script. `status`: "rehearsed" (it ran; rolled back
    with the rest), "failed" (PostgreSQL refused it: `error`, `sqlstate`, `statement`),
    "cannot_rehearse" (it would commit or cannot run inside a transaction: `error` says why),
    or "not_rehearsed" (an earlier script stopped the rehearsal)."""

    index: int
    status: str
    seconds: float = 0.0
    statements: int = 0
    error: str | None = None
    sqlstate: str | None = None
    statement: int | None = None  # 0-based, the failing statement when PostgreSQL said where


_UNSAFE_NEW_ENUM_VALUE = "55P04"


def rehearse_scripts(conn: "psycopg.Connection", scripts: Sequence[str], limits: Limits | None = None, *,
                     before_rollback: Callable[["psycopg.Connection"], None] | None = None
                     ) -> tuple[ScriptRehearsal, ...]:
    """Run whole SQL files one after another, each as one simple query (as `run_script` and
    Prisma run a migration), inside ONE transaction that is always rolled back.

    Why one transaction: a later migration may need what an earlier one creates, and
    nothing may stay behind. Each script runs under a savepoint, so that a failure leaves the
    transaction usable for `before_rollback(conn)` (an inspection of what the scripts that
    did run left). It stops at the first script that fails, since a deploy stops there too,
    and refuses — without running it — a script that would commit (its own BEGIN/COMMIT) or
    cannot run inside a transaction (CREATE INDEX CONCURRENTLY…). A script using an enum
    value added by an earlier one cannot be rehearsed either: PostgreSQL allows that only
    after the adding transaction commits, which a deploy does between migrations.
    """
    import psycopg
    from psycopg import pq

    limits = limits or Limits()
    if conn.closed or conn.broken:
        raise DatabaseError("the connection is closed")
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise UsageError("the connection is already inside a transaction; the guard needs an idle one")
    version = conn.info.server_version
    target = _target(conn)
    results: list[ScriptRehearsal] = []
    autocommit = conn.autocommit
    conn.autocommit = True  # BEGIN and ROLLBACK are ours
    watcher = _LockWatcher(conn, limits)
    try:
        conn.execute("BEGIN", prepare=False)
        conn.execute(_timeouts(limits, local=True), prepare=False)
        for i, script in enumerate(scripts):
            if results and results[-1].status != "rehearsed":
                results.append(ScriptRehearsal(i, "not_rehearsed"))
                continue
            try:
                spans: list[tuple[int, int]] | None = statement_spans(script)
            except UsageError:
                spans = None
            stmts = [script[a:b] for a, b in spans] if spans else []
            why = _not_rehearsable(stmts, version)
            if why is not None:
                results.append(ScriptRehearsal(i, "cannot_rehearse", statements=len(stmts), error=why))
                continue
            conn.execute(f"SAVEPOINT driftwatch_script_{i}", prepare=False)
            t0 = time.monotonic()
            watcher.started()
            try:
                cur = conn.execute(script, prepare=False)
                while cur.nextset():
                    pass
            except psycopg.Error as exc:
                seen = watcher.finished()
                if _is_dead(conn):
                    raise ConnectionLost(f"lost the connection to {target} while rehearsing: {_first(exc)}; "
                                         "nothing was changed") from None
                conn.execute(f"ROLLBACK TO SAVEPOINT driftwatch_script_{i}", prepare=False)
                at = _locate(script, spans, exc)
                if exc.sqlstate == _UNSAFE_NEW_ENUM_VALUE and i > 0:
                    results.append(ScriptRehearsal(
                        i, "cannot_rehearse", time.monotonic() - t0, len(stmts),
                        "it uses an enum value an earlier migration adds; PostgreSQL allows that only once the "
                        "adding transaction has committed (a deploy commits each migration), so it cannot be "
                        f"rehearsed in one transaction ({_db_error(exc)})", exc.sqlstate, at))
                    continue
                failed = _statement_error(exc, target, at, len(stmts), stmts, limits, seen, None,
                                          done="a deploy would stop here")
                results.append(ScriptRehearsal(i, "failed", time.monotonic() - t0, len(stmts), str(failed),
                                               exc.sqlstate, at))
                continue
            watcher.finished()
            conn.execute(f"RELEASE SAVEPOINT driftwatch_script_{i}", prepare=False)
            results.append(ScriptRehearsal(i, "rehearsed", time.monotonic() - t0, len(stmts)))
        if before_rollback is not None:
            before_rollback(conn)
        return tuple(results)
    except psycopg.Error as exc:
        if _is_dead(conn):
            raise ConnectionLost(f"lost the connection to {target} while rehearsing: {_first(exc)}; "
                                 "nothing was changed") from None
        raise DatabaseError(f"{target}: the rehearsal failed: {_db_error(exc)}; nothing was changed") from None
    finally:
        watcher.close()
        _rollback(conn)
        if not conn.closed and not conn.broken:
            try:
                conn.autocommit = autocommit
            except Exception:
                pass


def _not_rehearsable(stmts: Sequence[str], server_version: int) -> str | None:
    """Why a script cannot be rehearsed inside a transaction, or None."""
    for j, stmt in enumerate(stmts):
        if is_transaction_control(stmt):
            return (f"statement {j + 1} ({first_line(stmt)}) is its own transaction control: rehearsing it would "
                    "commit, so it is not run")
        if needs_own_transaction(stmt, server_version_num=server_version):
            return f"statement {j + 1} ({first_line(stmt)}) cannot run inside a transaction, so it is not run"
    return None


def _locate(script: str, spans: list[tuple[int, int]] | None, exc: "psycopg.Error") -> int | None:
    """The index of the statement PostgreSQL's error position points into, if it gave one."""
    diag = getattr(exc, "diag", None)
    position = diag.statement_position if diag is not None else None
    if not spans or not position:
        return None
    try:
        offset = int(position) - 1  # 1-based, in characters
    except ValueError:
        return None
    for i, (_, end) in enumerate(spans):
        if offset < end:
            return i
    return len(spans) - 1
