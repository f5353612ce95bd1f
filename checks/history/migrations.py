"""The history store's schema history: an ordered list of migrations, applied on open.

Each migration is frozen: it defines the tables as they were at its version (its own
MetaData, its own DDL types), never by importing `tables.py`, so that changing the current
schema later cannot change what an old migration does. A new version appends one
`Migration` here and updates `tables.py`; a test checks that the two agree.

Applying: each migration runs in its own transaction together with its `schema_version`
row, so a store is always at exactly one version. Concurrent openers serialize on a
PostgreSQL advisory lock, or on SQLite's write lock (BEGIN IMMEDIATE), and re-read the
version under the lock, so a migration is applied once.

Why not Alembic: a handful of append-only migrations on two dialects does not need its
script directory, env.py and alembic.ini, and would add a runtime dependency.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Double,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import CreateSchema

from ..errors import HistoryError
from .tables import PG_SCHEMA, schema_version

# Frozen copies of the DDL details the migrations rely on (see the module docstring).
_NAMING_V1 = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
_TIME = DateTime(timezone=True)
_ID = BigInteger().with_variant(Integer(), "sqlite")
# Any fixed 64-bit number; PostgreSQL advisory locks are per database.
_ADVISORY_LOCK_KEY = 0x44726966745748  # "DriftWH"
WRITE_OPTION = "driftwatch_write"  # execution option: on SQLite, begin with BEGIN IMMEDIATE


def _json() -> JSON:
    return JSON().with_variant(JSONB(), "postgresql")  # type: ignore[return-value]


def _v1_audit_log(conn: Connection) -> None:
    """The audit log: every fix, rehearsal, deploy, resolve, runbook and migrate command."""
    md = MetaData(naming_convention=_NAMING_V1)
    Table(
        "actions",
        md,
        Column("id", _ID, primary_key=True),
        Column("kind", String(64), nullable=False),
        Column("actor", Text, nullable=False),
        Column("started_at", _TIME, nullable=False),
        Column("finished_at", _TIME),
        Column("duration_ms", BigInteger),
        Column("environment", Text),
        Column("database", Text),
        Column("target", Text),
        Column("statements", Text),
        Column("outcome", String(32), nullable=False),
        Column("error", Text),
        Column("drift_before", _json()),
        Column("drift_after", _json()),
        Column("details", _json(), nullable=False),
        Index(None, "started_at"),
        Index(None, "kind", "started_at"),
    )
    md.create_all(conn, checkfirst=False)


def _v2_monitoring(conn: Connection) -> None:
    """Monitoring: watched targets, their observations, status flips, incidents."""
    md = MetaData(naming_convention=_NAMING_V1)
    Table(
        "targets",
        md,
        Column("id", _ID, primary_key=True),
        Column("name", Text, nullable=False, unique=True),
        Column("kind", String(32), nullable=False),
        Column("config", _json(), nullable=False),
        Column("created_at", _TIME, nullable=False),
    )
    Table(
        "observations",
        md,
        Column("id", _ID, primary_key=True),
        Column("target_id", _ID, ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
        Column("observed_at", _TIME, nullable=False),
        Column("status", String(16), nullable=False),
        Column("latency_ms", Double),
        Column("detail", _json()),
        Index(None, "target_id", "observed_at"),
        Index(None, "observed_at"),
    )
    Table(
        "flips",
        md,
        Column("id", _ID, primary_key=True),
        Column("target_id", _ID, ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
        Column("at", _TIME, nullable=False),
        Column("from_status", String(16)),
        Column("to_status", String(16), nullable=False),
        Index(None, "target_id", "at"),
        Index(None, "at"),
    )
    Table(
        "incidents",
        md,
        Column("id", _ID, primary_key=True),
        Column("opened_at", _TIME, nullable=False),
        Column("closed_at", _TIME),
        Column("title", Text, nullable=False),
        Column("summary", _json(), nullable=False),
        Index(None, "opened_at"),
        Index(None, "closed_at"),
    )
    md.create_all(conn, checkfirst=False)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "audit log: actions", _v1_audit_log),
    Migration(2, "monitoring: targets, observations, flips, incidents", _v2_monitoring),
)
LATEST = MIGRATIONS[-1].version


def _schema(conn: Connection) -> str | None:
    return PG_SCHEMA if conn.dialect.name == "postgresql" else None


def current_version(conn: Connection) -> int:
    """The store's schema version; 0 for an empty database."""
    if not inspect(conn).has_table(schema_version.name, schema=_schema(conn)):
        return 0
    return int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)


def _lock_and_bootstrap(conn: Connection) -> None:
    """Serialize migrators, then make sure the schema and the version table exist."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        if not inspect(conn).has_schema(PG_SCHEMA):
            conn.execute(CreateSchema(PG_SCHEMA, if_not_exists=True))
    # The version table is the one thing outside the migrations: its shape never changes.
    schema_version.create(conn, checkfirst=True)


def upgrade(engine: Engine, to: int | None = None) -> list[int]:
    """Apply the migrations the store lacks, up to `to` (default: the latest); return their versions.

    Raises HistoryError if the store is newer than this code: an old Driftwatch must not
    write into a schema it does not know.
    """
    target = LATEST if to is None else to
    with engine.connect() as conn:
        version = current_version(conn)
    if version > LATEST:
        raise HistoryError(
            f"schema version {version} is newer than this Driftwatch knows ({LATEST}): upgrade Driftwatch"
        )
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version <= version or migration.version > target:
            continue
        with engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                _lock_and_bootstrap(conn)
                if current_version(conn) >= migration.version:  # another process got there first
                    continue
                migration.apply(conn)
                conn.execute(
                    insert(schema_version).values(
                        version=migration.version,
                        description=migration.description,
                        applied_at=datetime.now(timezone.utc),
                    )
                )
        applied.append(migration.version)
    return applied
