"""A check's state and an environment's, as pure functions of results: tested without a store,
used by the store inside the transaction that records a result (so two pollers sharing one
check agree on its count of consecutive failures).

    status = next_status(previous, result, failure_threshold=2)

Rules (issue 6 §2):
- a `failing` result makes the check `failing` only once `failure_threshold` results in a row
  failed; before that it shows `warning` ("failure 1 of 2"), which is what flapping looks like;
- the first `ok` result makes it `ok` again and forgets the failures;
- `warning`, `error` and `unknown` results are shown as they are: a `warning` is not a failure
  (the count restarts), an `error` (Driftwatch could not observe) neither counts nor forgets
  failures, since it says nothing about the watched system;
- an environment's state is the worst of its checks' (`results.worst`).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .results import CheckResult, worst


@dataclass(frozen=True)
class Status:
    """A check's derived state: what the dashboard shows and what flips record."""

    state: str
    reason: str | None
    failures: int  # consecutive failing results, up to now
    since: datetime | None  # when this state began


def next_status(previous: Status | None, result: CheckResult, failure_threshold: int = 1) -> Status:
    """The check's state after `result`, given its state before (None: its first result)."""
    threshold = max(1, failure_threshold)
    failures = previous.failures if previous is not None else 0
    if result.state == "failing":
        failures += 1
        if failures >= threshold:
            state, reason = "failing", result.reason
        else:
            state, reason = "warning", f"{result.reason} (failure {failures} of {threshold} before failing)"
    elif result.state in ("ok", "warning"):
        failures = 0
        state, reason = result.state, result.reason
    else:  # error, unknown: no observation of the watched system
        state, reason = result.state, result.reason
    if previous is not None and previous.state == state:
        since = previous.since
    else:
        since = result.checked_at
    return Status(state, reason if state != "ok" else None, failures, since)


def is_flip(previous: Status | None, current: Status) -> bool:
    """Whether going from `previous` to `current` is a state change worth a flip row."""
    return previous is None or previous.state != current.state


def environment_state(states: Iterable[str]) -> str:
    """An environment is as bad as its worst check."""
    return worst(states)


def incident_action(environment_state: str, has_open_incident: bool) -> str | None:
    """`open` when an environment turns failing, `close` when it is ok again, else None.

    An environment that goes from failing to warning keeps its incident open: it is not ok yet.
    """
    if environment_state == "failing" and not has_open_incident:
        return "open"
    if environment_state == "ok" and has_open_incident:
        return "close"
    return None
