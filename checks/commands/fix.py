"""`driftwatch fix`: plan the statements that remove the drift, rehearse them, apply them.

    driftwatch fix --database-url URL --schema PATH [--format text|json]             plan + rehearsal
    driftwatch fix --database-url URL --schema PATH --apply [--allow-destructive]    apply
        [--lock-timeout S] [--statement-timeout S] [--advisory-wait S] [--history-url URL]
        [--record-migration DIR]

Without --apply: the plan (`checks.fixplan`), then a rehearsal — the statements that --apply
would run, in a transaction that is rolled back, under Prisma's advisory lock — and whether
they apply cleanly (if not: which statement fails and why; for a lock, what it waited for and
who held it). Exit 0 when they do (or there is nothing to fix), 1 otherwise.

With --apply: the safe statements (destructive ones too with --allow-destructive; otherwise
they are listed as skipped, with their reasons) in one transaction through `checks.guard`,
under the advisory lock; then the drift check again. Exit 0 when nothing the applied
statements covered remains (skipped findings are listed, not counted), 1 otherwise or on any
failure (one error line; the transaction was rolled back).

Every rehearsal and fix is recorded in the audit log (`checks.history`, kinds "rehearsal"
and "fix") with the exact SQL, the drift before (and after), the outcome and the duration.
The store is opened before anything else: if it cannot record, nothing is written.

The helpers below (`add_guard_options`, `limits_from`, `open_store`, `run_statements`,
`describe_failure`) are shared with `checks.commands.runbook`.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, TextIO

if TYPE_CHECKING:
    from checks.findings import DriftReport, Finding
    from checks.fixplan import FixPlan, PlannedStatement
    from checks.guard import Limits, TransactionOutcome
    from checks.history import HistoryStore

APPLICATION_NAME = "driftwatch fix"


def register(subparsers: argparse._SubParsersAction) -> None:
    from checks.cli import add_database_option, add_schema_option

    p = subparsers.add_parser(
        "fix", help="plan the SQL that removes the drift and rehearse it; --apply runs it under Prisma's lock "
                    "(exit 0 fixed or rehearses cleanly, 1 otherwise)")
    add_database_option(p)
    add_schema_option(p)
    p.add_argument("--apply", action="store_true", help="run the plan (default: print it and rehearse it)")
    p.add_argument("--allow-destructive", action="store_true",
                   help="also run destructive statements (drops, narrowing type changes, enum value removal, "
                        "statements the data would make fail)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--drop-index", action="append", default=[], metavar="NAME",
                   help="also drop this index the schema cannot express (partial, on an expression, with INCLUDE), "
                        "which a plan otherwise keeps; repeatable; a drop still needs --allow-destructive to run")
    add_guard_options(p)
    p.add_argument("--record-migration", metavar="DIR",
                   help="with --apply: write what was applied as DIR/<timestamp>_driftwatch_fix/migration.sql and "
                        "record it as applied in _prisma_migrations (when the database has that table)")
    p.set_defaults(func=cmd_fix)


# ---------------------------------------------------------------------------------------------
# Shared with `runbook run`


def add_guard_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lock-timeout", type=float, metavar="S",
                   help="give up a statement that waits longer than S seconds for a lock (default: 5)")
    p.add_argument("--statement-timeout", type=float, metavar="S",
                   help="give up a statement that runs longer than S seconds (default: 60)")
    p.add_argument("--advisory-wait", type=float, metavar="S",
                   help="wait at most S seconds for Prisma's migration lock held by another deploy or fix "
                        "(default: 10)")
    p.add_argument("--history-url", metavar="URL",
                   help="audit log store (default: $DRIFTWATCH_HISTORY_URL, else the user's SQLite file)")


def limits_from(args: argparse.Namespace) -> "Limits":
    from checks.guard import Limits

    given = {name: getattr(args, name) for name in ("lock_timeout", "statement_timeout", "advisory_wait")
             if getattr(args, name, None) is not None}
    return Limits(**given)


def open_store(args: argparse.Namespace) -> "HistoryStore":
    """The audit store, opened before anything is written: no record, no write."""
    from checks.history import HistoryStore

    return HistoryStore.open(getattr(args, "history_url", None))


@dataclass
class GuardedRun:
    """What `run_statements` did: one outcome per transaction, and what it left out."""

    outcomes: list["TransactionOutcome"] = field(default_factory=list)
    batches: list[list[int]] = field(default_factory=list)  # positions (in the list given) per transaction
    not_rehearsed: list[int] = field(default_factory=list)  # positions left out of a rehearsal
    server_version: int | None = None

    def status_of(self) -> dict[int, Any]:
        """position → the guard's StatementResult."""
        found = {}
        for outcome, positions in zip(self.outcomes, self.batches):
            for result in outcome.statements:
                found[positions[result.index]] = result
        return found

    @property
    def seconds(self) -> float:
        return sum(o.seconds for o in self.outcomes)

    def position(self, index: int | None) -> int | None:
        """The position (in the list given) of statement `index` of the last transaction run."""
        if index is None or not self.batches or index >= len(self.batches[-1]):
            return None
        return self.batches[-1][index]


