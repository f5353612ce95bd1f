"""Incident report: preview the postmortem's first draft and download it as md, html or json.

The page only renders. `checks.reports.downloads` builds the report by the same steps as
`driftwatch report` (config → store, secrets, database; collect; compose; one redactor for
all three formats), so a download is byte for byte what the CLI writes for the same window.
Settings (st.secrets first, then the environment): DRIFTWATCH_CONFIG, DRIFTWATCH_HISTORY_URL.
The environment is the one picked elsewhere in the dashboard (st.session_state["environment"])
when it has history, else chosen here.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

import streamlit as st

import checks.reports as reports
from checks.errors import DriftwatchError

BUILD_TTL_SECONDS = 30  # a report of an open window follows the poller closely enough
STATUS_ICON = {"resolved": ":material/check_circle:", "ongoing": ":material/error:", "no incident": ":material/info:"}


def _secrets() -> dict[str, Any]:
    try:
        return {k: v for k, v in st.secrets.items() if isinstance(v, str)}
    except Exception:  # noqa: BLE001 - no secrets.toml is the normal case outside deployments
        return {}


def _setting(name: str) -> str | None:
    value = _secrets().get(name) or os.environ.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


@st.cache_data(ttl=BUILD_TTL_SECONDS, max_entries=8, show_spinner="Writing the report…")
def _build(environment: str, since: str | None, until: str | None, incident: int | None,
           history_url: str | None, config: str | None, minute: str) -> reports.Downloads:
    # `minute` is only part of the cache key: a relative window ("2h") moves with the clock.
    return reports.downloads(environment, since=since, until=until, incident=incident,
                             history_url=history_url, config=config, secrets=_secrets() or None)


st.title("Incident report")
st.caption("The postmortem's first draft, from what Driftwatch saw and did: deployments, check states, "
           "drift findings, migrations and every action with its SQL. Secrets are removed from every format.")

history_url, config = _setting("DRIFTWATCH_HISTORY_URL"), _setting("DRIFTWATCH_CONFIG")
try:
    environments = reports.known_environments(history_url, config)
except DriftwatchError as exc:
    st.error(f"Cannot read the history: {exc}", icon=":material/error:")
    st.stop()
if not environments:
    st.info("No monitoring history yet. Run `driftwatch poll` (or start the dashboard with its poller) "
            "and come back when checks have been recorded.", icon=":material/info:")
    st.stop()

picked = st.session_state.get("environment")
if picked in environments:
    environment = picked
    st.caption(f"Environment: **{environment}**")
else:
    environment = st.selectbox("Environment", environments)

mode = st.radio("Report on", ["an incident", "a time window"], horizontal=True)
incident: int | None = None
since: str | None = None
until: str | None = None
if mode == "an incident":
    try:
        found = reports.incidents_of(environment, history_url, config)
    except DriftwatchError as exc:
        st.error(f"Cannot list incidents: {exc}", icon=":material/error:")
        st.stop()
    if not found:
        st.info(f"No incident recorded for {environment}. Choose a time window instead.", icon=":material/info:")
        st.stop()
    labels = {i.id: (f"#{i.id} · {i.opened_at:%Y-%m-%d %H:%M} → "
                     f"{i.closed_at.strftime('%H:%M') if i.closed_at else 'still open'} · {i.title}") for i in found}
    incident = st.selectbox("Incident", list(labels), format_func=labels.__getitem__)
else:
    left, right = st.columns(2)
    since = left.text_input("Since", "24h", help="ISO 8601 (2025-10-12T08:30:00Z) or an age: 2h, 30m, 7d").strip()
    until = right.text_input("Until", "", help="empty: up to now (the window stays open)").strip() or None
    if not since:
        st.stop()

minute = datetime.now(timezone.utc).strftime("%Y%m%d%H%M")
try:
    built = _build(environment, since, until, incident, history_url, config, minute)
except DriftwatchError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

report = built.report
st.subheader(report.title)
st.markdown(f"{STATUS_ICON.get(report.status, '')} **{report.status}** — {report.summary}")

columns = st.columns(3)
labels = {"md": "Markdown", "html": "HTML (charts, works offline)", "json": "JSON"}
for column, fmt in zip(columns, reports.FORMATS):
    column.download_button(f"Download {labels[fmt]}", built.files[fmt].encode("utf-8"), file_name=built.names[fmt],
                           mime=reports.MEDIA_TYPES[fmt], icon=":material/download:", key=f"report-{fmt}",
                           width="stretch")

with st.container(border=True):
    # The Markdown without its title line: the subheader above already shows it.
    st.markdown(built.files["md"].split("\n", 2)[2])
