"""Prisma-compatible deploy and resolve, and a supervised `--command` deploy, as audited values.

    deploy_migrations(url, migrations_dir, *, schema=None, limits=None, on_progress=None,
                      caller=Caller()) -> DeployOutcome
    rehearse_deploy(url, migrations_dir, *, schema=None, limits=None,
                    caller=Caller()) -> DeployRehearsalOutcome
    deploy_with_command(url, migrations_dir, command, *, timeout, schema=None, on_line=None,
                        on_start=None, caller=Caller()) -> CommandDeployOutcome
    resolve_migration(url, migrations_dir, name, *, applied: bool, schema=None,
                      caller=Caller()) -> ResolveOutcome

Each is recorded in the audit log (kinds "deploy", "migrate_command", "resolve"; a deploy
rehearsal is kind "deploy" with outcome "rehearsed") as started
before it writes, with the SQL it runs (the migrations' scripts, the command, the rows of
`_prisma_migrations`) and the drift before and after (deploy) or before (resolve: it changes
the history, not the schema). The drift needs the schema: `schema`, else the
`schema.prisma` beside the migrations folder; when neither exists or the check fails, the
action is recorded without it (`details["drift"]` says why). Errors come back in `error`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .common import Caller, drift_json, drift_peek

if TYPE_CHECKING:
    from checks.errors import DriftwatchError
    from checks.guard import Limits
    from checks.findings import DriftReport
    from checks.migrations import DeployRehearsal, DeployResult, MigrationStatus, ResolveResult
    from checks.shell import CommandResult

@dataclass
class DeployOutcome:
    database: str
    migrations_dir: str
    limits: "Limits"
    result: "DeployResult | None" = None
    error: "DriftwatchError | None" = None
    audit_id: int | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class DeployRehearsalOutcome:
    """A deploy rehearsed: each pending migration's script run and rolled back (`result`), the
    drift now (`before`) and the drift the migrations would leave (`after`, seen inside the
    rehearsal's transaction; None when the schema is unknown or that inspection failed)."""

    database: str
    migrations_dir: str
    limits: "Limits"
    result: "DeployRehearsal | None" = None
    before: "DriftReport | None" = None
    after: "DriftReport | None" = None
    error: "DriftwatchError | None" = None
    audit_id: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The rehearsal ran and every pending migration went through."""
        return self.error is None and self.result is not None and self.result.clean


@dataclass
class CommandDeployOutcome:
    """A deploy run by the application's own command. `left` are migrations still not applied
    after it; `message` is the one-line failure (timeout, exit code, another database)."""

    database: str
    migrations_dir: str
    command: str  # scrubbed
    timeout: float
    before: "MigrationStatus | None" = None
    after: "MigrationStatus | None" = None
    result: "CommandResult | None" = None
    waiting: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    message: str | None = None
    error: "DriftwatchError | None" = None
    audit_id: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.message is None


@dataclass
class ResolveOutcome:
    database: str
    migrations_dir: str
    name: str
    applied: bool  # --applied (else --rolled-back)
    result: "ResolveResult | None" = None
    error: "DriftwatchError | None" = None
    audit_id: int | None = None
    warnings: list[str] = field(default_factory=list)


def _schema_for(migrations_dir: str | os.PathLike[str], schema: str | os.PathLike[str] | None) -> Path | None:
    if schema is not None:
        return Path(schema)
    beside = Path(migrations_dir).parent / "schema.prisma"
    return beside if beside.is_file() else None


def _drift(url: str, schema: Path | None, details: dict[str, Any], when: str) -> dict[str, Any] | None:
    """The drift for the audit log, or None with the reason in details (never fails the action)."""
    from checks.check import check_database
    from checks.errors import DriftwatchError

    if schema is None:
        details["drift"] = "not recorded: no schema given and no schema.prisma beside the migrations folder"
        return None
    try:
        return drift_json(check_database(url, schema).report)
    except DriftwatchError as exc:
        details[f"drift_{when}_error"] = str(exc)
        return None


def _scripts(migrations_dir: str | os.PathLike[str], names: list[str]) -> str | None:
    from checks.errors import DriftwatchError
    from checks.migrations import read_migrations_dir

    try:
        folder = read_migrations_dir(migrations_dir)
    except DriftwatchError:
        return None
    parts = [f"-- migration {n}\n{m.script.rstrip()}\n" for n in names if (m := folder.get(n)) is not None]
    return "\n".join(parts) if parts else None


def deploy_migrations(url: str, migrations_dir: str | os.PathLike[str], *, schema: str | os.PathLike[str] | None = None,
                      limits: "Limits | None" = None, on_progress: Callable[[str, str, Any], None] | None = None,
                      caller: Caller = Caller()) -> DeployOutcome:
    """`prisma migrate deploy`, exactly (`checks.migrations.deploy`), recorded with its SQL and drift."""
    from checks.db import redact
    from checks.errors import DriftwatchError
    from checks.migrations import deploy, status

    from .common import limits as make_limits

    lim = limits or make_limits()
    outcome = DeployOutcome(redact(url), str(migrations_dir), lim)
    details: dict[str, Any] = {"migrations": str(migrations_dir), "lock_timeout": lim.lock_timeout,
                               "statement_timeout": lim.statement_timeout}
    try:
        with caller.audit_store() as store:
            try:
                waiting = status(url, migrations_dir).names("pending", "rolled_back")
            except DriftwatchError:
                waiting = []  # deploy itself says what is wrong
            schema_path = _schema_for(migrations_dir, schema)
            before = _drift(url, schema_path, details, "before")
            with caller.action(store, "deploy", warnings=outcome.warnings, database=url, target=str(migrations_dir),
                               statements=_scripts(migrations_dir, waiting), drift_before=before,
                               details=details) as action:
                outcome.audit_id = action.id
                result = deploy(url, migrations_dir, lim, on_progress=on_progress)
                outcome.result = result
                action.statements = _scripts(migrations_dir, [a.name for a in result.applied])
                action.details.update(applied=[a.name for a in result.applied], warnings=list(result.warnings))
                action.drift_after = _drift(url, schema_path, action.details, "after") if result.applied else before
    except DriftwatchError as exc:
        outcome.error = exc
    return outcome


def rehearse_deploy(url: str, migrations_dir: str | os.PathLike[str], *, schema: str | os.PathLike[str] | None = None,
                    limits: "Limits | None" = None, caller: Caller = Caller()) -> DeployRehearsalOutcome:
    """`migrate deploy`, rehearsed (`checks.migrations.rehearse_deploy`): what would fail, and
    what would still be missing after it, before anyone runs it. Recorded as a deploy with
    outcome "rehearsed" (its SQL, the drift now, and per migration what happened)."""
    from checks.check import check_database
    from checks.db import redact
    from checks.errors import DriftwatchError
    from checks.migrations import rehearse_deploy as rehearse, status

    from .common import limits as make_limits

    lim = limits or make_limits()
    outcome = DeployRehearsalOutcome(redact(url), str(migrations_dir), lim)
    details: dict[str, Any] = {"migrations": str(migrations_dir), "mode": "rehearsed",
                               "command": f"driftwatch migrate deploy --rehearse --migrations {migrations_dir}",
                               "lock_timeout": lim.lock_timeout, "statement_timeout": lim.statement_timeout}
    try:
        with caller.audit_store() as store:
            try:
                waiting = status(url, migrations_dir).names("pending", "rolled_back")
            except DriftwatchError:
                waiting = []  # the rehearsal itself says what is wrong
            schema_path = _schema_for(migrations_dir, schema)
            expected = None
            if schema_path is None:
                details["drift"] = "not recorded: no schema given and no schema.prisma beside the migrations folder"
            else:
                try:
                    checked = check_database(url, schema_path)
                    outcome.before, expected = checked.report, checked.expected
                except DriftwatchError as exc:
                    details["drift_before_error"] = str(exc)
            with caller.action(store, "deploy", warnings=outcome.warnings, database=url, target=str(migrations_dir),
                               statements=_scripts(migrations_dir, waiting),
                               drift_before=drift_json(outcome.before) if outcome.before is not None else None,
                               details=details, outcome="rehearsed") as action:
                outcome.audit_id = action.id
                peek = drift_peek(expected, outcome, outcome.warnings) if expected is not None else None
                outcome.result = result = rehearse(url, migrations_dir, lim, before_rollback=peek)
                action.details.update(
                    rehearsed=[{"migration": m.name, "status": m.status, "error": m.error} for m in result.migrations],
                    would_remain=[f.message for f in outcome.after.findings] if outcome.after is not None else None)
                if not result.clean:
                    action.outcome = "failed"
                    action.error = next((f"{m.name}: {m.error}" for m in result.migrations if m.error), None)
    except DriftwatchError as exc:
        outcome.error = exc
    return outcome


def deploy_with_command(url: str, migrations_dir: str | os.PathLike[str], command: str, *,
                        timeout: float, schema: str | os.PathLike[str] | None = None,
                        on_line: Callable[[str], None] | None = None, on_start: Callable[[CommandDeployOutcome], None]
                        | None = None, cwd: str | os.PathLike[str] | None = None,
                        caller: Caller = Caller()) -> CommandDeployOutcome:
    """Run the application's own deploy command with DATABASE_URL set, supervised
    (`checks.shell.run_command`), and judge it by the history before and after.

    `on_start(outcome)` is called once the history before is known, before the command runs
    (the CLI prints what is about to be applied). `cwd`: where the command runs (the
    application's folder; default the current one). Driftwatch does not hold Prisma's lock
    meanwhile: Prisma takes it itself."""
    from checks.db import redact, scrub
    from checks.errors import DriftwatchError
    from checks.migrations import status
    from checks.shell import run_command

    outcome = CommandDeployOutcome(redact(url), str(migrations_dir), scrub(command, url), timeout)
    try:
        outcome.before = before = status(url, migrations_dir)
        outcome.waiting = before.names("pending", "rolled_back")
        with caller.audit_store() as store:
            if on_start is not None:
                on_start(outcome)
            details: dict[str, Any] = {"migrations": str(migrations_dir)}
            if cwd is not None:
                details["cwd"] = str(cwd)
            schema_path = _schema_for(migrations_dir, schema)
            drift_before = _drift(url, schema_path, details, "before")
            with caller.action(store, "migrate_command", warnings=outcome.warnings, database=url,
                               target=str(migrations_dir), statements=outcome.command, drift_before=drift_before,
                               details=details) as action:
                outcome.audit_id = action.id
                result = run_command(command, timeout, env={"DATABASE_URL": url}, on_line=on_line, cwd=cwd)
                outcome.result = result
                outcome.after = after = status(url, migrations_dir)
                outcome.left = after.names("pending", "failed", "rolled_back")
                outcome.applied = [n for n in outcome.waiting
                                   if (s := after.get(n)) is not None and s.state == "applied"]
                action.details.update(exit_code=result.exit_code, timed_out=result.timed_out, applied=outcome.applied,
                                      left=outcome.left, output_tail=list(result.output_tail[-20:]))
                action.drift_after = _drift(url, schema_path, action.details, "after")
                still = (f"still not applied: {', '.join(outcome.left)}" if outcome.left
                         else "every migration is applied")
                if result.timed_out:
                    outcome.message = (f"the command ran longer than {timeout:g} s and was killed (its process group "
                                       f"got SIGTERM); {still} — check `driftwatch migrate status`")
                elif result.exit_code != 0:
                    outcome.message = f"the command exited with code {result.exit_code}; {still}"
                elif outcome.left:
                    outcome.message = f"still not applied after the command: {', '.join(outcome.left)}"
                if outcome.message is not None:
                    action.outcome, action.error = "failed", outcome.message
    except DriftwatchError as exc:
        outcome.error = exc
    return outcome


def resolve_migration(url: str, migrations_dir: str | os.PathLike[str], name: str, *, applied: bool,
                      schema: str | os.PathLike[str] | None = None, limits: "Limits | None" = None,
                      caller: Caller = Caller()) -> ResolveOutcome:
    """`prisma migrate resolve --applied NAME` (applied=True) or `--rolled-back NAME`, recorded."""
    from checks.db import redact
    from checks.errors import DriftwatchError
    from checks.migrations import resolve_applied, resolve_rolled_back

    outcome = ResolveOutcome(redact(url), str(migrations_dir), name, applied)
    details: dict[str, Any] = {"migrations": str(migrations_dir), "migration": name,
                               "as": "applied" if applied else "rolled_back"}
    try:
        with caller.audit_store() as store:
            drift_before = _drift(url, _schema_for(migrations_dir, schema), details, "before")
            with caller.action(store, "resolve", warnings=outcome.warnings, database=url, target=name,
                               drift_before=drift_before, details=details) as action:
                outcome.audit_id = action.id
                if applied:
                    result = resolve_applied(url, migrations_dir, name, limits)
                else:
                    result = resolve_rolled_back(url, migrations_dir, name, limits)
                outcome.result = result
                action.statements = "\n".join(s.rstrip(";") + ";" for s in result.statements) or None
                action.details["rolled_back_rows"] = result.rolled_back_rows
    except DriftwatchError as exc:
        outcome.error = exc
    return outcome