def run_statements(conn: Any, statements: Sequence[str], limits: "Limits", *, rehearse: bool,
                   ops: Sequence[str] | None = None, run: GuardedRun | None = None) -> GuardedRun:
    """Run statements through the guard on `conn`, a session of `checks.guard.exclusive_session`
    (it holds Prisma's advisory lock): one transaction, or two when enum values must be committed
    before the rest may use them (`checks.fixplan.transactions`).

    A rehearsal runs everything in one rolled-back transaction, leaving out (and listing)
    statements that use an enum value the same plan adds: PostgreSQL accepts those only
    after the value is committed. `run` is filled as it goes, so a caller that catches a
    failure still sees what ran.
    """
    from checks.errors import ConnectionLost, StatementFailed
    from checks.fixplan import PlannedStatement, classify, transactions, uses_added_values
    from checks.guard import TransactionOutcome, run_in_transaction

    run = run if run is not None else GuardedRun()
    kinds = list(ops) if ops is not None else [classify(s) for s in statements]
    planned = [PlannedStatement(s, "", "safe", None, (), i, kinds[i]) for i, s in enumerate(statements)]
    run.server_version = conn.info.server_version
    if rehearse:
        adds = [p for p in planned if p.op == "add_value"]
        left_out = {p.unit for p in uses_added_values(adds, [p for p in planned if p.op != "add_value"])} \
            if adds else set()
        run.not_rehearsed = sorted(left_out)
        batches = [[p for p in planned if p.unit not in left_out]]
    else:
        batches = transactions(planned, run.server_version)
    for batch in batches:
        if not batch:
            continue
        run.batches.append([p.unit for p in batch])
        try:
            run.outcomes.append(run_in_transaction(conn, [p.sql for p in batch], limits, rehearse=rehearse))
        except (StatementFailed, ConnectionLost) as exc:
            if isinstance(exc.outcome, TransactionOutcome):
                run.outcomes.append(exc.outcome)
            else:
                run.batches.pop()
            raise
    return run


def refused(store: "HistoryStore", kind: str, url: str, target: str, details: dict[str, Any],
            exc: BaseException) -> None:
    """Record a write that never started (Prisma's lock busy, no connection) with its outcome and error."""
    from checks.history import timed_action

    try:
        with timed_action(store, kind, database=url, target=target, details=details, outcome=audit_outcome(exc)):
            raise exc
    except type(exc):
        pass  # recorded; the caller raises it


