"""The fix workflow: plan → rehearse → apply → re-check → audit, as values.

    plan_fix(url, schema, *, drop_indexes=(), limits=None) -> FixResult      read only, no audit
    rehearse_fix(url, schema, *, allow_destructive=False, drop_indexes=(), limits=None,
                 caller=Caller()) -> FixResult
    apply_fix(url, schema, *, allow_destructive=False, drop_indexes=(), limits=None,
              record_migration=None, caller=Caller()) -> FixResult

`drop_indexes` names hand-written indexes the schema cannot express that the plan should
drop (a plan keeps them otherwise; a drop still needs allow_destructive to run).

A rehearsal plans without Prisma's lock (reading only), then runs the statements --apply
would run in one transaction that is rolled back, under the lock (leaving out, and listing,
statements that use an enum value the plan adds: PostgreSQL accepts those only once the
value is committed). An apply runs them in one transaction, or two when the plan adds an
enum value a later statement uses or the server predates PostgreSQL 12: then the ALTER
TYPE … ADD VALUE statements commit first and stay if the second fails (`FixResult.committed`). An apply takes the lock
first, then checks, plans and applies — so no deploy changes the database between the plan
and its statements — releases it, and checks again. Errors come back in `FixResult.error`
(with `stage` saying where it stopped); only bugs raise.

Every rehearsal and fix is in the audit log (kinds "rehearsal" and "fix") with the exact SQL,
the drift before (and after), the outcome and the duration, recorded as started before the
first statement runs (`checks.history.timed_action`). The store is opened first: if it
cannot record, nothing is written.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .common import (
    Caller,
    GuardedRun,
    drift_json,
    limits as make_limits,
    pending_migrations,
    record_refusal,
    run_statements,
)

if TYPE_CHECKING:
    from checks.errors import DriftwatchError
    from checks.findings import DriftReport, Finding
    from checks.fixplan import FixPlan, PlannedStatement
    from checks.guard import Limits
    from checks.migrations import MigrationSummary

    from .next_step import NextSteps

APPLICATION_NAME = "driftwatch fix"


@dataclass
class FixResult:
    """What one fix run did. `run`/`skipped` are the plan's statements selected to run and left
    out (destructive without allow_destructive); `guarded` what the guard did with `run`;
    `left` the findings the applied statements covered (or that are new) still there after."""

    database: str  # redacted
    schema: str
    mode: str  # "plan" | "rehearse" | "apply"
    allow_destructive: bool = False
    limits: "Limits | None" = None
    drop_indexes: tuple[str, ...] = ()
    history: "MigrationSummary | None" = None  # the migrations folder beside the schema, if any
    before: "DriftReport | None" = None
    plan: "FixPlan | None" = None
    run: list["PlannedStatement"] = field(default_factory=list)
    skipped: list["PlannedStatement"] = field(default_factory=list)
    guarded: GuardedRun | None = None
    applied: bool = False  # the statements committed
    after: "DriftReport | None" = None
    left: list["Finding"] = field(default_factory=list)
    recorded_migration: dict[str, Any] | None = None
    error: "DriftwatchError | None" = None
    stage: str | None = None  # where it stopped: audit, check, lock, rehearsal, apply, after_check
    audit_id: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The rehearsal is clean / what was applied is fixed (the CLI's exit 0)."""
        return self.error is None and not self.left

    @property
    def remaining(self) -> list["Finding"]:
        """The drift as last seen: after the fix when it was checked again, else before it."""
        report = self.after if self.after is not None else self.before
        return list(report.findings) if report is not None else []

    @property
    def committed(self) -> list[int]:
        """Positions in `run` committed before a failure (enum values added in a first transaction)."""
        return self.guarded.committed if self.guarded is not None and not self.applied else []

    @property
    def pending(self) -> list[str]:
        """Migrations beside the schema that are not applied: a hand fix collides with them."""
        return self.history.names("pending") if self.history is not None and self.history.error is None else []

    def next_steps(self) -> "NextSteps":
        from .next_step import next_steps

        return next_steps(self.after if self.after is not None else self.before, self.history, schema=self.schema)


