"""The dashboard's one door to the engine: which database, the demo server, and caching.

Pages call `target()`, `check()` and `forget()` and never touch the engine or the
configuration themselves. Settings are read from st.secrets first, then the environment,
so the same names work in .streamlit/secrets.toml, in Docker and in a shell:

    DATABASE_URL          the database to check
    DRIFTWATCH_SCHEMA     .prisma file or folder for DATABASE_URL (default prisma/schema.prisma)
    DRIFTWATCH_DEMO       "incident" or "healthy": use the embedded demo even if DATABASE_URL is set
    DRIFTWATCH_STATE_DIR  where the demo keeps its PostgreSQL (default .driftwatch/ in the repo)

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
from checks.findings import SEVERITY_RANK, DriftReport, Finding

if TYPE_CHECKING:
    from checks.demo import DemoEnvironment

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
    history: dict | None = None  # checks.migrations.history_summary, when a migrations folder exists


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
    """DRIFTWATCH_MIGRATIONS, else the schema's sibling migrations/ folder when it exists."""
    configured = setting("DRIFTWATCH_MIGRATIONS")
    if configured:
        return configured
    folder = Path(t.schema_path).parent / "migrations"
    return str(folder) if folder.is_dir() else None


@st.cache_data(ttl=CHECK_TTL_SECONDS, max_entries=32, show_spinner="Checking the database…")
def _check(url: str, schema_path: str, schema_stamp: float, migrations: str | None) -> Checked:
    # schema_stamp is only part of the cache key: an edited schema is checked afresh.
    from checks.check import check_database
    from checks.migrations import history_summary

    started = time.monotonic()
    result = check_database(url, schema_path)
    history = history_summary(url, migrations) if migrations else None
    return Checked(result.report, time.time(), time.monotonic() - started, history)


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
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in report.findings:
        groups.setdefault((f.schema, f.table or ""), []).append(f)
    order = sorted(groups, key=lambda k: (min(SEVERITY_RANK[f.severity] for f in groups[k]), k))
    return [f for k in order for f in sorted(groups[k], key=lambda f: f.sort_key)]


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
