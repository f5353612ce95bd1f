"""The history store: Driftwatch's audit log and monitoring history, on SQLite or PostgreSQL.

    store = HistoryStore.open()              # $DRIFTWATCH_HISTORY_URL, else the user's SQLite file
    store = HistoryStore.open("postgresql://ops@db/ops")     # a team's shared store

Where: `url` if given, else `$DRIFTWATCH_HISTORY_URL`, else
`$XDG_DATA_HOME/driftwatch/history.sqlite3` (`~/.local/share/…` when unset). A URL is
`sqlite:///path`, a plain file path, or `postgresql://…` (mapped to the psycopg driver;
`postgresql+psycopg://` works as is). On PostgreSQL the tables live in the schema `driftwatch`.

Guarantees: each write is its own transaction, committed before the call returns; opening
applies pending migrations (migrations.py); nothing stored or shown carries a password; every
failure is a HistoryError on one line naming the store (path, or redacted URL) and the reason.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ..errors import DriftwatchError, HistoryError, UsageError
from . import migrations
from .records import (
    MAX_ERROR_CHARS,
    TARGET_KINDS,
    ActionRecord,
    Flip,
    Incident,
    Observation,
    Target,
    as_utc,
    check_outcome,
    check_status,
    next_flip,
    redact_database,
    scrub_json,
    scrub_text,
    utcnow,
)
from .tables import PG_SCHEMA, actions, flips, incidents, observations, targets

ENV_URL = "DRIFTWATCH_HISTORY_URL"
CONNECT_TIMEOUT_S = 10
SQLITE_BUSY_TIMEOUT_S = 30
PRUNE_BATCH = 10_000


def default_path() -> Path:
    """`$XDG_DATA_HOME/driftwatch/history.sqlite3`, or `~/.local/share/driftwatch/history.sqlite3`."""
    base = os.environ.get("XDG_DATA_HOME", "")
    # The XDG spec says to ignore a relative XDG_DATA_HOME.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "driftwatch" / "history.sqlite3"


@dataclass(frozen=True)
class Location:
    """Where a store is: the URL to connect with (may hold a password) and what to show."""

    url: str
    shown: str
    dialect: str  # "sqlite" | "postgresql"
    path: Path | None = None  # the SQLite file; None in memory or on PostgreSQL
    is_default: bool = False


def locate(url: str | None = None) -> Location:
    """Resolve `url` (or the environment, or the default file) into a Location; raise HistoryError."""
    if url is None or not url.strip():
        url = os.environ.get(ENV_URL, "").strip() or None
    if url is None:
        path = default_path()
        return Location(f"sqlite:///{path}", str(path), "sqlite", path, is_default=True)
    url = url.strip()
    if "://" not in url:  # a plain file path
        path = Path(url).expanduser().absolute()
        return Location(f"sqlite:///{path}", str(path), "sqlite", path)
    scheme, rest = url.split("://", 1)
    base, _, driver = scheme.lower().partition("+")
    if base == "sqlite":
        if driver not in ("", "pysqlite"):
            raise HistoryError(f"history store {scheme}://…: only the built-in sqlite3 driver is supported")
        try:
            database = make_url(url).database
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad URL
            raise HistoryError(f"malformed history store URL {scrub_text(url)}: {scrub_text(str(exc))}") from None
        if not database or database == ":memory:":
            return Location("sqlite://", "sqlite:// (in memory)", "sqlite")
        path = Path(database).expanduser().absolute()
        return Location(f"sqlite:///{path}", str(path), "sqlite", path)
    if base in ("postgresql", "postgres"):
        shown = redact_database(url) or "<database URL>"
        if driver not in ("", "psycopg"):
            raise HistoryError(f"history store {shown}: only the psycopg driver is supported (use postgresql://…)")
        return Location("postgresql+psycopg://" + rest, shown, "postgresql")
    raise HistoryError(
        f"unsupported history store URL {scheme}://…: use a file path, sqlite:///path or postgresql://…"
    )


def _prepare_sqlite_file(loc: Location) -> None:
    """Fail early, clearly, when the file cannot be created; create it private (0600)."""
    path = loc.path
    assert path is not None
    where = f"cannot open history store {loc.shown}"
    if loc.is_default:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise HistoryError(f"{where}: cannot create directory {path.parent} ({exc.strerror or exc})") from None
    parent = path.parent
    if not parent.exists():
        raise HistoryError(f"{where}: directory {parent} does not exist")
    if not parent.is_dir():
        raise HistoryError(f"{where}: {parent} is not a directory")
    if path.is_dir():
        raise HistoryError(f"{where}: it is a directory")
    if not path.exists():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass  # another process created it just now
        except OSError as exc:
            raise HistoryError(f"{where}: cannot create it in {parent} ({exc.strerror or exc})") from None


def _set_wal(cur: Any) -> None:
    """Switch a new store to WAL. The switch needs the database to itself and SQLite does not
    wait for that (it answers "database is locked" at once when a second process opens the
    store at the same moment), so retry within the busy timeout. Once set, WAL is permanent."""
    import sqlite3
    import time

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _sqlite_engine(loc: Location) -> Engine:
    if loc.path is None:
        engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(loc.url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    # sqlite3's legacy transaction control does not BEGIN before DDL or SELECT: take it over, so
    # a migration is atomic and a write takes the write lock up front (no upgrade deadlock).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA foreign_keys = ON")
            if loc.path is not None:
                # Readers (the dashboard) do not block the writer (the CLI) and vice versa.
                _set_wal(cur)
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(migrations.WRITE_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(loc: Location) -> Engine:
    return create_engine(
        loc.url,
        pool_pre_ping=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "driftwatch-history"},
        execution_options={"schema_translate_map": {None: PG_SCHEMA}},
    )


def _reason(exc: BaseException, url: str | None = None) -> str:
    """The driver's first line, scrubbed: why a database operation failed."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    message = str(orig).strip()
    first = message.splitlines()[0].strip() if message else type(orig).__name__
    return scrub_text(first, url)