def plan_fix(url: str, schema: str | Path, *, drop_indexes: Sequence[str] = (),
             limits: "Limits | None" = None) -> FixResult:
    """The drift check and the plan for it (the rows asked read-only); nothing is written or recorded."""
    from checks.db import connect, redact
    from checks.errors import DriftwatchError

    result = FixResult(redact(url), str(schema), "plan", limits=limits or make_limits(),
                       drop_indexes=tuple(drop_indexes))
    result.history = pending_migrations(url, str(schema))
    try:
        conn = connect(url, application_name=APPLICATION_NAME)
        try:
            _plan(result, url, conn)
        finally:
            conn.close()
    except DriftwatchError as exc:
        result.error, result.stage = exc, "check"
    return result


def rehearse_fix(url: str, schema: str | Path, *, allow_destructive: bool = False, drop_indexes: Sequence[str] = (),
                 limits: "Limits | None" = None, caller: Caller = Caller()) -> FixResult:
    """Plan (reading only), then run what --apply would run in a rolled-back transaction under the lock."""
    from checks.db import connect, redact
    from checks.errors import DriftwatchError, audit_outcome_of
    from checks.guard import exclusive_session

    lim = limits or make_limits()
    result = FixResult(redact(url), str(schema), "rehearse", allow_destructive, lim, tuple(drop_indexes))
    result.history = pending_migrations(url, str(schema))
    stage = "audit"
    try:
        with caller.audit_store() as store:
            stage = "check"
            conn = connect(url, application_name=APPLICATION_NAME)
            try:
                plan = _plan(result, url, conn)
            finally:
                conn.close()
            if plan.empty or not result.run:
                return result
            stage = "rehearsal"
            result.guarded = guarded = GuardedRun()
            with caller.action(store, "rehearsal", warnings=result.warnings, database=url, target=str(schema),
                               statements=_script(result.run), drift_before=drift_json(result.before),
                               details=_details(result), outcome="rehearsed") as action:
                result.audit_id = action.id
                try:
                    with exclusive_session(url, lim, application_name=APPLICATION_NAME) as conn:
                        run_statements(conn, [s.sql for s in result.run], lim, rehearse=True,
                                       ops=[s.op for s in result.run], run=guarded)
                except BaseException as exc:
                    # a rehearsal always rolls back: it was refused, or it failed
                    action.outcome = "refused" if audit_outcome_of(exc) == "refused" else "failed"
                    raise
                action.details["not_rehearsed"] = [result.run[i].sql for i in guarded.not_rehearsed]
    except DriftwatchError as exc:
        result.error, result.stage = exc, stage
    return result


def apply_fix(url: str, schema: str | Path, *, allow_destructive: bool = False, drop_indexes: Sequence[str] = (),
              limits: "Limits | None" = None, record_migration: str | Path | None = None,
              caller: Caller = Caller()) -> FixResult:
    """Under Prisma's lock from the start: check, plan, apply — then release it and check again."""
    from contextlib import ExitStack

    from checks.check import check_database
    from checks.db import redact
    from checks.errors import DriftwatchError
    from checks.fixplan import finding_key
    from checks.guard import exclusive_session

    lim = limits or make_limits()
    result = FixResult(redact(url), str(schema), "apply", allow_destructive, lim, tuple(drop_indexes))
    result.history = pending_migrations(url, str(schema))
    stage = "audit"
    try:
        with caller.audit_store() as store, ExitStack() as session:
            stage = "lock"
            try:
                conn = session.enter_context(exclusive_session(url, lim, application_name=APPLICATION_NAME))
            except DriftwatchError as exc:
                record_refusal(caller, store, "fix", url, str(schema), _details(result), exc, result)
                raise
            stage = "check"
            plan = _plan(result, url, conn)
            if plan.empty or not result.run:
                return result
            stage = "apply"
            result.guarded = guarded = GuardedRun()
            run = result.run
            with caller.action(store, "fix", warnings=result.warnings, database=url, target=str(schema),
                               statements=_script(run), drift_before=drift_json(result.before),
                               details=_details(result)) as action:
                result.audit_id = action.id
                try:
                    run_statements(conn, [s.sql for s in run], lim, rehearse=False, ops=[s.op for s in run],
                                   run=guarded)
                except BaseException:
                    committed = guarded.committed
                    if committed:  # an earlier transaction (enum values) did commit
                        action.outcome = "failed"
                        action.details["committed"] = [run[i].sql for i in committed]
                    raise
                result.applied = True
                stage = "after_check"
                session.close()  # release Prisma's lock before the (read-only) check
                after = check_database(url, schema)
                action.drift_after = drift_json(after.report)
                covered = {finding_key(f) for f in plan.covered(run)}
                before_keys = {finding_key(f) for f in result.before.findings}
                result.left = [f for f in after.report.findings
                               if finding_key(f) in covered or finding_key(f) not in before_keys]
                result.after = after.report
                # Applied (committed) either way; what it did not achieve is in the details.
                from checks.fixplan import describe_finding

                action.details["remaining_covered"] = [describe_finding(f) for f in result.left]
    except DriftwatchError as exc:
        result.error, result.stage = exc, stage
        return result
    if record_migration is not None:
        result.recorded_migration = record_as_migration(Path(record_migration), url, run, schema=schema,
                                                        caller=caller)
    if result.history is not None:  # what the fix created may now collide with a pending migration
        result.history = pending_migrations(url, str(schema))
    return result


