"""The dashboard's one door to the engine: which database, the demo server, and caching.

Pages call `target()`, `check()` and `forget()` and never touch the engine or the
configuration themselves; what a page shows as the next step is `Checked.advice`, from
`checks.operations.next_step` — the very function `driftwatch check` prints. Actions
(fix, runbook, deploy, resolve) go through `checks.operations`, never `checks.commands`.
Settings are read from st.secrets first, then the environment, so the same names work in
.streamlit/secrets.toml, in Docker and in a shell:

    DATABASE_URL           the database to check
    DRIFTWATCH_SCHEMA      .prisma file or folder for DATABASE_URL (default prisma/schema.prisma)
    DRIFTWATCH_MIGRATIONS  the migrations folder to compare ("none": no history); default: the
                           schema's sibling migrations/ when it exists (`default_migrations_dir`)
    DRIFTWATCH_DEMO        "incident" or "healthy": use the embedded demo even if DATABASE_URL is set
    DRIFTWATCH_STATE_DIR   where the demo keeps its PostgreSQL (default .driftwatch/ in the repo)

With no DATABASE_URL the embedded demo starts, so a fresh clone shows a real drift
instead of an empty form.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from checks.db import redact, scrub
from checks.errors import UsageError
from checks.findings import DriftReport, Finding
from checks.drift_text import in_order as _in_order

if TYPE_CHECKING:
    from checks.demo import DemoEnvironment
    from checks.migrations import MigrationSummary
    from checks.operations import Caller, DeployOutcome, FixResult, NextSteps, ResolveOutcome, RunbookResult

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA = "prisma/schema.prisma"
CHECK_TTL_SECONDS = 60  # long enough to browse findings, short enough that a fix shows up soon


@dataclass(frozen=True)
class Target:
    url: str
    schema_path: str
    demo: str | None = None  # what the demo database holds, when the target is the demo

    @property
    def shown(self) -> str:
        """The URL as a human may see it: no password."""
        return redact(self.url)

    @property
    def schema_shown(self) -> str:
        path = Path(self.schema_path).resolve()
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else self.schema_path


@dataclass(frozen=True)
class Checked:
    report: DriftReport
    checked_at: float  # epoch seconds
    seconds: float
    history: MigrationSummary | None = None  # when there is a migrations folder
    advice: NextSteps | None = None  # what to do next, from the drift and the history together


def setting(name: str) -> str | None:
    """One setting: st.secrets, else the environment; blank counts as unset."""
    try:
        value = st.secrets.get(name)
    except FileNotFoundError as exc:  # StreamlitSecretNotFoundError: no file, or a broken one
        if getattr(exc, "error_id", None) != "no-secrets-found":
            raise UsageError(f"cannot read the Streamlit secrets: {str(exc).splitlines()[0]}") from None
        value = None
    if value is None:
        value = os.environ.get(name)
    text = str(value).strip() if value is not None else ""
    return text or None


def target() -> Target:
    """The database and schema to check: the configured ones, else the embedded demo."""
    scenario = setting("DRIFTWATCH_DEMO")
    url = setting("DATABASE_URL")
    if url and not scenario:
        return Target(url, setting("DRIFTWATCH_SCHEMA") or DEFAULT_SCHEMA)
    state_dir = setting("DRIFTWATCH_STATE_DIR") or str(ROOT / ".driftwatch")
    env = _demo(scenario or "incident", state_dir)
    return Target(env.url, str(env.schema_path), demo=env.description)


@st.cache_resource(show_spinner="Starting the demo database…")
def _demo(scenario: str, state_dir: str) -> DemoEnvironment:
    from checks.demo import start_demo

    return start_demo(Path(state_dir), scenario)


def check(t: Target) -> Checked:
    """The drift check for a target, cached for CHECK_TTL_SECONDS (errors are not cached)."""
    return _check(t.url, t.schema_path, _schema_stamp(t.schema_path), migrations_dir(t))


def forget(t: Target) -> None:
    """Drop the cached result for a target so the next `check` asks the database again."""
    _check.clear(t.url, t.schema_path, _schema_stamp(t.schema_path), migrations_dir(t))


def migrations_dir(t: Target) -> str | None:
    """DRIFTWATCH_MIGRATIONS ("none": none), else the schema's sibling migrations/ folder when it exists."""
    from checks.migrations import default_migrations_dir

    folder = default_migrations_dir(t.schema_path, setting("DRIFTWATCH_MIGRATIONS"))
    return str(folder) if folder is not None else None


