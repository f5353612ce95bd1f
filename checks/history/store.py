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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ..errors import DriftwatchError, HistoryError, UsageError
from ..monitor.results import CheckResult
from . import migrations
from .records import (
    MAX_ERROR_CHARS,
    TARGET_KINDS,
    ActionRecord,
    CheckSpec,
    CheckState,
    Claim,
    Flip,
    Incident,
    IncidentChange,
    Observation,
    Pruned,
    Recorded,
    SeriesPoint,
    Target,
    as_utc,
    check_outcome,
    check_state,
    redact_database,
    scrub_json,
    scrub_text,
    utcnow,
)
from .tables import (
    PG_SCHEMA,
    UTCDateTime,
    actions,
    flips,
    incidents,
    observations,
    rollups,
    target_state,
    targets,
)

ENV_URL = "DRIFTWATCH_HISTORY_URL"
CONNECT_TIMEOUT_S = 10
SQLITE_BUSY_TIMEOUT_S = 30
PRUNE_BATCH = 10_000
RAW_RETENTION = timedelta(days=7)
ROLLUP_RETENTION = timedelta(days=90)


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
        self, limit: int | None = 50, kind: str | None = None, since: datetime | None = None,
        *, until: datetime | None = None, environment: str | None = None,
    ) -> list[ActionRecord]:
        """The audit log, newest first; actions started in [since, until), of one environment."""
        query = select(actions).order_by(actions.c.started_at.desc(), actions.c.id.desc())
        if kind is not None:
            query = query.where(actions.c.kind == kind)
        if since is not None:
            query = query.where(actions.c.started_at >= as_utc(since))
        if until is not None:
            query = query.where(actions.c.started_at < as_utc(until))
        if environment is not None:
            query = query.where(actions.c.environment == environment)
        if limit is not None:
            query = query.limit(limit)
        with self._read("list actions") as conn:
            return [_action(row) for row in conn.execute(query)]

    def get_action(self, action_id: int) -> ActionRecord | None:
        with self._read("read an action") as conn:
            row = conn.execute(select(actions).where(actions.c.id == action_id)).first()
        return _action(row) if row is not None else None

    # -- monitoring: checks and their current state ------------------------------------------

    def register_checks(self, environment: str, specs: Iterable[CheckSpec],
                        *, now: datetime | None = None, retire_others: bool = False) -> dict[tuple[str, str], int]:
        """Create (or update) the targets of one environment's checks and their schedule;
        return their ids by (kind, name). Safe to call from several pollers at once.

        A new check is due at once; a check whose interval shrank is due no later than one new
        interval from now. Config is scrubbed of secrets. `retire_others`: the environment's
        other checks (removed from the config) are unscheduled, their history kept.
        """
        at = as_utc(now) if now is not None else utcnow()
        specs = list(specs)
        for spec in specs:
            if spec.kind not in TARGET_KINDS:
                raise ValueError(f"check kind {spec.kind!r} is not one of {', '.join(TARGET_KINDS)}")
        with self._write("register checks") as conn:
            for spec in specs:
                conn.execute(_insert_ignore(conn, targets).values(
                    environment=environment, kind=spec.kind, name=spec.name,
                    config=scrub_json(spec.config), created_at=at))
            rows = conn.execute(
                select(targets.c.id, targets.c.kind, targets.c.name, targets.c.config, targets.c.retired_at,
                       target_state.c.interval_s, target_state.c.due_at, target_state.c.target_id.label("has_state"))
                .outerjoin(target_state, target_state.c.target_id == targets.c.id)
                .where(targets.c.environment == environment)
            ).all()
            by_key = {(r.kind, r.name): r for r in rows}
            ids: dict[tuple[str, str], int] = {}
            for spec in specs:
                row = by_key[(spec.kind, spec.name)]
                ids[(spec.kind, spec.name)] = int(row.id)
                clean = scrub_json(spec.config)
                if row.config != clean:
                    conn.execute(update(targets).where(targets.c.id == row.id).values(config=clean))
                due = at if spec.scheduled else None
                if row.has_state is None:
                    conn.execute(_insert_ignore(conn, target_state).values(
                        target_id=row.id, state="unknown", failures=0, interval_s=spec.interval_s, due_at=due))
                    continue
                sooner = at + timedelta(seconds=spec.interval_s)
                if not spec.scheduled:
                    new_due = None
                elif row.due_at is None:
                    new_due = at
                else:
                    new_due = min(row.due_at, sooner)
                if row.interval_s != spec.interval_s or row.due_at != new_due:
                    conn.execute(update(target_state).where(target_state.c.target_id == row.id)
                                 .values(interval_s=spec.interval_s, due_at=new_due))
            back = [r.id for key, r in by_key.items() if key in ids and r.retired_at is not None]
            if back:
                conn.execute(update(targets).where(targets.c.id.in_(back)).values(retired_at=None))
            if retire_others:
                # Checks gone from the config keep their history but are no longer watched.
                gone = [r.id for key, r in by_key.items() if key not in ids and r.retired_at is None]
                if gone:
                    conn.execute(update(targets).where(targets.c.id.in_(gone)).values(retired_at=at))
                    conn.execute(update(target_state).where(target_state.c.target_id.in_(gone))
                                 .values(due_at=None))
        return ids

    def targets(self, environment: str | None = None, *, include_retired: bool = False) -> list[Target]:
        """Every check known to the store (of one environment), by environment, kind, name."""
        query = select(targets).order_by(targets.c.environment, targets.c.kind, targets.c.name)
        if environment is not None:
            query = query.where(targets.c.environment == environment)
        if not include_retired:
            query = query.where(targets.c.retired_at.is_(None))
        with self._read("list targets") as conn:
            return [Target(r.id, r.environment, r.kind, r.name, r.config or {}, r.created_at)
                    for r in conn.execute(query)]

    def environments(self) -> list[str]:
        """The environments that have checks in the store, sorted."""
        with self._read("list environments") as conn:
            return list(conn.execute(select(targets.c.environment).distinct()
                                     .order_by(targets.c.environment)).scalars())

    def claim_due(self, owner: str, *, now: datetime | None = None, limit: int = 100,
                  environments: Iterable[str] | None = None) -> list[Claim]:
        """Lease the checks that are due: each is moved to its next due-time (now + interval)
        in the same transaction, so no other poller runs it within that interval.

        On PostgreSQL the due rows are read `FOR UPDATE SKIP LOCKED`: pollers claiming at the
        same moment take different checks instead of queueing behind each other. A poller
        killed after claiming loses nothing but that one run: the check is due again one
        interval later, for whichever poller comes first. (On SQLite the write transaction
        itself serializes claims.)

        Without `now`, PostgreSQL's clock decides (all pollers share it, so a poller whose
        clock runs ahead cannot take a check early); SQLite's pollers share one host's clock.
        """
        query = (
            select(target_state.c.target_id, target_state.c.interval_s, target_state.c.due_at,
                   targets.c.environment, targets.c.kind, targets.c.name)
            .join(targets, targets.c.id == target_state.c.target_id)
            .where(target_state.c.due_at.is_not(None), targets.c.retired_at.is_(None))
            .order_by(target_state.c.due_at, target_state.c.target_id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=target_state)
        )
        if environments is not None:
            query = query.where(targets.c.environment.in_(list(environments)))
        with self._write("claim due checks") as conn:
            if now is not None:
                at = as_utc(now)
            elif conn.dialect.name == "postgresql":
                at = _utc(conn.execute(select(func.now())).scalar_one())
            else:
                at = utcnow()
            query = query.where(target_state.c.due_at <= at)
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    update(target_state)
                    .where(target_state.c.target_id == bindparam("tid"))
                    .values(due_at=bindparam("next_due"), leased_by=owner, leased_at=at),
                    [{"tid": r.target_id, "next_due": at + timedelta(seconds=r.interval_s)} for r in rows],
                )
        return [Claim(r.target_id, r.environment, r.kind, r.name, r.interval_s, r.due_at) for r in rows]

    def next_due(self, environments: Iterable[str] | None = None) -> datetime | None:
        """When the next check falls due (None: nothing is scheduled): how long a poller may sleep."""
        query = (select(func.min(target_state.c.due_at))
                 .join(targets, targets.c.id == target_state.c.target_id))
        if environments is not None:
            query = query.where(targets.c.environment.in_(list(environments)))
        with self._read("read the next due time") as conn:
            found = conn.execute(query).scalar()
        return None if found is None else _utc(found)

    def record_result(self, target_id: int, result: CheckResult, *, failure_threshold: int = 1) -> Recorded:
        """Store one probe result: the raw observation, the check's new state (the failure
        threshold applied to its consecutive failures) and, when the state changed, a flip with
        the result's reason — all in one transaction, with the check's state row locked so two
        pollers cannot both derive from the same previous state.

        A result older than the check's newest one (a late report) is kept as an observation
        but changes no state.
        """
        from ..monitor.state import Status, is_flip, next_status

        check_state(result.state)
        at = as_utc(result.checked_at)
        with self._write("record a result") as conn:
            row = conn.execute(
                select(target_state, targets.c.environment, targets.c.kind, targets.c.name)
                .join(targets, targets.c.id == target_state.c.target_id)
                .where(target_state.c.target_id == target_id)
                .with_for_update(of=target_state)
            ).first()
            if row is None:
                raise UsageError(f"no check {target_id} in history store {self._loc.shown}: register it first")
            detail = scrub_json(result.detail) if result.detail else None
            reason = scrub_text(result.reason) if result.reason else None
            conn.execute(insert(observations).values(
                target_id=target_id, observed_at=at, state=result.state, reason=reason,
                latency_ms=result.latency_ms, detail=detail))
            previous = None if row.checked_at is None else Status(row.state, row.reason, row.failures, row.since)
            if row.checked_at is not None and at < row.checked_at:
                return Recorded(_check_state(row._mapping), None)
            clean = result.with_state(result.state, reason) if reason != result.reason else result
            status = next_status(previous, clean, failure_threshold)
            values = dict(state=status.state, reason=status.reason, since=status.since, failures=status.failures,
                          checked_at=at, latency_ms=result.latency_ms, detail=detail)
            conn.execute(update(target_state).where(target_state.c.target_id == target_id).values(**values))
            flip = None
            reason = status.reason
            deployed = row.kind == "deployment" and _new_deployment(row.detail, detail)
            if is_flip(previous, status) or deployed:
                if deployed and status.state == "ok":
                    reason = _deployment_line(detail or {})
                from_state = previous.state if previous else None
                flip_id = conn.execute(insert(flips).values(
                    target_id=target_id, at=at, from_state=from_state, to_state=status.state, reason=reason,
                    detail=detail)).inserted_primary_key[0]
                flip = Flip(target_id, row.environment, row.kind, row.name, at, from_state, status.state, reason,
                            int(flip_id), detail)
            now_row = {**row._mapping, **values}
        return Recorded(_check_state(now_row), flip)

    def latest(self, environment: str | None = None, *, include_retired: bool = False) -> list[CheckState]:
        """Every check now (of one environment): state, reason, since, newest result and its
        time — one indexed read of the state rows, however long the history. Sorted by
        environment, kind (as in KINDS), name; the age is `CheckState.age_s(now)`. Checks
        removed from the config (retired) only with `include_retired`."""
        query = (select(target_state, targets.c.environment, targets.c.kind, targets.c.name)
                 .join(targets, targets.c.id == target_state.c.target_id))
        if not include_retired:
            query = query.where(targets.c.retired_at.is_(None))
        if environment is not None:
            query = query.where(targets.c.environment == environment)
        with self._read("read the latest states") as conn:
            found = [_check_state(r._mapping) for r in conn.execute(query)]
        order = {k: i for i, k in enumerate(TARGET_KINDS)}
        return sorted(found, key=lambda c: (c.environment, order.get(c.kind, 99), c.name))

    def environment_states(self) -> dict[str, str]:
        """Each environment's state: the worst of its checks'."""
        from ..monitor.state import environment_state

        by_env: dict[str, list[str]] = {}
        for check in self.latest():
            by_env.setdefault(check.environment, []).append(check.state)
        return {env: environment_state(states) for env, states in sorted(by_env.items())}

    # -- monitoring: incidents ----------------------------------------------------------------

    def update_incident(self, environment: str, *, now: datetime | None = None) -> IncidentChange | None:
        """Open an incident when the environment is failing and has none open; close the open
        one when it is ok again. Returns what changed, or None. Two pollers cannot both open
        one: at most one open incident per environment is a unique index."""
        from ..monitor.state import environment_state, incident_action

        at = as_utc(now) if now is not None else utcnow()
        with self._write("update an incident") as conn:
            checks = conn.execute(
                select(targets.c.kind, targets.c.name, target_state.c.state, target_state.c.reason,
                       target_state.c.since)
                .join(targets, targets.c.id == target_state.c.target_id)
                .where(targets.c.environment == environment, targets.c.retired_at.is_(None))
                .order_by(targets.c.kind, targets.c.name)
            ).all()
            state = environment_state(c.state for c in checks)
            current = conn.execute(
                select(incidents).where(incidents.c.environment == environment, incidents.c.closed_at.is_(None))
            ).first()
            action = incident_action(state, current is not None)
            if action == "open":
                failing = [{"kind": c.kind, "name": c.name, "state": c.state, "reason": c.reason,
                            "since": _iso(c.since)} for c in checks if c.state not in ("ok", "unknown")]
                title = _incident_title(environment, [f for f in failing if f["state"] == "failing"])
                summary = scrub_json({"state": state, "checks": failing})
                incident_id = conn.execute(_insert_ignore(conn, incidents).values(
                    environment=environment, opened_at=at, title=title, summary=summary
                ).returning(incidents.c.id)).scalar()
                if incident_id is None:
                    return None  # another poller opened it a moment ago
                return IncidentChange("opened", Incident(int(incident_id), environment, at, None, title, summary))
            if action == "close" and current is not None:
                summary = dict(current.summary or {})
                summary["resolved"] = {"at": _iso(at), "state": state}
                conn.execute(update(incidents).where(incidents.c.id == current.id)
                             .values(closed_at=at, summary=summary))
                return IncidentChange("closed", Incident(current.id, environment, current.opened_at, at,
                                                         current.title, summary))
        return None

    def open_incident(self, environment: str, title: str, summary: dict[str, Any] | None = None,
                      opened_at: datetime | None = None) -> int:
        """Open an incident by hand; raise UsageError if the environment already has one open."""
        with self._write("open an incident") as conn:
            incident_id = conn.execute(_insert_ignore(conn, incidents).values(
                environment=environment, title=title, summary=scrub_json(summary or {}),
                opened_at=as_utc(opened_at) if opened_at else utcnow()).returning(incidents.c.id)).scalar()
            if incident_id is None:
                raise UsageError(f"environment {environment!r} already has an open incident "
                                 f"in history store {self._loc.shown}")
            return int(incident_id)

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

    def incidents(self, environment: str | None = None, *, since: datetime | None = None,
                  until: datetime | None = None, open_only: bool = False) -> list[Incident]:
        """Incidents that overlap [since, until) (of one environment), newest first."""
        query = select(incidents).order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
        if environment is not None:
            query = query.where(incidents.c.environment == environment)
        if since is not None:
            query = query.where(or_(incidents.c.closed_at.is_(None), incidents.c.closed_at >= as_utc(since)))
        if until is not None:
            query = query.where(incidents.c.opened_at < as_utc(until))
        if open_only:
            query = query.where(incidents.c.closed_at.is_(None))
        with self._read("list incidents") as conn:
            return [_incident(r) for r in conn.execute(query)]

    def get_incident(self, incident_id: int) -> Incident | None:
        with self._read("read an incident") as conn:
            row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
        return None if row is None else _incident(row)

    # -- monitoring: history in a window ------------------------------------------------------

    def flips(self, environment: str | None = None, *, since: datetime | None = None,
              until: datetime | None = None, target_id: int | None = None) -> list[Flip]:
        """State changes in [since, until), oldest first: of one check, one environment, or all."""
        query = (select(flips, targets.c.environment, targets.c.kind, targets.c.name)
                 .join(targets, targets.c.id == flips.c.target_id))
        if environment is not None:
            query = query.where(targets.c.environment == environment)
        if target_id is not None:
            query = query.where(flips.c.target_id == target_id)
        if since is not None:
            query = query.where(flips.c.at >= as_utc(since))
        if until is not None:
            query = query.where(flips.c.at < as_utc(until))
        query = query.order_by(flips.c.at, flips.c.id)
        with self._read("read flips") as conn:
            return [Flip(r.target_id, r.environment, r.kind, r.name, r.at, r.from_state, r.to_state,
                         r.reason, r.id, r.detail) for r in conn.execute(query)]

    def iter_observations(self, target_id: int, *, since: datetime | None = None,
                          until: datetime | None = None, batch: int = 1000) -> Iterator[Observation]:
        """A check's raw results in [since, until), oldest first, streamed in batches (a week
        of 30-second results never sits in memory at once). Close the iterator, or exhaust it."""
        query = select(observations).where(observations.c.target_id == target_id)
        if since is not None:
            query = query.where(observations.c.observed_at >= as_utc(since))
        if until is not None:
            query = query.where(observations.c.observed_at < as_utc(until))
        query = query.order_by(observations.c.observed_at, observations.c.id)
        with self._read("read observations") as conn:
            for row in conn.execution_options(yield_per=batch).execute(query):
                yield Observation(row.target_id, row.observed_at, row.state, row.reason,
                                  row.latency_ms, row.detail, row.id)

    def observations(self, target_id: int, *, since: datetime | None = None,
                     until: datetime | None = None) -> list[Observation]:
        """`iter_observations` as a list, for short windows."""
        return list(self.iter_observations(target_id, since=since, until=until))

    def series(self, target_id: int, *, since: datetime, until: datetime | None = None) -> list[SeriesPoint]:
        """A check's hours in [since, until), oldest first: count, ok, failing and latency
        avg/p95/max — from the hourly roll-ups where they exist, aggregated from raw results
        for the hours not rolled up yet (the current one). The dashboard's 24-hour chart reads
        ≤ 24 roll-up rows and at most a few hours of raw rows."""
        end = as_utc(until) if until is not None else utcnow()
        start = _hour(as_utc(since))
        with self._read("read a series") as conn:
            # The store-wide roll-up watermark rides along (one round trip fewer on PostgreSQL).
            newest = select(func.max(rollups.c.hour)).scalar_subquery()
            rolled = conn.execute(
                select(rollups, newest.label("newest")).where(
                    rollups.c.target_id == target_id, rollups.c.hour >= start, rollups.c.hour < end
                ).order_by(rollups.c.hour)
            ).all()
            raw_from = _utc(rolled[-1].hour) + HOUR if rolled else start
            watermark = _utc(rolled[0].newest) + HOUR if rolled else self._rolled_until(conn)
            if watermark is not None:
                raw_from = max(raw_from, min(watermark, _hour(end)))
            raw = conn.execute(
                select(observations.c.observed_at, observations.c.state, observations.c.latency_ms)
                .where(observations.c.target_id == target_id, observations.c.observed_at >= raw_from,
                       observations.c.observed_at < end)
                .order_by(observations.c.observed_at)
            ).all()
        points = [SeriesPoint(_utc(r.hour), r.count, r.ok_count, r.failing_count, r.latency_avg,
                              r.latency_p95, r.latency_max, "rollup") for r in rolled]
        by_hour: dict[datetime, list[Row[Any]]] = {}
        for r in raw:
            by_hour.setdefault(_hour(r.observed_at), []).append(r)
        for hour, rows in sorted(by_hour.items()):
            latencies = sorted(r.latency_ms for r in rows if r.latency_ms is not None)
            points.append(SeriesPoint(
                hour, len(rows), sum(r.state == "ok" for r in rows), sum(r.state == "failing" for r in rows),
                sum(latencies) / len(latencies) if latencies else None, nearest_rank(latencies, 95),
                latencies[-1] if latencies else None, "raw"))
        return points

    def uptime(self, *, since: datetime, until: datetime | None = None, environment: str | None = None,
               target_ids: Iterable[int] | None = None) -> dict[int, float | None]:
        """Per check, the share of results in [since, until) that were ok (None: no results):
        summed in SQL from roll-ups for whole rolled-up hours and raw results for the rest."""
        counts = self.counts(since=since, until=until, environment=environment, target_ids=target_ids)
        return {tid: (ok / n if n else None) for tid, (n, ok, _failing) in counts.items()}

    def counts(self, *, since: datetime, until: datetime | None = None, environment: str | None = None,
               target_ids: Iterable[int] | None = None) -> dict[int, tuple[int, int, int]]:
        """Per check, (results, ok, failing) in [since, until), aggregated in SQL."""
        lo = as_utc(since)
        hi = as_utc(until) if until is not None else utcnow()
        ids = None if target_ids is None else list(target_ids)
        first_hour = _hour(lo) if _hour(lo) == lo else _hour(lo) + HOUR
        with self._read("count results") as conn:
            watermark = self._rolled_until(conn)
            rolled_to = first_hour if watermark is None else max(first_hour, min(watermark, _hour(hi)))
            if environment is not None:
                # The environment's ids as a list: each check's rows are then read through the
                # (target_id, time) index instead of every check's rows in the time range.
                in_env = list(conn.execute(select(targets.c.id).where(targets.c.environment == environment))
                              .scalars())
                ids = in_env if ids is None else [i for i in ids if i in set(in_env)]
                if not ids:
                    return {}

            def scoped(query, column):  # type: ignore[no-untyped-def]
                return query if ids is None else query.where(column.in_(ids))

            total: dict[int, list[int]] = {}
            if rolled_to > first_hour:
                q = scoped(select(rollups.c.target_id, func.sum(rollups.c.count), func.sum(rollups.c.ok_count),
                                  func.sum(rollups.c.failing_count))
                           .where(rollups.c.hour >= first_hour, rollups.c.hour < rolled_to)
                           .group_by(rollups.c.target_id), rollups.c.target_id)
                for tid, n, ok, failing in conn.execute(q):
                    total[tid] = [int(n or 0), int(ok or 0), int(failing or 0)]
            o = observations
            # Raw results outside the rolled-up hours: two tight ranges, each one index range scan.
            if rolled_to > first_hour:
                ranges = [(lo, min(first_hour, hi)), (max(rolled_to, lo), hi)]
            else:
                ranges = [(lo, hi)]
            for start, end in ranges:
                if start >= end:
                    continue
                q = scoped(select(o.c.target_id, func.count(), func.sum(case((o.c.state == "ok", 1), else_=0)),
                                  func.sum(case((o.c.state == "failing", 1), else_=0)))
                           .where(o.c.observed_at >= start, o.c.observed_at < end)
                           .group_by(o.c.target_id), o.c.target_id)
                for tid, n, ok, failing in conn.execute(q):
                    got = total.setdefault(tid, [0, 0, 0])
                    got[0] += int(n or 0)
                    got[1] += int(ok or 0)
                    got[2] += int(failing or 0)
        return {tid: (v[0], v[1], v[2]) for tid, v in total.items()}

    # -- retention -------------------------------------------------------------------------

    def rollup(self, *, now: datetime | None = None) -> int:
        """Aggregate every complete hour not rolled up yet (and the newest rolled-up hour
        again, for late results) into `rollups`; return how many hours were written.

        One INSERT … SELECT per hour computes count, ok, failing, latency avg/max and the
        nearest-rank p95 (a window function) in the database. Several pollers may call this:
        on PostgreSQL only the one holding the maintenance lock works, the others return.
        """
        end = _hour(as_utc(now) if now is not None else utcnow())
        with self._read("find hours to roll up") as conn:
            watermark = conn.execute(select(func.max(rollups.c.hour))).scalar()
            if watermark is not None:
                hour: datetime | None = _utc(watermark)
            else:
                first = conn.execute(select(func.min(observations.c.observed_at))).scalar()
                hour = None if first is None else _hour(_utc(first))
        written = 0
        while hour is not None and hour < end:
            with self._write("roll up an hour") as conn:
                if not _maintenance_lock(conn):
                    return written
                # Replace only the checks with raw results in that hour: an hour whose raw
                # results were pruned keeps its roll-up.
                present = select(observations.c.target_id).where(
                    observations.c.observed_at >= hour, observations.c.observed_at < hour + HOUR).distinct()
                conn.execute(delete(rollups).where(rollups.c.hour == hour, rollups.c.target_id.in_(present)))
                conn.execute(_rollup_insert(hour))
                following = conn.execute(
                    select(func.min(observations.c.observed_at)).where(observations.c.observed_at >= hour + HOUR)
                ).scalar()
            written += 1
            hour = None if following is None else _hour(_utc(following))
        return written

    def prune(self, raw_older_than: timedelta | datetime = RAW_RETENTION,
              rollups_older_than: timedelta | datetime = ROLLUP_RETENTION, *,
              now: datetime | None = None, batch: int = PRUNE_BATCH) -> Pruned:
        """Roll up, then delete raw results older than `raw_older_than` (default 7 days) and
        roll-ups older than `rollups_older_than` (90 days); return how many of each.

        Each check's current state lives in its state row, so a quiet check keeps it. Flips,
        incidents and the audit log are never pruned: they are small and they are the record.
        Deletes in batches, each its own transaction, so probes keep writing meanwhile.
        """
        at = as_utc(now) if now is not None else utcnow()
        self.rollup(now=at)
        raw_cut = at - raw_older_than if isinstance(raw_older_than, timedelta) else as_utc(raw_older_than)
        roll_cut = (at - rollups_older_than if isinstance(rollups_older_than, timedelta)
                    else as_utc(rollups_older_than))
        raw = self._delete_in_batches(observations, observations.c.id, observations.c.observed_at < raw_cut,
                                      batch, "prune observations")
        rolled = 0
        while True:
            with self._write("prune roll-ups") as conn:
                hours = select(rollups.c.hour).where(rollups.c.hour < roll_cut).distinct() \
                    .order_by(rollups.c.hour).limit(max(1, batch // 1000))
                deleted = conn.execute(delete(rollups).where(rollups.c.hour.in_(hours.scalar_subquery()))).rowcount
            rolled += deleted
            if deleted == 0:
                break
        return Pruned(raw, rolled)

    def _delete_in_batches(self, table, id_column, condition, batch: int, what: str) -> int:  # type: ignore[no-untyped-def]
        total = 0
        while True:
            doomed = select(id_column).where(condition).limit(batch)
            with self._write(what) as conn:
                # A subquery rather than bound ids: no parameter limits, one round trip.
                deleted = conn.execute(delete(table).where(id_column.in_(doomed.scalar_subquery()))).rowcount
            total += deleted
            if deleted < batch:
                return total

    @staticmethod
    def _rolled_until(conn: Connection) -> datetime | None:
        """The end of the newest rolled-up hour: the roll-up runs for every check at once, so
        hours before it are in `rollups` (or had no results)."""
        newest = conn.execute(select(func.max(rollups.c.hour))).scalar()
        return None if newest is None else _utc(newest) + HOUR



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


HOUR = timedelta(hours=1)


def _utc(value: datetime) -> datetime:
    """A datetime read from an aggregate (max, min), which bypasses the column type on SQLite."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def nearest_rank(sorted_values: list[float], percent: int) -> float | None:
    """The nearest-rank percentile of sorted values: what the roll-up's SQL computes too."""
    if not sorted_values:
        return None
    rank = -(-percent * len(sorted_values) // 100)  # ceil
    return sorted_values[max(rank, 1) - 1]


def _insert_ignore(conn: Connection, table: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING, on either dialect: racing pollers insert once."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


_MAINTENANCE_LOCK_KEY = 0x44726966745749  # next to migrations' key: one poller rolls up at a time


def _maintenance_lock(conn: Connection) -> bool:
    """Take the roll-up lock for this transaction if free (PostgreSQL); SQLite's write lock
    already serializes."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _MAINTENANCE_LOCK_KEY}).scalar())


def _rollup_insert(hour: datetime) -> Any:
    o = observations
    window = and_(o.c.observed_at >= hour, o.c.observed_at < hour + HOUR)
    agg = (
        select(o.c.target_id.label("target_id"), func.count().label("n"),
               func.sum(case((o.c.state == "ok", 1), else_=0)).label("ok"),
               func.sum(case((o.c.state == "failing", 1), else_=0)).label("failing"),
               func.avg(o.c.latency_ms).label("avg"), func.max(o.c.latency_ms).label("max"))
        .where(window).group_by(o.c.target_id).subquery("agg")
    )
    ranked = (
        select(o.c.target_id.label("target_id"), o.c.latency_ms.label("latency"),
               func.row_number().over(partition_by=o.c.target_id, order_by=o.c.latency_ms).label("rn"),
               func.count().over(partition_by=o.c.target_id).label("n"))
        .where(window, o.c.latency_ms.is_not(None)).subquery("ranked")
    )
    # Nearest rank: the smallest latency whose rank reaches 95% of the count.
    p95 = (select(ranked.c.target_id, func.min(ranked.c.latency).label("p95"))
           .where(ranked.c.rn * 100 >= ranked.c.n * 95).group_by(ranked.c.target_id).subquery("p95"))
    source = (
        select(agg.c.target_id, literal(hour, UTCDateTime()), agg.c.n, agg.c.ok, agg.c.failing,
               agg.c.avg, p95.c.p95, agg.c.max)
        .select_from(agg.outerjoin(p95, p95.c.target_id == agg.c.target_id))
    )
    return insert(rollups).from_select(
        ["target_id", "hour", "count", "ok_count", "failing_count", "latency_avg", "latency_p95", "latency_max"],
        source)


_DEPLOYMENT_KEYS = ("deployment_uuid", "deployment_commit", "commit", "status")


def _new_deployment(before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    """Whether a deployment result shows another deployment, commit or status than the last."""
    if not after or not any(after.get(k) for k in _DEPLOYMENT_KEYS):
        return False
    before = before or {}
    return any(before.get(k) != after.get(k) for k in _DEPLOYMENT_KEYS)


def _deployment_line(detail: dict[str, Any]) -> str:
    """`deployment 9f2c… of cbf49b4 finished`: a deployment timeline entry."""
    commit = str(detail.get("deployment_commit") or detail.get("commit") or "an unknown commit")[:7]
    uuid = detail.get("deployment_uuid")
    return f"deployment {uuid + ' ' if uuid else ''}of {commit} {detail.get('status') or 'seen'}"


def _incident_title(environment: str, failing: list[dict[str, Any]]) -> str:
    if not failing:
        return f"{environment} is failing"
    first = failing[0]
    what = first["kind"] if first["name"] == first["kind"] else f"{first['kind']} {first['name']!r}"
    more = f" (+{len(failing) - 1} more)" if len(failing) > 1 else ""
    title = f"{environment} failing: {what}: {first['reason'] or 'failing'}{more}"
    return title if len(title) <= 200 else title[:199] + "…"


def _check_state(row: Any) -> CheckState:
    return CheckState(
        target_id=row["target_id"], environment=row["environment"], kind=row["kind"], name=row["name"],
        state=row["state"], reason=row["reason"], since=row["since"], failures=row["failures"],
        checked_at=row["checked_at"], latency_ms=row["latency_ms"], detail=row["detail"],
        interval_s=row["interval_s"], due_at=row["due_at"])


def _incident(row: Row[Any]) -> Incident:
    return Incident(row.id, row.environment, row.opened_at, row.closed_at, row.title, row.summary or {})