def _plan(result: FixResult, url: str, conn: Any) -> "FixPlan":
    """The drift check and the plan for it; the rows are asked on `conn` (bounded, read-only).
    Rehearsal and apply start the same way and differ only after this."""
    from checks.check import check_database
    from checks.fixplan import LiveData, plan_fixes

    lim = result.limits
    before = check_database(url, result.schema)
    data = LiveData(conn, min(lim.statement_timeout, 10.0), lim.lock_timeout)
    plan = plan_fixes(before.expected, before.actual, before.report, data, drop_indexes=result.drop_indexes)
    result.before, result.plan = before.report, plan
    result.run, result.skipped = plan.select(result.allow_destructive)
    return plan


def _details(result: FixResult) -> dict[str, Any]:
    details: dict[str, Any] = {"schema": result.schema, "allow_destructive": result.allow_destructive,
                               "lock_timeout": result.limits.lock_timeout,
                               "statement_timeout": result.limits.statement_timeout}
    if result.drop_indexes:
        details["drop_indexes"] = list(result.drop_indexes)
    if result.plan is not None:
        details["skipped"] = [{"sql": s.sql, "reason": s.reason} for s in result.skipped]
    return details


def _script(statements: Sequence["PlannedStatement"]) -> str:
    return "\n\n".join(s.sql for s in statements) + "\n"


def record_as_migration(directory: Path, url: str, run: Sequence["PlannedStatement"], *,
                        schema: str | Path | None = None, caller: Caller = Caller()) -> dict[str, Any]:
    """Write the applied SQL as a new Prisma migration and record it as applied (through
    `resolve_migration`, so the audit log has that write too), so that Prisma's history agrees
    with the database. Never turns the fix's result around: problems are warnings in the
    returned dict ({"directory", "name", "recorded", "warnings"})."""
    from datetime import datetime, timezone

    from checks.db import redact
    from checks.errors import DriftwatchError
    from checks.migrations import status

    from .migrate import resolve_migration

    now = datetime.now(timezone.utc)
    result: dict[str, Any] = {"directory": str(directory), "name": None, "recorded": False, "warnings": []}
    try:
        st = status(url, directory) if directory.is_dir() else None
    except DriftwatchError as exc:
        st = None
        result["warnings"].append(f"cannot read the migration history: {exc}")
    stamp = now.strftime("%Y%m%d%H%M%S")
    name = f"{stamp}_driftwatch_fix"
    n = 1
    while (directory / name).exists():
        n += 1
        name = f"{stamp}_driftwatch_fix_{n}"
    body = (f"-- Applied by `driftwatch fix --apply` on {now:%Y-%m-%d %H:%M:%S} UTC to {redact(url)}\n\n"
            + "\n\n".join(s.sql for s in run) + "\n")
    try:
        (directory / name).mkdir(parents=True)
        (directory / name / "migration.sql").write_text(body, encoding="utf-8", newline="\n")
    except OSError as exc:
        result["warnings"].append(f"cannot write {directory / name}/migration.sql: {exc.strerror or exc}")
        return result
    result["name"] = name
    if st is None or not st.managed:
        result["warnings"].append(f"{name} was written but not recorded: {redact(url)} has no _prisma_migrations "
                                  f"table (not managed by Prisma Migrate)")
    else:
        pending = st.names("pending", "rolled_back")
        if pending:
            result["warnings"].append(
                f"{len(pending)} earlier migration(s) are not applied ({', '.join(pending)}); Prisma will still try "
                f"them — if the fix did their work, mark them: driftwatch migrate resolve --applied NAME")
        done = resolve_migration(url, directory, name, applied=True, schema=schema, caller=caller)
        result["warnings"] += done.warnings
        if done.error is None:
            result["recorded"] = True
        else:
            result["warnings"].append(f"{name} was written but could not be recorded as applied: {done.error}")
    return result
