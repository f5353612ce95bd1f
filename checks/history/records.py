"""What the history store holds, as plain dataclasses, and the pure rules around them.

No SQLAlchemy here: commands that only build records (or the CLI's `--help`) stay fast.
Everything that may carry a secret passes through `scrub_text` / `scrub_json` /
`redact_database` before it is stored, so the store never depends on callers remembering to.
"""
from __future__ import annotations

import getpass
import os
import re
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

# An action's outcome. A closed list, checked in Python rather than by a CHECK constraint,
# so that adding one later does not need a table rebuild on SQLite. "started" is what
# timed_action stores before the action runs: a row still "started" (no finished_at) is an
# action whose process was killed before it could record how it ended.
OUTCOMES = ("started", "applied", "rehearsed", "rolled_back", "failed", "refused", "interrupted")
# Outcomes that mean "it did not happen"; timed_action keeps these if the body set one before raising.
FAILURE_OUTCOMES = ("rolled_back", "failed", "refused", "interrupted")
# Known action kinds; free text is accepted (future commands add their own).
KINDS = ("fix", "rehearsal", "deploy", "resolve", "runbook", "migrate_command")

# A check's states and kinds are the monitor's (checks/monitor/results.py), kept in one place.
STATES = ("ok", "warning", "failing", "error", "unknown")
TARGET_KINDS = ("deployment", "health", "smoke", "drift", "migrations")

MAX_ERROR_CHARS = 1000

# Any scheme://user:password@ (psycopg-qualified URLs such as postgresql+psycopg:// included).
_URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.\-]*://[^:/@\s]*):[^@\s/]*@", re.IGNORECASE)
# Keys whose values are secrets whatever they look like.
_SECRET_KEY = re.compile(r"password|passwd|^pass$|secret|token|api[_-]?key|credential|authorization",
                         re.IGNORECASE)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """Return `value` in UTC; a naive datetime is taken as local time, as Python does."""
    return value.astimezone(timezone.utc)


def default_actor() -> str:
    """`$DRIFTWATCH_ACTOR` (a CI job, a named on-call engineer), else `$USER@hostname`."""
    named = os.environ.get("DRIFTWATCH_ACTOR")
    if named:
        return named
    try:
        user = getpass.getuser()
    except Exception:  # no USER/LOGNAME and no passwd entry (some containers)
        user = os.environ.get("USER") or "unknown"
    return f"{user}@{socket.gethostname() or 'localhost'}"


def default_environment() -> str | None:
    """`$DRIFTWATCH_ENVIRONMENT` (production, staging…): set once per deployment, it labels
    every action in the audit log so a postmortem can tell environments apart."""
    return os.environ.get("DRIFTWATCH_ENVIRONMENT") or None


def scrub_text(text: str, url: str | None = None) -> str:
    """Remove passwords from free text: the URL's own password, any `scheme://u:pw@`, `password=…`."""
    from ..db import scrub

    return _URL_PASSWORD.sub(r"\1:***@", scrub(text, url))


