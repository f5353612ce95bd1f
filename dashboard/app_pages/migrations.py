"""Migrations: every migration's state (applied, pending, failed with its logs, edited, missing
locally, rolled back), who holds Prisma's migration lock, and the deploy/resolve actions."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import environments, operations

st.title("Migrations")
env = environments.current()
if env.error or not env.database_url:
    st.error(env.error or f"environment {env.name}: no database_url configured")
    st.stop()
if not env.migrations:
    st.info(f"Environment {env.name} has no migrations folder configured.")
    st.stop()

st.caption(f"Environment **{env.name}** · database `{env.shown_url}` · folder `{env.migrations}`")
status = operations.migration_status(env)
if status.error and not status.result:
    st.error(status.error, icon=":material/error:")
    st.stop()
result = status.result
if not result.get("managed", True):
    st.warning("This database is not managed by Prisma Migrate (no _prisma_migrations table).")
rows = []
for m in result.get("migrations", []):
    logs = (m.get("logs") or "").strip()
    rows.append({"migration": m.get("name"), "state": m.get("state"),
                 "finished": m.get("finished_at") or "", "started": m.get("started_at") or "",
                 "logs": logs.splitlines()[0][:160] if logs else ""})
if rows:
    table = pd.DataFrame(rows)
    colour = {"pending": "background-color: #fff4d6", "failed": "background-color: #fde8e8",
              "edited": "background-color: #fff4d6", "missing_locally": "background-color: #fff4d6"}
    st.dataframe(table.style.map(lambda v: colour.get(v, ""), subset=["state"]), hide_index=True, width="stretch")
    for m in result.get("migrations", []):
        if m.get("state") == "failed" and m.get("logs"):
            with st.expander(f"logs of failed {m['name']}"):
                st.code(m["logs"], language="text")
if result.get("up_to_date"):
    st.success("Up to date: every migration is applied, and matches its file.")
else:
    st.warning("Not up to date: apply or resolve on the Actions page (rehearsed first, confirmed by name).")
    states = {m.get("state") for m in result.get("migrations", [])}
    left, right = st.columns(2)
    # The Actions page opens on the chosen flow: deploy for pending migrations, resolve for a failed one.
    if states & {"pending", "rolled_back"} and left.button("Deploy the pending migrations…", icon=":material/upload:",
                                                           key="migrations_deploy"):
        st.session_state["action_choice"] = "deploy"
        st.switch_page("app_pages/actions.py")
    if states & {"failed", "pending"} and right.button("Resolve a migration…", icon=":material/rule:",
                                                       key="migrations_resolve"):
        st.session_state["action_choice"] = "resolve"
        st.switch_page("app_pages/actions.py")


@st.cache_data(ttl=5, show_spinner=False)
def lock_holder(url: str) -> str | None:
    """Who holds Prisma's migration lock (advisory lock 72707369) right now, if anyone: the
    guard's own query (checks/guard_holders.sql), so the page names holders as a refused
    action does."""
    from checks.db import connect
    from checks.guard import advisory_lock_holders

    with connect(url, application_name="driftwatch dashboard") as conn:
        holders = advisory_lock_holders(conn)
    return "; ".join(h.describe() for h in holders) or None


try:
    holder = lock_holder(env.database_url)
except Exception as exc:  # noqa: BLE001 - one line, never a traceback
    st.caption(f"Prisma's migration lock: could not be read ({type(exc).__name__}).")
else:
    st.caption(f"Prisma's migration lock: held by {holder}" if holder else "Prisma's migration lock: free.")
