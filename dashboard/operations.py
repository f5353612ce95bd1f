"""The dashboard's buttons, as calls into the engine's workflows (checks.operations).

Each function runs one workflow (fix rehearsal and apply, migrate deploy and resolve, a
runbook) for one environment as one named actor — the `Caller` the CLI uses too, so the
audit rows are the same, attributed to the signed-in operator and labelled with the
environment — and returns an `Outcome` the Actions page renders: the exit code (the CLI's),
the result as plain data, lines of text, and the one-line error (errors are values).

The schema and migrations are the deployed commit's when the environment reads them from
git, as its checks do. One action runs at a time per dashboard process: a second operator is
told at once who is acting; across processes the guard's advisory lock names the holder.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from dashboard import data

_ENV_LOCK = threading.Lock()
_holder: dict[str, str] = {}  # who runs an action in this process right now: actor, what, environment


class Busy(Exception):
    """Another operator's action is running in this dashboard process."""


@dataclass(frozen=True)
class Outcome:
    exit: int
    result: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    error: str | None = None  # the one line the CLI would print on stderr, without "driftwatch: error: "

    @property
    def ok(self) -> bool:
        return self.exit == 0 and self.error is None


@contextmanager
def _as(actor: str, environment: str, what: str) -> Iterator[None]:
    """One action at a time per dashboard process: a second
    operator is refused at once with who holds it (across processes, the guard's advisory lock
    does the same and names the holder), rather than queued behind the first."""
    if not _ENV_LOCK.acquire(blocking=False):
        holder = dict(_holder)
        raise Busy(f"{holder.get('actor', 'another operator')} is running {holder.get('what', 'an action')} on "
                   f"{holder.get('environment', '?')} from this dashboard right now; try again when it has finished")
    try:
        _holder.update(actor=actor, what=what, environment=environment)
        yield
    finally:
        _holder.clear()
        _ENV_LOCK.release()


def schema_paths(env: Any) -> tuple[str, str | None]:
    """The schema and migrations an action uses: those of the deployed commit when the
    environment reads them from git (as its checks do), else the configured files."""
    if env.config is None or env.config.git is None:
        return env.schema, env.migrations
    from dashboard import ui
    from dashboard.monitor import schema_source

    deployment = next((s.result for s in ui.monitor().latest(env.name) if s.result.kind == "deployment"), None)
    source, _ = schema_source(env, deployment)
    return str(source.schema), str(source.migrations) if source.migrations else None


def _paths(env: Any) -> tuple[str, str]:
    """(schema, migrations folder) for one action, read once: the deployed commit could change
    between two reads, and each read of a git source runs git."""
    schema, migrations = schema_paths(env)
    return schema, migrations or env.migrations


def _target(env: Any, schema: str) -> Any:
    return data.Target(env.database_url, schema)


def _fix_outcome(r: Any, env: Any, schema: str) -> Outcome:
    """A checks.operations FixResult as the page renders it: each planned statement with its
    safety and reason, what the guard did with it, what was skipped and what remains."""
    planned = list(r.plan.statements) if r.plan is not None else []
    status = r.guarded.status_of() if r.guarded is not None else {}
    position = {id(s): i for i, s in enumerate(r.run)}
    statements, results = [], []
    for n, s in enumerate(planned, 1):
        statements.append({"sql": s.sql, "safety": s.safety, "reason": s.reason})
        done = status.get(position[id(s)]) if id(s) in position else None
        results.append({"statement": n, "status": done.status if done else "not rehearsed",
                        "error": done.error if done else None})
    error = _error(r.error, env, schema)
    rehearsal = None
    if r.mode == "rehearse":
        clean = error is None and all(x["status"] in ("rehearsed", "not rehearsed") for x in results)
        rehearsal = {"clean": clean, "statements": results, "error": error}
    result = {"statements": statements, "rehearsal": rehearsal, "applied": r.applied,
              "skipped": [s.sql for s in r.skipped], "remaining": [f.message for f in r.left],
              "audit_id": r.audit_id}
    return Outcome(0 if r.ok else 1, result, "\n".join(r.warnings), error)


