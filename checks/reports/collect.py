"""Collect the facts of one environment and window from the history store (schema v3).

Bounded whatever the window: per-check counts and latency are aggregated by the database, in
buckets of `bucket_seconds`; state changes come from `flips` (few); the deployment, drift and
migration results are streamed and only their change points kept. A week of 30-second checks
for 50 checks is read as ~50 × 300 bucket rows plus the change points, never as 1 million rows.

The only module that knows the store's tables: the story (compose.py) sees `Facts`.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, Text, and_, case, cast, func, literal, literal_column, or_, select

from ..errors import UsageError
from ..history.tables import actions, flips, incidents, observations, rollups, targets
from .facts import ActionInfo, Bucket, CheckInfo, Deployment, DriftPoint, Facts, FlipInfo, IncidentInfo, MigrationsPoint
from .window import Window, bucket_seconds

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from ..history.store import HistoryStore

STREAM_ROWS = 1000
BAD_STATES = ("failing", "error")


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, str) and value:
        try:
            return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def list_incidents(store: HistoryStore, environment: str | None = None, *, limit: int = 100) -> list[IncidentInfo]:
    """Incidents newest first, optionally of one environment: `driftwatch report --list`."""
    query = select(incidents).order_by(incidents.c.opened_at.desc(), incidents.c.id.desc()).limit(limit)
    if environment is not None:
        query = query.where(incidents.c.environment == environment)
    with store.engine.connect() as conn:
        return [_incident(r) for r in conn.execute(query)]


def get_incident(store: HistoryStore, incident_id: int) -> IncidentInfo:
    with store.engine.connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
    if row is None:
        raise UsageError(f"no incident {incident_id} in history store {store.location} (list them: driftwatch report --list)")
    return _incident(row)


def _incident(row: Any) -> IncidentInfo:
    return IncidentInfo(int(row.id), row.environment, _utc(row.opened_at), _utc(row.closed_at),  # type: ignore[arg-type]
                        row.title, row.summary or {})


def environments(store: HistoryStore) -> list[str]:
    with store.engine.connect() as conn:
        return sorted({r[0] for r in conn.execute(select(targets.c.environment).distinct())}
                      | {r[0] for r in conn.execute(select(incidents.c.environment).distinct())})


def collect(store: HistoryStore, environment: str, win: Window, *, incident: IncidentInfo | None = None,
            database: str | None = None, max_points: int = 300) -> Facts:
    """Everything the report says about `environment` in `win`. `database` (redacted URL) also
    claims audit-log actions recorded without an environment name for that database."""
    since, end = win.since, win.end
    size = bucket_seconds(end - since, max_points=max_points)
    facts = Facts(environment=environment, since=since, until=win.until, now=win.now, incident=incident,
                  bucket_seconds=size, store=store.location)
    with store.engine.connect() as conn:
        ids = {int(r.id): (r.kind, r.name) for r in conn.execute(
            select(targets.c.id, targets.c.kind, targets.c.name).where(targets.c.environment == environment))}
        known_env = bool(ids) or conn.execute(
            select(func.count()).select_from(incidents).where(incidents.c.environment == environment)).scalar()
        if not known_env and not _has_actions(conn, environment):
            raise UsageError(f"no environment {environment!r} in history store {store.location}"
                             + _known(conn))
        facts.buckets = list(_buckets(conn, ids, since, end, size))
        facts.checks = _checks(conn, ids, since, end, facts.buckets)
        facts.flips = _flips(conn, environment, since, end)
        by_kind: dict[str, list[int]] = {}
        for tid, (kind, _name) in ids.items():
            by_kind.setdefault(kind, []).append(tid)
        facts.deployments, facts.deployment_before = _deployments(conn, by_kind.get("deployment", []), since, end)
        facts.drift = _drift(conn, by_kind.get("drift", []), since, end)
        facts.migrations = _migrations(conn, by_kind.get("migrations", []), since, end)
        facts.actions = _actions(conn, environment, database, since, end)
        facts.incidents = _incidents_overlapping(conn, environment, since, end)
    return facts


def _known(conn: Connection) -> str:
    names = sorted({r[0] for r in conn.execute(select(targets.c.environment).distinct())})
    return f" (known: {', '.join(names)})" if names else " (it holds no monitoring data yet: run driftwatch poll)"


def _has_actions(conn: Connection, environment: str) -> bool:
    return bool(conn.execute(select(func.count()).select_from(actions).where(actions.c.environment == environment)).scalar())


def _in_window(column: Any, since: datetime, end: datetime) -> Any:
    return and_(column >= since, column <= end)


@dataclass
class _Totals:
    n: int = 0
    ok: int = 0
    bad: int = 0
    lat_sum: float = 0.0
    lat_n: int = 0
    lat_max: float | None = None

    @property
    def lat_avg(self) -> float | None:
        return self.lat_sum / self.lat_n if self.lat_n else None


def _checks(conn: Connection, ids: dict[int, tuple[str, str]], since: datetime, end: datetime,
            buckets: list[Bucket]) -> list[CheckInfo]:
    if not ids:
        return []
    o = observations
    # Totals per check from the buckets the database already aggregated: no second scan.
    agg: dict[tuple[str, str], _Totals] = {}
    for b in buckets:
        t = agg.setdefault((b.kind, b.name), _Totals())
        t.n += b.count
        t.ok += b.ok_count
        t.bad += b.bad_count
        if b.latency_avg is not None:
            t.lat_sum += b.latency_avg * b.count
            t.lat_n += b.count
        if b.latency_max is not None:
            t.lat_max = b.latency_max if t.lat_max is None else max(t.lat_max, b.latency_max)
    # The state the failure threshold derived, at both ends: the newest flip before each end.
    at_start = _last_flip_states(conn, list(ids), before=since, inclusive=False)
    at_end = _last_flip_states(conn, list(ids), before=end, inclusive=True)
    newest = (select(o.c.id).where(o.c.target_id == targets.c.id, o.c.observed_at <= end)
              .order_by(o.c.observed_at.desc(), o.c.id.desc()).limit(1).correlate(targets).scalar_subquery())
    last = {int(r.target_id): r for r in conn.execute(
        select(o.c.target_id, o.c.state, o.c.reason, o.c.detail, o.c.observed_at)
        .join(targets, o.c.id == newest).where(targets.c.id.in_(list(ids))))}
    found = []
    for tid, (kind, name) in sorted(ids.items(), key=lambda x: (_KIND_ORDER.get(x[1][0], 9), x[1][1])):
        a, l = agg.get((kind, name)), last.get(tid)
        state_end = at_end.get(tid, (None, None))[0] or (l.state if l is not None else None)
        found.append(CheckInfo(
            kind=kind, name=name,
            state_at_start=at_start.get(tid, (None, None))[0],
            state_at_end=state_end,
            reason_at_end=(at_end.get(tid, (None, None))[1] if state_end != "ok" else None) or
                          (l.reason if l is not None and state_end != "ok" else None),
            detail_at_end=l.detail if l is not None else None,
            checked_at_end=_utc(l.observed_at) if l is not None else None,
            count=a.n if a else 0, ok_count=a.ok if a else 0, failing_count=a.bad if a else 0,
            latency_avg=a.lat_avg if a else None, latency_max=a.lat_max if a else None,
        ))
    return found


_KIND_ORDER = {"deployment": 0, "health": 1, "smoke": 2, "drift": 3, "migrations": 4}


def _last_flip_states(conn: Connection, ids: list[int], *, before: datetime, inclusive: bool) -> dict[int, tuple[str, str | None]]:
    f = flips
    cond = f.c.at <= before if inclusive else f.c.at < before
    ranked = (select(f.c.target_id, f.c.to_state, f.c.reason,
                     func.row_number().over(partition_by=f.c.target_id, order_by=(f.c.at.desc(), f.c.id.desc())).label("rn"))
              .where(f.c.target_id.in_(ids), cond).subquery())
    rows = conn.execute(select(ranked.c.target_id, ranked.c.to_state, ranked.c.reason).where(ranked.c.rn == 1))
    return {int(r.target_id): (r.to_state, r.reason) for r in rows}


def _bucket_expr(conn: Connection, size: int, col: Any = None) -> Any:
    """The bucket number of a time column, computed by the database (no datetime per row in Python)."""
    col = observations.c.observed_at if col is None else col
    if conn.dialect.name == "sqlite":
        # `//`: SQLAlchemy 2's `/` is true division and would make every row its own bucket.
        return cast(func.strftime("%s", col), Integer) // size
    return cast(func.floor(func.extract("epoch", col) / size), Integer)


def _buckets(conn: Connection, ids: dict[int, tuple[str, str]], since: datetime, end: datetime, size: int) -> Iterator[Bucket]:
    """Per check and bucket: count, ok, bad, latency avg and max. Whole hours already rolled up
    (by the poller, `rollups`) are read from there when the buckets are whole hours, so a
    week costs ~170 roll-up rows per check; the rest is aggregated from raw results by the
    database."""
    if not ids:
        return
    o = observations
    merged: dict[tuple[int, int], list[Any]] = {}
    ranges = [(since, end, True)]
    if size % 3600 == 0:
        first_hour = _ceil_hour(since)
        watermark = conn.execute(select(func.max(rollups.c.hour))).scalar()
        rolled_end = min(_utc(watermark) + timedelta(hours=1), _floor_hour(end)) if watermark is not None else first_hour
        if rolled_end > first_hour:
            r = rollups
            rolled_bucket = _bucket_expr(conn, size, r.c.hour).label("bucket")
            for row in conn.execute(
                    select(r.c.target_id, rolled_bucket, func.sum(r.c.count).label("n"), func.sum(r.c.ok_count).label("ok"),
                           func.sum(r.c.failing_count).label("bad"),
                           (func.sum(r.c.latency_avg * r.c.count) / func.nullif(func.sum(
                               case((r.c.latency_avg.is_not(None), r.c.count), else_=0)), 0)).label("lat_avg"),
                           func.max(r.c.latency_max).label("lat_max"))
                    .where(r.c.target_id.in_(list(ids)), r.c.hour >= first_hour, r.c.hour < rolled_end)
                    .group_by(r.c.target_id, literal_column("bucket"))):
                _merge(merged, int(row.target_id), int(row.bucket), row.n, row.ok, row.bad, row.lat_avg, row.lat_max)
            # One query per raw range: an OR of two ranges keeps SQLite off the index.
            ranges = [(since, first_hour, False), (rolled_end, end, True)]
    bucket = _bucket_expr(conn, size).label("bucket")
    for low, high, inclusive in ranges:
        if low >= high:
            continue
        query = (select(o.c.target_id, bucket, func.count().label("n"),
                        func.sum(case((o.c.state == "ok", 1), else_=0)).label("ok"),
                        func.sum(case((o.c.state.in_(BAD_STATES), 1), else_=0)).label("bad"),
                        func.avg(o.c.latency_ms).label("lat_avg"), func.max(o.c.latency_ms).label("lat_max"))
                 .where(o.c.target_id.in_(list(ids)), o.c.observed_at >= low,
                        o.c.observed_at <= high if inclusive else o.c.observed_at < high)
                 .group_by(o.c.target_id, literal_column("bucket")))
        for row in conn.execute(query):
            _merge(merged, int(row.target_id), int(row.bucket), row.n, row.ok, row.bad, row.lat_avg, row.lat_max)
    for (tid, index), (n, ok, bad, lat_sum, lat_n, lat_max) in sorted(merged.items()):
        kind, name = ids[tid]
        yield Bucket(kind, name, datetime.fromtimestamp(index * size, timezone.utc), n, ok, bad,
                     lat_sum / lat_n if lat_n else None, lat_max)


def _merge(merged: dict[tuple[int, int], list[Any]], tid: int, index: int, n: Any, ok: Any, bad: Any,
           lat_avg: Any, lat_max: Any) -> None:
    acc = merged.setdefault((tid, index), [0, 0, 0, 0.0, 0, None])
    n = int(n or 0)
    acc[0] += n
    acc[1] += int(ok or 0)
    acc[2] += int(bad or 0)
    if lat_avg is not None:
        acc[3] += float(lat_avg) * n
        acc[4] += n
    if lat_max is not None:
        acc[5] = float(lat_max) if acc[5] is None else max(acc[5], float(lat_max))


def _floor_hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(at: datetime) -> datetime:
    floor = _floor_hour(at)
    return floor if floor == at else floor + timedelta(hours=1)


def _flips(conn: Connection, environment: str, since: datetime, end: datetime) -> list[FlipInfo]:
    f, o, t = flips, observations, targets
    # The observation that caused a flip away from ok carries what the endpoint answered.
    cause = (select(o.c.detail).where(o.c.target_id == f.c.target_id, o.c.observed_at == f.c.at)
             .order_by(o.c.id.desc()).limit(1).correlate(f).scalar_subquery())
    query = (select(f.c.id, f.c.at, f.c.from_state, f.c.to_state, f.c.reason, t.c.kind, t.c.name,
                    case((f.c.to_state != "ok", cause), else_=None).label("detail"))
             .join(t, t.c.id == f.c.target_id)
             .where(t.c.environment == environment, _in_window(f.c.at, since, end))
             .order_by(f.c.at, f.c.id))
    return [FlipInfo(_utc(r.at), r.kind, r.name, r.from_state, r.to_state, r.reason,  # type: ignore[arg-type]
                     _json(r.detail)) for r in conn.execute(query)]


def _json(value: Any) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):  # a scalar subquery's JSON comes back as text on SQLite
        import json

        try:
            loaded = json.loads(value)
        except ValueError:
            return None
        return loaded if isinstance(loaded, dict) else None
    return None


def _stream(conn: Connection, ids: list[int], since: datetime, end: datetime, keys: tuple[str, ...],
            changes: tuple[str, ...] = ()) -> Iterator[Any]:
    """The observations of `ids` in the window, oldest first, preceded by the newest one before
    it: time, state, reason and the detail's members `keys` as JSON text (extracted by the
    database). With `changes`, only the rows where the state or one of those members differs
    from the row before (LAG, in the database): a week of a check that changed twice is three
    rows, not 20,000. Fetched in chunks (a server-side cursor on PostgreSQL)."""
    o = observations
    if not ids:
        return
    members = {key: _member(conn, key) for key in keys}
    columns = [o.c.observed_at, o.c.state, o.c.reason, *(m.label(f"m_{k}") for k, m in members.items())]
    before = conn.execute(
        select(*columns).where(o.c.target_id.in_(ids), o.c.observed_at < since)
        .order_by(o.c.observed_at.desc(), o.c.id.desc()).limit(1)).first()
    if before is not None:
        yield before
    window = and_(o.c.target_id.in_(ids), _in_window(o.c.observed_at, since, end))
    if changes:
        # First the rows whose state or detail text differs from the row before (cheap: no
        # JSON work), then the members of those rows only; `changes` are compared again in
        # Python, so a detail that differs elsewhere costs a row, never a wrong change point.
        key: Any = cast(o.c.state, Text).op("||")(literal("|", Text)).op("||")(
            func.coalesce(cast(o.c.detail, Text), literal("", Text)))
        ordering = (o.c.observed_at, o.c.id)
        lagged = select(o.c.id, key.label("k"), func.lag(key).over(order_by=ordering).label("prev_k")) \
            .where(window).subquery()
        changed = select(lagged.c.id).where(or_(lagged.c.prev_k.is_(None), lagged.c.prev_k != lagged.c.k))
        query = select(*columns).where(o.c.id.in_(changed)).order_by(o.c.observed_at, o.c.id)
    else:
        query = select(*columns).where(window).order_by(o.c.observed_at, o.c.id)
    result = conn.execution_options(yield_per=STREAM_ROWS).execute(query)
    try:
        yield from result
    finally:
        result.close()


def _member(conn: Connection, key: str) -> Any:
    """`detail`'s member `key` as JSON text (a string member without its quotes)."""
    if conn.dialect.name == "sqlite":
        # json_extract gives SQL values for scalars and JSON text for arrays and objects
        return func.json_extract(observations.c.detail, f'$."{key}"')
    return observations.c.detail.op("->>")(key)


