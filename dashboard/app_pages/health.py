"""Health & smoke: per check, its state, latency over time and uptime, the last failures with
status and body excerpt, and the steps of the last smoke run."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboard import environments, ui

st.title("Health & smoke")
env = environments.current()
monitor = ui.monitor()
monitor.watch(environments.all_environments())


@st.fragment(run_every=ui.refresh_s())
def checks() -> None:
    shown = [s for s in monitor.latest(env.name) if s.result.kind in ("health", "smoke")]
    if not shown:
        st.info(f"Environment {env.name} has no health or smoke checks configured "
                "(`[[environments.NAME.health]]` and `[[environments.NAME.smoke]]` in driftwatch.toml).")
        return
    for s in shown:
        r = s.result
        history = monitor.history(env.name, r.kind, r.name)
        up = sum(1 for h in history if h.state == "ok")
        st.subheader(f"{r.kind} · {r.name}")
        st.markdown(f"{ui.cell(s)} · uptime {100 * up / len(history):.1f} % over {len(history)} checks")
        frame = pd.DataFrame([{"checked at": h.checked_at, "latency (ms)": h.latency_ms, "state": h.state}
                              for h in history if h.latency_ms is not None])
        if not frame.empty:
            fig = px.scatter(frame, x="checked at", y="latency (ms)", color="state", height=220,
                             color_discrete_map={"ok": "#046c4e", "failing": "#c81e1e", "warning": "#d97706",
                                                 "error": "#7c3aed", "unknown": "#6b7280"})
            fig.update_layout(margin=dict(l=0, r=0, t=10, b=0))
            st.plotly_chart(fig, config={"displayModeBar": False})
        failures = [h for h in history if h.state != "ok"][-5:]
        if failures:
            st.dataframe(pd.DataFrame([{"at": h.checked_at.strftime("%H:%M:%S"), "state": h.state,
                                        "status": h.detail.get("status_code"), "reason": h.reason}
                                       for h in reversed(failures)]), hide_index=True, width="stretch")
        steps = r.detail.get("steps") or []
        if steps:
            st.caption("Steps of the last run")
            st.dataframe(pd.DataFrame([{k: step.get(k) for k in ("method", "url", "status_code", "latency_ms",
                                                                  "state", "reason", "excerpt")} for step in steps]),
                         hide_index=True, width="stretch")


checks()
