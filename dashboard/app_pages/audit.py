"""Audit log: every action Driftwatch took or refused — who, where, the SQL, the outcome, and
the drift before and after — newest first, from the history store the CLI writes too."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, environments

st.title("Audit log")
env = environments.current()
only_env = st.toggle(f"Only environment {env.name}", value=False)
limit = st.number_input("Newest", min_value=10, max_value=1000, value=100, step=50)


@st.cache_data(ttl=5, show_spinner=False)
def actions(url: str | None, limit: int) -> list[dict]:
    from checks.history import HistoryStore

    with HistoryStore.open(url) as store:
        return [r.to_json() for r in store.list_actions(limit=limit)]


try:
    records = actions(environments.store_url(), int(limit))
except Exception as exc:  # noqa: BLE001
    st.error(data.one_line(exc), icon=":material/error:")
    st.stop()
if only_env:
    records = [r for r in records if r.get("environment") == env.name]
if not records:
    st.info("No action recorded yet.")
    st.stop()


def drift_text(d: dict | None) -> str:
    if not d:
        return ""
    s = d.get("summary", d)
    return f"{s.get('critical', 0)} critical, {s.get('warning', 0)} warning"


rows = [{"id": r["id"], "when": (r.get("started_at") or "")[:19].replace("T", " "), "who": r.get("actor"),
         "environment": r.get("environment") or "", "kind": r.get("kind"), "outcome": r.get("outcome"),
         "database": r.get("database") or "", "drift before": drift_text(r.get("drift_before")),
         "drift after": drift_text(r.get("drift_after")), "error": r.get("error") or ""} for r in records]
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
picked = st.selectbox("Show one action in full", [r["id"] for r in records],
                      format_func=lambda i: next(f"#{r['id']} {r['kind']} by {r['who']} ({r['outcome']})"
                                                 for r in rows if r["id"] == i))
record = next(r for r in records if r["id"] == picked)
st.markdown(f"**#{record['id']} {record['kind']}** by **{record.get('actor')}** on "
            f"`{record.get('database') or '?'}` ({record.get('environment') or 'no environment'}) — "
            f"{record.get('outcome')}")
if record.get("error"):
    st.error(record["error"])
st.code(record.get("statements") or "(no statements)", language="sql", wrap_lines=True)
left, right = st.columns(2)
left.markdown(f"**Drift before:** {drift_text(record.get('drift_before')) or 'not recorded'}")
right.markdown(f"**Drift after:** {drift_text(record.get('drift_after')) or 'not recorded'}")
if record.get("details"):
    with st.expander("details"):
        st.json(record["details"])
