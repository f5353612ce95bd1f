"""What the collector reads from the history store for one environment and window: the facts.

Plain dataclasses, no SQLAlchemy, so the story (compose.py) and its tests work on facts built
by hand, and the collector can change with the store's schema without touching the story.
Everything here is already bounded: flips and change points only, per-check aggregates in
buckets, never the raw observations of the window.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class IncidentInfo:
    id: int
    environment: str
    opened_at: datetime
    closed_at: datetime | None
    title: str
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckInfo:
    """One configured check (a target) and its state at both ends of the window."""

    kind: str  # deployment | health | smoke | drift | migrations
    name: str
    state_at_start: str | None  # None: never observed before the window
    state_at_end: str | None
    reason_at_end: str | None = None
    detail_at_end: dict[str, Any] | None = None
    checked_at_end: datetime | None = None
    count: int = 0  # observations in the window
    ok_count: int = 0
    failing_count: int = 0  # failing or error
    latency_avg: float | None = None
    latency_max: float | None = None


@dataclass(frozen=True)
class FlipInfo:
    """A state change of one check, with the observation that caused it (when still stored)."""

    at: datetime
    kind: str
    name: str
    from_state: str | None
    to_state: str
    reason: str | None = None
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class Deployment:
    uuid: str | None
    commit: str | None
    status: str | None
    started_at: datetime | None
    finished_at: datetime | None
    first_seen: datetime
    application_status: str | None = None
    post_deployment_command: str | None = None
    migrates_on_deploy: bool | None = None

    @property
    def at(self) -> datetime:
        return self.finished_at or self.started_at or self.first_seen


@dataclass(frozen=True)
class DriftPoint:
    """The drift check's result where it changed (summary or findings), and at both ends."""

    at: datetime
    state: str
    summary: dict[str, int]
    findings: tuple[dict[str, Any], ...] = ()
    schema_commit: str | None = None
    schema_source: str | None = None
    fallback_reason: str | None = None
    reason: str | None = None
    schema: str | None = None  # the schema's path (in the repository), for the next step's commands

    @property
    def drifting(self) -> bool:
        return bool(self.summary.get("critical") or self.summary.get("warning"))


@dataclass(frozen=True)
class MigrationsPoint:
    at: datetime
    state: str
    pending: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class ActionInfo:
    """One audit-log row: who did what to the environment's database, and the drift after it."""

    id: int | None
    kind: str
    actor: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    target: str | None = None
    statements: str | None = None
    error: str | None = None
    drift_before: dict[str, Any] | None = None
    drift_after: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Bucket:
    """Aggregated observations of one check in one time bucket (computed by the database)."""

    kind: str
    name: str
    start: datetime
    count: int
    ok_count: int
    bad_count: int
    latency_avg: float | None
    latency_max: float | None


@dataclass
class Facts:
    environment: str
    since: datetime
    until: datetime | None  # None: the window is still open
    now: datetime
    incident: IncidentInfo | None = None  # the incident asked for (--incident)
    incidents: list[IncidentInfo] = field(default_factory=list)  # every incident overlapping the window
    checks: list[CheckInfo] = field(default_factory=list)
    flips: list[FlipInfo] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    deployment_before: Deployment | None = None  # the newest deployment seen before the window
    drift: list[DriftPoint] = field(default_factory=list)
    migrations: list[MigrationsPoint] = field(default_factory=list)
    actions: list[ActionInfo] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)
    bucket_seconds: int = 300
    store: str | None = None  # where the facts came from, safe to show

    @property
    def end(self) -> datetime:
        return self.until if self.until is not None else self.now
