"""The history store's schema at its latest version, in SQLAlchemy Core.

This is what the code reads and writes. The migrations in `migrations.py` are the frozen
history that builds it; a test asserts both agree on SQLite and on PostgreSQL.

On PostgreSQL the tables live in their own schema (`driftwatch`), so a store placed in an
application's database never collides with, or shows up as drift in, the application's tables.
On SQLite there are no schemas; `None` is mapped to `driftwatch` at execution time.

Indexes serve the dashboard's queries: the audit log newest first (optionally by kind),
the latest observation per target and a time range per target, flips per target by time,
and pruning observations by age.
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
)

targets = Table(
    "targets",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("config", json_type(), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

observations = Table(
    "observations",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("target_id", BigId, ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    Column("observed_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("latency_ms", Double),
    Column("detail", json_type()),
    Index(None, "target_id", "observed_at"),
    Index(None, "observed_at"),
)

flips = Table(
    "flips",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("target_id", BigId, ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Index(None, "target_id", "at"),
    Index(None, "at"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Column("title", Text, nullable=False),
    Column("summary", json_type(), nullable=False),
    Index(None, "opened_at"),
    Index(None, "closed_at"),
)
