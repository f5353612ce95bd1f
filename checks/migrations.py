"""Prisma-compatible migrate for PostgreSQL, without Node: status, deploy, resolve.

    read_migrations_dir(path) -> MigrationsDir
    checksum(sql) -> str                       checksum_matches(sql, stored) -> bool
    status(url, migrations_dir) -> MigrationStatus
    deploy(url, migrations_dir, limits=None, *, on_progress=None) -> DeployResult
    rehearse_deploy(url, migrations_dir, limits=None, *, before_rollback=None) -> DeployRehearsal
    resolve_applied(url, migrations_dir, name, limits=None) -> ResolveResult
    resolve_rolled_back(url, migrations_dir, name, limits=None) -> ResolveResult
    split_prisma_url(url) -> (libpq_url, schema)

Everything here follows Prisma's schema engine (see ../shared/notes/prisma-migrate-internals.md),
so that a database deployed by Driftwatch is one Prisma accepts and the other way round:

* the `_prisma_migrations` table, its DDL, and its rows are Prisma's: a v4 UUID `id`, the
  SHA-256 `checksum` of migration.sql (64 lowercase hex), `started_at` written before the
  script runs, `finished_at` and `applied_steps_count = 1` only on success, `logs` on failure,
  `rolled_back_at` set only by resolve;
* `deploy` checks migration_lock.toml (P3019), takes the advisory lock 72707369 (through
  `checks.guard.exclusive_session`), refuses a non-empty database without the table (P3005),
  refuses while any row is failed (P3009), applies, in folder-name order, each migration with
  no row whose `rolled_back_at` is NULL, and sends each migration.sql as one simple query, as
  Prisma's native engine does: PostgreSQL runs it as one implicit transaction (all or nothing)
  unless the file has its own BEGIN/COMMIT. A failing script leaves its row with `logs` and
  `finished_at` NULL and raises P3018 (MigrationFailed). Like Prisma, deploy does not stop on
  edited migrations or on rows without a folder; it returns them as warnings;
* `resolve_applied` / `resolve_rolled_back` apply Prisma's rules (P3017, P3008, P3011, P3012).

Where Driftwatch is stricter than Prisma (all before anything is written): a missing
migrations folder is an error (Prisma would see "no migrations"); a folder without
migration.sql fails every command with P3015 (Prisma fails only when it needs that file);
each write is bounded by `checks.guard.Limits` (lock_timeout, statement_timeout).

The URL may carry Prisma's `?schema=NAME` (default `public`): the migrations table lives there
and the scripts run with `search_path` set to it, as Prisma does; Prisma-only URL parameters
(connection_limit, pgbouncer, …) are dropped before libpq sees them.

`status` reports each migration in one of these states: applied, pending, failed
(finished_at and rolled_back_at NULL, with its logs), rolled_back (only rolled-back rows: the
next deploy applies it again), edited (applied, but migration.sql's checksum differs) and
missing_locally (rows, no folder), plus `managed: False` when `_prisma_migrations` is absent.
A failed migration whose folder is gone is "failed" (it blocks deploys, which matters more).
"""
from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from hashlib import sha256
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from .db import connect, redact, scrub, split_prisma_url
from .errors import (
    ConnectionLost,
    DatabaseError,
    DriftwatchError,
    MigrateError,
    MigrationFailed,
    StatementFailed,
    UsageError,
)
from .guard import Limits, exclusive_session, run_in_transaction, run_script
from .sqltext import first_line

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "MIGRATIONS_TABLE",
    "STATES",
    "AppliedMigration",
    "DeployResult",
    "Migration",
    "MigrationRow",
    "MigrationState",
    "MigrationStatus",
    "MigrationSummary",
    "MigrationsDir",
    "ResolveResult",
    "checksum",
    "checksum_matches",
    "default_migrations_dir",
    "deploy",
    "diagnose",
    "read_migrations_dir",
    "resolve_applied",
    "resolve_rolled_back",
    "split_prisma_url",
    "status",
    "summarize",
]

MIGRATIONS_TABLE = "_prisma_migrations"
PROVIDER = "postgresql"
STATES = ("applied", "pending", "failed", "rolled_back", "edited", "missing_locally")

# Prisma's DDL for the table (schema-engine flavour/postgres.rs), schema-qualified here.
_CREATE_TABLE = """CREATE TABLE {} (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)"""

# Tables Prisma ignores when deciding whether a database is empty (PostGIS's own).
_IGNORED_TABLES = re.compile(r"^(spatial_ref_sys|geometry_columns|geography_columns|raster_columns|raster_overviews)$",
                             re.IGNORECASE)

_RESOLVE_URL = "https://pris.ly/d/migrate-resolve"
_STATUS_TIMEOUT_MS = 30_000


# ---------------------------------------------------------------------------------------------
# The migrations folder


@dataclass(frozen=True)
class Migration:
    """One folder of the migrations directory and its migration.sql, exactly as on disk."""

    name: str
    path: Path
    script: str

    @property
    def checksum(self) -> str:
        return checksum(self.script)


