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
under the advisory lock — except that when the plan adds an enum value a later statement
uses (or the server is older than PostgreSQL 12), the ALTER TYPE … ADD VALUE statements run
and commit first, in a transaction of their own, and stay if the rest fails (the output says
so) — then the drift check again. Exit 0 when nothing the applied
statements covered remains (skipped findings are listed, not counted), 1 otherwise or on any
failure (one error line; the transaction was rolled back).

The workflow itself is `checks.operations.fix` (the dashboard's buttons call it too); this
module parses the arguments and prints its `FixResult`.
"""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, Sequence, TextIO

if TYPE_CHECKING:
    from checks.findings import DriftReport, Finding
    from checks.fixplan import FixPlan, PlannedStatement
    from checks.operations import FixResult, GuardedRun


def register(subparsers: argparse._SubParsersAction) -> None:
    from checks.cli import add_database_option, add_guard_options, add_schema_option

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


def cmd_fix(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.cli import caller_from, database_url_from, limits_from
    from checks.errors import UsageError
    from checks.operations import apply_fix, rehearse_fix

    url = database_url_from(args)
    limits = limits_from(args)
    if args.record_migration and not args.apply:
        raise UsageError("--record-migration goes with --apply")
    drop = tuple(args.drop_index or ())
    if args.apply:
        result = apply_fix(url, args.schema, allow_destructive=args.allow_destructive, drop_indexes=drop,
                           limits=limits, record_migration=args.record_migration, caller=caller_from(args))
    else:
        result = rehearse_fix(url, args.schema, allow_destructive=args.allow_destructive, drop_indexes=drop,
                              limits=limits, caller=caller_from(args))
    return render(result, args, out, err)


# ---------------------------------------------------------------------------------------------
# Output


def render(result: "FixResult", args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print a FixResult as text or JSON; return the exit code, or raise its error (one line)."""
    from checks.fixplan import FixPlan
    from checks.operations import GuardedRun

    text = args.format == "text"
    if text and result.pending and not args.record_migration:
        _pending_note(result, out)
    for w in result.warnings:
        err.write(f"driftwatch: warning: {w}\n")
    if result.plan is None:  # stopped before planning: the store, the check, or the lock
        if result.stage == "lock":
            view = _View(args, out, result.database, FixPlan(()))
            view.apply_failed([], GuardedRun(), result.error, header="Nothing was applied:")
            view.finish(1, remaining=[], error=str(result.error))
        raise result.error  # type: ignore[misc]
    view = _View(args, out, result.database, result.plan)
    view.show_plan(result.before)
    run, skipped = result.run, result.skipped
    if result.plan.empty:
        return view.finish(0, remaining=result.remaining)
    if result.mode == "rehearse":
        if not run:
            view.rehearsal_skipped(skipped)
            return view.finish(0, remaining=result.remaining)
        view.rehearsal(run, skipped, result.guarded, result.error)
        code = view.finish(1 if result.error else 0, remaining=result.remaining,
                           error=str(result.error) if result.error else None)
        if result.error is not None:
            raise result.error
        return code
    if not run:
        view.applied(run, skipped, None, None)
        return view.finish(0, remaining=result.remaining)
    if result.error is not None:
        if result.applied:
            view.apply_failed(run, result.guarded, result.error,
                              header="The fix was applied, but the drift check after it failed:")
        else:
            if result.committed:
                view.partial(run, result.committed)
            view.apply_failed(run, result.guarded, result.error)
        view.finish(1, remaining=result.remaining, applied=result.applied, error=str(result.error))
        raise result.error
    if result.recorded_migration is not None:
        for w in result.recorded_migration["warnings"]:
            err.write(f"driftwatch: warning: {w}\n")
    view.applied(run, skipped, result.guarded, result.after, left=result.left, recorded=result.recorded_migration)
    return view.finish(1 if result.left else 0, remaining=result.remaining, applied=True)


def _pending_note(result: "FixResult", out: TextIO) -> None:
    """A fix applied by hand while a migration is pending sets a trap: the next
    `prisma migrate deploy` runs that migration again and fails on objects that now exist
    (P3018). Say so before anything runs, with the two ways out."""
    folder = result.history.directory  # type: ignore[union-attr]
    pending = result.pending
    out.write(f"Note: {len(pending)} migration(s) in {folder} are not applied: "
              f"{', '.join(pending)}.\n"
              f"  Prefer `driftwatch migrate deploy --migrations {folder}`. If you fix by hand instead, "
              f"mark them applied afterwards (`driftwatch migrate resolve --applied NAME`) so the next "
              f"deploy does not run them again and fail.\n\n")


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
        from checks.drift_text import verdict_line

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
        from checks.operations import describe_failure

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
        from checks.drift_text import render_text

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