def _acting(env: Any, actor: str, what: str, call: Any) -> Any:
    try:
        with _as(actor, env.name, what):
            return call()
    except Busy as exc:
        return Outcome(1, {}, "", str(exc))


def rehearse_fix(env: Any, actor: str) -> Outcome:
    """The fix plan, each statement safe or destructive with its reason, rehearsed and rolled back."""
    from checks.operations import rehearse_fix as rehearse

    def call() -> Outcome:
        schema = schema_paths(env)[0]
        return _fix_outcome(rehearse(env.database_url, schema, caller=_caller(env, actor)), env, schema)
    return _acting(env, actor, "fix (rehearsal)", call)


def apply_fix(env: Any, actor: str, *, allow_destructive: bool) -> Outcome:
    from checks.operations import apply_fix as apply

    def call() -> Outcome:
        schema = schema_paths(env)[0]
        try:
            return _fix_outcome(apply(env.database_url, schema, allow_destructive=allow_destructive,
                                      caller=_caller(env, actor)), env, schema)
        finally:
            data.forget(_target(env, schema))  # the Schema drift page asks the database again
    return _acting(env, actor, "fix --apply", call)


def migration_status(env: Any) -> Outcome:
    """Every migration's state (read only, not audited): `migrate status --format json`'s object."""
    from checks.errors import DriftwatchError
    from checks.migrations import status

    schema, migrations = _paths(env)
    try:
        found = status(env.database_url, migrations)
    except DriftwatchError as exc:
        return Outcome(1, {}, "", _error(exc, env, schema))
    return Outcome(0 if found.up_to_date else 2, found.to_json())


def migration_scripts(env: Any, names: list[str]) -> dict[str, str]:
    """Each named migration's migration.sql (from the deployed commit when read from git)."""
    from checks.errors import DriftwatchError
    from checks.migrations import read_migrations_dir

    try:
        folder = read_migrations_dir(_paths(env)[1])
    except DriftwatchError:
        return {}
    return {n: m.script for n in names if (m := folder.get(n)) is not None}


def _caller(env: Any, actor: str) -> Any:
    from checks.operations import Caller

    from dashboard.environments import store_url

    return Caller(actor=actor, environment=env.name, history_url=store_url())


def _error(exc: Any, env: Any, schema: str) -> str | None:
    return data.one_line(exc, _target(env, schema)) if exc is not None else None


def migrate_deploy(env: Any, actor: str) -> Outcome:
    """`migrate deploy` as Prisma runs it, through checks.operations, attributed to `actor`."""
    from checks.operations import deploy_migrations

    def call() -> Outcome:
        schema, migrations = _paths(env)
        out = deploy_migrations(env.database_url, migrations, schema=schema, caller=_caller(env, actor))
        lines = list(out.warnings)
        if out.result is not None:
            names = [m.name for m in out.result.applied]
            lines.insert(0, f"applied {len(names)} migration(s): {', '.join(names)}" if names
                         else "nothing to apply: every migration was already applied")
            lines += list(out.result.warnings)
        return Outcome(0 if out.error is None else 1, {"audit_id": out.audit_id}, "\n".join(lines),
                       _error(out.error, env, schema))
    return _acting(env, actor, "migrate deploy", call)


def rehearse_deploy(env: Any, actor: str) -> Outcome:
    """`migrate deploy --rehearse`: each pending migration run in a transaction rolled back,
    and what would still differ from the schema after it. `result["migrations"]` lists
    {name, status, error}; `result["remaining"]` the findings that would remain (None: unknown)."""
    from checks.operations import rehearse_deploy as rehearse

    def call() -> Outcome:
        schema, migrations = _paths(env)
        out = rehearse(env.database_url, migrations, schema=schema, caller=_caller(env, actor))
        result: dict[str, Any] = {"audit_id": out.audit_id, "migrations": [], "remaining": None,
                                  "creates_table": False}
        if out.result is not None:
            result["migrations"] = [{"name": m.name, "status": m.status, "statements": m.statements,
                                     "error": m.error} for m in out.result.migrations]
            result["creates_table"] = out.result.would_create_table
        if out.after is not None:
            result["remaining"] = [f"{f.severity} {f.message}" for f in out.after.findings]
        code = 0 if out.ok else 1
        return Outcome(code, result, "\n".join(out.warnings), _error(out.error, env, schema))
    return _acting(env, actor, "migrate deploy (rehearsal)", call)