def _newest_observation_id():  # type: ignore[no-untyped-def]
    """Per target row, the id of its newest observation: what the status board shows and
    what pruning must keep."""
    return (
        select(observations.c.id)
        .where(observations.c.target_id == targets.c.id)
        .order_by(observations.c.observed_at.desc(), observations.c.id.desc())
        .limit(1)
        .correlate(targets)
        .scalar_subquery()
    )


class HistoryStore:
    """A connection to one history store. Open with `HistoryStore.open`; close when done."""

    def __init__(self, engine: Engine, location: Location) -> None:
        self._engine = engine
        self._loc = location

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> HistoryStore:
        """Open (creating and upgrading as needed) the store at `url`; raise HistoryError."""
        loc = locate(url)
        if loc.path is not None:
            _prepare_sqlite_file(loc)
        try:
            engine = _sqlite_engine(loc) if loc.dialect == "sqlite" else _postgres_engine(loc)
        except Exception as exc:  # noqa: BLE001 - a bad URL or a missing driver
            raise HistoryError(f"cannot open history store {loc.shown}: {_reason(exc, loc.url)}") from None
        try:
            with engine.connect():
                pass
        except SQLAlchemyError as exc:
            engine.dispose()
            if loc.dialect == "postgresql" and isinstance(exc, DBAPIError) and exc.orig is not None:
                from ..db import explain_connect_error  # the same wording as every other connection failure

                raise HistoryError(f"history store: {explain_connect_error(exc.orig, 'postgresql://' + loc.url.split('://', 1)[1])}") from None
            raise HistoryError(f"cannot open history store {loc.shown}: {_reason(exc, loc.url)}") from None
        store = cls(engine, loc)
        if migrate:
            try:
                migrations.upgrade(engine)
            except HistoryError as exc:
                engine.dispose()
                raise HistoryError(f"history store {loc.shown}: {exc}") from None
            except SQLAlchemyError as exc:
                engine.dispose()
                raise HistoryError(
                    f"cannot upgrade history store {loc.shown} to schema version {migrations.LATEST}: "
                    f"{_reason(exc, loc.url)}"
                ) from None
        return store

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def location(self) -> str:
        """Where the store is, safe to show: a file path or a URL without password."""
        return self._loc.shown

    @property
    def dialect(self) -> str:
        return self._loc.dialect

    @property
    def engine(self) -> Engine:
        return self._engine

    def schema_version(self) -> int:
        with self._read("read the schema version") as conn:
            return migrations.current_version(conn)

    def __repr__(self) -> str:
        return f"HistoryStore({self._loc.shown!r})"

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def _write(self, what: str) -> Iterator[Connection]:
        """One transaction per write: committed on exit, rolled back (and reported) on error."""
        try:
            with self._engine.connect() as conn:
                conn.execution_options(**{migrations.WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except DriftwatchError:
            raise
        except SQLAlchemyError as exc:
            raise HistoryError(f"cannot {what} in history store {self._loc.shown}: {_reason(exc, self._loc.url)}") from None

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                with conn.begin():
                    yield conn
        except DriftwatchError:
            raise
        except SQLAlchemyError as exc:
            raise HistoryError(f"cannot {what} from history store {self._loc.shown}: {_reason(exc, self._loc.url)}") from None

    # -- the audit log ---------------------------------------------------------------------

    def record_action(self, record: ActionRecord) -> int:
        """Store one action in its own transaction; return its id. Passwords are removed here too."""
        values = _action_values(record)
        with self._write("record an action") as conn:
            result = conn.execute(insert(actions).values(**values))
            return int(result.inserted_primary_key[0])

    def update_action(self, record: ActionRecord) -> None:
        """Rewrite the stored action `record.id` (its outcome, times, SQL, drift…): how
        `timed_action` turns the row it stored as "started" into the finished action."""
        if record.id is None:
            raise ValueError("update_action needs a record that was stored (its id is None)")
        values = _action_values(record)
        with self._write("record an action's outcome") as conn:
            done = conn.execute(update(actions).where(actions.c.id == record.id).values(**values))
            if done.rowcount != 1:
                raise HistoryError(f"cannot record an action's outcome in history store {self._loc.shown}: "
                                   f"action {record.id} does not exist")

    def list_actions(
        self, limit: int | None = 50, kind: str | None = None, since: datetime | None = None
    ) -> list[ActionRecord]:
        """The audit log, newest first; `since` keeps actions started at or after it."""
        query = select(actions).order_by(actions.c.started_at.desc(), actions.c.id.desc())
        if kind is not None:
            query = query.where(actions.c.kind == kind)
        if since is not None:
            query = query.where(actions.c.started_at >= as_utc(since))
        if limit is not None:
            query = query.limit(limit)
        with self._read("list actions") as conn:
            return [_action(row) for row in conn.execute(query)]

    def get_action(self, action_id: int) -> ActionRecord | None:
        with self._read("read an action") as conn:
            row = conn.execute(select(actions).where(actions.c.id == action_id)).first()
        return _action(row) if row is not None else None

    # -- monitoring ------------------------------------------------------------------------

    def add_target(self, name: str, kind: str, config: dict[str, Any] | None = None) -> int:
        """Create the target `name`, or update its kind and config; return its id. Config is scrubbed."""
        if kind not in TARGET_KINDS:
            raise ValueError(f"target kind {kind!r} is not one of {', '.join(TARGET_KINDS)}")
        clean = scrub_json(config or {})
        with self._write("add a target") as conn:
            found = conn.execute(select(targets.c.id).where(targets.c.name == name).with_for_update()).scalar()
            if found is not None:
                conn.execute(update(targets).where(targets.c.id == found).values(kind=kind, config=clean))
                return int(found)
            result = conn.execute(insert(targets).values(name=name, kind=kind, config=clean, created_at=utcnow()))
            return int(result.inserted_primary_key[0])

    def targets(self) -> list[Target]:
        with self._read("list targets") as conn:
            rows = conn.execute(select(targets).order_by(targets.c.name))
            return [Target(r.id, r.name, r.kind, r.config or {}, r.created_at) for r in rows]

    def record_observation(
        self,
        target: str,
        status: str,
        *,
        observed_at: datetime | None = None,
        latency_ms: float | None = None,
        detail: dict[str, Any] | None = None,
    ) -> bool:
        """Store one probe result; return True if it changed the target's status (a flip was stored).

        The observation and its flip are one transaction; the target's row is locked so that two
        probes of one target cannot both see the same previous status.
        """
        check_status(status)
        at = as_utc(observed_at) if observed_at is not None else utcnow()
        with self._write("record an observation") as conn:
            target_id = self._target_id(conn, target, lock=True)
            prev = conn.execute(
                select(observations.c.observed_at, observations.c.status)
                .where(observations.c.target_id == target_id)
                .order_by(observations.c.observed_at.desc(), observations.c.id.desc())
                .limit(1)
            ).first()
            previous = Observation(target, prev.observed_at, prev.status) if prev is not None else None
            conn.execute(
                insert(observations).values(
                    target_id=target_id, observed_at=at, status=status,
                    latency_ms=latency_ms, detail=scrub_json(detail),
                )
            )
            flip = next_flip(previous, Observation(target, at, status))
            if flip is not None:
                conn.execute(
                    insert(flips).values(
                        target_id=target_id, at=flip.at, from_status=flip.from_status, to_status=flip.to_status
                    )
                )
            return flip is not None

    def latest_status(self, target: str) -> str | None:
        """The status of the target's newest observation; None if it has none."""
        with self._read("read a status") as conn:
            target_id = self._target_id(conn, target)
            return conn.execute(
                select(observations.c.status)
                .where(observations.c.target_id == target_id)
                .order_by(observations.c.observed_at.desc(), observations.c.id.desc())
                .limit(1)
            ).scalar()

    def latest_observations(self) -> dict[str, Observation]:
        """The newest observation of every target that has one: the dashboard's status board."""
        newest = _newest_observation_id()
        query = (
            select(targets.c.name, observations)
            .join(observations, observations.c.id == newest)
            .order_by(targets.c.name)
        )
        with self._read("read the latest observations") as conn:
            return {row.name: _observation(row.name, row) for row in conn.execute(query)}

    def observations(
        self, target: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[Observation]:
        """A target's observations in [since, until), oldest first."""
        with self._read("read observations") as conn:
            target_id = self._target_id(conn, target)
            query = select(observations).where(observations.c.target_id == target_id)
            if since is not None:
                query = query.where(observations.c.observed_at >= as_utc(since))
            if until is not None:
                query = query.where(observations.c.observed_at < as_utc(until))
            query = query.order_by(observations.c.observed_at, observations.c.id)
            return [_observation(target, row) for row in conn.execute(query)]

    def flips(self, target: str | None = None, since: datetime | None = None) -> list[Flip]:
        """Status transitions, oldest first: of one target, or of all when `target` is None."""
        query = select(flips, targets.c.name).join(targets, targets.c.id == flips.c.target_id)
        if since is not None:
            query = query.where(flips.c.at >= as_utc(since))
        with self._read("read flips") as conn:
            if target is not None:
                query = query.where(flips.c.target_id == self._target_id(conn, target))
            query = query.order_by(flips.c.at, flips.c.id)
            return [Flip(r.name, r.at, r.from_status, r.to_status, r.id) for r in conn.execute(query)]

    def open_incident(self, title: str, summary: dict[str, Any] | None = None,
                      opened_at: datetime | None = None) -> int:
        with self._write("open an incident") as conn:
            result = conn.execute(
                insert(incidents).values(
                    title=title, summary=scrub_json(summary or {}),
                    opened_at=as_utc(opened_at) if opened_at else utcnow(),
                )
            )
            return int(result.inserted_primary_key[0])

    def close_incident(self, incident_id: int, closed_at: datetime | None = None,
                       summary: dict[str, Any] | None = None) -> None:
        """Close an open incident (optionally replacing its summary); raise UsageError if none is open."""
        values: dict[str, Any] = {"closed_at": as_utc(closed_at) if closed_at else utcnow()}
        if summary is not None:
            values["summary"] = scrub_json(summary)
        with self._write("close an incident") as conn:
            result = conn.execute(
                update(incidents)
                .where(incidents.c.id == incident_id, incidents.c.closed_at.is_(None))
                .values(**values)
            )
            if result.rowcount != 1:
                raise UsageError(f"no open incident {incident_id} in history store {self._loc.shown}")

    def incidents(self, since: datetime | None = None, open_only: bool = False) -> list[Incident]:
        """Incidents opened at or after `since`, newest first."""
        query = select(incidents).order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
        if since is not None:
            query = query.where(incidents.c.opened_at >= as_utc(since))
        if open_only:
            query = query.where(incidents.c.closed_at.is_(None))
        with self._read("list incidents") as conn:
            return [Incident(r.id, r.opened_at, r.closed_at, r.title, r.summary or {}) for r in conn.execute(query)]

    # -- retention -------------------------------------------------------------------------

    def prune(self, older_than: timedelta | datetime, *, batch: int = PRUNE_BATCH) -> int:
        """Delete observations older than `older_than` (an age, or a cutoff time); return how many.

        Each target's newest observation is kept, so `latest_status` survives a quiet target.
        Flips, incidents and the audit log are never pruned: they are small and they are the
        record. Deletes in batches, each its own transaction, so probes keep writing meanwhile.
        """
        cutoff = utcnow() - older_than if isinstance(older_than, timedelta) else as_utc(older_than)
        newest = _newest_observation_id()
        with self._read("find the newest observations") as conn:
            keep = [i for i in conn.execute(select(newest).select_from(targets)).scalars() if i is not None]
        total = 0
        while True:
            doomed = (
                select(observations.c.id)
                .where(observations.c.observed_at < cutoff, observations.c.id.not_in(keep))
                .limit(batch)
            )
            with self._write("prune observations") as conn:
                # A subquery rather than bound ids: no parameter limits, one round trip.
                deleted = conn.execute(
                    delete(observations).where(observations.c.id.in_(doomed.scalar_subquery()))
                ).rowcount
            total += deleted
            if deleted < batch:
                return total

    # -- helpers ---------------------------------------------------------------------------

    def _target_id(self, conn: Connection, name: str, *, lock: bool = False) -> int:
        query = select(targets.c.id).where(targets.c.name == name)
        if lock:
            query = query.with_for_update()
        found = conn.execute(query).scalar()
        if found is None:
            raise UsageError(f"no target {name!r} in history store {self._loc.shown}: add it with add_target first")
        return int(found)


def _action_values(record: ActionRecord) -> dict[str, Any]:
    """The columns of an action row, scrubbed of passwords whatever the caller handed over."""
    check_outcome(record.outcome)
    url = record.database
    error = None
    if record.error:
        error = scrub_text(" ".join(record.error.split()), url)
        if len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS - 1] + "…"
    return {
        "kind": record.kind,
        "actor": record.actor,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "duration_ms": record.duration_ms,
        "environment": record.environment,
        "database": redact_database(record.database),
        # The SQL stays exact: only URL credentials and `password=` are masked there; the
        # literal-password replacement (which can hit ordinary words) is for the error line.
        "target": scrub_text(record.target) if record.target is not None else None,
        "statements": scrub_text(record.statements) if record.statements is not None else None,
        "outcome": record.outcome,
        "error": error,
        "drift_before": scrub_json(record.drift_before),
        "drift_after": scrub_json(record.drift_after),
        "details": scrub_json(record.details or {}),
    }


def _action(row: Row[Any]) -> ActionRecord:
    return ActionRecord(
        id=row.id,
        kind=row.kind,
        outcome=row.outcome,
        actor=row.actor,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_ms=row.duration_ms,
        environment=row.environment,
        database=row.database,
        target=row.target,
        statements=row.statements,
        error=row.error,
        drift_before=row.drift_before,
        drift_after=row.drift_after,
        details=row.details or {},
    )


def _observation(target: str, row: Row[Any]) -> Observation:
    return Observation(target, row.observed_at, row.status, row.latency_ms, row.detail, row.id)
