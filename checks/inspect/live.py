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
* Indexes backing exclusion constraints and INCLUDE columns are not reported;
  NULLS FIRST/LAST is not represented.
"""
from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Sequence, Union

from ..catalog import Catalog, Column, Enum, ForeignKey, Index, IndexColumn, PrimaryKey, Table, enum_type_ref
from ..db import connect, scrub
from ..defaults import normalize_default, normalize_predicate
from ..errors import DatabaseError, UsageError

if TYPE_CHECKING:
    import psycopg

__all__ = ["inspect_database", "QUERY_FILES"]

QUERY_FILES = ("schemas.sql", "columns.sql", "constraints.sql", "indexes.sql", "enums.sql")

DEFAULT_STATEMENT_TIMEOUT = 30.0  # seconds, per statement

# Real schemas repeat the same few defaults (CURRENT_TIMESTAMP, 0, 'PENDING') thousands of times.
_normalize_default = lru_cache(maxsize=8192)(normalize_default)

_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


@cache
def _query(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def inspect_database(
    conn_or_url: Union[str, "psycopg.Connection"],
    schemas: Sequence[str],
    *,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
) -> Catalog:
    """Return the tables and enums of ``schemas`` as a `Catalog`.

    ``conn_or_url`` is a psycopg connection (left open, its transaction state kept) or a
    ``postgresql://`` URL (connected through `checks.db.connect`, closed afterwards).
    ``Catalog.schemas`` lists the requested schemas that exist, in the requested order,
    so a missing schema shows up as a difference. Tables and enums are sorted by
    (schema, name). Raises DatabaseError (message without password) when a query
    fails or exceeds ``statement_timeout`` seconds.
    """
    if isinstance(schemas, str):
        raise UsageError("schemas must be a sequence of schema names, not a string")
    wanted = list(dict.fromkeys(schemas))
    if isinstance(conn_or_url, str):
        url = conn_or_url
        conn = connect(url)
        try:
            return _inspect(conn, wanted, statement_timeout, url)
        finally:
            conn.close()
    return _inspect(conn_or_url, wanted, statement_timeout, None)


def _inspect(conn: "psycopg.Connection", schemas: list[str], timeout: float, url: str | None) -> Catalog:
    import psycopg
    from psycopg import pq

    status = conn.info.transaction_status
    if status == pq.TransactionStatus.INERROR:
        raise DatabaseError("cannot inspect the database: the connection is in a failed transaction")
    outermost = status == pq.TransactionStatus.IDLE
    params = {"schemas": schemas}
    try:
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            cur.execute(_settings(schemas, timeout, outermost))
            rows = {}
            for name in QUERY_FILES:
                cur.execute(_query(name), params)
                rows[name] = cur.fetchall()
    except psycopg.errors.QueryCanceled:
        raise DatabaseError(
            f"inspecting the database took longer than {timeout:g} s (statement_timeout); nothing was changed"
        ) from None
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatabaseError(f"cannot inspect the database: {scrub(first, url)}") from None
    return _build(schemas, rows)


def _settings(schemas: list[str], timeout: float, outermost: bool) -> "psycopg.sql.Composed":
    """One batch (no parameters, so one round trip) that makes the transaction safe and deterministic."""
    from psycopg import sql

    ms = max(1, int(timeout * 1000))
    statements = [
        # isolation can only be chosen before the first query of the whole transaction
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY" if outermost else "SET TRANSACTION READ ONLY",
        f"SET LOCAL statement_timeout = {ms}",
        f"SET LOCAL lock_timeout = {ms}",
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


def _column_type(builtin: str, udt_schema: str | None, udt_name: str | None, is_array: bool) -> str:
    if udt_schema is None:
        return builtin
    return enum_type_ref(udt_schema, udt_name, array=is_array)


def _build(schemas: list[str], rows: dict[str, list[tuple]]) -> Catalog:
    existing = {r[0] for r in rows["schemas.sql"]}

    columns: dict[tuple[str, str], list[Column]] = {}
    for (t_schema, t_name, col, builtin, udt_schema, udt_name, is_array, nullable, default_expr,
         is_identity) in rows["columns.sql"]:
        cols = columns.setdefault((t_schema, t_name), [])
        if col is None:  # a table without columns
            continue
        ctype = _column_type(builtin, udt_schema, udt_name, is_array)
        if is_identity:
            default, autoincrement = None, True
        else:
            default, autoincrement = _normalize_default(default_expr, ctype)
        cols.append(Column(name=col, type=ctype, nullable=nullable, default=default, autoincrement=autoincrement))

    primary: dict[tuple[str, str], PrimaryKey] = {}
    foreign: dict[tuple[str, str], list[ForeignKey]] = {}
    for (t_schema, t_name, kind, name, cols, ref_schema, ref_table, ref_cols, on_delete,
         on_update) in rows["constraints.sql"]:
        key = (t_schema, t_name)
        if kind == "p":
            primary[key] = PrimaryKey(name=name, columns=tuple(cols))
        else:
            foreign.setdefault(key, []).append(ForeignKey(
                name=name,
                columns=tuple(cols),
                referenced_schema=ref_schema,
                referenced_table=ref_table,
                referenced_columns=tuple(ref_cols),
                on_delete=_ACTIONS.get(on_delete, on_delete),
                on_update=_ACTIONS.get(on_update, on_update),
            ))

    index_parts: dict[tuple[str, str], dict[str, tuple[bool, str, str | None, list[IndexColumn]]]] = {}
    for (t_schema, t_name, name, unique, method, predicate, _pos, col, _is_expr, descending,
         opclass) in rows["indexes.sql"]:
        per_table = index_parts.setdefault((t_schema, t_name), {})
        if name not in per_table:
            where = normalize_predicate(predicate)
            per_table[name] = (unique, method, where, [])
        per_table[name][3].append(IndexColumn(name=col, descending=descending, opclass=opclass))

    tables = []
    for key in sorted(columns):
        indexes = tuple(
            Index(name=name, columns=tuple(parts[3]), unique=parts[0], method=parts[1], where=parts[2])
            for name, parts in sorted(index_parts.get(key, {}).items())
        )
        tables.append(Table(
            schema=key[0],
            name=key[1],
            columns=tuple(columns[key]),
            primary_key=primary.get(key),
            indexes=indexes,
            foreign_keys=tuple(sorted(foreign.get(key, ()), key=lambda f: f.name)),
        ))

    enums = tuple(sorted(
        (Enum(schema=s, name=n, values=tuple(v)) for s, n, v in rows["enums.sql"]),
        key=lambda e: e.key,
    ))
    return Catalog(
        schemas=tuple(s for s in schemas if s in existing),
        tables=tuple(tables),
        enums=enums,
    )
