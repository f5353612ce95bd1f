"""The one value every probe returns, so the poller, the store, the dashboard and the report
handle deployments, endpoints and the database alike.

States, worst last in `STATES`' severity order:
    ok        the watched thing works as observed
    unknown   not checked yet
    warning   degraded, or failing fewer than `failure_threshold` times in a row (flapping)
    error     Driftwatch could not observe (bad credentials, unset secret, unreadable schema):
              says nothing about the watched system, and is never shown as green
    failing   the watched system is broken as observed
`reason` is one human line whenever the state is not `ok`, and never carries a secret.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Iterable

STATES = ("ok", "warning", "failing", "error", "unknown")
KINDS = ("deployment", "health", "smoke", "drift", "migrations")

# Higher is worse. An environment whose database could not be read is worse than one with a
# flapping endpoint, but not as bad as one whose endpoints fail: `error` sits below `failing`.
_RANK = {"ok": 0, "unknown": 1, "warning": 2, "error": 3, "failing": 4}


def worst(states: Iterable[str]) -> str:
    """The worst of `states` (`unknown` when there are none): an environment's state."""
    found = [s for s in states]
    return max(found, key=_RANK.__getitem__) if found else "unknown"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class CheckResult:
    """One observation of one check.

    `kind` is one of KINDS; `name` is the configured check's name (for `deployment`, `drift`
    and `migrations`, the kind itself). `detail` holds the kind's own JSON fields as the
    `poll --format json` output spells them (`status_code`, `steps`, `commit`, `findings`…);
    it must already be scrubbed of secrets and be JSON-serialisable.
    """

    kind: str
    name: str
    state: str
    reason: str | None = None
    checked_at: datetime = field(default_factory=utcnow)
    latency_ms: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown state {self.state!r}; expected one of {', '.join(STATES)}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown check kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.state != "ok" and not self.reason:
            raise ValueError(f"{self.kind} {self.name!r} is {self.state} without a reason")

    def with_state(self, state: str, reason: str | None) -> CheckResult:
        """The same observation shown with another state (the failure threshold's doing)."""
        return replace(self, state=state, reason=reason)

    def to_json(self) -> dict[str, Any]:
        """The object `poll --format json` prints for this check."""
        out: dict[str, Any] = {"name": self.name, "state": self.state, "reason": self.reason}
        out.update(self.detail)
        out["latency_ms"] = None if self.latency_ms is None else round(self.latency_ms, 1)
        out["checked_at"] = self.checked_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return out