@st.cache_data(ttl=CHECK_TTL_SECONDS, max_entries=32, show_spinner="Checking the database…")
def _check(url: str, schema_path: str, schema_stamp: float, migrations: str | None) -> Checked:
    # schema_stamp is only part of the cache key: an edited schema is checked afresh.
    from checks.check import check_database
    from checks.migrations import summarize
    from checks.operations import next_steps

    started = time.monotonic()
    result = check_database(url, schema_path)
    history = summarize(url, migrations) if migrations else None
    advice = next_steps(result.report, history, schema=schema_path)
    return Checked(result.report, time.time(), time.monotonic() - started, history, advice)


def _schema_stamp(schema_path: str) -> float:
    path = Path(schema_path)
    try:
        if path.is_dir():
            return max((p.stat().st_mtime for p in path.rglob("*.prisma")), default=0.0)
        return path.stat().st_mtime
    except OSError:
        return 0.0  # the engine reports a missing schema properly


def one_line(exc: BaseException, t: Target | None = None) -> str:
    """An engine error as the one line a page shows, scrubbed of any password."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return scrub(text, t.url if t else None)


def in_order(report: DriftReport) -> list[Finding]:
    """Findings grouped by table, the table with the worst finding first (as the CLI prints them)."""
    return _in_order(report.findings)


def table_name(f: Finding) -> str:
    if not f.table:
        return ""
    return f.table if f.schema == "public" else f"{f.schema}.{f.table}"


def rows(findings: list[Finding]) -> list[dict[str, str]]:
    """One row per finding for the findings table."""
    return [
        {
            "severity": f.severity,
            "kind": f.kind,
            "table": table_name(f),
            "column / name": f.column or f.name or "",
            "model.field": ".".join(p for p in (f.model, f.field) if p),
            "message": f.message,
        }
        for f in findings
    ]


# ---------------------------------------------------------------------------------------------
# Actions: the engine's operations (checks.operations), attributed to the signed-in user. Each
# returns the operation's result value (errors included, never raised for expected failures)
# and drops the target's cached check after anything that may have written, so the page
# shows the database as it is now.


def _caller(actor: str | None, environment: str | None) -> Caller:
    from checks.operations import Caller

    return Caller(actor=actor, environment=environment, history_url=setting("DRIFTWATCH_HISTORY_URL"))


def plan_fix(t: Target) -> FixResult:
    """The fix plan (read only, not audited): statements, safety, reasons."""
    from checks.operations import plan_fix as plan

    return plan(t.url, t.schema_path)


def rehearse_fix(t: Target, *, actor: str | None, environment: str | None, allow_destructive: bool = False) -> FixResult:
    from checks.operations import rehearse_fix as rehearse

    return rehearse(t.url, t.schema_path, allow_destructive=allow_destructive, caller=_caller(actor, environment))


def apply_fix(t: Target, *, actor: str | None, environment: str | None, allow_destructive: bool = False) -> FixResult:
    from checks.operations import apply_fix as apply

    try:
        return apply(t.url, t.schema_path, allow_destructive=allow_destructive, caller=_caller(actor, environment))
    finally:
        forget(t)


def run_runbook(t: Target, name: str, *, apply: bool, actor: str | None, environment: str | None) -> RunbookResult:
    from checks.operations import run_runbook as run
    from checks.runbooks import find_runbooks_dir, load_runbook

    book = load_runbook(find_runbooks_dir(None, t.schema_path), name)
    try:
        return run(t.url, t.schema_path, book, apply=apply, caller=_caller(actor, environment))
    finally:
        if apply:
            forget(t)


def deploy(t: Target, *, actor: str | None, environment: str | None) -> DeployOutcome:
    from checks.operations import deploy_migrations

    folder = migrations_dir(t)
    if folder is None:
        raise UsageError(f"no migrations folder for {t.schema_shown}: set DRIFTWATCH_MIGRATIONS")
    try:
        return deploy_migrations(t.url, folder, schema=t.schema_path, caller=_caller(actor, environment))
    finally:
        forget(t)


def resolve(t: Target, name: str, *, applied: bool, actor: str | None, environment: str | None) -> ResolveOutcome:
    from checks.operations import resolve_migration

    folder = migrations_dir(t)
    if folder is None:
        raise UsageError(f"no migrations folder for {t.schema_shown}: set DRIFTWATCH_MIGRATIONS")
    try:
        return resolve_migration(t.url, folder, name, applied=applied, schema=t.schema_path,
                                 caller=_caller(actor, environment))
    finally:
        forget(t)
