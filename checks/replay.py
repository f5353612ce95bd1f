"""`migrate diff`: does the migrations folder build the schema?

    migrate_diff(migrations_dir, schema_path, *, shadow_url=None, on_progress=None) -> MigrateDiffResult
    scratch_database(shadow_url=None, extensions=()) -> context manager yielding (url, label)
    required_extensions(folder) -> [(migration, extension)]
    unexplained(findings, replay_findings) -> [Finding]
    MigrateDiffResult.advice() -> NextSteps   (checks.operations.next_step.after_replay)

The incident had two possible causes: a migration that exists but never ran, or a schema
changed without a migration (then `migrate deploy` fixes nothing). Prisma answers the second
only with `prisma migrate diff --from-migrations` and a shadow database to set up. Here the
folder is replayed into a scratch database, exactly as `driftwatch migrate deploy` (and so
`prisma migrate deploy`) applies it — each migration.sql sent as one script, with its own
`_prisma_migrations` row — and the result is compared with the schema by the very code of
`check`, so both commands report the same findings in the same JSON.

The scratch database is, by default, a fresh database on the embedded PostgreSQL (the
pgserver wheel, `checks.localpg`): its data folder is kept under the user's cache folder so
that only the first run pays for initdb, the database is dropped and the server stopped
afterwards. A `--shadow-database-url` must point at an empty database (no schema object
besides an empty schema and extensions); everything the replay created there is dropped.

Extensions: the embedded server has only plpgsql and vector, and real histories often create
pg_trgm, citext, pgcrypto or uuid-ossp. When a migration needs one the embedded server lacks
and the system's PostgreSQL (found through `pg_ctl`, with its contrib package) has them all,
the replay runs on a throwaway cluster of the system's instead (slower to start: initdb).
Otherwise it stops before anything runs, naming the migration and the extension, so the user
can pass a shadow database on a server that has it.
"""
from __future__ import annotations

import os
import re
import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from .db import connect, redact, scrub, split_prisma_url
from .errors import DatabaseError, MigrationFailed, UsageError

if TYPE_CHECKING:
    import psycopg

    from .findings import DriftReport, Finding
    from .migrations import MigrationsDir
    from .operations.next_step import NextSteps

__all__ = [
    "MigrateDiffResult",
    "ReplayFailure",
    "migrate_diff",
    "required_extensions",
    "scratch_database",
    "unexplained",
]

# A scratch database runs nothing but the migrations: generous bounds, nobody else waits.
REPLAY_STATEMENT_TIMEOUT = 3600.0
EMBEDDED = "embedded PostgreSQL"


@dataclass(frozen=True)
class ReplayFailure:
    """The migration that failed on the scratch database, and PostgreSQL's reason."""

    name: str
    error: str
    sqlstate: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "error": self.error}


@dataclass(frozen=True)
class MigrateDiffResult:
    """The schema against what the migrations folder builds."""

    report: "DriftReport"  # findings of the replayed database against the schema, as `check` makes them
    replayed: int  # migrations applied cleanly, in folder order
    total: int  # migrations in the folder
    failed: ReplayFailure | None  # the migration that stopped the replay; the report is of what came before
    directory: str
    database: str  # where it was replayed: "embedded PostgreSQL 16" or the redacted shadow URL
    replay_seconds: float
    seconds: float
    timings: tuple[tuple[str, float], ...] = field(default=(), compare=False)  # (migration, seconds)

    def exit_code(self, strict: bool = False) -> int:
        """0 the folder builds the schema, 2 it does not, 1 a migration failed."""
        if self.failed is not None:
            return 1
        return 0 if self.report.in_sync(strict) else 2

    def to_json(self, strict: bool = False) -> dict[str, Any]:
        payload = self.report.to_json(strict)
        if self.failed is not None:
            payload["in_sync"] = False
        payload["replayed"] = self.replayed
        payload["failed"] = self.failed.to_json() if self.failed else None
        payload["next_steps"] = self.advice().texts()
        return payload

    def advice(self) -> "NextSteps":
        """What to do next, from the one module that says it for every command (a difference
        the folder still has after the replay is one no migration makes, as `check` says it)."""
        from .operations.next_step import after_replay

        failed = (self.failed.name, self.failed.error) if self.failed is not None else None
        return after_replay(self.report, failed)


