"""The next step for an environment, as the Overview's button shows it.

The advice itself is the engine's (checks.operations' next step, shared with the CLI and the
report), so the button names the same command everywhere.
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
