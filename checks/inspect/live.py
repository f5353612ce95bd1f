"""Read a live PostgreSQL catalog into a `Catalog`, the same shape the Prisma compiler produces.

    inspect_database(conn_or_url, schemas) -> Catalog

Five catalog queries (``schemas.sql``, ``columns.sql``, ``constraints.sql``,
``indexes.sql``, ``enums.sql`` beside this file) read every schema at once, so the number
of statements does not grow with the number of tables: BEGIN, one batch of session
settings, the five queries, ROLLBACK. They run in one REPEATABLE READ, READ ONLY
transaction (a consistent snapshot that cannot write) with a statement_timeout and a
lock_timeout, so that an inspection can neither hang nor change anything. The
transaction is always rolled back; on a connection that is already inside a
transaction the work happens in a savepoint that is rolled back, so the caller's
settings are left as they were.

The session settings are pinned for the transaction because `pg_get_expr` and
`format_type` print according to them: ``TimeZone=UTC``, ``DateStyle=ISO``,
``IntervalStyle=postgres``, ``extra_float_digits=1``, ``bytea_output=hex``,
``standard_conforming_strings=on``, and ``search_path`` set to the inspected schemas
(an expression naming an object of an inspected schema prints it unqualified, as
Prisma's DDL writes it). See `checks.catalog` for the canonical forms and
`checks.defaults` for defaults.

Representation choices beyond the catalog docstring:

* Partitions are left out (the partitioned parent is the table); children of
  old-style inheritance are tables like any other.
* A generated column's expression is not a default (default None).
* An expression index column is named by PostgreSQL's deparse of the expression
  (``lower(email)``, ``(a + b)``); an index predicate is ``pg_get_expr`` of it without
  the outer parentheses PostgreSQL adds (``"deletedAt" IS NULL``).
* Indexes backing exclusion constraints are not reported; INCLUDE columns are
  `Index.include`; NULLS FIRST/LAST is not represented (see `checks.catalog.Index`).
"""
from __future__ import annotations

import os
import threading
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Sequence, Union

from ..db import connect, scrub
from ..errors import DatabaseError, UsageError

if TYPE_CHECKING:
    import psycopg

    from ..catalog import Catalog

# checks.catalog and checks.defaults are imported by `_build`, at the end of an inspection:
# `check_database` imports them on its own thread while PostgreSQL runs the queries.

__all__ = ["inspect_database", "inspect_in_background", "BuildMemo", "QUERY_FILES"]

QUERY_FILES = ("schemas.sql", "columns.sql", "constraints.sql", "indexes.sql", "enums.sql")

DEFAULT_STATEMENT_TIMEOUT = 30.0  # seconds, per statement

# Real schemas repeat the same few defaults (CURRENT_TIMESTAMP, 0, 'PENDING') thousands of times.
@lru_cache(maxsize=8192)
def _normalize_default(expr: str | None, column_type: str) -> tuple[str | None, bool]:
    from ..defaults import normalize_default

    return normalize_default(expr, column_type)

_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


@cache
def _query(name: str) -> str:
    try:  # beside this file; importlib.resources (~20 ms to import) only for exotic installs
        with open(os.path.join(os.path.dirname(__file__), name), encoding="utf-8") as f:
            return f.read()
    except OSError:
        from importlib import resources

        return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


# Catalog functions (pg_get_expr) open the table: an ALTER TABLE waiting or running holds
# them back. Give up soon and say who holds the lock, rather than hang an incident check.
LOCK_TIMEOUT = 5.0


def inspect_database(
    conn_or_url: Union[str, "psycopg.Connection"],
    schemas: Sequence[str],
    *,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
    prepare: bool | None = None,
    memo: "BuildMemo | None" = None,
) -> Catalog:
    """Return the tables and enums of ``schemas`` as a `Catalog`.

    ``conn_or_url`` is a psycopg connection (left open, its transaction state kept) or a
    ``postgresql://`` URL (connected through `checks.db.connect`, closed afterwards).
    ``Catalog.schemas`` lists the requested schemas that exist, in the requested order,
    so a missing schema shows up as a difference. Tables and enums are sorted by
    (schema, name). Raises DatabaseError (message without password) when a query
    fails or exceeds ``statement_timeout`` seconds.

    ``prepare=True`` prepares the catalog queries on the connection (psycopg keeps them per
    connection): for a connection kept open across inspections (`checks.monitor.connections`),
    where the second and later inspections skip PostgreSQL's parse and plan of each query.
    None leaves it to psycopg's default (prepared after a few executions).
    ``memo`` (a `BuildMemo` kept by the caller for this database) returns the previous
    `Catalog` object itself when the catalog rows are the same as last time.
    """
    return _inspect_any(conn_or_url, schemas, statement_timeout, prepare=prepare, memo=memo)


