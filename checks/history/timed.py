"""`timed_action`: record an action around the code that performs it, whatever happens.

    with timed_action(store, "fix", database=url, environment="production") as action:
        action.statements = sql
        apply(sql)
        action.drift_after = report_json

On exit the record gets its finish time, duration and outcome ("applied" unless the body
set another) and is stored. If the body raises, the record is stored with outcome "failed"
(or "refused"/"rolled_back"/"failed" as set by the body before raising, else as named by
the exception's `audit_outcome` attribute, if it has one) and a scrubbed one-line error,
and the exception propagates unchanged: the audit log never swallows a failure.
If storing the record fails while the body's exception propagates, the body's exception
wins and carries a note saying the record was lost.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

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
) -> Iterator[ActionRecord]:
    """Yield an ActionRecord for the body to fill in; store it on exit, even when the body raises."""
    action = ActionRecord(
        kind=kind,
        outcome=outcome,
        actor=actor or default_actor(),
        started_at=utcnow(),
        environment=environment or default_environment(),
        database=redact_database(database),  # the body never sees the password through the record
        target=target,
        statements=statements,
        drift_before=drift_before,
        details=dict(details or {}),
    )
    start = time.monotonic()
    try:
        yield action
    except GeneratorExit:
        raise
    except BaseException as exc:  # KeyboardInterrupt too: an interrupted fix is worth a record
        _finish(action, start)
        if action.outcome not in FAILURE_OUTCOMES:
            # An exception may say what it meant, e.g. a guarded write that was rolled back.
            said = getattr(exc, "audit_outcome", None)
            action.outcome = said if said in FAILURE_OUTCOMES else "failed"
        action.error = one_line_error(exc, database)
        try:
            action.id = store.record_action(action)
        except Exception as lost:  # never let the audit write replace the real failure
            exc.add_note(f"driftwatch: the audit record of this {kind} was not stored: {one_line_error(lost)}")
        raise
    _finish(action, start)
    action.id = store.record_action(action)


def _finish(action: ActionRecord, start: float) -> None:
    action.finished_at = utcnow()
    action.duration_ms = int(round((time.monotonic() - start) * 1000))
