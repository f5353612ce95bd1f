"""What to do next: one pure function of the drift and the migration history.

    next_steps(drift, history, *, schema=None) -> NextSteps

`check`, `migrate status`, `fix`, `runbook run` and the dashboard all print what this
returns, so they can never give different advice for the same database. Nothing here
reads a database or a file: `drift` is a `checks.findings.DriftReport` (None when the
check did not run or failed), `history` a `checks.migrations.MigrationSummary` (None when
there is no migrations folder). Every step names the exact command.

The states (`NextSteps.state`), in the order they are decided:

    unknown              neither drift nor history could be read: run the check
    history_unreadable   the history could not be read: judge by the drift alone
    unmanaged_empty      no _prisma_migrations, no tables: `migrate deploy` creates both
    unmanaged            no _prisma_migrations, tables exist: deploy refuses (P3005);
                         baseline with `migrate resolve --applied` (every migration when in
                         sync, else the ones the database already has), then deploy
    failed_in_sync       a migration failed (P3009) and the database matches the schema:
                         `migrate resolve --applied NAME` — never "run migrate deploy"
    failed_drift         a migration failed and drift remains: `resolve --rolled-back NAME`,
                         then deploy
    failed               a migration failed and the drift is unknown: both ways out
    pending_collides     a pending migration creates objects that already exist: deploy
                         would fail (P3018); finish with `fix`, then `resolve --applied`
    pending_in_sync      pending migrations, the database already matches the schema:
                         `resolve --applied` them
    pending              pending migrations: `migrate deploy` (or `fix`, then `resolve --applied`)
    edited / missing_locally   the history and the folder disagree (no write needed)
    drift                the history is clean (or absent) but the database drifts: `fix`,
                         recorded as a migration when there is a folder; a missing table no
                         migration creates says "create one with `prisma migrate dev`" first
    in_sync              nothing to do

`after_replay(drift, failed)` gives the advice of `migrate diff` (states replay_failed,
no_migration, in_sync) from the same steps: a difference the replayed folder still has is
one no migration makes, said exactly as `next_steps` says it of a live database.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from checks.findings import DriftReport, Finding
    from checks.migrations import MigrationSummary

__all__ = ["NextSteps", "Step", "after_replay", "next_steps", "no_migration_makes"]


@dataclass(frozen=True)
class Step:
    """One thing to do: why (`say`), and the exact command (None when it is not a command)."""

    say: str
    command: str | None = None
    action: str | None = None  # deploy, resolve_applied, resolve_rolled_back, fix, fix_apply, check, inspect,
    #                            create_migration, fix_migration
    migration: str | None = None

    @property
    def text(self) -> str:
        """One line: "why: command" (or just why)."""
        return f"{self.say}: {self.command}" if self.command else self.say

    def to_json(self) -> dict[str, Any]:
        return {"say": self.say, "command": self.command, "action": self.action, "migration": self.migration}


@dataclass(frozen=True)
class NextSteps:
    """The advice: a state, a headline, a warning to give before anyone acts, the steps in
    order, and another way out when there is a good one."""

    state: str
    headline: str
    steps: tuple[Step, ...] = ()
    warning: str | None = None
    alternative: tuple[Step, ...] = field(default=())

    @property
    def first(self) -> Step | None:
        return self.steps[0] if self.steps else None

    def texts(self) -> list[str]:
        """The steps as one line each (`check --format json`'s `migrations.next_steps`)."""
        return [s.text for s in self.steps]

    def lines(self) -> list[str]:
        """The advice as text lines, as the CLI prints it (the dashboard renders the same fields)."""
        out = [self.headline]
        if self.warning:
            out.append(f"Warning: {self.warning}")
        for i, s in enumerate(self.steps, 1):
            out.append(f"  {i}. {s.text}")
        if self.alternative:
            out.append("  Or:")
            for s in self.alternative:
                out.append(f"     {s.text}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "headline": self.headline, "warning": self.warning,
                "steps": [s.to_json() for s in self.steps], "alternative": [s.to_json() for s in self.alternative]}


def _m(history: "MigrationSummary") -> str:
    # A summary rebuilt from a record that did not keep its folder: the commands' default folder.
    return f" --migrations {history.directory}" if history.directory else ""


def _s(schema: str | None) -> str:
    return f" --schema {schema}" if schema else ""


def _deploy(history: "MigrationSummary", say: str = "apply them") -> Step:
    return Step(say, f"driftwatch migrate deploy{_m(history)}", "deploy")


def _resolve(history: "MigrationSummary", name: str, how: str, say: str) -> Step:
    flag = "--applied" if how == "applied" else "--rolled-back"
    return Step(say, f"driftwatch migrate resolve {flag} {name}{_m(history)}",
                "resolve_applied" if how == "applied" else "resolve_rolled_back", name)


def _fix(schema: str | None, *, record: str | None = None) -> tuple[Step, Step]:
    record_flag = f" --record-migration {record}" if record else ""
    return (Step("rehearse the fix (rolled back, nothing changes)", f"driftwatch fix{_s(schema)}", "fix"),
            Step("apply it under Prisma's lock", f"driftwatch fix --apply{_s(schema)}{record_flag}", "fix_apply"))


def next_steps(drift: "DriftReport | None", history: "MigrationSummary | None", *,
               schema: str | None = None) -> NextSteps:
    """What to do next, in order, with the exact commands (see the module docstring)."""
    in_sync = drift.in_sync() if drift is not None else None
    if history is None or history.error is not None:
        return _by_drift_alone(drift, history, schema)
    if not history.managed:
        return _unmanaged(drift, in_sync, history, schema)
    failed = history.names("failed")
    if failed:
        return _failed(in_sync, failed, history)
    waiting = history.names("pending", "rolled_back")
    if waiting:
        return _pending(drift, in_sync, waiting, history, schema)
    edited, missing = history.names("edited"), history.names("missing_locally")
    if edited or missing:
        return _disagree(edited, missing, in_sync, history, schema)
    if in_sync is False:
        unmigrated = _no_migration_creates(drift, history)
        if unmigrated:
            return NextSteps("drift", "Every migration is applied, yet the schema has tables no migration creates: "
                                      "the schema changed without a migration, which no deploy can fix.",
                             unmigrated, alternative=_fix(schema, record=history.directory))
        return NextSteps("drift", "Every migration is applied, yet the database differs from the schema: a change "
                                  "was made by hand, or the schema has changes no migration holds.",
                         _fix(schema, record=history.directory))
    if in_sync is None:
        return NextSteps("unknown", "Every migration is applied; run the drift check to see whether the database "
                                    "matches the schema.", (Step("check", f"driftwatch check{_s(schema)}", "check"),))
    return NextSteps("in_sync", "Nothing to do: every migration is applied and the database matches the schema.")


def _by_drift_alone(drift: "DriftReport | None", history: "MigrationSummary | None",
                    schema: str | None) -> NextSteps:
    unread = history is not None and history.error is not None
    state = "history_unreadable" if unread else None
    if drift is None:
        return NextSteps("unknown", "The database could not be checked yet: run the drift check.",
                         (Step("check", f"driftwatch check{_s(schema)}", "check"),))
    if drift.in_sync():
        return NextSteps(state or "in_sync", "Nothing to do: the database matches the schema."
                         + (" (The migration history could not be read.)" if unread else ""))
    return NextSteps(state or "drift", "The database differs from the schema: plan the fix, rehearse it, apply it."
                     + (" (The migration history could not be read: check it before deploying.)" if unread else ""),
                     _fix(schema))


def _unmanaged(drift: "DriftReport | None", in_sync: bool | None, history: "MigrationSummary",
               schema: str | None) -> NextSteps:
    local = list(history.local)
    if history.empty:
        return NextSteps("unmanaged_empty", "The database is empty and not managed by Prisma Migrate: deploy creates "
                                            "_prisma_migrations and applies every migration.",
                         (_deploy(history, "apply every migration"),))
    if not local:
        return NextSteps("unmanaged", "The database is not managed by Prisma Migrate and the folder has no "
                                      "migrations.", _fix(schema) if in_sync is False else ())
    warning = ("`migrate deploy` refuses a database that has tables but no _prisma_migrations table (P3005): "
               "baseline it first.")
    if in_sync:
        steps = tuple(_resolve(history, n, "applied", "record it as applied (the database already has it)")
                      for n in local)
        return NextSteps("unmanaged", "The database matches the schema but Prisma Migrate never managed it: "
                                      "baseline it, recording every migration as applied.", steps, warning)
    first = local[0]
    steps = (_resolve(history, first, "applied", f"if the database already has the schema of {first}, "
                                                 f"record it as applied (baseline)"),
             _deploy(history, "then apply the rest"))
    return NextSteps("unmanaged", "The database is not managed by Prisma Migrate (no _prisma_migrations table).",
                     steps, warning)


def _failed(in_sync: bool | None, failed: list[str], history: "MigrationSummary") -> NextSteps:
    name = failed[0]
    if in_sync:
        # The database already has what the failed migration was meant to do (it was finished by
        # hand, or it failed after its changes): deploy would refuse (P3009) or run it again.
        rest = history.names("pending", "rolled_back")
        steps = tuple(_resolve(history, n, "applied", "record it as applied (the database already has its changes)")
                      for n in sorted({*failed, *rest}))
        return NextSteps("failed_in_sync", f"{name} failed, but the database now matches the schema: record it as "
                                           f"applied. Do not run migrate deploy: it refuses while a migration is "
                                           f"failed (P3009) and would run it again.", steps)
    if in_sync is False:
        steps = (_resolve(history, name, "rolled_back", "undo what it changed (see its logs: "
                                                        "driftwatch migrate status), then mark it rolled back"),
                 _deploy(history, "then apply it again with the rest"))
        return NextSteps("failed_drift", f"{name} failed and the database still differs from the schema: "
                                         f"deploys stop (P3009) until it is resolved.", steps)
    steps = (_resolve(history, name, "rolled_back", "if you undid its partial changes, mark it rolled back"),
             _deploy(history, "then apply it again"))
    alternative = (_resolve(history, name, "applied", "if you completed it by hand, record it as applied"),)
    return NextSteps("failed", f"{name} failed: deploys stop (P3009) until it is resolved. Run the drift check "
                               f"to know which way out applies.", steps, alternative=alternative)


def _pending(drift: "DriftReport | None", in_sync: bool | None, waiting: list[str], history: "MigrationSummary",
             schema: str | None) -> NextSteps:
    colliding = {n: history.existing[n] for n in waiting if history.existing.get(n)}
    if colliding:
        what = "; ".join(f"{n} creates {', '.join(objs)}" for n, objs in colliding.items())
        warning = (f"migrate deploy would fail (P3018): {what}, which already exist (emergency SQL or a "
                   f"hand fix ran). Do not deploy.")
        steps: tuple[Step, ...] = () if in_sync else _fix(schema)
        steps += tuple(_resolve(history, n, "applied", "then record it as applied" if not in_sync else
                                "record it as applied (the database already has its changes)") for n in waiting)
        headline = (f"{len(waiting)} migration(s) not applied, but the database already has their changes: "
                    f"record them as applied." if in_sync else
                    f"{len(waiting)} migration(s) not applied, but their objects are partly there already: finish "
                    f"the job with fix, then record them as applied.")
        return NextSteps("pending_collides", headline, steps, warning)
    if in_sync:
        steps = tuple(_resolve(history, n, "applied", "record it as applied (the database already matches the schema)")
                      for n in waiting)
        return NextSteps("pending_in_sync", f"{len(waiting)} migration(s) not applied, yet the database already "
                                            f"matches the schema: deploy would run them again.", steps,
                         alternative=(_deploy(history, "if they only change data, apply them"),))
    fix = _fix(schema)
    alternative = (fix[1],) + tuple(_resolve(history, n, "applied", "then record it as applied") for n in waiting)
    return NextSteps("pending", f"{len(waiting)} migration(s) not applied: {', '.join(waiting)}.",
                     (_deploy(history),) + _no_migration_creates(drift, history), alternative=alternative)


def _no_migration_creates(drift: "DriftReport | None", history: "MigrationSummary") -> tuple[Step, ...]:
    """Missing tables no migration.sql creates: the schema changed without a migration.

    All a live check can tell without replaying the folder (`migrate diff` can tell more)."""
    if drift is None or history.created_tables is None:
        return ()
    created = history.created_tables
    return no_migration_makes(sorted((f for f in drift.findings if f.kind == "missing_table" and f.table
                                      and f.table not in created), key=lambda f: f.table or ""))


# What a migration would have to do to explain a finding, by finding kind.
_WHAT = {
    "missing_table": "creates table {table}",
    "missing_column": "adds column {table}.{column}",
    "missing_enum": "creates enum {name}",
    "missing_enum_value": "adds value {expected} to enum {name}",
    "missing_index": "creates index {name}",
    "missing_unique": "creates unique index {name}",
    "missing_foreign_key": "creates foreign key {name}",
    "missing_schema": "creates schema {schema}",
}


def no_migration_makes(findings: "Iterable[Finding]") -> tuple[Step, ...]:
    """One step per difference no migration makes ("no migration creates table X: create one
    with `prisma migrate dev`"), given findings already known to be made by no migration: a
    live check's missing tables no script creates (above), or everything a replay of the
    folder still lacks (`after_replay`). A missing table's own indexes and keys come with it;
    kinds without a phrase are counted in one closing step. Informational findings never count."""
    kept = [f for f in findings if f.severity != "info"]
    new_tables = {(f.schema, f.table) for f in kept if f.kind == "missing_table"}
    steps: list[Step] = []
    seen: set[str] = set()
    other = 0
    for f in kept:
        if f.kind != "missing_table" and (f.schema, f.table) in new_tables:
            continue
        template = _WHAT.get(f.kind)
        if template is None:
            other += 1
            continue
        say = ("no migration " + template.format(table=f.table, column=f.column, name=f.name, schema=f.schema,
                                                 expected=f.expected) + ": create one with `prisma migrate dev`")
        if say not in seen:
            seen.add(say)
            steps.append(Step(say, None, "create_migration"))
    if other:
        steps.append(Step(f"{other} other difference(s) between the schema and what the migrations build: "
                          f"create a migration with `prisma migrate dev`", None, "create_migration"))
    return tuple(steps)


def after_replay(drift: "DriftReport", failed: tuple[str, str] | None = None) -> NextSteps:
    """What to do after `migrate diff`: `drift` compares what the folder builds on an empty
    database with the schema, `failed` the (migration, PostgreSQL's error) that stopped the
    replay. Whatever the replay still lacks, no migration makes: the same steps `next_steps`
    gives for a missing table no script creates."""
    if failed is not None:
        name, error = failed
        return NextSteps("replay_failed", f"Migration {name} fails on an empty database.",
                         (Step(f"migration {name} fails on an empty database ({error}): `prisma migrate deploy` "
                               f"would stop there too; fix the migration before deploying", None, "fix_migration",
                               name),))
    if drift.in_sync():
        return NextSteps("in_sync", "The migrations folder builds the schema.")
    return NextSteps("no_migration", "The migrations folder does not build the schema: the schema changed "
                                     "without a migration, which no deploy can fix.",
                     no_migration_makes(drift.findings))


def _disagree(edited: list[str], missing: list[str], in_sync: bool | None, history: "MigrationSummary",
              schema: str | None) -> NextSteps:
    steps = []
    for n in edited:
        steps.append(Step(f"{n} changed after it was applied: restore the applied version (deploy does not "
                          f"re-run it; a reset would)", f"git log -p -- {history.directory}/{n}/migration.sql",
                          "inspect", n))
    for n in missing:
        steps.append(Step(f"{n} is applied but has no folder here: is this the right branch or folder?",
                          f"git log --all --oneline -- {history.directory}/{n}", "inspect", n))
    if in_sync is False:
        steps.extend(_fix(schema, record=history.directory))
    state = "edited" if edited else "missing_locally"
    return NextSteps(state, "The migration history and the migrations folder disagree.", tuple(steps))
