"""`timed_action`: record an action around the code that performs it, whatever happens.

    with timed_action(store, "fix", database=url, environment="production") as action:
        action.statements = sql
        apply(sql)
        action.drift_after = report_json

The one audit rule every writer follows (README, "Guarantees"):

1. Before the body runs, the action is stored with outcome "started". If that fails (the
   audit store is down), the HistoryError propagates and the body never runs: Driftwatch
   does not write to a database it cannot account for.
2. On exit the same row gets its finish time, duration and outcome: "applied" unless
   the body set another (e.g. "rehearsed"). If the body raises, the outcome is the one the
   body set before raising when that is a failure outcome, else the one the exception
   class names (`checks.errors.audit_outcome_of`: "refused", "rolled_back", "failed",
   "interrupted" for Ctrl-C), with a scrubbed one-line error; the exception propagates
   unchanged: the audit log never swallows a failure.
3. If the outcome cannot be stored (the store went away during the action), what was
   done stays done: the row stays "started" — read it as "interrupted, outcome unknown" —
   and a note saying so is attached to the body's exception; when the body succeeded, the
   message goes to `on_lost` (the operations layer turns it into a warning: the exit code
   stays what the action earned), or, without `on_lost`, the HistoryError propagates. A
   process killed mid-action (SIGKILL, a lost machine) leaves the same "started" row.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import audit_outcome_of
from .records import FAILURE_OUTCOMES, ActionRecord, default_actor, default_environment, one_line_error, redact_database, utcnow

if TYPE_CHECKING:
    from .store import HistoryStore


@contextmanager
def timed_action(
    store: HistoryStore,
    kind: str,
    *,
    actor: str | None = None,
    environment: str | None = None,
    database: str | None = None,
    target: str | None = None,
    statements: str | None = None,
    drift_before: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    outcome: str = "applied",
    on_lost: Callable[[str], None] | None = None,
) -> Iterator[ActionRecord]:
    """Store the action as started, yield it for the body to fill in, then store its outcome."""
    action = ActionRecord(
        kind=kind,
        outcome="started",
        actor=actor or default_actor(),
        started_at=utcnow(),
        environment=environment or default_environment(),
        database=redact_database(database),  # the body never sees the password through the record
        target=target,
        statements=statements,
        drift_before=drift_before,
        details=dict(details or {}),
    )
    action.id = store.record_action(action)  # no record, no action (rule 1)
    action.outcome = outcome
    start = time.monotonic()
    try:
        yield action
    except GeneratorExit:
        raise
    except BaseException as exc:  # KeyboardInterrupt too: an interrupted fix is worth a record
        _finish(action, start)
        if action.outcome not in FAILURE_OUTCOMES:
            action.outcome = audit_outcome_of(exc)
        action.error = one_line_error(exc, database)
        try:
            store.update_action(action)
        except Exception as lost:  # never let the audit write replace the real failure
            exc.add_note(f"driftwatch: the audit record of this {kind} was not stored: {one_line_error(lost)}")
        raise
    _finish(action, start)
    try:
        store.update_action(action)
    except Exception as lost:
        message = (f"the outcome of this {kind} ({action.outcome}) was not stored: {one_line_error(lost)}; "
                   f"action {action.id} stays 'started' in the audit log")
        if on_lost is None:
            lost.add_note(f"driftwatch: {message}")
            raise
        on_lost(message)


def _finish(action: ActionRecord, start: float) -> None:
    action.finished_at = utcnow()
    action.duration_ms = int(round((time.monotonic() - start) * 1000))
