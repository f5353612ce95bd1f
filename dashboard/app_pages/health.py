"""Health & smoke: per check, its state and age, uptime and latency over time (plotly), the last
failures with status and body excerpt, and the steps of the last smoke run."""
from __future__ import annotations

import statistics

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import environments, ui

st.title("Health & smoke")
env = environments.current()
monitor = ui.monitor()
monitor.watch(environments.all_environments())

_STYLE = {"ok": "color: #046c4e", "warning": "background-color: #fff4d6", "failing": "background-color: #fde8e8",
          "error": "background-color: #f3e8ff", "unknown": "color: #6b7280"}


@st.fragment(run_every=ui.refresh_s())
def checks() -> None:
    shown = [s for s in monitor.latest(env.name) if s.result.kind in ("health", "smoke")]
    if not shown:
        st.info(f"Environment {env.name} has no health or smoke checks configured "
                "(`[[environments.NAME.health]]` and `[[environments.NAME.smoke]]` in driftwatch.toml), "
                "or they have not reported yet.")
        return
    rows, fig = [], go.Figure()
    month = monitor.uptime(env.name, days=30)
    for s in shown:
        r = s.result
        history = monitor.history(env.name, r.kind, r.name)
        latencies = [h.latency_ms for h in history if h.latency_ms is not None]
        last_bad = next((h for h in reversed(history) if h.state != "ok"), None)
        rows.append({"check": f"{r.kind} · {r.name}", "state": f"{r.state} (stale)" if s.stale else r.state,
                     "checked": s.age, "uptime %": round(100 * sum(h.state == "ok" for h in history) / len(history), 2),
                     "uptime 30 d %": (round(100 * month[(r.kind, r.name)], 2)
                                       if month.get((r.kind, r.name)) is not None else None),
                     "p50 ms": round(statistics.median(latencies), 1) if latencies else None,
                     "last failure": f"{last_bad.checked_at:%Y-%m-%d %H:%M} {last_bad.reason}" if last_bad else "",
                     "reason": r.reason or ""})
        if latencies:
            points = [h for h in history if h.latency_ms is not None]
            fig.add_trace(go.Scattergl(x=[h.checked_at for h in points], y=[h.latency_ms for h in points],
                                       mode="lines", name=f"{r.kind} · {r.name}"))
    table = pd.DataFrame(rows)
    st.dataframe(table.style.map(lambda v: _STYLE.get(str(v).split(" ")[0], ""), subset=["state"]),
                 hide_index=True, width="stretch")
    if fig.data:
        fig.update_layout(height=320, margin=dict(l=0, r=0, t=30, b=0), title="latency (ms)",
                          legend=dict(orientation="h"))
        st.plotly_chart(fig, config={"displayModeBar": False}, key="latency")

    names = [f"{s.result.kind} · {s.result.name}" for s in shown]
    picked = st.selectbox("Details of", names, key="health_detail")
    s = shown[names.index(picked)]
    st.markdown(ui.cell(s))
    history = monitor.history(env.name, s.result.kind, s.result.name)
    failures = [h for h in history if h.state != "ok"][-5:]
    if failures:
        st.caption("Last failures")
        st.dataframe(pd.DataFrame([{"at": f"{h.checked_at:%Y-%m-%d %H:%M:%S}", "state": h.state,
                                    "status": h.detail.get("status_code"), "reason": h.reason,
                                    "excerpt": h.detail.get("excerpt") or ""} for h in reversed(failures)]),
                     hide_index=True, width="stretch")
    steps = s.result.detail.get("steps") or []
    if steps:
        st.caption("Steps of the last run")
        st.dataframe(pd.DataFrame([{k: step.get(k) for k in ("method", "url", "status_code", "latency_ms", "state",
                                                              "reason", "excerpt")} for step in steps]),
                     hide_index=True, width="stretch")


checks()