# ---------------------------------------------------------------------------------------------
# The replay


def migrate_diff(
    migrations_dir: str | os.PathLike[str],
    schema_path: str | os.PathLike[str],
    *,
    shadow_url: str | None = None,
    on_progress: Callable[[str, str, Any], None] | None = None,
) -> MigrateDiffResult:
    """Replay the folder into a scratch database and compare it with the schema like `check`.

    Raises UsageError for a missing folder, a shadow database that is not empty or a
    migration needing an extension the server lacks; SchemaError for a bad schema (both
    before any server starts); DatabaseError when the scratch database cannot be made.
    A migration that fails is not raised: it is the result's `failed`.
    """
    from .check import check_database, expected_catalog
    from .guard import Limits
    from .migrations import deploy, read_migrations_dir

    t0 = time.monotonic()
    folder = read_migrations_dir(migrations_dir)
    expected_catalog(schema_path, cache=True)  # a schema error before a server starts
    needs = required_extensions(folder)
    timings: list[tuple[str, float]] = []
    notify = on_progress or (lambda *a: None)

    def progress(event: str, name: str, detail: Any) -> None:
        if event == "applied":
            timings.append((name, detail.seconds))
        notify(event, name, detail)

    with scratch_database(shadow_url, [name for _, name in needs]) as (url, label):
        _refuse_missing_extensions(url, label, needs)
        failed = None
        t1 = time.monotonic()
        try:
            deploy(url, folder.path, Limits(statement_timeout=REPLAY_STATEMENT_TIMEOUT), on_progress=progress)
        except MigrationFailed as exc:
            extension = _missing_extension(exc.database_error)
            if extension:
                raise UsageError(_extension_message(exc.migration, extension, label)) from None
            failed = ReplayFailure(exc.migration, f"{exc.sqlstate or 'no code'} {exc.database_error}", exc.sqlstate)
        replay_seconds = time.monotonic() - t1
        report = check_database(url, schema_path, cache=True).report
    return MigrateDiffResult(report, len(timings), len(folder.migrations), failed, str(folder.path), label,
                             replay_seconds, time.monotonic() - t0, tuple(timings))


# Extensions every PostgreSQL has, or that a migration cannot need from the server.
_ALWAYS_THERE = frozenset({"plpgsql"})
_CREATE_EXTENSION = re.compile(
    r"""\bCREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?("(?:[^"]|"")+"|[A-Za-z_][\w$-]*)""", re.IGNORECASE)


def required_extensions(folder: "MigrationsDir") -> list[tuple[str, str]]:
    """(migration, extension) for each `CREATE EXTENSION` in the folder, first use only.

    Read from the statements as PostgreSQL sees them (comments skipped), including those
    inside DO blocks, since a block's EXECUTE is how some apps create extensions.
    """
    from .guard import split_statements

    seen: dict[str, str] = {}
    for m in folder.migrations:
        try:
            texts = split_statements(m.script)
        except UsageError:
            texts = [m.script]
        for text in texts:
            for match in _CREATE_EXTENSION.finditer(_without_comments(text)):
                raw = match.group(1)
                name = raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower()
                if name not in _ALWAYS_THERE:
                    seen.setdefault(name, m.name)
    return [(migration, name) for name, migration in seen.items()]


_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def _without_comments(text: str) -> str:
    return _COMMENT.sub(" ", text)


