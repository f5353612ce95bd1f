"""Schema drift: does the live database match the Prisma schema? A verdict, the findings, the fix SQL."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from checks.errors import DriftwatchError
from checks.findings import CRITICAL, INFO, WARNING
from dashboard import data, environments, operations, ui

HINT = ("Check DATABASE_URL and DRIFTWATCH_SCHEMA in .streamlit/secrets.toml or the environment; "
        "unset DATABASE_URL to use the embedded demo database.")
# The findings table is grouped by table, so a critical row can sit below warnings: colour
# the severity cell so the rows that break queries stand out at a glance.
SEVERITY_STYLE = {
    CRITICAL: "background-color: #fde8e8; color: #9b1c1c",
    WARNING: "background-color: #fff4d6; color: #7a4b00",
}

st.title("Schema drift")

env = environments.current()
if env.error or not env.database_url or not env.schema:
    st.error(env.error or f"environment {env.name}: no database_url or schema configured")
    st.caption(HINT)
    st.stop()
schema_path, _ = operations.schema_paths(env)  # the deployed commit's schema when read from git
target = data.Target(env.database_url, schema_path, demo=env.demo)
deployed = next((s.result for s in ui.monitor().latest(env.name) if s.result.kind == "drift"), None)
compared = (deployed.detail or {}).get("schema_commit") if deployed else None

if target.demo:
    st.info(f"Demo database: {target.demo}. Set DATABASE_URL (and DRIFTWATCH_SCHEMA) to check your own.",
            icon=":material/science:")

left, right = st.columns([5, 1], vertical_alignment="center")
left.markdown(f"**Target** `{target.shown}`  \n**Schema** `{target.schema_shown}`"
              + (f" — the deployed commit `{compared[:7]}`" if compared else ""))
if right.button("Re-check", icon=":material/refresh:", help="Ask the database again instead of the cached result"):
    data.forget(target)

try:
    checked = data.check(target)
except DriftwatchError as exc:
    st.error(data.one_line(exc, target))
    st.caption(HINT)
    st.stop()

report = checked.report
s = report.summary
counts = f"{s[CRITICAL]} critical, {s[WARNING]} warning, {s[INFO]} info"
if report.in_sync():
    extras = " (extra objects only)" if report.findings else ""
    st.success(f"In sync{extras}: the database matches the schema. {counts}.", icon=":material/check_circle:")
elif s[CRITICAL]:
    st.error(f"Drift: {counts}. Queries the Prisma client sends will fail.", icon=":material/error:")
else:
    st.warning(f"Drift: {counts}. Behaviour or speed differs from the schema.", icon=":material/warning:")

history, advice = checked.history, checked.advice
if history is not None:
    if history.error is not None:
        st.caption(f"Migration history ({history.directory}): could not be read: {history.error}")
    elif not history.up_to_date:
        first = advice.first if advice is not None else None
        st.warning(f"Migrations ({history.directory}): " + "; ".join(history.problems) + "."
                   + (f" Next: {first.say}" + (f": `{first.command}`" if first.command else "") + "." if first else ""),
                   icon=":material/history:")
    else:
        st.caption(f"Migrations: all {len(history.names('applied'))} in {history.directory} applied.")
if advice is not None and advice.steps:
    # The same advice `driftwatch check` prints (checks.operations.next_step), never a second opinion.
    with st.expander(f"Next step: {advice.headline}", expanded=bool(history and not history.up_to_date)):
        if advice.warning:
            st.warning(advice.warning, icon=":material/block:")
        st.markdown("\n".join(f"{i}. {step.say}" + (f": `{step.command}`" if step.command else "")
                               for i, step in enumerate(advice.steps, 1)))
        if advice.alternative:
            st.markdown("Or: " + "; ".join(step.say + (f": `{step.command}`" if step.command else "")
                                           for step in advice.alternative))

at = datetime.fromtimestamp(checked.checked_at, timezone.utc).strftime("%H:%M:%S UTC")
st.caption(f"Checked at {at} in {checked.seconds:.2f} s; results are reused for up to "
           f"{data.CHECK_TTL_SECONDS} s unless you re-check.")

if report.findings:
    findings = data.in_order(report)
    st.subheader("Findings")
    severities = st.pills("Severity", [CRITICAL, WARNING, INFO], selection_mode="multi",
                          default=[CRITICAL, WARNING, INFO], key="drift_severity")
    query = st.text_input("Filter by table, model or kind", key="drift_filter").strip().lower()
    findings = [f for f in findings if f.severity in (severities or [])
                and (not query or query in " ".join(str(x or "") for x in (f.table, f.model, f.field, f.kind,
                                                                               f.column, f.name)).lower())]
    table = pd.DataFrame(data.rows(findings))
    if not table.empty:
        table["expected"] = [str(f.expected or "") for f in findings]
        table["actual"] = [str(f.actual or "") for f in findings]
        st.dataframe(table.style.map(lambda v: SEVERITY_STYLE.get(v, ""), subset=["severity"]),
                     hide_index=True, width="stretch")
    else:
        st.caption("No finding matches the filter.")

    fixes = [f for f in findings if f.fix]
    if fixes:
        st.subheader("Fix SQL")
        st.caption("The SQL Prisma would run for each finding. Review it before running it; "
                   "this page does not change the database.")
        for f in fixes:
            where = ".".join(p for p in (data.table_name(f), f.column or f.name) if p)
            with st.expander(f"{f.severity} · {f.kind} · {where}"):
                st.code(f.fix.strip(), language="sql", wrap_lines=True)  # a cut-off ON DELETE misleads
