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
    UniqueConstraint,
    case,
    func,
    insert,
    inspect,
    literal,
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


# v2's states, as v3 names them: the probe's view ("down") became the state it means.
_V2_STATES = {"up": "ok", "down": "failing", "degraded": "warning", "unknown": "unknown"}
_V2_ENVIRONMENT = "default"  # v2 targets had no environment


def _v3_tables(md: MetaData) -> dict[str, Table]:
    """The monitoring tables as schema v3 defines them (frozen; see the module docstring)."""
    def fk() -> ForeignKey:
        return ForeignKey("targets.id", ondelete="CASCADE")

    made = [
        Table(
            "targets", md,
            Column("id", _ID, primary_key=True),
            Column("environment", Text, nullable=False),
            Column("kind", String(32), nullable=False),
            Column("name", Text, nullable=False),
            Column("config", _json(), nullable=False),
            Column("created_at", _TIME, nullable=False),
            UniqueConstraint("environment", "kind", "name"),
        ),
        Table(
            "target_state", md,
            Column("target_id", _ID, fk(), primary_key=True, autoincrement=False),
            Column("state", String(16), nullable=False),
            Column("reason", Text),
            Column("since", _TIME),
            Column("failures", Integer, nullable=False),
            Column("checked_at", _TIME),
            Column("latency_ms", Double),
            Column("detail", _json()),
            Column("interval_s", Integer, nullable=False),
            Column("due_at", _TIME),
            Column("leased_by", Text),
            Column("leased_at", _TIME),
            Index(None, "due_at"),
        ),
        Table(
            "observations", md,
            Column("id", _ID, primary_key=True),
            Column("target_id", _ID, fk(), nullable=False),
            Column("observed_at", _TIME, nullable=False),
            Column("state", String(16), nullable=False),
            Column("reason", Text),
            Column("latency_ms", Double),
            Column("detail", _json()),
            Index(None, "target_id", "observed_at"),
            Index(None, "observed_at"),
        ),
        Table(
            "rollups", md,
            Column("target_id", _ID, fk(), primary_key=True, autoincrement=False),
            Column("hour", _TIME, primary_key=True),
            Column("count", Integer, nullable=False),
            Column("ok_count", Integer, nullable=False),
            Column("failing_count", Integer, nullable=False),
            Column("latency_avg", Double),
            Column("latency_p95", Double),
            Column("latency_max", Double),
            Index(None, "hour"),
        ),
        Table(
            "flips", md,
            Column("id", _ID, primary_key=True),
            Column("target_id", _ID, fk(), nullable=False),
            Column("at", _TIME, nullable=False),
            Column("from_state", String(16)),
            Column("to_state", String(16), nullable=False),
            Column("reason", Text),
            Index(None, "target_id", "at"),
            Index(None, "at"),
        ),
        Table(
            "incidents", md,
            Column("id", _ID, primary_key=True),
            Column("environment", Text, nullable=False),
            Column("opened_at", _TIME, nullable=False),
            Column("closed_at", _TIME),
            Column("title", Text, nullable=False),
            Column("summary", _json(), nullable=False),
            Index(None, "environment", "opened_at"),
            Index(None, "opened_at"),
            Index(None, "closed_at"),
            Index("uq_incidents_open_environment", "environment", unique=True,
                  sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
        ),
    ]
    return {t.name: t for t in made}


def _v2_tables(md: MetaData) -> dict[str, Table]:
    """v2's monitoring tables, only as far as v3 reads them."""
    made = [
        Table("targets", md, Column("id", _ID), Column("name", Text), Column("kind", String(32)),
              Column("config", _json()), Column("created_at", _TIME)),
        Table("observations", md, Column("id", _ID), Column("target_id", _ID), Column("observed_at", _TIME),
              Column("status", String(16)), Column("latency_ms", Double), Column("detail", _json())),
        Table("flips", md, Column("id", _ID), Column("target_id", _ID), Column("at", _TIME),
              Column("from_status", String(16)), Column("to_status", String(16))),
        Table("incidents", md, Column("id", _ID), Column("opened_at", _TIME), Column("closed_at", _TIME),
              Column("title", Text), Column("summary", _json())),
    ]
    return {t.name: t for t in made}


def _v3_state(status):  # type: ignore[no-untyped-def]
    return case(*[(status == old, new) for old, new in _V2_STATES.items()], else_="unknown")


def _v3_environments(conn: Connection) -> None:
    """Monitoring per environment: targets named by (environment, kind, name); the five states
    (ok, warning, failing, error, unknown) with reasons; each target's current state and
    schedule; hourly roll-ups; incidents per environment; actions by environment.

    v2's rows are kept: they are copied aside into temporary tables, the v2 tables dropped
    (children first, so no cascade fires), the v3 tables created under the same names, and
    the rows copied back with up/down/degraded mapped to ok/failing/warning and the targets
    placed in the environment "default". Rebuilding beats ALTER: SQLite cannot drop the old
    unique constraint on targets.name in place.
    """
    temp_schema = "pg_temp" if conn.dialect.name == "postgresql" else "temp"
    old = _v2_tables(MetaData())
    aside_md = MetaData()
    aside = {
        name: Table(f"v2_{name}", aside_md, *[Column(c.name, c.type) for c in table.columns], schema=temp_schema)
        for name, table in old.items()
    }
    for name, table in old.items():
        aside[name].create(conn)
        conn.execute(insert(aside[name]).from_select([c.name for c in table.columns], select(table)))
    for name in ("flips", "observations", "incidents", "targets"):
        old[name].drop(conn)

    md = MetaData(naming_convention=_NAMING_V1)
    new = _v3_tables(md)
    md.create_all(conn, checkfirst=False)

    t, o, f, i = aside["targets"], aside["observations"], aside["flips"], aside["incidents"]
    conn.execute(insert(new["targets"]).from_select(
        ["id", "environment", "kind", "name", "config", "created_at"],
        select(t.c.id, literal(_V2_ENVIRONMENT), t.c.kind, t.c.name, t.c.config, t.c.created_at),
    ))

    def was(status):  # type: ignore[no-untyped-def]
        return case((status.in_(["up", "unknown"]), None), else_=literal("recorded as ") + status)

    conn.execute(insert(new["observations"]).from_select(
        ["id", "target_id", "observed_at", "state", "reason", "latency_ms", "detail"],
        select(o.c.id, o.c.target_id, o.c.observed_at, _v3_state(o.c.status), was(o.c.status),
               o.c.latency_ms, o.c.detail),
    ))
    conn.execute(insert(new["flips"]).from_select(
        ["id", "target_id", "at", "from_state", "to_state", "reason"],
        select(f.c.id, f.c.target_id, f.c.at, _v3_state(f.c.from_status), _v3_state(f.c.to_status),
               was(f.c.to_status)).where(f.c.from_status.is_not(None)).union_all(
            select(f.c.id, f.c.target_id, f.c.at, None, _v3_state(f.c.to_status), was(f.c.to_status))
            .where(f.c.from_status.is_(None))),
    ))
    conn.execute(insert(new["incidents"]).from_select(
        ["id", "environment", "opened_at", "closed_at", "title", "summary"],
        select(i.c.id, literal(_V2_ENVIRONMENT), i.c.opened_at, i.c.closed_at, i.c.title, i.c.summary),
    ))
    # Each v2 target's newest observation becomes its current state; a poller that watches it
    # again schedules it (due_at stays NULL until then).
    newest = (select(o.c.status, o.c.observed_at, o.c.latency_ms)
              .where(o.c.target_id == t.c.id)
              .order_by(o.c.observed_at.desc(), o.c.id.desc()).limit(1).correlate(t))
    conn.execute(insert(new["target_state"]).from_select(
        ["target_id", "state", "reason", "since", "failures", "checked_at", "latency_ms", "interval_s"],
        select(t.c.id,
               func.coalesce(_v3_state(newest.with_only_columns(o.c.status).scalar_subquery()), "unknown"),
               was(newest.with_only_columns(o.c.status).scalar_subquery()),
               newest.with_only_columns(o.c.observed_at).scalar_subquery(),
               literal(0),
               newest.with_only_columns(o.c.observed_at).scalar_subquery(),
               newest.with_only_columns(o.c.latency_ms).scalar_subquery(),
               literal(60)),
    ))
    if conn.dialect.name == "postgresql":  # the copied ids must not be handed out again
        for name in ("targets", "observations", "flips", "incidents"):
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{PG_SCHEMA}.{name}', 'id'), "
                f"COALESCE((SELECT max(id) FROM {PG_SCHEMA}.{name}), 0) + 1, false)"
            ))
    for table in aside.values():
        table.drop(conn)

    md_actions = MetaData(naming_convention=_NAMING_V1)
    actions = Table("actions", md_actions, Column("environment", Text), Column("started_at", _TIME))
    Index(None, actions.c.environment, actions.c.started_at).create(conn)


def _v4_flip_detail(conn: Connection) -> None:
    """Flips keep the result that caused them (`detail`): the findings when drift turned
    failing, the deployment that went out. Raw results are pruned after 7 days; flips are the
    record, so the report's evidence and the deployment timeline outlive them.
    Targets get `retired_at`: a check removed from the config keeps its history but no longer
    counts in its environment's state (nor keeps an incident open)."""
    json_kind = _json().compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE {_qualified(conn, 'flips')} ADD COLUMN detail {json_kind}"))
    time_kind = _TIME.compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE {_qualified(conn, 'targets')} ADD COLUMN retired_at {time_kind}"))


def _qualified(conn: Connection, table: str) -> str:
    return f"{PG_SCHEMA}.{table}" if conn.dialect.name == "postgresql" else table


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "audit log: actions", _v1_audit_log),
    Migration(2, "monitoring: targets, observations, flips, incidents", _v2_monitoring),
    Migration(3, "monitoring per environment: five states, reasons, current state and leases, "
                 "hourly roll-ups, incidents per environment", _v3_environments),
    Migration(4, "flips keep the result that caused them; checks removed from the config are retired",
              _v4_flip_detail),
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
