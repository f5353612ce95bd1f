"""Deployments: what Coolify deployed, when and which commit, as a timeline, next to the checks
that changed state after it; whether a post-deployment migration command is configured."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboard import environments, ui

st.title("Deployments")
env = environments.current()
monitor = ui.monitor()
monitor.watch(environments.all_environments())


@st.fragment(run_every=ui.refresh_s())
def deployments() -> None:
    history = monitor.history(env.name, "deployment", "deployment")
    if not history:
        st.info(f"Environment {env.name} has no deployment check (`[environments.NAME.coolify]` in driftwatch.toml), "
                "or it has not reported yet.")
        return

    latest = monitor.latest(env.name)
    current = next(s for s in latest if s.result.kind == "deployment")
    d = current.result.detail
    st.markdown(f"**Newest deployment** {ui.cell(current)}")
    st.markdown(f"status `{d.get('status')}` · commit `{(d.get('commit') or '?')[:12]}` · "
                f"started {d.get('started_at') or '?'} · finished {d.get('finished_at') or '?'}")
    command = d.get("post_deployment_command")
    if d.get("migrates_on_deploy"):
        st.success(f"A post-deployment command runs migrations: `{command}`")
    else:
        st.warning("No post-deployment command runs `prisma migrate deploy`: a deploy can ship a schema "
                   "whose migration never ran." + (f" (configured: `{command}`)" if command else ""))

    seen: dict[str, dict] = {}
    for r in history:
        for dep in [r.detail, *(r.detail.get("deployments") or [])]:
            uuid = dep.get("deployment_uuid")
            if uuid and dep.get("started_at"):
                seen[uuid] = dep
    TIMELINE = 50  # the newest deployments drawn; older ones are in Coolify
    if seen:
        newest = sorted(seen.items(), key=lambda kv: kv[1]["started_at"])[-TIMELINE:]
        frame = pd.DataFrame([{"deployment": u[:10], "commit": (x.get("commit") or "")[:8], "status": x.get("status"),
                               "start": x["started_at"], "end": x.get("finished_at") or x["started_at"]}
                              for u, x in newest])
        frame["start"] = pd.to_datetime(frame["start"], utc=True, format="ISO8601")
        frame["end"] = pd.to_datetime(frame["end"], utc=True, format="ISO8601")
        frame.loc[frame["end"] <= frame["start"], "end"] = frame["start"] + pd.Timedelta(seconds=30)
        fig = px.timeline(frame, x_start="start", x_end="end", y="commit", color="status", hover_data=["deployment"],
                          height=240)
        fig.update_layout(margin=dict(l=0, r=0, t=10, b=0))
        st.plotly_chart(fig, config={"displayModeBar": False})

    # What changed after each deployment: the store's flips (with the reason that caused each),
    # each placed under the newest deployment that started before it.
    starts = sorted(((x["started_at"], (x.get("commit") or "")[:7]) for x in seen.values()), reverse=True)
    changes = []
    for f in monitor.flips(env.name):
        if f.kind == "deployment" or f.from_state is None:
            continue
        at = f.at.isoformat()
        after = next((commit for started, commit in starts if started <= at), None)
        changes.append({"at": f"{f.at:%Y-%m-%d %H:%M:%S}", "after deployment of": after or "(before any seen)",
                        "check": f"{f.kind} {f.name}" if f.name != f.kind else f.kind,
                        "from": f.from_state, "to": f.to_state, "reason": f.reason or ""})
    if changes:
        st.subheader("Checks that changed state after each deployment")
        st.dataframe(pd.DataFrame(changes[::-1]), hide_index=True, width="stretch")


deployments()
