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

STATUSES = ("up", "down", "degraded", "unknown")
TARGET_KINDS = ("deployment", "health", "smoke", "drift")

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
    """Something watched: a deployment, a health endpoint, a smoke test, a drift check."""

    id: int
    name: str
    kind: str
    config: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Observation:
    """One probe result for one target."""

    target: str
    observed_at: datetime
    status: str
    latency_ms: float | None = None
    detail: dict[str, Any] | None = None
    id: int | None = None


@dataclass(frozen=True)
class Flip:
    """A status transition of a target; incident timelines are built from these.

    `from_status` is None for a target's first observation.
    """

    target: str
    at: datetime
    from_status: str | None
    to_status: str
    id: int | None = None


@dataclass(frozen=True)
class Incident:
    id: int
    opened_at: datetime
    closed_at: datetime | None
    title: str
    summary: dict[str, Any]


def next_flip(previous: Observation | None, current: Observation) -> Flip | None:
    """The flip `current` causes after `previous`, or None: a pure rule, tested without a store.

    A target's first observation is a flip from None. An observation older than the latest
    one (a late report) changes no status: flips follow the newest observation only.
    """
    if previous is None:
        return Flip(current.target, current.observed_at, None, current.status)
    if current.observed_at < previous.observed_at:
        return None
    if current.status == previous.status:
        return None
    return Flip(current.target, current.observed_at, previous.status, current.status)


def check_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")


def check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