class BuildMemo:
    """The last rows read from one database and the `Catalog` built from them.

    Building the catalog is a pure function of the rows, and a resident poller reads the same
    rows minute after minute: comparing them with the last ones (list equality, in C) costs a
    fraction of building thousands of frozen dataclasses again, and returning the very same
    object lets the caller reuse what it computed from it (the diff). Holds one set of rows, so
    only callers that re-read the same database keep one (never the one-shot CLI: it would
    add the rows to its peak memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[list[str], dict[str, list[tuple]], Catalog] | None = None
        self.hits = 0

    def build(self, schemas: list[str], rows: dict[str, list[tuple]]) -> Catalog:
        with self._lock:
            last = self._last
        if last is not None and last[0] == schemas and last[1] == rows:
            self.hits += 1
            return last[2]
        catalog = _build(schemas, rows)
        with self._lock:
            self._last = (schemas, rows, catalog)
        return catalog


def _inspect_any(conn_or_url, schemas: Sequence[str], statement_timeout: float, before_fetch=None,
                 prepare: bool | None = None, memo: BuildMemo | None = None) -> Catalog:
    if isinstance(schemas, str):
        raise UsageError("schemas must be a sequence of schema names, not a string")
    wanted = list(dict.fromkeys(schemas))
    if isinstance(conn_or_url, str):
        url = conn_or_url
        conn = connect(url)
        try:
            return _inspect(conn, wanted, statement_timeout, url, before_fetch, prepare, memo)
        finally:
            conn.close()
    return _inspect(conn_or_url, wanted, statement_timeout, None, before_fetch, prepare, memo)


class BackgroundInspection:
    """`inspect_database(url, schemas)` started on a thread, so that connecting and
    PostgreSQL's work on the catalog queries overlap with the caller's own work (parsing
    and compiling the schema). See `inspect_in_background`.

    The thread runs the queries at once but converts their results to Python objects
    only once the caller asks for them (`result`) or gives up (`abandon`): converting is
    CPU work that cannot overlap under the GIL anyway, and holding the rows while the
    caller holds a large schema's syntax tree would add both to the peak memory."""

    def __init__(self, url: str, schemas: Sequence[str], statement_timeout: float) -> None:
        self.url = url
        self.schemas = list(dict.fromkeys(schemas))
        self.statement_timeout = statement_timeout
        self._catalog: Catalog | None = None
        self._error: BaseException | None = None
        self._go = threading.Event()  # the caller is ready for the rows
        self._thread = threading.Thread(target=self._run, name="driftwatch-inspect", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._catalog = _inspect_any(self.url, self.schemas, self.statement_timeout, self._go.wait)
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def abandon(self) -> None:
        """The caller will not ask: let the thread finish and close its connection."""
        self._go.set()

    def result(self, schemas: Sequence[str]) -> Catalog:
        """The catalog of ``schemas``: the background one when it inspected those schemas
        (its errors raised here, as `inspect_database` would raise them), else a new
        inspection now."""
        self._go.set()
        if isinstance(schemas, str):
            raise UsageError("schemas must be a sequence of schema names, not a string")
        if list(dict.fromkeys(schemas)) != self.schemas:  # the guess was wrong: do it again
            return inspect_database(self.url, schemas, statement_timeout=self.statement_timeout)
        if self._thread.is_alive():
            _prepare_build()  # on this thread, while the other one waits for PostgreSQL
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        assert self._catalog is not None
        return self._catalog


def inspect_in_background(
    url: str, schemas: Sequence[str], *, statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT
) -> BackgroundInspection:
    """Start inspecting ``schemas`` (a best guess is fine: `BackgroundInspection.result`
    is given the real list and inspects again if the guess was wrong)."""
    # psycopg is imported here, on the caller's thread: imported on a thread that competes
    # for the GIL with a busy caller, its hundreds of file reads each wait for the GIL
    # again, and the import takes several times longer.
    import psycopg  # noqa: F401
    from psycopg import pq, sql  # noqa: F401

    return BackgroundInspection(url, schemas, statement_timeout)


def _inspect(conn: "psycopg.Connection", schemas: list[str], timeout: float, url: str | None,
             before_fetch=None, prepare: bool | None = None, memo: BuildMemo | None = None) -> Catalog:
    import psycopg
    from psycopg import pq

    status = conn.info.transaction_status
    if status == pq.TransactionStatus.INERROR:
        raise DatabaseError("cannot inspect the database: the connection is in a failed transaction")
    outermost = status == pq.TransactionStatus.IDLE
    params = {"schemas": schemas}
    # One cursor per query, so that every result is still there (compact, in libpq) when
    # they are all fetched at the end, after the transaction: the catalog functions'
    # table locks are not held while a background caller finishes its own work.
    cursors = [conn.cursor() for _ in QUERY_FILES]
    try:
        try:
            with conn.transaction(force_rollback=True):
                cursors[0].execute(_settings(schemas, timeout, outermost))
                for cur, name in zip(cursors, QUERY_FILES):
                    cur.execute(_query(name), params, prepare=prepare)
            if before_fetch is not None:
                before_fetch()
            rows = {name: cur.fetchall() for cur, name in zip(cursors, QUERY_FILES)}
        finally:
            for cur in cursors:
                cur.close()
    except psycopg.errors.LockNotAvailable:
        raise DatabaseError(_lock_message(conn, schemas, min(timeout, LOCK_TIMEOUT))) from None
    except psycopg.errors.QueryCanceled:
        raise DatabaseError(
            f"inspecting the database took longer than {timeout:g} s (statement_timeout); nothing was changed"
        ) from None
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatabaseError(f"cannot inspect the database: {scrub(first, url)}") from None
    if memo is not None:
        return memo.build(schemas, rows)
    return _build(schemas, rows)


def _lock_message(conn: "psycopg.Connection", schemas: list[str], waited: float) -> str:
    """Name who holds the lock the inspection gave up on: in an incident that is often the
    stuck migration itself."""
    text = f"inspecting the catalog waited {waited:g} s for a table lock and gave up; nothing was changed"
    try:
        rows = conn.execute(_query("lock_holders.sql"), {"schemas": schemas}).fetchall()
    except Exception:  # noqa: BLE001 - the message without names is still the right one
        rows = []
    if rows:
        held = "; ".join(f'table "{rel}" is locked ({mode}) by pid {pid} ({app or "?"} / {user or "?"}) '
                         f"for {age} s: {query}" for pid, rel, mode, app, user, age, query in rows)
        text += f": {held} — a migration or maintenance may be stuck"
    return text


def _settings(schemas: list[str], timeout: float, outermost: bool) -> "psycopg.sql.Composed":
    """One batch (no parameters, so one round trip) that makes the transaction safe and deterministic."""
    from psycopg import sql

    ms = max(1, int(timeout * 1000))
    statements = [
        # isolation can only be chosen before the first query of the whole transaction
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY" if outermost else "SET TRANSACTION READ ONLY",
        f"SET LOCAL statement_timeout = {ms}",
        f"SET LOCAL lock_timeout = {min(ms, int(LOCK_TIMEOUT * 1000))}",
        "SET LOCAL idle_in_transaction_session_timeout = 0",
        "SET LOCAL work_mem = '64MB'",  # sort tens of thousands of column rows in memory
        "SET LOCAL TimeZone = 'UTC'",
        "SET LOCAL DateStyle = 'ISO, YMD'",
        "SET LOCAL IntervalStyle = 'postgres'",
        "SET LOCAL extra_float_digits = 1",
        "SET LOCAL bytea_output = 'hex'",
        "SET LOCAL standard_conforming_strings = on",
    ]
    composed = sql.SQL("; ").join(sql.SQL(s) for s in statements)
    path = sql.SQL(", ").join(sql.Identifier(s) for s in schemas) if schemas else sql.SQL("''")
    return sql.Composed([composed, sql.SQL("; SET LOCAL search_path = "), path])


def _prepare_build() -> None:
    """Import what `_build` needs (a caller with time to spare does it while it waits)."""
    from .. import catalog, defaults  # noqa: F401


def _build(schemas: list[str], rows: dict[str, list[tuple]]) -> Catalog:
    from ..catalog import Catalog, Column, Enum, ForeignKey, Index, IndexColumn, PrimaryKey, Table, enum_type_ref
    from ..defaults import normalize_predicate

    # Tens of thousands of rows on large databases: plain loops, positional constructors
    # and no repeated lookups (this is most of the inspection's Python time).
    existing = {r[0] for r in rows["schemas.sql"]}
    normalize = _normalize_default

    columns: dict[tuple[str, str], list[Column]] = {}
    attnames: dict[tuple[str, str], dict[int, str]] = {}  # names constraints.sql's attnums
    key = cols = names = None
    for (t_schema, t_name, col, builtin, udt_schema, udt_name, is_array, nullable, default_expr,
         is_identity, attnum) in rows["columns.sql"]:
        if key is None or key[1] != t_name or key[0] != t_schema:  # rows come by table, in attnum order
            key = (t_schema, t_name)
            cols = columns.setdefault(key, [])
            names = attnames.setdefault(key, {})
        if col is None:  # a table without columns
            continue
        names[attnum] = col
        ctype = builtin if udt_schema is None else enum_type_ref(udt_schema, udt_name, array=is_array)
        if is_identity:
            cols.append(Column(col, ctype, nullable, None, True))
        elif default_expr is None:
            cols.append(Column(col, ctype, nullable, None, False))
        else:
            default, autoincrement = normalize(default_expr, ctype)
            cols.append(Column(col, ctype, nullable, default, autoincrement))

    primary: dict[tuple[str, str], PrimaryKey] = {}
    foreign: dict[tuple[str, str], list[ForeignKey]] = {}
    actions = _ACTIONS
    for (t_schema, t_name, kind, name, keys, ref_schema, ref_table, ref_keys, ref_names, on_delete,
         on_update) in rows["constraints.sql"]:
        names = attnames[(t_schema, t_name)]
        cols = tuple([names[k] for k in keys])
        if kind == "p":
            primary[(t_schema, t_name)] = PrimaryKey(name, cols)
        else:
            if ref_names is None:
                names = attnames[(ref_schema, ref_table)]
                ref_cols = tuple([names[k] for k in ref_keys])
            else:
                ref_cols = tuple(ref_names)
            fk = ForeignKey(name, cols, ref_schema, ref_table, ref_cols,
                            actions.get(on_delete, on_delete), actions.get(on_update, on_update))
            found = foreign.get((t_schema, t_name))
            if found is None:
                foreign[(t_schema, t_name)] = [fk]
            else:
                found.append(fk)

    index_parts: dict[tuple[str, str], dict[str, tuple[bool, str, str | None, list[IndexColumn], tuple]]] = {}
    for (t_schema, t_name, name, unique, method, predicate, _pos, expression, attnum, is_expr, descending,
         opclass, include) in rows["indexes.sql"]:
        per_table = index_parts.get((t_schema, t_name))
        if per_table is None:
            per_table = index_parts[(t_schema, t_name)] = {}
        names = attnames[(t_schema, t_name)]
        parts = per_table.get(name)
        if parts is None:
            parts = per_table[name] = (unique, method, normalize_predicate(predicate), [],
                                       tuple([names[k] for k in include]) if include else ())
        parts[3].append(IndexColumn(expression if is_expr else names[attnum], descending, opclass, is_expr))

    tables = []
    no_indexes: dict = {}
    for key in sorted(columns):
        indexes = tuple(
            Index(name, tuple(parts[3]), parts[0], parts[1], parts[2], parts[4])
            for name, parts in sorted(index_parts.get(key, no_indexes).items())
        )
        fks = foreign.get(key)
        if fks is None:
            fks = ()
        elif len(fks) > 1:
            fks.sort(key=_by_name)
        tables.append(Table(key[0], key[1], tuple(columns[key]), primary.get(key), indexes, tuple(fks)))

    enums = tuple(sorted(
        (Enum(schema=s, name=n, values=tuple(v)) for s, n, v in rows["enums.sql"]),
        key=lambda e: e.key,
    ))
    return Catalog(
        schemas=tuple(s for s in schemas if s in existing),
        tables=tuple(tables),
        enums=enums,
    )


def _by_name(f: ForeignKey) -> str:
    return f.name