def _loads(text: Any) -> Any:
    if text is None or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _flag(value: Any) -> bool | None:
    if value in (True, 1, "1", "true"):
        return True
    if value in (False, 0, "0", "false"):
        return False
    return None


_DEPLOYMENT_KEYS = ("deployment_uuid", "commit", "status", "started_at", "finished_at", "application_status",
                    "post_deployment_command", "migrates_on_deploy")


def _deployments(conn: Connection, ids: list[int], since: datetime, end: datetime) -> tuple[list[Deployment], Deployment | None]:
    seen: dict[str, Deployment] = {}
    order: list[str] = []
    before: Deployment | None = None
    last: tuple[Any, ...] | None = None
    for row in _stream(conn, ids, since, end, _DEPLOYMENT_KEYS, _DEPLOYMENT_KEYS):
        values = tuple(getattr(row, f"m_{k}") for k in _DEPLOYMENT_KEYS)
        observed = _utc(row.observed_at)
        assert observed is not None
        if values == last and observed >= since:
            continue
        last = values
        d = dict(zip(_DEPLOYMENT_KEYS, values))
        key = str(d.get("deployment_uuid") or d.get("commit") or "")
        if not key:
            continue
        dep = Deployment(
            uuid=d.get("deployment_uuid"), commit=d.get("commit"), status=d.get("status"),
            started_at=_parse_time(d.get("started_at")), finished_at=_parse_time(d.get("finished_at")),
            first_seen=observed, application_status=d.get("application_status"),
            post_deployment_command=d.get("post_deployment_command") or None,
            migrates_on_deploy=_flag(d.get("migrates_on_deploy")))
        if observed < since:
            before = dep
            continue
        if key in seen:
            dep = Deployment(**{**dep.__dict__, "first_seen": seen[key].first_seen})
        else:
            order.append(key)
        seen[key] = dep  # the newest observation of a deployment says how it ended
    if before is not None and str(before.uuid or before.commit) in seen:
        before = None  # still running into the window: it is in the list
    # A deployment seen in the window but started and finished before it belongs to the past.
    listed = []
    for key in order:
        dep = seen[key]
        if (dep.started_at or dep.first_seen) < since and (dep.finished_at is not None and dep.finished_at < since):
            if before is None or dep.at >= before.at:
                before = dep
            continue
        listed.append(dep)
    return listed, before


