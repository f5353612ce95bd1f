"""The next step for an environment, as the Overview's button shows it.

The advice itself is the engine's (checks.operations' next step, shared with the CLI and the
report) when this Driftwatch has it; until then a small reading of the current drift and
migration states stands in, naming the same commands.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st


@dataclass(frozen=True)
class Step:
    text: str
    command: str | None
    action: str | None  # the Actions page's choice: "fix" | "deploy" | "resolve" | None
    button: str = "Open the action"


# The engine's action names → the Actions page's choices.
_ACTIONS = {"deploy": "deploy", "resolve_applied": "resolve", "resolve_rolled_back": "resolve", "fix": "fix",
            "fix_apply": "fix"}
_BUTTONS = {"deploy": "Apply the pending migration", "resolve": "Resolve it", "fix": "Review the fix"}


def suggest(env: Any, shown: list[Any]) -> Step | None:
    """The next step for the environment as it is now (the engine's advice when available)."""
    latest = {(s.result.kind, s.result.name): s.result for s in shown if not s.stale}
    drift = latest.get(("drift", "drift"))
    if drift is None or drift.state == "error":
        return None
    try:
        from checks.operations import next_steps  # noqa: F401
    except ImportError:
        return _interim(env, latest)
    from dashboard import operations

    schema, migrations = operations.schema_paths(env)
    try:
        advice = _advice(env.database_url, schema, migrations, drift.checked_at.isoformat())
    except Exception:  # noqa: BLE001 - the states above say what is wrong; no advice is better than a traceback
        return None
    first = advice.first
    if first is None:
        return None
    action = _ACTIONS.get(first.action or "")
    text = advice.headline + (f" — {advice.warning}" if advice.warning else "") + f" First: {first.say}."
    return Step(text, first.command, action, _BUTTONS.get(action or "", "Open the action"))


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _advice(url: str, schema: str, migrations: str | None, stamp: str) -> Any:
    # `stamp` (the monitor's newest drift result) is only part of the key: advice follows each round.
    from checks.check import check_database
    from checks.migrations import summarize
    from checks.operations import next_steps

    report = check_database(url, schema, cache=True).report
    history = summarize(url, migrations) if migrations else None
    return next_steps(report, history, schema=schema)


def _interim(env: Any, latest: dict[Any, Any]) -> Step | None:
    drift = latest.get(("drift", "drift"))
    migrations = latest.get(("migrations", "migrations"))
    if drift is None or drift.state == "error":
        return None
    pending = list((migrations.detail or {}).get("pending") or []) if migrations else []
    failed = list((migrations.detail or {}).get("failed") or []) if migrations else []
    folder = env.migrations or "prisma/migrations"
    if failed:
        if drift.state == "ok":
            return Step(f"migration {failed[0]} is recorded as failed, but the database is in sync: "
                        "mark it applied.", f"driftwatch migrate resolve --applied {failed[0]}", "resolve",
                        "Resolve it")
        return Step(f"migration {failed[0]} failed and drift remains: mark it rolled back, then deploy.",
                    f"driftwatch migrate resolve --rolled-back {failed[0]}", "resolve", "Resolve it")
    if pending and drift.state != "ok":
        return Step(f"apply the pending migration{'s' if len(pending) > 1 else ''} {', '.join(pending)}: "
                    "it creates what the schema expects.", f"driftwatch migrate deploy --migrations {folder}",
                    "deploy", "Apply the pending migration")
    if drift.state != "ok":
        return Step("remove the drift with the fix Prisma's own SQL describes.",
                    "driftwatch fix --apply", "fix", "Review the fix")
    if pending:
        return Step(f"the database matches the schema but {', '.join(pending)} is not recorded: mark it applied.",
                    f"driftwatch migrate resolve --applied {pending[0]}", "resolve", "Resolve it")
    return None
