"""Health & smoke: per check, its state and age, uptime and latency over time (plotly), the last
failures with status and body excerpt, and the steps of the last smoke run. The history comes
from the store the poller writes (roll-ups, raw results, flips), never from this process's
memory, so a restart of the dashboard loses nothing."""
from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone

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
RAW_HOURS = 2  # raw results drawn at most; older hours come from the roll-ups


def _percent(share: float | None) -> float | None:
    return None if share is None else round(100 * share, 2)


def _excerpt(detail: dict) -> str:
    """The body excerpt of a failed result: its own, else its first failed smoke step's."""
    if detail.get("excerpt"):
        return detail["excerpt"]
    step = next((x for x in detail.get("steps") or [] if x.get("state") not in (None, "ok")), None)
    return (step or {}).get("excerpt") or ""


@st.fragment(run_every=ui.refresh_s())
def checks() -> None:
    shown = [s for s in monitor.latest(env.name) if s.result.kind in ("health", "smoke")]
    if not shown:
        st.info(f"Environment {env.name} has no health or smoke checks configured "
                "(`[[environments.NAME.health]]` and `[[environments.NAME.smoke]]` in driftwatch.toml), "
                "or they have not reported yet.")
        return
    rows, fig = [], go.Figure()
    now = datetime.now(timezone.utc)
    month = monitor.uptime(env.name, days=30)
    day = monitor.uptime(env.name, days=1)
    last_bad = {}  # newest change into a non-ok state per check, from the store's flips
    for f in monitor.flips(env.name, days=30):
        if f.to_state != "ok" and f.from_state != f.to_state:
            last_bad[(f.kind, f.name)] = f
    for s in shown:
        r = s.result
        # The chart: hourly averages from the store's roll-ups, then the raw results of the
        # hours not rolled up yet (at most RAW_HOURS of them), so a restart loses nothing.
        hours = monitor.series(env.name, r.kind, r.name, hours=24)
        rolled = [p for p in hours if p.source == "rollup" and p.latency_avg is not None]
        raw_from = max(now - timedelta(hours=RAW_HOURS),
                       (rolled[-1].hour + timedelta(hours=1)) if rolled else now - timedelta(hours=24))
        recent = [o for o in monitor.observations(env.name, r.kind, r.name, since=raw_from) if o.latency_ms is not None]
        latencies = [o.latency_ms for o in recent]
        bad = last_bad.get((r.kind, r.name))
        rows.append({"check": f"{r.kind} · {r.name}", "state": f"{r.state} (stale)" if s.stale else r.state,
                     "checked": s.age, "uptime 24 h %": _percent(day.get((r.kind, r.name))),
                     "uptime 30 d %": _percent(month.get((r.kind, r.name))),
                     "p50 ms": round(statistics.median(latencies), 1) if latencies else None,
                     "last failure": f"{bad.at:%Y-%m-%d %H:%M} {bad.reason or bad.to_state}" if bad else "",
                     "reason": r.reason or ""})
        x = [p.hour + timedelta(minutes=30) for p in rolled] + [o.observed_at for o in recent]
        y = [p.latency_avg for p in rolled] + latencies
        if y:
            fig.add_trace(go.Scattergl(x=x, y=y, mode="lines+markers" if len(y) < 3 else "lines",
                                       name=f"{r.kind} · {r.name}"))
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
    failures = monitor.failures(env.name, s.result.kind, s.result.name, hours=24, limit=5)
    if failures:
        st.caption("Last failures")
        st.dataframe(pd.DataFrame([{"at": f"{h.observed_at:%Y-%m-%d %H:%M:%S}", "state": h.state,
                                    "status": (h.detail or {}).get("status_code"), "reason": h.reason,
                                    "excerpt": _excerpt(h.detail or {})} for h in failures]),
                     hide_index=True, width="stretch")
    steps = s.result.detail.get("steps") or []
    if steps:
        st.caption("Steps of the last run")
        st.dataframe(pd.DataFrame([{k: step.get(k) for k in ("method", "url", "status_code", "latency_ms", "state",
                                                              "reason", "excerpt")} for step in steps]),
                     hide_index=True, width="stretch")


checks()