_DRIFT_KEYS = ("schema_commit", "summary", "findings", "schema_source", "fallback_reason", "schema")


def _drift(conn: Connection, ids: list[int], since: datetime, end: datetime) -> list[DriftPoint]:
    points: list[DriftPoint] = []
    last: tuple[Any, ...] | None = None
    for row in _stream(conn, ids, since, end, _DRIFT_KEYS, ("schema_commit", "summary", "findings")):
        key = (row.state, row.m_schema_commit, row.m_summary, row.m_findings)
        if key == last:
            continue
        last = key
        summary = _loads(row.m_summary)
        summary = summary if isinstance(summary, dict) else {}
        findings = _loads(row.m_findings)
        points.append(DriftPoint(
            at=max(_utc(row.observed_at), since),  # type: ignore[type-var]
            state=row.state, summary={k: int(summary.get(k) or 0) for k in ("critical", "warning", "info")},
            findings=tuple(f for f in findings or [] if isinstance(f, dict)) if isinstance(findings, list) else (),
            schema_commit=row.m_schema_commit, schema_source=row.m_schema_source,
            fallback_reason=row.m_fallback_reason, reason=row.reason, schema=row.m_schema))
    return points


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v.get("name") if isinstance(v, dict) else v) for v in value)


_MIGRATION_KEYS = ("pending", "failed", "rolled_back", "edited", "missing_locally", "by_state",
                   # the rest of the summary, so the report judges the next step as the CLI does
                   "existing", "managed", "up_to_date", "directory", "local", "empty", "created_tables")


