"""The history store's schema at its latest version, in SQLAlchemy Core.

This is what the code reads and writes. The migrations in `migrations.py` are the frozen
history that builds it; a test asserts both agree on SQLite and on PostgreSQL.

On PostgreSQL the tables live in their own schema (`driftwatch`), so a store placed in an
application's database never collides with, or shows up as drift in, the application's tables.
On SQLite there are no schemas; `None` is mapped to `driftwatch` at execution time.

Monitoring (schema v3): a target is one configured check, named by (environment, kind, name).
`target_state` holds one row per target: its current state as the failure threshold derives
it, the newest result in full, and its schedule (the due-time that several pollers lease
with `FOR UPDATE SKIP LOCKED`). So the dashboard's "every check, now" is one indexed read of
a few hundred rows, never a scan of the observations. `observations` are raw results (kept
7 days by default), `rollups` their hourly aggregates (kept 90 days), `flips` every state
change with its reason, `incidents` one per environment episode of `failing` (at most one
open per environment, enforced by a partial unique index, so two pollers cannot both open one).

Indexes serve the dashboard's and the report's queries: the audit log newest first (by kind,
or by environment), a time range per target (observations, rollups, flips), flips and
incidents per environment by time, due checks by due-time, and pruning by age.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

PG_SCHEMA = "driftwatch"

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (naive text) and PostgreSQL (timestamptz) alike.

    SQLite stores the naive UTC text, which sorts and compares correctly as text.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def json_type() -> Any:
    """JSON on SQLite, JSONB on PostgreSQL; Python None is SQL NULL, not JSON 'null'."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(naming_convention=NAMING)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

actions = Table(
    "actions",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("actor", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("duration_ms", BigInteger),
    Column("environment", Text),
    Column("database", Text),
    Column("target", Text),
    Column("statements", Text),
    Column("outcome", String(32), nullable=False),
    Column("error", Text),
    Column("drift_before", json_type()),
    Column("drift_after", json_type()),
    Column("details", json_type(), nullable=False),
    Index(None, "started_at"),
    Index(None, "kind", "started_at"),
    Index(None, "environment", "started_at"),
)

targets = Table(
    "targets",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("environment", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("name", Text, nullable=False),
    Column("config", json_type(), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime),  # removed from the config: history kept, no longer watched
    UniqueConstraint("environment", "kind", "name"),
)

target_state = Table(
    "target_state",
    metadata,
    Column("target_id", BigId, ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("since", UTCDateTime),
    Column("failures", Integer, nullable=False),
    Column("checked_at", UTCDateTime),
    Column("latency_ms", Double),
    Column("detail", json_type()),
    Column("interval_s", Integer, nullable=False),
    Column("due_at", UTCDateTime),
    Column("leased_by", Text),
    Column("leased_at", UTCDateTime),
    Index(None, "due_at"),
)

observations = Table(
    "observations",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("target_id", BigId, ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    Column("observed_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("latency_ms", Double),
    Column("detail", json_type()),
    Index(None, "target_id", "observed_at"),
    Index(None, "observed_at"),
)

rollups = Table(
    "rollups",
    metadata,
    Column("target_id", BigId, ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    Column("hour", UTCDateTime, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("ok_count", Integer, nullable=False),
    Column("failing_count", Integer, nullable=False),
    Column("latency_avg", Double),
    Column("latency_p95", Double),
    Column("latency_max", Double),
    Index(None, "hour"),
)

flips = Table(
    "flips",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("target_id", BigId, ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("reason", Text),
    Column("detail", json_type()),
    Index(None, "target_id", "at"),
    Index(None, "at"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("environment", Text, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Column("title", Text, nullable=False),
    Column("summary", json_type(), nullable=False),
    Index(None, "environment", "opened_at"),
    Index(None, "opened_at"),
    Index(None, "closed_at"),
    # At most one open incident per environment, whoever (which poller) opens it.
    Index("uq_incidents_open_environment", "environment", unique=True,
          sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
)