def migrate_command(env: Any, actor: str) -> Outcome:
    """The application's own deploy command from driftwatch.toml (`[….migrate]`), supervised
    and judged by the history before and after (`migrate deploy --command`)."""
    from checks.operations import deploy_with_command

    configured = env.config.migrate if env.config is not None else None
    if configured is None:
        return Outcome(1, {}, "", "no [migrate] command is configured for this environment in driftwatch.toml")

    def call() -> Outcome:
        schema, migrations = _paths(env)
        out = deploy_with_command(env.database_url, migrations, configured.command, timeout=configured.timeout_s,
                                  schema=schema, cwd=configured.cwd, caller=_caller(env, actor))
        lines = list(out.result.output_tail) if out.result is not None else []
        lines += out.warnings
        error = _error(out.error, env, schema) if out.error is not None else out.message
        result = {"audit_id": out.audit_id, "applied": out.applied, "left": out.left, "command": out.command}
        return Outcome(0 if out.ok else 1, result, "\n".join(lines), error)
    return _acting(env, actor, "the migrate command", call)


def migrate_resolve(env: Any, actor: str, name: str, *, applied: bool) -> Outcome:
    from checks.operations import resolve_migration

    def call() -> Outcome:
        schema, migrations = _paths(env)
        out = resolve_migration(env.database_url, migrations, name, applied=applied, schema=schema,
                                caller=_caller(env, actor))
        text = ""
        if out.result is not None:
            if applied:
                text = f"recorded {name} as applied"
            elif out.result.rolled_back_rows:
                text = f"marked {name} as rolled back; the next deploy applies it again"
            else:
                text = f"{name} has no failed run left to mark; nothing changed"
        lines = [text, *out.warnings] if text else list(out.warnings)
        return Outcome(0 if out.error is None else 1, {"audit_id": out.audit_id}, "\n".join(lines),
                       _error(out.error, env, schema))
    return _acting(env, actor, "migrate resolve", call)


def runbooks(env: Any) -> tuple[list[Any], str | None]:
    """The reviewed emergency SQL files beside the environment's schema, and why not if none."""
    from checks.errors import DriftwatchError
    from checks.runbooks import find_runbooks_dir, list_runbooks

    try:
        directory = find_runbooks_dir(data.setting("DRIFTWATCH_RUNBOOKS"), schema_paths(env)[0])
        return list_runbooks(directory), None
    except DriftwatchError as exc:
        return [], data.one_line(exc)


def run_runbook(env: Any, actor: str, name: str, *, apply: bool) -> Outcome:
    """Rehearse (rolled back) or apply a runbook under the write guard, then the drift check:
    exit 0 clean / in sync, 2 when drift remains after it, 1 on failure (as the CLI)."""
    from checks.operations import run_runbook as run
    from checks.runbooks import find_runbooks_dir, load_runbook

    def call() -> Outcome:
        schema = schema_paths(env)[0]
        book = load_runbook(find_runbooks_dir(data.setting("DRIFTWATCH_RUNBOOKS"), schema), name)
        out = run(env.database_url, schema, book, apply=apply, caller=_caller(env, actor))
        lines = [f"{len(out.statements)} statement(s) {out.mode}", *out.warnings]
        for pending, objects in out.collisions.items():
            lines.append(f"pending migration {pending} also creates {', '.join(objects)}: deploying it later fails")
        remaining = list(out.after.findings) if out.after is not None else []
        if remaining:
            lines.append(f"still missing after it ({len(remaining)}):")
            lines += [f"  {f.severity} {f.message}" for f in remaining]
        if out.error is not None:
            code = 1
        elif apply:
            code = 0 if out.in_sync_after else 2
        else:
            code = 0
        return Outcome(code, {"audit_id": out.audit_id}, "\n".join(lines), _error(out.error, env, schema))
    return _acting(env, actor, "a runbook", call)