def _migrations(conn: Connection, ids: list[int], since: datetime, end: datetime) -> list[MigrationsPoint]:
    points: list[MigrationsPoint] = []
    last: tuple[Any, ...] | None = None
    for row in _stream(conn, ids, since, end, _MIGRATION_KEYS, _MIGRATION_KEYS[:5]):
        key = (row.state, row.m_pending, row.m_failed, row.m_rolled_back, row.m_edited, row.m_missing_locally,
               row.m_existing, row.m_managed)  # a pending migration whose objects now exist changes the advice
        if key == last:
            continue
        last = key
        by_state = _loads(row.m_by_state)
        detail: dict[str, Any] = {"reason": row.reason}
        if isinstance(by_state, dict):
            detail["by_state"] = by_state
        for other in ("rolled_back", "edited", "missing_locally"):
            names = _names(_loads(getattr(row, f"m_{other}")))
            if names:
                detail[other] = list(names)
        for flag in ("managed", "up_to_date", "empty"):
            if _flag(getattr(row, f"m_{flag}")) is not None:
                detail[flag] = _flag(getattr(row, f"m_{flag}"))
        if row.m_directory is not None:
            detail["directory"] = str(row.m_directory)
        for member in ("existing", "local", "created_tables"):
            value = _loads(getattr(row, f"m_{member}"))
            if isinstance(value, (dict, list)):
                detail[member] = value
        points.append(MigrationsPoint(max(_utc(row.observed_at), since), row.state,  # type: ignore[type-var]
                                      _names(_loads(row.m_pending)), _names(_loads(row.m_failed)), detail))
    return points


def _actions(conn: Connection, environment: str, database: str | None, since: datetime, end: datetime) -> list[ActionInfo]:
    a = actions
    who = a.c.environment == environment
    if database:
        who = or_(who, and_(a.c.environment.is_(None), a.c.database == database))
    rows = conn.execute(select(a).where(who, _in_window(a.c.started_at, since, end)).order_by(a.c.started_at, a.c.id))
    return [ActionInfo(id=int(r.id), kind=r.kind, actor=r.actor, started_at=_utc(r.started_at),  # type: ignore[arg-type]
                       finished_at=_utc(r.finished_at), outcome=r.outcome, target=r.target, statements=r.statements,
                       error=r.error, drift_before=r.drift_before, drift_after=r.drift_after, details=r.details or {})
            for r in rows]


def _incidents_overlapping(conn: Connection, environment: str, since: datetime, end: datetime) -> list[IncidentInfo]:
    i = incidents
    rows = conn.execute(select(i).where(i.c.environment == environment, i.c.opened_at <= end,
                                        or_(i.c.closed_at.is_(None), i.c.closed_at >= since)).order_by(i.c.opened_at))
    return [_incident(r) for r in rows]