def describe_failure(exc: BaseException, label: Any = None) -> list[str]:
    """What a failed guarded run waited for or tripped on, for the report (the error line says the rest).

    `label(index)` names the failing statement (the guard's 0-based index in its transaction)
    the way the caller numbers it."""
    from checks.errors import ConnectionLost, LockBusy, LockTimeout, StatementFailed

    def name(index: int | None) -> str:
        if index is None:
            return "a statement"
        return label(index) if label is not None else f"statement {index + 1}"

    lines = []
    if isinstance(exc, LockBusy):
        holders = [h.describe() for h in exc.holders] or ["a session that has since let go"]
        lines.append("Prisma's migration lock is held by " + "; ".join(holders))
    elif isinstance(exc, LockTimeout):
        what = f"{exc.mode or 'a lock'} on {exc.relation}" if exc.relation else (exc.mode or "a lock")
        holders = "; ".join(h.describe() for h in exc.blockers)
        lines.append(f"{name(exc.index)} waited for {what}" + (f" held by {holders}" if holders else
                                                                 " (the holder was not seen)"))
    elif isinstance(exc, StatementFailed):
        lines.append(f"{name(exc.index)} failed: " + " ".join(
            x for x in (exc.sqlstate, exc.database_error or str(exc)) if x))
    elif isinstance(exc, ConnectionLost):
        lines.append("the connection was lost" + (" during COMMIT: check before retrying"
                                                  if exc.maybe_committed else ": nothing was committed"))
    return lines


def audit_outcome(exc: BaseException) -> str:
    """The audit log's outcome for a failed guarded write."""
    from checks.errors import LockBusy, LockTimeout, StatementFailed, UsageError

    if isinstance(exc, (LockBusy, UsageError)):
        return "refused"  # nothing ran
    if isinstance(exc, LockTimeout):
        return "failed"  # it never got the lock it needed
    if isinstance(exc, StatementFailed) and not exc.committed:
        return "rolled_back"
    return "failed"


def drift_json(report: "DriftReport") -> dict[str, Any]:
    data = report.to_json()
    return {"summary": data["summary"], "findings": data["findings"]}


def verdict_line(report: "DriftReport", target: str) -> str:
    from checks.report import render_text

    return render_text(report, target=target, show_fix=False).splitlines()[0]


# ---------------------------------------------------------------------------------------------
# driftwatch fix