def scrub_json(value: Any, url: str | None = None) -> Any:
    """Scrub every string in a JSON-like value; values under secret-looking keys become '***'."""
    if isinstance(value, str):
        return scrub_text(value, url)
    if isinstance(value, dict):
        return {
            str(k): ("***" if _SECRET_KEY.search(str(k)) and v not in (None, "") else scrub_json(v, url))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [scrub_json(v, url) for v in value]
    return value


def redact_database(database: str | None) -> str | None:
    """The database as a human may see it: `postgresql://user@host:port/db`, never a password."""
    if database is None:
        return None
    from ..db import redact

    text = database.strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    base = scheme.split("+", 1)[0]
    if base in ("postgresql", "postgres"):
        return redact("postgresql" + text[len(scheme):])
    return scrub_text(text)


def one_line_error(exc: BaseException, url: str | None = None) -> str:
    """`Type: first line of the message`, scrubbed and bounded: what the audit log keeps."""
    message = str(exc).strip()
    first = message.splitlines()[0].strip() if message else ""
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    text = scrub_text(text, url)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


@dataclass
class ActionRecord:
    """One row of the audit log: something Driftwatch did (or refused to do) to a database.

    `statements` is the exact SQL or command text; `drift_before`/`drift_after` are the
    report's JSON (`{"summary": {...}, "findings": [...]}`); `details` is free JSON.
    Times are UTC. `id` is set once stored.
    """

    kind: str
    outcome: str = "applied"
    actor: str = field(default_factory=default_actor)
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    duration_ms: int | None = None
    environment: str | None = field(default_factory=default_environment)
    database: str | None = None
    target: str | None = None
    statements: str | None = None
    error: str | None = None
    drift_before: dict[str, Any] | None = None
    drift_after: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO 8601 times), as `driftwatch audit --format json` prints it."""
        data = asdict(self)
        data = {"id": data.pop("id"), **data}
        for key in ("started_at", "finished_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data


@dataclass(frozen=True)
class Target:
    """One configured check: a deployment, a health endpoint, a smoke test, drift, migrations.

    Named by (environment, kind, name); `name` is the kind itself for deployment, drift and
    migrations, which an environment has once.
    """

    id: int
    environment: str
    kind: str
    name: str
    config: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class CheckSpec:
    """What a poller registers for one check of its config. `scheduled=False` for a check that
    runs only together with another (migrations rides along with drift: one database read)."""

    kind: str
    name: str
    interval_s: int
    config: dict[str, Any] = field(default_factory=dict)
    scheduled: bool = True


@dataclass(frozen=True)
class CheckState:
    """A check now: its state as the failure threshold derives it, since when, and its newest
    result (`detail` is that result's JSON). What the dashboard's overview shows per check."""

    target_id: int
    environment: str
    kind: str
    name: str
    state: str
    reason: str | None
    since: datetime | None
    failures: int
    checked_at: datetime | None
    latency_ms: float | None
    detail: dict[str, Any] | None
    interval_s: int
    due_at: datetime | None

    def age_s(self, now: datetime | None = None) -> float | None:
        """Seconds since the check last ran (None if never): a state without its age is a lie."""
        if self.checked_at is None:
            return None
        return ((now or utcnow()) - self.checked_at).total_seconds()

    def is_stale(self, now: datetime | None = None, intervals: float = 2.0) -> bool:
        """Not checked within `intervals` of its interval: nobody is watching it any more."""
        age = self.age_s(now)
        return age is None or age > intervals * self.interval_s


@dataclass(frozen=True)
class Claim:
    """A check a poller leased: it is the only one to run it until the next due-time."""

    target_id: int
    environment: str
    kind: str
    name: str
    interval_s: int
    due_at: datetime | None


@dataclass(frozen=True)
class Observation:
    """One raw probe result for one target (the probe's own state, before the threshold)."""

    target_id: int
    observed_at: datetime
    state: str
    reason: str | None = None
    latency_ms: float | None = None
    detail: dict[str, Any] | None = None
    id: int | None = None


@dataclass(frozen=True)
class SeriesPoint:
    """One hour of a check: from its roll-up, or aggregated from raw results (`source`)."""

    hour: datetime
    count: int
    ok_count: int
    failing_count: int
    latency_avg: float | None
    latency_p95: float | None
    latency_max: float | None
    source: str  # "rollup" | "raw"

    @property
    def uptime(self) -> float | None:
        return None if self.count == 0 else self.ok_count / self.count


@dataclass(frozen=True)
class Flip:
    """A state change of a check, with the reason and detail of the result that caused it;
    incident timelines and the report's timeline are built from these. `from_state` is None
    for a check's first result. A deployment check also flips when a new deployment (or a
    new status of it) is seen while its state stays the same: `from_state == to_state`
    then, and `reason` says which deployment — the deployment timeline."""

    target_id: int
    environment: str
    kind: str
    name: str
    at: datetime
    from_state: str | None
    to_state: str
    reason: str | None
    id: int | None = None
    detail: dict[str, Any] | None = None  # the result that caused it (findings, the deployment)


@dataclass(frozen=True)
class Incident:
    """An environment's episode of `failing`: opened when it turned failing, closed when ok."""

    id: int
    environment: str
    opened_at: datetime
    closed_at: datetime | None
    title: str
    summary: dict[str, Any]

    def duration_s(self, now: datetime | None = None) -> float:
        """How long it lasted, or has lasted so far when still open."""
        return ((self.closed_at or now or utcnow()) - self.opened_at).total_seconds()

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class Recorded:
    """What storing one result did: the check's state now, and the flip it caused, if any."""

    status: CheckState
    flip: Flip | None


@dataclass(frozen=True)
class IncidentChange:
    """An incident opened or closed by an environment's state change."""

    action: str  # "opened" | "closed"
    incident: Incident


@dataclass(frozen=True)
class Pruned:
    observations: int
    rollups: int


def check_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")


def check_state(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"state {state!r} is not one of {', '.join(STATES)}")
