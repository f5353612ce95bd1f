"""What every page shares: the one monitor, state badges with their age, refresh timing."""
from __future__ import annotations

import streamlit as st

from dashboard import data
from dashboard.monitor import DEFAULT_INTERVAL_S, Monitor, Shown, probe

# Colours by meaning: an `error` (could not observe) is never green, and a stale result is grey.
_BADGE = {"ok": "green", "warning": "orange", "failing": "red", "error": "violet", "unknown": "gray"}
_ICON = {"ok": ":material/check_circle:", "warning": ":material/warning:", "failing": ":material/error:",
         "error": ":material/help:", "unknown": ":material/schedule:"}


def refresh_s() -> float:
    """How often pages redraw what changes and the monitor re-checks (DRIFTWATCH_REFRESH_S)."""
    try:
        return max(1.0, float(data.setting("DRIFTWATCH_REFRESH_S") or DEFAULT_INTERVAL_S))
    except ValueError:
        return DEFAULT_INTERVAL_S


@st.cache_resource(show_spinner=False)
def monitor() -> Monitor:
    from dashboard.environments import store_url

    return Monitor(probe, interval_s=refresh_s(), store_url=store_url())


def badge(state: str, *, stale: bool = False) -> str:
    if stale:
        return f":gray-badge[{state}, stale]"
    return f":{_BADGE.get(state, 'gray')}-badge[{_ICON.get(state, '')} {state}]"


def cell(shown: Shown | None) -> str:
    """One check as a line: state, age, and why when it is not ok. Never an old green as current."""
    if shown is None:
        return ":gray-badge[not configured]"
    r = shown.result
    if shown.stale:
        text = f"{badge(r.state, stale=True)} last result {shown.age} — no fresh result since"
    else:
        text = f"{badge(r.state)} {shown.age}"
    if r.reason:
        text += f" — {r.reason}"
    return text


def state_text(shown: Shown) -> str:
    """Plain text (tables): `failing · 4 s ago · reason`."""
    r = shown.result
    parts = [f"{r.state} (stale)" if shown.stale else r.state, shown.age]
    if r.reason:
        parts.append(r.reason)
    return " · ".join(parts)