def cmd_fix(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.cli import database_url_from
    from checks.errors import UsageError

    url = database_url_from(args)
    limits = limits_from(args)
    if args.record_migration and not args.apply:
        raise UsageError("--record-migration goes with --apply")
    if args.format == "text":
        _warn_pending_migrations(args, url, out)
    store = open_store(args)
    try:
        if args.apply:
            return _apply(args, url, limits, store, out, err)
        return _rehearse(args, url, limits, store, out)
    finally:
        store.close()


def _warn_pending_migrations(args: argparse.Namespace, url: str, out: TextIO) -> None:
    """A fix applied by hand while a migration is pending sets a trap: the next
    `prisma migrate deploy` runs that migration again and fails on objects that now exist
    (P3018). Say so before anything runs, with the two ways out."""
    from checks.migrations import history_summary

    folder = Path(args.schema).parent / "migrations"
    if not folder.is_dir():
        return
    pending = history_summary(url, folder).get("by_state", {}).get("pending", [])
    if pending and not args.record_migration:
        out.write(f"Note: {len(pending)} migration(s) in {folder} are not applied: "
                  f"{', '.join(pending)}.\n"
                  f"  Prefer `driftwatch migrate deploy --migrations {folder}`. If you fix by hand instead, "
                  f"mark them applied afterwards (`driftwatch migrate resolve --applied NAME`) so the next "
                  f"deploy does not run them again and fail.\n\n")


def _plan(args: argparse.Namespace, url: str, conn: Any, limits: "Limits",
          out: TextIO) -> tuple["DriftReport", "FixPlan", "_View"]:
    """The drift check and the plan for it, printed; the rows are asked on `conn` (bounded,
    read-only). Rehearsal and apply start the same way and differ only after this."""
    from checks.check import check_database
    from checks.db import redact
    from checks.fixplan import LiveData, plan_fixes

    before = check_database(url, args.schema)
    data = LiveData(conn, min(limits.statement_timeout, 10.0), limits.lock_timeout)
    plan = plan_fixes(before.expected, before.actual, before.report, data,
                      drop_indexes=getattr(args, "drop_index", None) or ())
    view = _View(args, out, redact(url), plan)
    view.show_plan(before.report)
    return before.report, plan, view


def _details(args: argparse.Namespace, limits: "Limits") -> dict[str, Any]:
    return {"schema": str(args.schema), "allow_destructive": args.allow_destructive,
            "lock_timeout": limits.lock_timeout, "statement_timeout": limits.statement_timeout}


def _rehearse(args, url, limits, store, out) -> int:  # type: ignore[no-untyped-def]
    """Plan (without Prisma's lock: reading only), print, then rehearse under the lock."""
    from checks.db import connect
    from checks.errors import DriftwatchError
    from checks.guard import exclusive_session
    from checks.history import timed_action

    conn = connect(url, application_name=APPLICATION_NAME)
    try:
        report, plan, view = _plan(args, url, conn, limits, out)
    finally:
        conn.close()
    if plan.empty:
        return view.finish(0, remaining=list(report.findings))
    run, skipped = plan.select(args.allow_destructive)
    if not run:
        view.rehearsal_skipped(skipped)
        return view.finish(0, remaining=list(report.findings))
    guarded = GuardedRun()
    details = {**_details(args, limits), "skipped": [{"sql": s.sql, "reason": s.reason} for s in skipped]}
    try:
        with timed_action(store, "rehearsal", database=url, target=str(args.schema), statements=_script(run),
                          drift_before=drift_json(report), details=details, outcome="rehearsed") as action:
            try:
                with exclusive_session(url, limits, application_name=APPLICATION_NAME) as conn:
                    run_statements(conn, [s.sql for s in run], limits, rehearse=True, ops=[s.op for s in run],
                                   run=guarded)
            except BaseException as exc:
                action.outcome = "refused" if audit_outcome(exc) == "refused" else "failed"
                raise
            action.details["not_rehearsed"] = [run[i].sql for i in guarded.not_rehearsed]
    except DriftwatchError as exc:
        view.rehearsal(run, skipped, guarded, exc)
        view.finish(1, remaining=list(report.findings), error=str(exc))
        raise
    view.rehearsal(run, skipped, guarded, None)
    return view.finish(0, remaining=list(report.findings))


def _apply(args, url, limits, store, out, err) -> int:  # type: ignore[no-untyped-def]
    """Under Prisma's lock from the start: check, plan, print, apply — so that no deploy can change
    the database between the plan and its statements — then check again."""
    from contextlib import ExitStack

    from checks.check import check_database
    from checks.db import redact
    from checks.errors import DriftwatchError
    from checks.fixplan import FixPlan, describe_finding, finding_key
    from checks.guard import exclusive_session
    from checks.history import timed_action

    with ExitStack() as session:
        try:
            conn = session.enter_context(exclusive_session(url, limits, application_name=APPLICATION_NAME))
        except DriftwatchError as exc:
            view = _View(args, out, redact(url), FixPlan(()))
            view.apply_failed([], GuardedRun(), exc, header="Nothing was applied:")
            view.finish(1, remaining=[], error=str(exc))
            refused(store, "fix", url, str(args.schema), _details(args, limits), exc)
            raise
        report, plan, view = _plan(args, url, conn, limits, out)
        if plan.empty:
            return view.finish(0, remaining=list(report.findings))
        run, skipped = plan.select(args.allow_destructive)
        if not run:
            view.applied(run, skipped, None, None)
            return view.finish(0, remaining=list(report.findings))
        guarded = GuardedRun()
        done = False
        details = {**_details(args, limits), "skipped": [{"sql": s.sql, "reason": s.reason} for s in skipped]}
        try:
            with timed_action(store, "fix", database=url, target=str(args.schema), statements=_script(run),
                              drift_before=drift_json(report), details=details) as action:
                try:
                    run_statements(conn, [s.sql for s in run], limits, rehearse=False, ops=[s.op for s in run],
                                   run=guarded)
                except BaseException as exc:
                    action.outcome = audit_outcome(exc)
                    committed = [i for o, b in zip(guarded.outcomes, guarded.batches) if o.committed for i in b]
                    if committed:  # an earlier transaction (enum values) did commit
                        action.outcome = "failed"
                        action.details["committed"] = [run[i].sql for i in committed]
                        view.partial(run, committed)
                    raise
                done = True
                session.close()  # release Prisma's lock before the (read-only) check
                after = check_database(url, args.schema)
                action.drift_after = drift_json(after.report)
                covered = {finding_key(f) for f in plan.covered(run)}
                before_keys = {finding_key(f) for f in report.findings}
                left = [f for f in after.report.findings
                        if finding_key(f) in covered or finding_key(f) not in before_keys]
                # Applied (committed) either way; what it did not achieve is in the details.
                action.details["remaining_covered"] = [describe_finding(f) for f in left]
        except DriftwatchError as exc:
            if done:
                view.apply_failed(run, guarded, exc, header="The fix was applied, but the drift check after it failed:")
            else:
                view.apply_failed(run, guarded, exc)
            view.finish(1, remaining=list(report.findings), applied=done, error=str(exc))
            raise
    recorded = None
    if args.record_migration:
        recorded = _record_migration(Path(args.record_migration), url, run, view, err)
    view.applied(run, skipped, guarded, after.report, left=left, recorded=recorded)
    return view.finish(1 if left else 0, remaining=list(after.report.findings), applied=True)


def _script(statements: Sequence["PlannedStatement"]) -> str:
    return "\n\n".join(s.sql for s in statements) + "\n"


# ---------------------------------------------------------------------------------------------
# --record-migration


def _record_migration(directory: Path, url: str, run: Sequence["PlannedStatement"], view: "_View",
                      err: TextIO) -> dict[str, Any]:
    """Write the applied SQL as a new Prisma migration and record it as applied, so that Prisma's
    history agrees with the database. Never turns the fix's result around: problems are warnings."""
    from datetime import datetime, timezone

    from checks.db import redact
    from checks.errors import DriftwatchError
    from checks.migrations import resolve_applied, status

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
        _warn(err, result)
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
        try:
            resolve_applied(url, directory, name)
            result["recorded"] = True
        except DriftwatchError as exc:
            result["warnings"].append(f"{name} was written but could not be recorded as applied: {exc}")
    _warn(err, result)
    return result


def _warn(err: TextIO, result: dict[str, Any]) -> None:
    for w in result["warnings"]:
        err.write(f"driftwatch: warning: {w}\n")


# ---------------------------------------------------------------------------------------------
# Output


class _View:
    """Text or JSON output of one `fix` run; text is written as it goes, JSON at the end."""

    def __init__(self, args: argparse.Namespace, out: TextIO, target: str, plan: "FixPlan") -> None:
        self.args = args
        self.out = out
        self.text = args.format == "text"
        self.target = target
        self.plan = plan
        self.number = {id(s): i + 1 for i, s in enumerate(plan.statements)}
        self.doc: dict[str, Any] = {"database": target, "statements": plan.to_json(),
                                    "unfixable": [f.to_json() for f in plan.unfixable],
                                    "rehearsal": None, "applied": False, "skipped": [], "remaining": []}

    def w(self, line: str = "") -> None:
        if self.text:
            self.out.write(line + "\n")

    # --- the plan

    def show_plan(self, report: "DriftReport") -> None:
        from checks.fixplan import describe_finding

        self.doc["drift_before"] = report.summary
        self.w(verdict_line(report, self.target))
        plan = self.plan
        if plan.empty and not plan.unfixable:
            self.w("Nothing to fix.")
            return
        n = len(plan.statements)
        bad = sum(1 for s in plan.statements if s.destructive)
        covered = len(plan.covered(plan.statements))
        self.w("")
        self.w(f"Fix plan: {n} statement{'s' if n != 1 else ''} for {covered} finding{'s' if covered != 1 else ''} "
               f"({n - bad} safe, {bad} destructive)")
        previous = None
        for s in plan.statements:
            # statements of one fix (an enum recreation) read as one block: header and reason once
            same = previous is not None and previous.unit == s.unit and previous.reason == s.reason
            if not same:
                label = "DESTRUCTIVE" if s.destructive else "safe"
                self.w("")
                self.w(f"  {label} — {', '.join(describe_finding(f) for f in s.findings)}")
                if s.reason:
                    self.w(f"      {'!' if s.destructive else 'note:'} {s.reason}")
            for k, line in enumerate(s.sql.splitlines()):
                self.w(f"  {str(self.number[id(s)]) + '.' if k == 0 else '':>4} {line}")
            previous = s
        # indexes the schema cannot express have no fix on purpose (see checks.diff.expressible)
        kept = [f for f in plan.unfixable if f.kind in ("extra_index", "index") and f.severity == "info"]
        others = [f for f in plan.unfixable if f not in kept]
        if kept:
            self.w("")
            self.w("Kept (not expressible in the Prisma schema; --drop-index NAME drops one): "
                   + ", ".join(describe_finding(f) for f in kept))
        if others:
            self.w("")
            self.w("No automatic fix for: " + ", ".join(describe_finding(f) for f in others))

    # --- rehearsal

    def rehearsal_skipped(self, skipped: list["PlannedStatement"]) -> None:
        self.doc["rehearsal"] = {"clean": True, "statements": [], "seconds": 0.0, "error": None,
                                 "left_out": [self.number[id(s)] for s in skipped]}
        self.doc["skipped"] = [self.number[id(s)] for s in skipped]
        self.w("")
        self.w("Nothing to rehearse: every statement is destructive (add --allow-destructive to include them).")

    def rehearsal(self, run: list["PlannedStatement"], skipped: list["PlannedStatement"], guarded: GuardedRun,
                  exc: BaseException | None) -> None:
        results = guarded.status_of()
        rows = []
        for i, s in enumerate(run):
            r = results.get(i)
            status = "not_rehearsed" if i in guarded.not_rehearsed else (r.status if r else "not_run")
            rows.append({"statement": self.number[id(s)], "status": status,
                         "seconds": round(r.seconds, 4) if r and r.seconds is not None else None,
                         "error": r.error if r else None})
        self.doc["rehearsal"] = {
            "clean": exc is None, "statements": rows, "seconds": round(guarded.seconds, 4),
            "error": str(exc) if exc else None, "failure": self.failure(exc, run, guarded) if exc else [],
            "left_out": [self.number[id(s)] for s in skipped],
            "not_rehearsed": [self.number[id(run[i])] for i in guarded.not_rehearsed]}
        self.doc["skipped"] = [self.number[id(s)] for s in skipped]
        self.w("")
        self.w("Rehearsal (one transaction, rolled back: nothing was changed):")
        for s, row in zip(run, rows):
            took = f"{row['seconds']:.3f} s" if row["seconds"] is not None else ""
            self.w(f"  {row['status']:<13} {took:>9}  {row['statement']:>2}. {s.sql.splitlines()[0][:90]}")
        if exc is not None:
            self.w("Does NOT apply cleanly:")
            for line in self.failure(exc, run, guarded):
                self.w(f"  {line}")
            return
        n = len(run) - len(guarded.not_rehearsed)
        self.w(f"Applies cleanly: {n} statement{'s' if n != 1 else ''} in {guarded.seconds:.2f} s.")
        if guarded.not_rehearsed:
            self.w(f"Not rehearsed: {', '.join(str(r['statement']) for r in rows if r['status'] == 'not_rehearsed')} "
                   f"(they use an enum value this plan adds, which PostgreSQL allows only once it is committed; "
                   f"--apply commits the new values first).")
        if skipped:
            self.w(f"Left out: {len(skipped)} destructive statement{'s' if len(skipped) != 1 else ''} "
                   f"({', '.join(str(self.number[id(s)]) for s in skipped)}); add --allow-destructive to include them.")
        self.w("Apply it: driftwatch fix --apply" + (" --allow-destructive" if self.args.allow_destructive else "")
               + " (same --database-url and --schema)")

    # --- apply

    def partial(self, run: list["PlannedStatement"], committed: list[int]) -> None:
        nums = ", ".join(str(self.number[id(run[i])]) for i in committed)
        self.doc["committed"] = [self.number[id(run[i])] for i in committed]
        self.w(f"Note: statement(s) {nums} (enum values) ran in a first transaction and stay committed; "
               f"the rest was rolled back.")

    def failure(self, exc: BaseException, run: list["PlannedStatement"], guarded: GuardedRun) -> list[str]:
        def label(index: int) -> str:
            position = guarded.position(index)
            return f"statement {self.number[id(run[position])]}" if position is not None else "a statement"

        return describe_failure(exc, label)

    def apply_failed(self, run: list["PlannedStatement"], guarded: GuardedRun, exc: BaseException,
                     header: str = "The fix failed; its transaction was rolled back, nothing was changed:") -> None:
        self.doc["failure"] = self.failure(exc, run, guarded)
        self.w("")
        self.w(header)
        for line in self.doc["failure"]:
            self.w(f"  {line}")

    def applied(self, run: list["PlannedStatement"], skipped: list["PlannedStatement"], guarded: GuardedRun | None,
                after: "DriftReport | None", *, left: Sequence["Finding"] = (),
                recorded: dict[str, Any] | None = None) -> None:
        from checks.fixplan import describe_finding
        from checks.report import render_text

        self.doc["skipped"] = [self.number[id(s)] for s in skipped]
        self.w("")
        if guarded is not None:
            n = len(run)
            how = "one transaction" if len(guarded.outcomes) == 1 else \
                f"{len(guarded.outcomes)} transactions, enum values first,"
            self.w(f"Applied {n} statement{'s' if n != 1 else ''} in {how} ({guarded.seconds:.2f} s), "
                   f"under Prisma's migration lock.")
        else:
            self.w("Applied nothing.")
        if skipped:
            self.w(f"Skipped {len(skipped)} destructive statement{'s' if len(skipped) != 1 else ''} "
                   f"(add --allow-destructive to apply them):")
            for s in skipped:
                first = s.sql.splitlines()[0]
                self.w(f"  {self.number[id(s)]:>2}. {first[:90]} — {s.reason}")
        if recorded is not None:
            self.doc["recorded_migration"] = recorded
            if recorded.get("recorded"):
                self.w(f"Recorded as migration {recorded['name']} (applied) in {recorded['directory']}.")
        if after is None:
            return
        self.w("")
        self.w("Drift check after the fix:")
        self.w(render_text(after, target=self.target, show_fix=False).rstrip("\n"))
        if left:
            self.w("")
            self.w(f"NOT fixed: {len(left)} finding{'s' if len(left) != 1 else ''} the applied statements covered "
                   f"remain: " + ", ".join(describe_finding(f) for f in left))
        elif after.findings:
            self.w("")
            self.w("Everything the applied statements covered is fixed; what remains was skipped or has no "
                   "automatic fix.")
        else:
            self.w("")
            self.w("Everything the plan covered is fixed.")

    def finish(self, code: int, *, remaining: list["Finding"], applied: bool = False,
               error: str | None = None) -> int:
        if not self.text:
            self.doc.update(applied=applied, remaining=[f.to_json() for f in remaining], exit=code, error=error)
            self.out.write(json.dumps(self.doc, indent=2, ensure_ascii=False) + "\n")
        return code
