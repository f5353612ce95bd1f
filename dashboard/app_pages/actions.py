"""Actions: fix the drift, apply pending migrations, resolve a migration — each as
preview → rehearse → type the environment's name → apply → automatic re-check, in place.

Only operators may press (dashboard/auth.py); destructive statements need an extra explicit
choice; two operators at once: the guard's lock lets one win and names the holder to the other.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import auth, environments, operations, ui

st.title("Actions")
env = environments.current()
visitor = auth.current()
disabled = visitor.disabled_reason
st.caption(f"Environment **{env.name}** · database `{env.shown_url}` · {visitor.label}")
if disabled:
    st.info(disabled, icon=":material/lock:")
if env.error or not env.database_url or not env.schema:
    st.error(f"This environment cannot be acted on: {env.error or 'no database_url or schema configured'}")
    st.stop()

CHOICES = {"fix": "Fix the drift (Prisma's SQL)", "deploy": "Apply pending migrations (migrate deploy)",
           "resolve": "Resolve a migration (migrate resolve)", "runbook": "Run a runbook (reviewed emergency SQL)"}
if not env.migrations:
    CHOICES = {k: v for k, v in CHOICES.items() if k in ("fix", "runbook")}
choice = st.radio("What to do", list(CHOICES), format_func=CHOICES.__getitem__, horizontal=True,
                  key="action_choice")
state_key = f"action:{env.name}:{choice}"
flow = st.session_state.setdefault(state_key, {})


def confirmation(label: str, key: str) -> bool:
    """The typed confirmation: the environment's name, exactly."""
    typed = st.text_input(f"Type the environment's name **{env.name}** to confirm {label}", key=key,
                          disabled=bool(disabled), placeholder=env.name)
    if typed and typed != env.name:
        st.caption(f"That is not {env.name!r}.")
    return typed == env.name


def recheck() -> None:
    """After a change: check the environment again now (drift, migrations, and the smoke run)."""
    monitor = ui.monitor()
    with st.spinner("Checking again…"):
        monitor.check_now(env)
    st.markdown("**After the change**")
    for s in monitor.latest(env.name):
        label = s.result.kind if s.result.name == s.result.kind else f"{s.result.kind} · {s.result.name}"
        st.markdown(f"**{label}** {ui.cell(s)}")


def show_error(outcome: operations.Outcome) -> None:
    st.error(outcome.error or f"the action ended with exit code {outcome.exit}", icon=":material/error:")


if choice == "fix":
    st.subheader("1 · Preview and rehearse")
    st.caption("Plans the SQL that removes the drift and runs it in a transaction that is rolled back.")
    if st.button("Preview and rehearse", disabled=bool(disabled), help=disabled, key="fix_rehearse"):
        with st.spinner("Planning and rehearsing…"):
            flow.clear()
            flow["rehearsal"] = operations.rehearse_fix(env, visitor.name or "viewer")
    rehearsal: operations.Outcome | None = flow.get("rehearsal")
    if rehearsal is not None:
        plan = rehearsal.result
        if rehearsal.error and not plan:
            show_error(rehearsal)
        elif not plan.get("statements"):
            st.success("Nothing to fix: the plan is empty.")
        else:
            results = {r["statement"]: r for r in (plan.get("rehearsal") or {}).get("statements", [])}
            rows = [{"#": i, "safety": s["safety"], "reason": s.get("reason") or "",
                     "rehearsal": (results.get(i) or {}).get("status", "not rehearsed"),
                     "error": (results.get(i) or {}).get("error") or "",
                     "sql": s["sql"].splitlines()[0]} for i, s in enumerate(plan["statements"], 1)]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
            with st.expander("The SQL in full"):
                st.code("\n\n".join(s["sql"] for s in plan["statements"]), language="sql", wrap_lines=True)
            clean = (plan.get("rehearsal") or {}).get("clean")
            rehearsed = [r for r in rows if r["rehearsal"] == "rehearsed"]
            if clean:
                left_out = len(rows) - len(rehearsed)
                st.success(f"Rehearsal clean: {len(rehearsed)} statement(s) ran and were rolled back"
                           + (f"; {left_out} destructive statement(s) left out." if left_out else "."))
            else:
                st.warning("The rehearsal did not run cleanly: "
                           f"{(plan.get('rehearsal') or {}).get('error') or rehearsal.error or 'see the table'}")
            destructive = [r for r in rows if r["safety"] == "destructive"]
            st.subheader("2 · Apply")
            allow = False
            if destructive:
                allow = st.checkbox(f"Also run the {len(destructive)} destructive statement(s): data may be lost",
                                    key="fix_allow_destructive", disabled=bool(disabled))
                if not allow:
                    st.caption("Without this choice the destructive statements are skipped and listed.")
            confirmed = confirmation("the fix", "fix_confirm")
            if st.button("Apply the fix", type="primary", disabled=bool(disabled) or not confirmed,
                         help=disabled or (None if confirmed else "Type the environment's name first"),
                         key="fix_apply"):
                with st.spinner("Applying under Prisma's migration lock…"):
                    flow["applied"] = operations.apply_fix(env, visitor.name or "operator", allow_destructive=allow)
    applied: operations.Outcome | None = flow.get("applied")
    if applied is not None:
        result = applied.result
        if applied.error or (not result.get("applied") and not result.get("skipped")):
            show_error(applied)
        elif not result.get("applied"):
            st.warning(f"Nothing applied: {len(result['skipped'])} destructive statement(s) skipped "
                       "(choose to run them explicitly above).")
        else:
            remaining = result.get("remaining") or []
            skipped = result.get("skipped") or []
            msg = f"Applied by {visitor.name}."
            if skipped:
                msg += f" {len(skipped)} destructive statement(s) skipped."
            if remaining:
                st.warning(msg + f" {len(remaining)} finding(s) remain.")
            else:
                st.success(msg + " Nothing it applied is still drifting.", icon=":material/check_circle:")
        recheck()