@dataclass(frozen=True)
class MigrationsDir:
    """The migrations folder: migrations sorted by folder name, and the lock file's provider."""

    path: Path
    migrations: tuple[Migration, ...]
    provider: str | None  # from migration_lock.toml; None when there is no lock file

    def get(self, name: str) -> Migration | None:
        return next((m for m in self.migrations if m.name == name), None)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.migrations]


def read_migrations_dir(path: str | os.PathLike[str]) -> MigrationsDir:
    """Read every `<folder>/migration.sql`, sorted by folder name; check migration_lock.toml.

    Raises UsageError when the folder does not exist, MigrateError P3019 when the lock file
    names another provider (read the way Prisma reads it), P3015 when a folder has no
    migration.sql. Scripts are read as bytes and decoded as UTF-8 without newline
    translation, so the checksum is over the exact file.
    """
    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"migrations folder {root} does not exist (pass --migrations DIR)")
    provider = None
    lock = root / "migration_lock.toml"
    if lock.is_file():
        provider = _lockfile_provider(_read_text(lock))
        if provider != PROVIDER:
            raise MigrateError(
                "P3019",
                f"The datasource provider `{PROVIDER}` specified in your schema does not match the one specified "
                f"in the migration_lock.toml, `{provider}`. Please remove your current migration directory and "
                f"start a new migration history with prisma migrate dev. "
                f"Read more: https://pris.ly/d/migrate-provider-switch",
            )
    migrations = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if not entry.is_dir():
            continue
        script_path = entry / "migration.sql"
        if not script_path.is_file():
            raise MigrateError(
                "P3015",
                f"Could not find the migration file at {script_path}. "
                f"Please delete the directory or restore the migration file.",
            )
        migrations.append(Migration(entry.name, entry, _read_text(script_path)))
    return MigrationsDir(root, tuple(migrations), provider)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _lockfile_provider(content: str) -> str:
    """Prisma's reading: the first line starting with `provider`, minus `provider = ` and quotes."""
    for line in content.splitlines():
        if line.startswith("provider"):
            value = line[len("provider = "):] if line.startswith("provider = ") else line
            return value.strip('"')
    return "<PROVIDER NOT FOUND>"


# ---------------------------------------------------------------------------------------------
# Checksums


def checksum(sql: str) -> str:
    """SHA-256 of the UTF-8 bytes of a migration script, as 64 lowercase hex characters."""
    return sha256(sql.encode("utf-8")).hexdigest()


def checksum_matches(sql: str, stored: str) -> bool:
    """Whether `stored` is the checksum of `sql`, as Prisma decides it.

    Also accepts the script with CRLF turned into LF and with LF turned into CRLF (git may
    have changed the line endings), and, when the stored value is not 64 characters long,
    the legacy form without zero padding (each byte as `{:x}`; prisma-engines#1887).
    """
    legacy = bool(stored) and len(stored) != 64
    for variant in (sql, sql.replace("\r\n", "\n"), sql.replace("\n", "\r\n")):
        digest = sha256(variant.encode("utf-8")).digest()
        rendered = "".join(f"{b:x}" for b in digest) if legacy else digest.hex()
        if rendered == stored:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Connections


def _table(schema: str) -> "psycopg.sql.Composed":
    from psycopg import sql

    return sql.Identifier(schema, MIGRATIONS_TABLE)  # type: ignore[return-value]


