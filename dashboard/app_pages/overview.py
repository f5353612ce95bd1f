"""Overview: every environment at a glance — deployment, health, smoke, drift, migrations —
each a state with its age and reason, a banner for anything failing, and the next step."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from dashboard import environments, nextstep, ui
from dashboard.monitor import KIND_ORDER, Shown, state_of

st.title("Overview")
monitor = ui.monitor()
envs = environments.all_environments()
monitor.watch(envs)
picked = environments.current()
if monitor.rounds(picked.name) == 0:
    with st.spinner(f"Checking {picked.name} for the first time…"):
        monitor.wait_first_round(picked.name, timeout_s=20)

_STYLE = {"ok": "color: #046c4e", "warning": "background-color: #fff4d6; color: #7a4b00",
          "failing": "background-color: #fde8e8; color: #9b1c1c", "error": "background-color: #f3e8ff; color: #5b21b6",
          "unknown": "color: #6b7280"}


def by_kind(shown: list[Shown]) -> dict[str, list[Shown]]:
    out: dict[str, list[Shown]] = {k: [] for k in KIND_ORDER}
    for s in shown:
        out[s.result.kind].append(s)
    return out


def summary_cell(items: list[Shown]) -> str:
    if not items:
        return "—"
    if len(items) == 1:
        return ui.state_text(items[0])
    bad = [s for s in items if s.stale or s.state != "ok"]
    if not bad:
        return f"ok · {len(items)} checks · {min(items, key=lambda s: s.age_s).age}"
    return "; ".join(f"{s.result.name}: {ui.state_text(s)}" for s in bad)


def in_state_since(env_name: str, kind: str, name: str, state: str) -> tuple[datetime | None, bool]:
    """Since when one check has been in `state`: the history store's `since` (it survives a
    restart of the dashboard and counts the pollers' results too; while the store is down, the
    in-process poller carries it on in memory). Only when neither knows, the run of results
    this dashboard saw itself — flagged, as it may be later than the truth.
    Returns (since, known)."""
    stored = monitor.since(env_name, kind, name)
    if stored is not None:
        return stored, True
    since = None
    for r in reversed(monitor.history(env_name, kind, name)):
        if r.state != state:
            break
        since = r.checked_at
    return since, False


def demo_banner(shown: list[Shown]) -> str:
    """What the demo database really holds now, not what it was seeded with."""
    drift = next((s for s in shown if s.result.kind == "drift" and not s.stale), None)
    if drift is None or drift.state == "error":
        return "Demo: the sample app's database (its state is being checked)."
    if drift.state == "ok":
        return ("Demo: the incident is fixed — the database matches the deployed schema. "
                "`driftwatch demo --reset` brings the incident back.")
    return "Demo: the sample app in the incident state — the migration that creates avatar_projects never ran."


@st.fragment(run_every=ui.refresh_s())
def board() -> None:
    now = datetime.now(timezone.utc)
    rows, alarms = [], []
    for env in envs:
        shown = monitor.latest(env.name, now)
        kinds = by_kind(shown)
        state = state_of(shown) if shown else "unknown"
        row = {"environment": env.name, "state": state}
        for kind in KIND_ORDER:
            row[kind] = summary_cell(kinds[kind])
        rows.append(row)
        for s in shown:
            if s.state in ("failing", "error") and not s.stale:
                alarms.append((env.name, s))
    incidents = monitor.open_incidents()
    for env in envs:
        incident = incidents.get(env.name)
        if incident is not None:
            lasting = int((now - incident.opened_at).total_seconds())
            st.error(f"**Incident #{incident.id}** open on **{env.name}** for {lasting // 60} min {lasting % 60} s "
                     f"(since {incident.opened_at:%H:%M:%S UTC}): {incident.title}", icon=":material/e911_emergency:")
    if monitor.store_error:
        st.warning(monitor.store_error, icon=":material/database:")
    if alarms:
        lines = []
        for env_name, s in alarms:
            since, known = in_state_since(env_name, s.result.kind, s.result.name, s.state)
            lasting = ""
            if since is not None:
                lasting = f" since {since.strftime('%H:%M:%S UTC')}" if since.date() == now.date() \
                    else f" since {since.strftime('%Y-%m-%d %H:%M UTC')}"
                if not known:
                    lasting += " (at least: as seen by this dashboard)"
            name = s.result.kind if s.result.name == s.result.kind else f"{s.result.kind} {s.result.name}"
            reason = s.result.reason or ""
            if s.state == "error" and not reason.startswith("could not run"):
                reason = "could not run: " + reason
            lines.append(f"**{env_name}** · {name} {s.state}{lasting}: {reason}")
        st.error("  \n".join(lines), icon=":material/crisis_alert:")
    elif rows and all(r["state"] == "ok" for r in rows):
        st.success("Every environment is ok.", icon=":material/check_circle:")
    table = pd.DataFrame(rows)
    st.dataframe(table.style.map(lambda v: _STYLE.get(v, ""), subset=["state"]), hide_index=True, width="stretch")

    st.subheader(f"{picked.name}")
    if picked.demo:
        st.info(demo_banner(monitor.latest(picked.name, now)), icon=":material/science:")
    if picked.error:
        st.error(f"This environment cannot be checked: {picked.error}")
    shown = monitor.latest(picked.name, now)
    if not shown:
        st.caption("Not checked yet: the first round is still running.")
    for s in shown:
        label = s.result.kind if s.result.name == s.result.kind else f"{s.result.kind} · {s.result.name}"
        st.markdown(f"**{label}** {ui.cell(s)}")
    st.caption(f"Refreshed every {ui.refresh_s():.0f} s; checked at "
               f"{now.strftime('%H:%M:%S UTC')}. States older than {3 * monitor.interval_s:.0f} s are marked stale.")
    step = nextstep.suggest(picked, shown)
    if step is not None:
        st.markdown(f"**Next step:** {step.text}")
        if step.command:
            st.code(step.command, language="bash")
        if step.action and st.button(step.button, type="primary", icon=":material/arrow_forward:", key="next_step"):
            st.session_state["action_choice"] = step.action
            st.switch_page("app_pages/actions.py")


board()