elif choice == "deploy":
    st.subheader("1 · Preview and rehearse")
    status = operations.migration_status(env)
    pending = [m["name"] for m in status.result.get("migrations", []) if m.get("state") in ("pending", "rolled_back")]
    if status.error and not status.result:
        show_error(status)
    elif not pending:
        st.success("No pending migration.")
    else:
        st.markdown("Pending, in the order `migrate deploy` applies them: " + ", ".join(f"`{p}`" for p in pending))
        with st.expander("Their SQL"):
            for name, script in operations.migration_scripts(env, pending).items():
                st.caption(name)
                st.code(script.strip(), language="sql", wrap_lines=True)
        configured = env.config.migrate if env.config is not None else None
        how = "driftwatch"
        if configured is not None:
            how = st.radio("Apply them with", ["driftwatch", "command"], horizontal=True, key="deploy_how",
                           format_func={"driftwatch": "Driftwatch (Prisma-compatible: its lock, table, checksums)",
                                        "command": f"the app's own command: {configured.command}"}.__getitem__)
        else:
            st.caption(f"To run the app's own command instead (e.g. `npx prisma migrate deploy`), set "
                       f"`[environments.{env.name}.migrate] command` in driftwatch.toml.")
        st.caption("The rehearsal runs every pending migration in one transaction under Prisma's lock and rolls it "
                   "back: it shows which would fail and what would still differ from the schema afterwards.")
        if st.button("Rehearse (rolled back)", disabled=bool(disabled), help=disabled, key="deploy_rehearse"):
            with st.spinner("Rehearsing the deploy…"):
                flow.clear()
                flow["rehearsal"] = operations.rehearse_deploy(env, visitor.name or "operator")
        rehearsal = flow.get("rehearsal")
        if rehearsal is not None:
            ran = rehearsal.result.get("migrations") or []
            if rehearsal.error and not ran:
                show_error(rehearsal)
            else:
                st.dataframe(pd.DataFrame([{"migration": m["name"], "rehearsal": m["status"].replace("_", " "),
                                            "statements": m["statements"], "error": m["error"] or ""}
                                           for m in ran]), hide_index=True, width="stretch")
                failed = [m for m in ran if m["status"] == "failed"]
                unrehearsable = [m for m in ran if m["status"] == "cannot_rehearse"]
                if failed:
                    st.error(f"The deploy would fail on {failed[0]['name']}: {failed[0]['error']}. Nothing was "
                             "changed. Deploying now would leave it recorded as failed (P3009); the Overview's "
                             "next step says the way out.", icon=":material/block:")
                elif unrehearsable:
                    st.warning(f"{unrehearsable[0]['name']} could not be rehearsed: {unrehearsable[0]['error']}")
                else:
                    st.success(f"Rehearsal clean: {len(ran)} migration(s) ran and were rolled back.")
                remaining = rehearsal.result.get("remaining")
                if remaining is None:
                    st.caption("What would remain after the deploy is unknown (no schema to compare with).")
                elif not remaining:
                    st.success("After the deploy the database would be in sync with the schema.")
                else:
                    st.warning(f"After the deploy {len(remaining)} finding(s) would remain: "
                               + "; ".join(remaining[:5]) + (" …" if len(remaining) > 5 else ""))
                if rehearsal.text.strip():
                    st.caption(rehearsal.text.strip())
                st.subheader("2 · Apply")
                blocked = "The rehearsal shows the deploy would fail" if failed else None
                confirmed = confirmation("the deploy", "deploy_confirm")
                label = ("Run the app's migrate command" if how == "command" else "Apply the pending migrations")
                if st.button(label, type="primary", disabled=bool(disabled or blocked) or not confirmed,
                             help=disabled or blocked or (None if confirmed else "Type the environment's name first"),
                             key="deploy_apply"):
                    with st.spinner("Running the app's command…" if how == "command" else "Applying…"):
                        flow["applied"] = (operations.migrate_command(env, visitor.name or "operator")
                                           if how == "command" else
                                           operations.migrate_deploy(env, visitor.name or "operator"))
    applied = flow.get("applied")
    if applied is not None:
        if applied.ok:
            st.success(f"Applied by {visitor.name}.", icon=":material/check_circle:")
        else:
            show_error(applied)
        if applied.text.strip():
            st.code(applied.text.strip(), language="text")
        recheck()

