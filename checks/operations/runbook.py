"""Run a reviewed emergency SQL runbook under the write guard, then judge what it left.

    run_runbook(url, schema, book, *, apply=False, limits=None, caller=Caller()) -> RunbookResult

Under Prisma's lock from the start: the drift check, then the runbook's statements in one
transaction — rolled back for a rehearsal, committed with apply=True — then what is still
missing. A rehearsal inspects the catalog inside its own transaction before the rollback,
so it says what would still be missing *after* the runbook, not only what is missing now.
`collisions` names pending migrations that create what the runbook creates: after it, the
next `migrate deploy` would fail on them (say so before anyone applies it).

Recorded in the audit log, kind "runbook" (outcome "rehearsed" for a rehearsal), as started
before the first statement runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .common import (
    Caller,
    GuardedRun,
    drift_json,
    drift_peek,
    limits as make_limits,
    pending_migrations,
    record_refusal,
    run_statements,
)

if TYPE_CHECKING:
    from checks.errors import DriftwatchError
    from checks.findings import DriftReport
    from checks.guard import Limits
    from checks.migrations import MigrationSummary
    from checks.runbooks import Runbook

    from .next_step import NextSteps

APPLICATION_NAME = "driftwatch runbook"


@dataclass
class RunbookResult:
    """What a runbook run did. `after` is the drift after the runbook: checked again after an
    apply, or seen inside the rehearsal's transaction (None if that inspection failed)."""

    database: str  # redacted
    schema: str
    book: "Runbook"
    statements: list[str]
    apply: bool
    history: "MigrationSummary | None" = None
    collisions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # pending migration → shared objects
    before: "DriftReport | None" = None
    after: "DriftReport | None" = None
    guarded: GuardedRun = field(default_factory=GuardedRun)
    started: bool = False  # the run itself began (the lock was taken and the drift checked)
    error: "DriftwatchError | None" = None
    audit_id: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return "applied" if self.apply else "rehearsed"

    @property
    def in_sync_after(self) -> bool | None:
        return self.after.in_sync() if self.after is not None else None

    def next_steps(self) -> "NextSteps":
        from .next_step import next_steps

        return next_steps(self.after if self.apply else self.before, self.history, schema=self.schema)


def run_runbook(url: str, schema: str | Path, book: "Runbook", *, apply: bool = False,
                limits: "Limits | None" = None, caller: Caller = Caller()) -> RunbookResult:
    """Rehearse (or apply) a runbook under the guard; errors come back in `error`."""
    from checks.check import check_database
    from checks.db import redact
    from checks.errors import DriftwatchError
    from checks.guard import exclusive_session

    lim = limits or make_limits()
    statements = book.statements()
    result = RunbookResult(redact(url), str(schema), book, statements, apply)
    result.history = pending_migrations(url, str(schema))
    result.collisions = _collisions(result.history, statements)
    details = {"runbook": book.name, "file": str(book.path), "title": book.title, "mode": result.mode,
               "schema": str(schema), "lock_timeout": lim.lock_timeout, "statement_timeout": lim.statement_timeout}
    try:
        with caller.audit_store() as store:
            try:
                with exclusive_session(url, lim, application_name=APPLICATION_NAME) as conn:
                    # Under Prisma's lock from here: no deploy changes the database between the check and the run.
                    before = check_database(url, schema)
                    result.before = before.report
                    with caller.action(store, "runbook", warnings=result.warnings, database=url, target=book.name,
                                       statements="\n\n".join(statements), drift_before=drift_json(before.report),
                                       details=details, outcome=result.mode) as action:
                        result.started = True
                        result.audit_id = action.id
                        peek = None if apply else drift_peek(before.expected, result, result.warnings)
                        run_statements(conn, statements, lim, rehearse=not apply, run=result.guarded,
                                       before_rollback=peek)
                        if apply:
                            result.after = check_database(url, schema).report
                            action.drift_after = drift_json(result.after)
            except DriftwatchError as exc:
                if not result.started:
                    record_refusal(caller, store, "runbook", url, book.name, details, exc, result)
                raise
    except DriftwatchError as exc:
        result.error = exc
    return result


def _collisions(history: "MigrationSummary | None", statements: list[str]) -> dict[str, tuple[str, ...]]:
    """Pending migrations that create what the runbook creates: `migrate deploy` would fail on them."""
    from checks.migrations import read_migrations_dir
    from checks.sqltext import created_objects

    if history is None or history.error is not None:
        return {}
    waiting = history.names("pending", "rolled_back")
    if not waiting:
        return {}
    mine = {obj for sql in statements for obj in created_objects(sql, if_not_exists=True)}
    if not mine:
        return {}
    folder = read_migrations_dir(history.directory)
    found = {}
    for name in waiting:
        m = folder.get(name)
        shared = [f"{kind} {obj}" for kind, obj in created_objects(m.script) if (kind, obj) in mine] if m else []
        if shared:
            found[name] = tuple(shared)
    return found