def _refuse_missing_extensions(url: str, label: str, needs: Sequence[tuple[str, str]]) -> None:
    if not needs:
        return
    conn_url, _ = split_prisma_url(url)
    with connect(conn_url) as conn:
        available = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
    for migration, extension in needs:
        if extension not in available:
            raise UsageError(_extension_message(migration, extension, label))


def _extension_message(migration: str, extension: str, label: str) -> str:
    return (f"migration {migration} needs the PostgreSQL extension {extension!r}, which the {label} server does not "
            f"have: pass --shadow-database-url with an empty database on a server that has it")


_NOT_AVAILABLE = re.compile(r'extension "([^"]+)" is not available|could not open extension control file '
                            r'"[^"]*/([^"/]+)\.control"')


def _missing_extension(database_error: str | None) -> str | None:
    m = _NOT_AVAILABLE.search(database_error or "")
    return (m.group(1) or m.group(2)) if m else None


# ---------------------------------------------------------------------------------------------
# The scratch database


@cache
def _objects_sql() -> str:
    return resources.files(__package__).joinpath("replay_objects.sql").read_text(encoding="utf-8")


@contextmanager
def scratch_database(shadow_url: str | None = None, extensions: Iterable[str] = ()) -> Iterator[tuple[str, str]]:
    """Yield (url, label) of an empty database, and leave nothing of it behind.

    Without `shadow_url`: a new database on the embedded PostgreSQL, dropped afterwards
    (and the server stopped, unless another process still uses it) — or, when the embedded
    server lacks one of `extensions` and the system's PostgreSQL (`pg_ctl`) has them all, a
    throwaway cluster of the system's, removed afterwards. With `shadow_url`: the database
    must be empty (UsageError naming what it holds); the schema of its `?schema=` is created
    when missing, and whatever the replay created is dropped when done.
    """
    if shadow_url is not None:
        with _shadow_database(shadow_url) as found:
            yield found
        return
    needed = set(extensions)
    pg_ctl = None
    if needed - _control_files(_pgserver_sharedir()):
        from .localpg import find_pg_ctl

        pg_ctl = find_pg_ctl()
        if pg_ctl is not None and needed - _control_files(_system_sharedir(pg_ctl)):
            pg_ctl = None  # it lacks some too: the embedded server, and the error names what is missing
    with (_system_database(pg_ctl) if pg_ctl else _embedded_database()) as found:
        yield found


def _embedded_datadir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "driftwatch" / "replay-pg"


def _control_files(sharedir: Path | None) -> set[str]:
    """The extensions a PostgreSQL installation has, from its `share/extension/*.control` files."""
    if sharedir is None:
        return set()
    return {p.stem for p in (sharedir / "extension").glob("*.control")}


def _pgserver_sharedir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.glob("pginstall/share/postgresql"))
    return found[0] if found else None


def _system_sharedir(pg_ctl: str) -> Path | None:
    import subprocess

    pg_config = Path(os.path.realpath(pg_ctl)).parent / "pg_config"
    try:
        out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip())


@contextmanager
def _embedded_database() -> Iterator[tuple[str, str]]:
    import subprocess

    from .localpg import start_pgserver

    datadir = _embedded_datadir()
    try:
        with warnings.catch_warnings():  # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            server = start_pgserver(datadir)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatabaseError(f"could not start the embedded PostgreSQL in {datadir}: {exc}") from None
    try:
        with _fresh_database(server.url, server.url_for, EMBEDDED) as found:
            yield found
    finally:
        server.stop()


@contextmanager
def _system_database(pg_ctl: str) -> Iterator[tuple[str, str]]:
    """A throwaway cluster of the system's PostgreSQL: for extensions the embedded one lacks."""
    import shutil
    import tempfile

    from .localpg import start_system

    datadir = Path(tempfile.mkdtemp(prefix="driftwatch-replay-"))
    try:
        server = start_system(datadir, pg_ctl)
        try:
            with _fresh_database(server.url, server.url_for, "local PostgreSQL") as found:
                yield found
        finally:
            server.stop()
    finally:
        shutil.rmtree(datadir, ignore_errors=True)