@cache
def _query(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _use_schema(conn: "psycopg.Connection", schema: str, url: str) -> list[str]:
    """Set search_path to the schema, as Prisma does; return the schema's tables.

    Raises UsageError when the schema does not exist (Prisma would fail creating its table).
    """
    from psycopg import sql

    exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if not exists:
        raise UsageError(f"schema {schema!r} does not exist in {redact(url)} (it comes from ?schema= in the URL, "
                         f"default public)")
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return [r[0] for r in conn.execute(_query("migrations_tables.sql"), {"schema": schema}).fetchall()]


# ---------------------------------------------------------------------------------------------
# Rows of _prisma_migrations and the state of each migration


@dataclass(frozen=True)
class MigrationRow:
    """One row of `_prisma_migrations`."""

    id: str
    checksum: str
    finished_at: datetime | None
    migration_name: str
    logs: str | None
    rolled_back_at: datetime | None
    started_at: datetime
    applied_steps_count: int

    @property
    def failed(self) -> bool:
        return self.finished_at is None and self.rolled_back_at is None


def _load_rows(conn: "psycopg.Connection", schema: str) -> list[MigrationRow]:
    """All rows, ordered by started_at as Prisma loads them (ties broken for determinism)."""
    from psycopg import sql

    query = sql.SQL(
        "SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count "
        "FROM {} ORDER BY started_at, migration_name, id"
    ).format(_table(schema))
    return [MigrationRow(*r) for r in conn.execute(query).fetchall()]


@dataclass(frozen=True)
class MigrationState:
    """What one migration (a folder, a set of rows, or both) looks like."""

    name: str
    state: str  # one of STATES
    checksum: str | None  # of the database row the state is about; None without rows
    local_checksum: str | None  # of migration.sql; None without a folder
    started_at: datetime | None
    finished_at: datetime | None
    logs: str | None
    rows: tuple[MigrationRow, ...] = ()

    def to_json(self) -> dict[str, Any]:
        iso = lambda t: t.isoformat() if t is not None else None  # noqa: E731
        return {"name": self.name, "state": self.state, "checksum": self.checksum,
                "local_checksum": self.local_checksum, "started_at": iso(self.started_at),
                "finished_at": iso(self.finished_at), "logs": self.logs}


@dataclass(frozen=True)
class MigrationStatus:
    """The migration history of one database against one migrations folder."""

    database: str  # redacted URL
    schema: str
    directory: str
    managed: bool  # _prisma_migrations exists
    migrations: tuple[MigrationState, ...]

    @property
    def up_to_date(self) -> bool:
        """True when the table exists and every migration, local or not, is cleanly applied."""
        return self.managed and all(m.state == "applied" for m in self.migrations)

    def names(self, *states: str) -> list[str]:
        return [m.name for m in self.migrations if m.state in states]

    def get(self, name: str) -> MigrationState | None:
        return next((m for m in self.migrations if m.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"up_to_date": self.up_to_date, "managed": self.managed, "database": self.database,
                "schema": self.schema, "migrations": [m.to_json() for m in self.migrations]}


def diagnose(migrations: Iterable[Migration], rows: Sequence[MigrationRow]) -> tuple[MigrationState, ...]:
    """The state of every migration, from the folder and the rows (a pure function), sorted by name."""
    by_name: dict[str, list[MigrationRow]] = {}
    for r in rows:
        by_name.setdefault(r.migration_name, []).append(r)
    local = {m.name: m for m in migrations}
    states = [_state_of(name, local.get(name), by_name.get(name, [])) for name in sorted({*local, *by_name})]
    return tuple(states)


def _state_of(name: str, migration: Migration | None, rows: list[MigrationRow]) -> MigrationState:
    active = [r for r in rows if r.rolled_back_at is None]
    failed = [r for r in active if r.finished_at is None]
    done = [r for r in active if r.finished_at is not None]
    local = migration.checksum if migration is not None else None
    row: MigrationRow | None
    if failed:
        state, row = "failed", failed[-1]
    elif migration is None:
        state, row = "missing_locally", (done or rows)[-1]
    elif done:
        row = done[-1]
        state = "applied" if checksum_matches(migration.script, row.checksum) else "edited"
    elif rows:
        state, row = "rolled_back", rows[-1]
    else:
        state, row = "pending", None
    return MigrationState(
        name=name, state=state, checksum=row.checksum if row else None, local_checksum=local,
        started_at=row.started_at if row else None, finished_at=row.finished_at if row else None,
        logs=row.logs if row else None, rows=tuple(rows),
    )


def status(url: str, migrations_dir: str | os.PathLike[str]) -> MigrationStatus:
    """Read the folder and `_prisma_migrations` (read-only, bounded) and diagnose every migration."""
    import psycopg

    folder = read_migrations_dir(migrations_dir)
    conn_url, schema = split_prisma_url(url)
    conn = connect(conn_url)
    try:
        with conn.transaction():
            conn.execute(f"SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {_STATUS_TIMEOUT_MS}; "
                         f"SET LOCAL lock_timeout = {_STATUS_TIMEOUT_MS}")
            exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
            tables = [r[0] for r in conn.execute(_query("migrations_tables.sql"), {"schema": schema})] if exists else []
            managed = MIGRATIONS_TABLE in tables
            rows = _load_rows(conn, schema) if managed else []
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot read the migration history of {redact(url)}: {scrub(_first(exc), url)}") from None
    finally:
        conn.close()
    return MigrationStatus(redact(url), schema, str(folder.path), managed, diagnose(folder.migrations, rows))


# ---------------------------------------------------------------------------------------------
# deploy


@dataclass(frozen=True)
class AppliedMigration:
    name: str
    seconds: float
    statements: int


@dataclass(frozen=True)
class DeployResult:
    """What `deploy` did: the migrations it applied, in order, and what it noticed."""

    database: str  # redacted
    applied: tuple[AppliedMigration, ...]
    already_applied: tuple[str, ...]
    created_table: bool
    warnings: tuple[str, ...]  # edited migrations, rows without a folder (Prisma does not stop on them)
    seconds: float


Progress = Callable[[str, str, Any], None]  # (event, migration name, detail): "applying" / "applied"


def _sql(conn: "psycopg.Connection", template: str, *args: Any) -> str:
    """Render SQL text with identifiers and literals quoted by psycopg (never by hand)."""
    from psycopg import sql

    return sql.SQL(template).format(*args).as_string(conn)


def _lit(value: Any) -> "psycopg.sql.Literal":
    from psycopg import sql

    return sql.Literal(value)


def deploy(
    url: str,
    migrations_dir: str | os.PathLike[str],
    limits: Limits | None = None,
    *,
    on_progress: Progress | None = None,
) -> DeployResult:
    """Apply the pending migrations exactly as `prisma migrate deploy` (see the module docstring)."""
    limits = limits or Limits()
    started = time.monotonic()
    folder = read_migrations_dir(migrations_dir)  # P3019 / P3015 before connecting
    conn_url, schema = split_prisma_url(url)
    notify = on_progress or (lambda *a: None)
    applied: list[AppliedMigration] = []
    with exclusive_session(conn_url, limits, application_name="driftwatch migrate deploy") as conn:
        created, rows, live, unapplied = _what_deploy_applies(conn, url, schema, folder, limits, create_table=True)
        for m in unapplied:
            notify("applying", m.name, None)
            applied.append(_apply_one(conn, conn_url, url, schema, m, limits))
            notify("applied", m.name, applied[-1])
    after = diagnose(folder.migrations, rows)
    warnings = [f"{s.name} was edited after it was applied (its migration.sql checksum differs from the database's)"
                for s in after if s.state == "edited"]
    warnings += [f"{s.name} is applied in the database but has no folder in {folder.path}"
                 for s in after if s.state == "missing_locally"]
    return DeployResult(redact(url), tuple(applied), tuple(sorted(live & set(folder.names))), created,
                        tuple(warnings), time.monotonic() - started)


@dataclass(frozen=True)
class RehearsedMigration:
    """One pending migration in a deploy rehearsal (`checks.guard.ScriptRehearsal`'s status)."""

    name: str
    status: str  # rehearsed | failed | cannot_rehearse | not_rehearsed
    seconds: float = 0.0
    statements: int = 0
    error: str | None = None
    sqlstate: str | None = None


@dataclass(frozen=True)
class DeployRehearsal:
    """What `deploy` would do now, found by doing it in a transaction that was rolled back."""

    database: str  # redacted
    migrations: tuple[RehearsedMigration, ...]  # the ones deploy would apply, in its order
    already_applied: tuple[str, ...]
    would_create_table: bool  # `_prisma_migrations` does not exist yet: deploy creates it
    seconds: float

    @property
    def clean(self) -> bool:
        """Every pending migration ran (and was rolled back)."""
        return all(m.status == "rehearsed" for m in self.migrations)

    def names(self, *statuses: str) -> list[str]:
        return [m.name for m in self.migrations if m.status in statuses]


def rehearse_deploy(url: str, migrations_dir: str | os.PathLike[str], limits: Limits | None = None, *,
                    before_rollback: Callable[["psycopg.Connection"], None] | None = None) -> DeployRehearsal:
    """`deploy`, rehearsed: the same refusals (P3019, P3005, P3009) raised as deploy raises them,
    then every pending migration's script run in one transaction that is rolled back
    (`checks.guard.rehearse_scripts`), under Prisma's lock so that no deploy runs meanwhile.
    Nothing is written, not even `_prisma_migrations` or its rows. `before_rollback(conn)`
    sees the database as the migrations left it (the operation layer diffs it with the
    schema, to say what would still be missing after the deploy)."""
    from .guard import rehearse_scripts

    limits = limits or Limits()
    started = time.monotonic()
    folder = read_migrations_dir(migrations_dir)
    conn_url, schema = split_prisma_url(url)
    with exclusive_session(conn_url, limits, application_name="driftwatch migrate deploy (rehearsal)") as conn:
        missing, _rows, live, unapplied = _what_deploy_applies(conn, url, schema, folder, limits, create_table=False)
        seen = rehearse_scripts(conn, [m.script for m in unapplied], limits, before_rollback=before_rollback)
    rehearsed = tuple(RehearsedMigration(m.name, r.status, r.seconds, r.statements,
                                         scrub(r.error, url) if r.error else None, r.sqlstate)
                      for m, r in zip(unapplied, seen))
    return DeployRehearsal(redact(url), rehearsed, tuple(sorted(live & set(folder.names))), missing,
                           time.monotonic() - started)


def _what_deploy_applies(conn: "psycopg.Connection", url: str, schema: str, folder: MigrationsDir, limits: Limits,
                         *, create_table: bool) -> tuple[bool, list[MigrationRow], set[str], list[Migration]]:
    """Under Prisma's lock: Prisma's refusals (P3005, P3009), then the history and the
    migrations a deploy applies, in order. `create_table` creates `_prisma_migrations` when it
    is missing (deploy); without it (a rehearsal) nothing is written. Returns (the table was
    missing, the rows, the names applied and not rolled back, the migrations to apply)."""
    import psycopg

    try:
        tables = _use_schema(conn, schema, url)
        missing = MIGRATIONS_TABLE not in tables
        if create_table:
            _initialize(conn, schema, tables, folder, limits)
        elif missing:
            _refuse_unmanaged(schema, tables, folder)
        rows = _load_rows(conn, schema) if not missing or create_table else []
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot read the migration history of {redact(url)}: {scrub(_first(exc), url)}") \
            from None
    _refuse_failed(rows)
    live = {r.migration_name for r in rows if r.rolled_back_at is None}
    return missing, rows, live, [m for m in folder.migrations if m.name not in live]


def _initialize(conn: "psycopg.Connection", schema: str, tables: list[str], folder: MigrationsDir,
                limits: Limits) -> bool:
    """Prisma's `initialize`: P3005 on a non-empty unmanaged schema, else create the table."""
    if MIGRATIONS_TABLE in tables:
        return False
    _refuse_unmanaged(schema, tables, folder)
    _create_table(conn, schema, limits)
    return True


def _refuse_unmanaged(schema: str, tables: list[str], folder: MigrationsDir) -> None:
    """P3005: a schema with tables but no `_prisma_migrations` is not Prisma's to deploy into."""
    others = [t for t in tables if not _IGNORED_TABLES.match(t)]
    if others:
        hint = ""
        if folder.migrations:
            hint = (f"; if it already matches the migration {folder.migrations[0].name}, baseline it with "
                    f"`driftwatch migrate resolve --applied {folder.migrations[0].name}`")
        raise MigrateError(
            "P3005",
            f"The database schema is not empty. Read more about how to baseline an existing production database: "
            f"https://pris.ly/d/migrate-baseline (schema {schema} has {len(others)} table(s) and no "
            f"{MIGRATIONS_TABLE} table{hint})",
        )


def _create_table(conn: "psycopg.Connection", schema: str, limits: Limits) -> None:
    run_in_transaction(conn, [_sql(conn, _CREATE_TABLE, _table(schema))], limits)


def _refuse_failed(rows: Sequence[MigrationRow]) -> None:
    """P3009 when any row has finished_at and rolled_back_at NULL."""
    failed = [r for r in rows if r.failed]
    if not failed:
        return
    details = []
    for r in failed:
        logs = (r.logs or "").strip()
        started = r.started_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC" if r.started_at else "?"
        details.append(f"The `{r.migration_name}` migration started at {started} failed"
                       + (f" with the following logs:\n{logs}" if logs else ""))
    names = ", ".join(r.migration_name for r in failed)
    raise MigrateError(
        "P3009",
        f"migrate found failed migrations in the target database, new migrations will not be applied: {names}. "
        f"If you undid its changes by hand: driftwatch migrate resolve --rolled-back NAME; if you completed it by "
        f"hand: driftwatch migrate resolve --applied NAME. Read more: {_RESOLVE_URL}",
        details="\n".join(details),
    )


def _apply_one(conn: "psycopg.Connection", conn_url: str, url: str, schema: str, m: Migration,
               limits: Limits) -> AppliedMigration:
    """INSERT the row, run the script as one simple query, then mark it finished (or failed)."""
    row_id = str(uuid.uuid4())
    table = _table(schema)
    run_in_transaction(conn, [_sql(
        conn, "INSERT INTO {} (id, checksum, started_at, migration_name) VALUES ({}, {}, now(), {})",
        table, _lit(row_id), _lit(m.checksum), _lit(m.name))], limits)
    try:
        outcome = run_script(conn, m.script, limits)
    except StatementFailed as exc:
        logs = _failure_logs(m, exc)
        run_in_transaction(conn, [_sql(conn, "UPDATE {} SET logs = {} WHERE id = {}", table, _lit(logs),
                                       _lit(row_id))], limits)
        where = ""
        if exc.index is not None and exc.statement is not None:
            where = f" at statement {exc.index + 1} ({first_line(exc.statement)})"
        raise MigrationFailed(
            f"migration {m.name} failed{where}: {exc.sqlstate or 'no code'} {exc.database_error or _first(exc)}; "
            f"{_what_happened(m.script)}. Its row in {MIGRATIONS_TABLE} is marked failed, so deploys stop (P3009) "
            f"until you resolve it: driftwatch migrate resolve --rolled-back {m.name} (then fix and deploy again) "
            f"or --applied {m.name}. Read more: {_RESOLVE_URL}",
            migration=m.name, sqlstate=exc.sqlstate, database_error=exc.database_error or _first(exc), logs=logs,
        ) from None
    except ConnectionLost as exc:
        logs = _failure_logs(m, exc)
        _record_logs_elsewhere(conn_url, schema, row_id, logs)
        raise ConnectionLost(
            f"migration {m.name}: {exc}. Its row in {MIGRATIONS_TABLE} stays unfinished (failed), so deploys stop "
            f"(P3009) until you check the database and resolve it (driftwatch migrate status)",
        ) from None
    except BaseException:  # interrupted: say so in the row, as far as we still can
        _record_logs_elsewhere(conn_url, schema, row_id,
                               f"Driftwatch was interrupted while applying {m.name}; the script may not have run.")
        raise
    run_in_transaction(conn, [_sql(
        conn, "UPDATE {} SET finished_at = now(), applied_steps_count = applied_steps_count + 1 WHERE id = {}",
        table, _lit(row_id))], limits)
    return AppliedMigration(m.name, outcome.seconds, outcome.statements)


def _what_happened(script: str) -> str:
    from .sqltext import is_transaction_control, split_statements

    try:
        own = any(is_transaction_control(s) for s in split_statements(script))
    except UsageError:
        own = False
    if own:
        return "the script has its own transaction control, so what it committed before the error stays"
    return "its implicit transaction was rolled back, so none of its statements are applied"


def _failure_logs(m: Migration, exc: DriftwatchError) -> str:
    """The text for the row's `logs`: Prisma's P3018 wording, plus where and what Driftwatch saw."""
    sqlstate = getattr(exc, "sqlstate", None) or "none"
    database_error = getattr(exc, "database_error", None) or str(exc)
    lines = [
        "A migration failed to apply. New migrations cannot be applied before the error is recovered from. "
        f"Read more about how to resolve migration issues in a production database: {_RESOLVE_URL}",
        "",
        f"Migration name: {m.name}",
        "",
        f"Database error code: {sqlstate}",
        "",
        "Database error:",
        f"ERROR: {database_error}",
    ]
    index, statement = getattr(exc, "index", None), getattr(exc, "statement", None)
    if index is not None and statement is not None:
        lines += ["", f"Statement {index + 1}: {first_line(statement, 200)}"]
    lines += ["", f"{_what_happened(m.script).capitalize()}.", "", "(applied by driftwatch migrate deploy)"]
    return "\n".join(lines)


def _record_logs_elsewhere(conn_url: str, schema: str, row_id: str, logs: str) -> None:
    """Best effort: the session is gone, so write the row's logs from a new one."""
    try:
        conn = connect(conn_url, connect_timeout=5, application_name="driftwatch migrate deploy")
    except Exception:
        return
    try:
        run_in_transaction(conn, [_sql(conn, "UPDATE {} SET logs = {} WHERE id = {} AND finished_at IS NULL",
                                       _table(schema), _lit(logs), _lit(row_id))],
                           Limits(lock_timeout=2, statement_timeout=5))
    except Exception:
        pass
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# resolve


@dataclass(frozen=True)
class ResolveResult:
    name: str
    action: str  # "applied" | "rolled_back"
    rolled_back_rows: int  # failed rows now marked rolled back
    inserted_id: str | None  # the new row (resolve --applied)
    created_table: bool
    statements: tuple[str, ...] = ()  # the SQL it ran on _prisma_migrations, for the audit log


def resolve_applied(url: str, migrations_dir: str | os.PathLike[str], name: str,
                    limits: Limits | None = None) -> ResolveResult:
    """`prisma migrate resolve --applied NAME`: record a migration as applied without running it.

    P3017 when there is no such folder; creates `_prisma_migrations` if it is missing (this
    is how a database is baselined, so there is no empty-schema check); P3008 when a row
    for it already has finished_at. Otherwise marks its failed rows rolled back and inserts
    a row with started_at = finished_at = now(), logs '' and the file's checksum — in one
    transaction.
    """
    import psycopg

    limits = limits or Limits()
    folder = read_migrations_dir(migrations_dir)
    migration = folder.get(name)
    if migration is None:
        raise MigrateError(
            "P3017",
            f"The migration {name} could not be found. Please make sure that the migration exists, and that you "
            f"included the whole name of the directory. (example: \"20201207184859_initial_migration\")",
        )
    conn_url, schema = split_prisma_url(url)
    with exclusive_session(conn_url, limits, application_name="driftwatch migrate resolve") as conn:
        try:
            tables = _use_schema(conn, schema, url)
            created = MIGRATIONS_TABLE not in tables
            if created:
                _create_table(conn, schema, limits)
            rows = [r for r in _load_rows(conn, schema) if r.migration_name == name]
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot read the migration history of {redact(url)}: {scrub(_first(exc), url)}") \
                from None
        if any(r.finished_at is not None for r in rows):
            raise MigrateError("P3008", f"The migration `{name}` is already recorded as applied in the database.")
        failed = [r.id for r in rows if r.failed]
        table = _table(schema)
        statements = [_sql(conn, "UPDATE {} SET rolled_back_at = now() WHERE id = {}", table, _lit(i)) for i in failed]
        row_id = str(uuid.uuid4())
        statements.append(_sql(
            conn, "INSERT INTO {} (id, checksum, logs, started_at, finished_at, migration_name) "
                  "VALUES ({}, {}, '', now(), now(), {})",
            table, _lit(row_id), _lit(migration.checksum), _lit(name)))
        run_in_transaction(conn, statements, limits)
    return ResolveResult(name, "applied", len(failed), row_id, created, tuple(statements))


def resolve_rolled_back(url: str, migrations_dir: str | os.PathLike[str], name: str,
                        limits: Limits | None = None) -> ResolveResult:
    """`prisma migrate resolve --rolled-back NAME`: mark a failed migration as rolled back.

    The folder need not exist (a bad migration may already be deleted); migration_lock.toml
    is still checked. P3011 when no row has that name (or there is no table), P3012 when
    every row of it finished. Sets rolled_back_at on its failed rows; the next deploy
    applies it again. It changes the history only, never the schema: undo the migration's
    partial changes first, if any.
    """
    import psycopg

    limits = limits or Limits()
    read_migrations_dir(migrations_dir)
    conn_url, schema = split_prisma_url(url)
    with exclusive_session(conn_url, limits, application_name="driftwatch migrate resolve") as conn:
        try:
            tables = _use_schema(conn, schema, url)
            rows = [r for r in _load_rows(conn, schema) if r.migration_name == name] \
                if MIGRATIONS_TABLE in tables else None
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot read the migration history of {redact(url)}: {scrub(_first(exc), url)}") \
                from None
        if not rows:
            extra = f" (there is no {MIGRATIONS_TABLE} table in schema {schema})" if rows is None else ""
            raise MigrateError(
                "P3011",
                f"Migration `{name}` cannot be rolled back because it was never applied to the database. Hint: did "
                f"you pass in the whole migration name? (example: \"20201207184859_initial_migration\"){extra}",
            )
        if all(r.finished_at is not None for r in rows):
            raise MigrateError("P3012", f"Migration `{name}` cannot be rolled back because it is not in a failed state.")
        failed = [r.id for r in rows if r.failed]
        table = _table(schema)
        statements = [_sql(conn, "UPDATE {} SET rolled_back_at = now() WHERE id = {}", table, _lit(i)) for i in failed]
        if statements:
            run_in_transaction(conn, statements, limits)
    return ResolveResult(name, "rolled_back", len(failed), None, False, tuple(statements))


# ---------------------------------------------------------------------------------------------
# The summary shown next to drift


SUMMARY_STATES = ("applied", "pending", "failed", "rolled_back", "edited", "missing_locally")


def default_migrations_dir(schema: str | os.PathLike[str] | None, given: str | os.PathLike[str] | None = None
                           ) -> Path | None:
    """The migrations folder to compare next to a drift check: the one given (``"none"``: no
    folder), else the schema's sibling ``migrations/`` when it exists, else None.

    `check`, `fix`, `runbook run` and the dashboard (`DRIFTWATCH_MIGRATIONS`) all decide
    here, so they never compare different folders for the same schema. The `migrate`
    commands need a folder and default to `prisma/migrations` instead, as Prisma's CLI."""
    if given is not None and str(given) != "":
        return None if str(given) == "none" else Path(given)
    if schema is None:
        return None
    folder = Path(schema).parent / "migrations"
    return folder if folder.is_dir() else None


@dataclass(frozen=True)
class MigrationSummary:
    """The migrations folder against `_prisma_migrations`, in the terms the next step needs.

    `by_state` holds the non-empty states, in SUMMARY_STATES order. `existing` maps each
    pending (or rolled-back) migration to the objects its script creates that the database
    already has: a deploy would fail on them (P3018). `empty` says whether the schema has
    no tables (so an unmanaged database can simply be deployed, no P3005). `created_tables`
    says which tables the folder's scripts create at all: a missing table none creates is a
    schema change without a migration, which no deploy fixes. `error` is set,
    and the rest left empty, when the history could not be read.
    """

    directory: str
    managed: bool = False
    up_to_date: bool = False
    by_state: dict[str, tuple[str, ...]] = field(default_factory=dict)
    local: tuple[str, ...] = ()  # the folder's migrations, in the order deploy applies them
    existing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    empty: bool | None = None
    created_tables: frozenset[str] | None = None  # every table some migration.sql creates (or renames into)
    error: str | None = None

    def names(self, *states: str) -> list[str]:
        """Migration names in any of `states`, sorted as deploy would apply them."""
        return sorted(n for st in states for n in self.by_state.get(st, ()))

    @property
    def problems(self) -> list[str]:
        """One line per state other than applied, e.g. "pending: 2025…_add_avatar_projects"."""
        if self.error is not None:
            return [f"could not read the history: {self.error}"]
        lines = [] if self.managed else ["not managed by Prisma Migrate (no _prisma_migrations table)"]
        lines += [f"{state.replace('_', ' ')}: {', '.join(names)}" for state, names in self.by_state.items()
                  if state != "applied"]
        return lines

    def to_json(self, *, full: bool = False) -> dict[str, Any]:
        """The `migrations` object of `check --format json`; `full` adds what the next step
        judges besides the states (`local`, `existing`, `empty`, `created_tables`), so a stored
        summary can be judged again (`from_json`)."""
        if self.error is not None:
            return {"directory": self.directory, "error": self.error}
        out: dict[str, Any] = {"directory": self.directory, "managed": self.managed, "up_to_date": self.up_to_date,
                               "by_state": {state: list(names) for state, names in self.by_state.items()}}
        if full:
            out.update(local=list(self.local), existing={n: list(objs) for n, objs in self.existing.items()},
                       empty=self.empty,
                       created_tables=None if self.created_tables is None else sorted(self.created_tables))
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "MigrationSummary":
        """The summary `to_json(full=True)` wrote, or the migrations check's `detail` (the
        poller's result as the history store keeps it: one name list per state instead of
        `by_state`), rebuilt so the next step can be judged from what was stored. A key that
        is absent is left at its default, `managed` at True (an older observation, stored
        before these keys were, judges with less but not as an unmanaged database)."""
        directory = str(data.get("directory") or "")
        if data.get("error"):
            return cls(directory, error=str(data["error"]))

        def names(value: Any) -> tuple[str, ...]:
            items = value if isinstance(value, (list, tuple)) else ()
            return tuple(str(v.get("name") if isinstance(v, Mapping) else v) for v in items)

        raw = data.get("by_state")
        by_state = ({s: names(raw.get(s)) for s in SUMMARY_STATES} if isinstance(raw, Mapping)
                    else {s: names(data.get(s)) for s in SUMMARY_STATES})
        local = names(data.get("local"))
        if not by_state.get("applied") and local:  # the detail counts the applied ones; the folder names them
            others = {n for s, ns in by_state.items() if s != "applied" for n in ns}
            by_state["applied"] = tuple(n for n in local if n not in others)
        existing = data.get("existing")
        created = data.get("created_tables")
        managed = data.get("managed")
        # An older record without `managed` came from a history that was read: judge it managed.
        return cls(directory, managed=managed if isinstance(managed, bool) else True, up_to_date=bool(data.get("up_to_date")),
                   by_state={s: ns for s, ns in by_state.items() if ns}, local=local,
                   existing={str(n): names(objs) for n, objs in existing.items()} if isinstance(existing, Mapping)
                   else {},
                   empty=data.get("empty") if isinstance(data.get("empty"), bool) else None,
                   created_tables=frozenset(names(created)) if isinstance(created, (list, tuple)) else None)


def tables_created(folder: MigrationsDir) -> frozenset[str]:
    """Every table some migration.sql of `folder` creates (or renames into), read by the SQL
    lexer (comments, strings and dollar quotes are not statements). A missing table outside
    this set is one no migration creates: the schema changed without `prisma migrate dev`,
    and no deploy can fix it (`MigrationSummary.created_tables`, judged by the next step)."""
    from .sqltext import created_objects

    return frozenset(name for m in folder.migrations
                     for kind, name in created_objects(m.script, if_not_exists=True) if kind == "table")


def summarize(url: str, migrations_dir: str | os.PathLike[str], st: MigrationStatus | None = None
              ) -> MigrationSummary:
    """The history next to drift: in the incident the drift was the symptom and an unapplied
    migration its cause. Never raises for a DriftwatchError (a check must not fail because
    the history cannot be read): the summary carries the error instead. `st`: a status
    already read for the same database and folder."""
    try:
        st = st if st is not None else status(url, migrations_dir)
        folder = read_migrations_dir(migrations_dir)
        waiting = [m for m in folder.migrations if (s := st.get(m.name)) is not None
                   and s.state in ("pending", "rolled_back")]
        existing, empty = _already_there(url, waiting)
        created = tables_created(folder)
    except DriftwatchError as exc:
        return MigrationSummary(str(migrations_dir), error=str(exc))
    return MigrationSummary(
        directory=str(migrations_dir), managed=st.managed, up_to_date=st.up_to_date,
        by_state={state: tuple(st.names(state)) for state in SUMMARY_STATES if st.names(state)},
        local=tuple(folder.names), existing=existing, empty=empty, created_tables=created,
    )


def _already_there(url: str, waiting: Sequence[Migration]) -> tuple[dict[str, tuple[str, ...]], bool]:
    """For each migration, the objects its script creates that exist already; and whether
    the schema has no tables at all. One short read-only session."""
    import psycopg

    from .sqltext import created_objects

    conn_url, schema = split_prisma_url(url)
    wanted = {m.name: created_objects(m.script) for m in waiting}
    conn = connect(conn_url)
    try:
        with conn.transaction():
            conn.execute(f"SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {_STATUS_TIMEOUT_MS}")
            tables = conn.execute(_query("migrations_tables.sql"), {"schema": schema}).fetchall()
            found: dict[str, tuple[str, ...]] = {}
            for name, objects in wanted.items():
                there = [f"{kind} {obj}" for kind, obj in objects if _exists(conn, schema, kind, obj)]
                if there:
                    found[name] = tuple(there)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot read the catalog of {redact(url)}: {scrub(_first(exc), url)}") from None
    finally:
        conn.close()
    others = [t for (t,) in tables if t != MIGRATIONS_TABLE and not _IGNORED_TABLES.match(t)]
    return found, not others


def _exists(conn: "psycopg.Connection", schema: str, kind: str, name: str) -> bool:
    if kind == "column":
        table, _, column = name.partition(".")
        query = ("SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text)) "
                 "AND attname = %s AND attnum > 0 AND NOT attisdropped")
        return conn.execute(query, (schema, table, column)).fetchone() is not None
    function = "to_regtype" if kind == "type" else "to_regclass"
    row = conn.execute(f"SELECT {function}(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL",
                       (schema, name)).fetchone()
    return bool(row and row[0])
