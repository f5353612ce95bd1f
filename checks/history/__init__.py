"""Driftwatch's history: the audit log of what it did, and the monitoring history of what it saw.

    from checks.history import HistoryStore, ActionRecord, timed_action

    with HistoryStore.open() as store:          # see store.py for where it lives
        with timed_action(store, "fix", database=url) as action:
            ...

Monitoring (what the poller writes, the dashboard and the report read; see store.py):

    ids = store.register_checks("production", [CheckSpec("health", "api", 30)])
    store.record_result(ids[("health", "api")], result, failure_threshold=2)   # -> Recorded
    store.latest("production")                       # every check now, with its age
    store.series(target_id, since=now - 24h)          # hourly points: roll-ups + raw
    store.uptime(since=…, environment="production")   # summed in SQL
    store.flips("production", since=…, until=…)       # state changes (and deployments), with reasons
    store.incidents("production", since=…, until=…)   # opened on failing, closed on ok
    store.list_actions(environment="production", since=…, until=…)

Modules: `records` (dataclasses and pure rules, no SQLAlchemy), `timed` (timed_action),
`tables` (the current schema), `migrations` (its ordered history), `store` (HistoryStore).
Importing this package does not import SQLAlchemy; `HistoryStore` loads it on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .records import (
    KINDS,
    OUTCOMES,
    STATES,
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
    default_actor,
)
from .timed import timed_action

if TYPE_CHECKING:
    from .store import HistoryStore, default_path

__all__ = [
    "KINDS",
    "OUTCOMES",
    "STATES",
    "TARGET_KINDS",
    "ActionRecord",
    "CheckSpec",
    "CheckState",
    "Claim",
    "Flip",
    "HistoryStore",
    "Incident",
    "IncidentChange",
    "Observation",
    "Pruned",
    "Recorded",
    "SeriesPoint",
    "Target",
    "default_actor",
    "default_path",
    "timed_action",
]


def __getattr__(name: str) -> Any:
    if name in ("HistoryStore", "default_path"):
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