@contextmanager
def _fresh_database(admin_url: str, url_for: Callable[[str], str], kind: str) -> Iterator[tuple[str, str]]:
    from psycopg import sql

    name = f"driftwatch_replay_{uuid.uuid4().hex[:12]}"
    with connect(admin_url, autocommit=True) as admin:
        version = admin.info.server_version // 10000
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
    try:
        yield url_for(name), f"{kind} {version}"
    finally:
        with connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass(frozen=True)
class _Object:
    kind: str
    schema: str
    name: str
    drop_target: str


def _objects(conn: "psycopg.Connection") -> list[_Object]:
    conn.execute("SET search_path = pg_catalog")  # so routines print schema-qualified
    return [_Object(*row) for row in conn.execute(_objects_sql())]


@contextmanager
def _shadow_database(shadow_url: str) -> Iterator[tuple[str, str]]:
    import psycopg
    from psycopg import sql

    conn_url, schema = split_prisma_url(shadow_url)
    where = redact(shadow_url)
    try:
        with connect(conn_url, autocommit=True) as conn:
            before = _objects(conn)
            held = [o for o in before if o.kind not in ("schema", "extension")]
            if held:
                names = ", ".join(f"{o.schema}.{o.name}" for o in held[:5]) + (", …" if len(held) > 5 else "")
                raise UsageError(f"the shadow database {where} is not empty ({len(held)} object(s): {names}); "
                                 f"give an empty database: everything in it is dropped after the replay")
            if not any(o.kind == "schema" and o.name == schema for o in before):
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot prepare the shadow database {where}: {scrub(_first(exc), shadow_url)}") from None
    try:
        yield shadow_url, where
    finally:
        _clean(conn_url, where, before, shadow_url)


_DROP = {"extension": "EXTENSION", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE", "p": "TABLE",
         "r": "TABLE", "S": "SEQUENCE", "routine": "ROUTINE", "domain": "DOMAIN", "type": "TYPE", "schema": "SCHEMA"}
_DROP_ORDER = list(_DROP)  # dependants first; CASCADE and IF EXISTS take care of the rest


def _clean(conn_url: str, where: str, before: Iterable[_Object], shadow_url: str) -> None:
    """Drop what the replay added, newest kind of dependency first, in one transaction."""
    import psycopg

    kept = {(o.kind, o.schema, o.name) for o in before}
    kept_schemas = {o.name for o in before if o.kind == "schema"}
    statements = []
    try:
        with connect(conn_url, autocommit=True) as conn:
            added = [o for o in _objects(conn) if (o.kind, o.schema, o.name) not in kept]
            for o in sorted(added, key=lambda o: _DROP_ORDER.index(o.kind)):
                if o.kind not in ("schema", "extension") and o.schema not in kept_schemas:
                    continue  # goes with its new schema
                statements.append(f"DROP {_DROP[o.kind]} IF EXISTS {o.drop_target} CASCADE")
            with conn.transaction():
                for statement in statements:
                    conn.execute(statement)
    except psycopg.Error as exc:
        raise DatabaseError(f"could not clean the shadow database {where} after the replay: "
                            f"{scrub(_first(exc), shadow_url)}") from None


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# Live findings the folder does not explain (what to do next: MigrateDiffResult.advice)


def _key(f: "Finding") -> tuple[str, str, str | None, str | None, str | None]:
    return (f.kind, f.schema, f.table, f.column, f.name)


def unexplained(findings: Iterable["Finding"], replay_findings: Iterable["Finding"]) -> list["Finding"]:
    """The findings of a live check that the migrations folder also has on a fresh replay.

    Deploying pending migrations cannot fix these: no migration makes that change, so the
    schema was edited without `prisma migrate dev`.
    """
    keys = {_key(f) for f in replay_findings}
    return [f for f in findings if _key(f) in keys]


