"""The dashboard's buttons, as calls into the same workflows the CLI runs.

Each function runs one workflow (fix rehearsal, fix apply, migrate deploy, migrate resolve)
for one environment as one named actor, and returns an `Outcome`: the exit code, the
workflow's JSON when it has one, the text it printed, and its one-line error. The audit log
gets exactly the rows the CLI writes, attributed to the signed-in operator and labelled
with the environment.

Until the engine's operations layer (checks/operations/) is here, the workflows are run
through `checks.cli.run` in this process; the actor and environment reach the audit record
through DRIFTWATCH_ACTOR/DRIFTWATCH_ENVIRONMENT, set under a lock for the call's duration.
"""
from __future__ import annotations

import io
import json
import os
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


def history_args() -> list[str]:
    from dashboard.environments import store_url

    url = store_url()
    return ["--history-url", url] if url else []


def _run(argv: list[str], env: Any, actor: str, *, json_out: bool, audited: bool = True) -> Outcome:
    from checks.cli import run

    out, err = io.StringIO(), io.StringIO()
    if audited:
        what = " ".join(a for a in argv[:2] if not a.startswith("-"))
        try:
            with _as(actor, env.name, what):
                code = run(argv + history_args(), out, err)
        except Busy as exc:
            return Outcome(1, {}, "", str(exc))
    else:
        code = run(argv, out, err)
    lines = [line.removeprefix("driftwatch: error: ") for line in err.getvalue().splitlines()
             if line.startswith("driftwatch: ")]
    error = data.scrub(lines[-1], env.database_url) if lines else None
    text = data.scrub(out.getvalue(), env.database_url)
    result: dict[str, Any] = {}
    if json_out and text.strip():
        try:
            result = json.loads(text)
        except ValueError:
            pass
    return Outcome(code, result, text, error)


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


def _db(env: Any) -> list[str]:
    return ["--database-url", env.database_url, "--schema", schema_paths(env)[0]]


def _migrations(env: Any) -> str:
    return schema_paths(env)[1] or env.migrations


def _target(env: Any) -> Any:
    return data.Target(env.database_url, schema_paths(env)[0])


def _fix_outcome(r: Any, env: Any) -> Outcome:
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
    error = data.one_line(r.error, _target(env)) if r.error is not None else None
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
    def call() -> Outcome:
        return _fix_outcome(data.rehearse_fix(_target(env), actor=actor, environment=env.name), env)
    return _acting(env, actor, "fix (rehearsal)", call)


def apply_fix(env: Any, actor: str, *, allow_destructive: bool) -> Outcome:
    def call() -> Outcome:
        return _fix_outcome(data.apply_fix(_target(env), actor=actor, environment=env.name,
                                           allow_destructive=allow_destructive), env)
    return _acting(env, actor, "fix --apply", call)


def migration_status(env: Any) -> Outcome:
    return _run(["migrate", "status", "--database-url", env.database_url, "--migrations", _migrations(env),
                 "--format", "json"], env, "viewer", json_out=True, audited=False)


def migrate_deploy(env: Any, actor: str) -> Outcome:
    return _run(["migrate", "deploy", "--database-url", env.database_url, "--migrations", _migrations(env)],
                env, actor, json_out=False)


def migrate_resolve(env: Any, actor: str, name: str, *, applied: bool) -> Outcome:
    flag = "--applied" if applied else "--rolled-back"
    return _run(["migrate", "resolve", "--database-url", env.database_url, "--migrations", _migrations(env),
                 flag, name], env, actor, json_out=False)


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
    """Rehearse (rolled back) or apply a runbook under the write guard, then the drift check."""
    from checks.runbooks import find_runbooks_dir

    schema = schema_paths(env)[0]
    directory = find_runbooks_dir(data.setting("DRIFTWATCH_RUNBOOKS"), schema)
    argv = ["runbook", "run", name, "--database-url", env.database_url, "--schema", schema,
            "--runbooks", str(directory)]
    if apply:
        argv.append("--apply")
    return _run(argv, env, actor, json_out=False)