elif choice == "runbook":
    books, why = operations.runbooks(env)
    if not books:
        st.info(f"No runbook found: {why or 'the runbooks folder is empty'}.")
        st.stop()
    st.subheader("1 · Preview and rehearse")
    by_name = {b.name: b for b in books}
    name = st.selectbox("Runbook", list(by_name), format_func=lambda n: f"{n} — {by_name[n].title}",
                        key="runbook_name")
    book = by_name[name]
    st.caption(" · ".join(x for x in (f"when: {book.when}" if book.when else "",
                                      f"author: {book.author}" if book.author else "") if x)
               or "No `-- when:` or `-- author:` header.")
    st.code(book.sql.strip(), language="sql", wrap_lines=True)
    if flow.get("name") != name:
        flow.clear()
        flow["name"] = name
    if st.button("Rehearse (rolled back)", disabled=bool(disabled), help=disabled, key="runbook_rehearse"):
        with st.spinner("Rehearsing…"):
            flow["rehearsal"] = operations.run_runbook(env, visitor.name or "operator", name, apply=False)
            flow.pop("applied", None)
    rehearsal = flow.get("rehearsal")
    if rehearsal is not None:
        (st.success if rehearsal.ok else st.warning)(
            "Rehearsal clean: it ran and was rolled back." if rehearsal.ok else
            (rehearsal.error or f"the rehearsal ended with exit code {rehearsal.exit}"))
        if rehearsal.text.strip():
            st.code(rehearsal.text.strip(), language="text")
        st.subheader("2 · Apply")
        confirmed = confirmation("the runbook", "runbook_confirm")
        if st.button("Run the runbook", type="primary", disabled=bool(disabled) or not confirmed, help=disabled,
                     key="runbook_apply"):
            with st.spinner("Running under Prisma's migration lock…"):
                flow["applied"] = operations.run_runbook(env, visitor.name or "operator", name, apply=True)
    applied = flow.get("applied")
    if applied is not None:
        if applied.exit == 0:
            st.success(f"Applied by {visitor.name}; the database is in sync.")
        elif applied.exit == 2:
            st.warning(f"Applied by {visitor.name}, but drift remains: the runbook did not cover everything "
                       "(the fix plans the rest).")
        else:
            show_error(applied)
        if applied.text.strip():
            st.code(applied.text.strip(), language="text")
        recheck()

else:
    st.subheader("1 · Preview")
    status = operations.migration_status(env)
    if status.error and not status.result:
        show_error(status)
        st.stop()
    candidates = [m for m in status.result.get("migrations", []) if m.get("state") in ("failed", "pending")]
    if not candidates:
        st.success("No failed or pending migration to resolve.")
    else:
        name = st.selectbox("Migration", [m["name"] for m in candidates], key="resolve_name")
        how = st.radio("Record it as", ["applied", "rolled back"], horizontal=True, key="resolve_how")
        st.caption("applied: the database already has what it creates (e.g. after the fix). "
                   "rolled back: it did not apply; the next deploy runs it again.")
        confirmed = confirmation("the resolve", "resolve_confirm")
        if st.button("Resolve", type="primary", disabled=bool(disabled) or not confirmed, help=disabled,
                     key="resolve_apply"):
            flow["applied"] = operations.migrate_resolve(env, visitor.name or "operator", name,
                                                         applied=how == "applied")
    applied = flow.get("applied")
    if applied is not None:
        if applied.ok:
            st.success(applied.text.strip() or "Resolved.")
        else:
            show_error(applied)
        recheck()
