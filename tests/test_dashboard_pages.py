"""Every page and every action flow of the dashboard, through Streamlit's AppTest.

Pages are rendered against real PostgreSQL databases (tests/conftest.py); the sign-in mode is
chosen per test through the app's secrets. What matters to the on-call engineer is asserted:
the states and their reasons, confirmations, disabled buttons for viewers, errors as one line
(never a traceback), stale states labelled as such.
"""
from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from checks.history import HistoryStore
from checks.monitor.results import CheckResult
from dashboard import auth
from dashboard.monitor import Monitor, Shown
from dashboard import ui

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
SCHEMA = str(ROOT / "examples" / "avatar-studio" / "prisma" / "schema.prisma")
MIGRATIONS = str(ROOT / "examples" / "avatar-studio" / "prisma" / "migrations")
PAGES = ("overview", "drift", "migrations", "health", "deployments", "actions", "audit", "report")
SETTINGS = ("DATABASE_URL", "DRIFTWATCH_SCHEMA", "DRIFTWATCH_DEMO", "DRIFTWATCH_STATE_DIR", "DRIFTWATCH_CONFIG",
            "DRIFTWATCH_OPERATOR_PASSWORD", "DRIFTWATCH_DEMO_OPERATOR", "DRIFTWATCH_ACTOR", "DRIFTWATCH_ENVIRONMENT")


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Only what a test sets counts; caches and the monitor thread do not outlive a test."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DRIFTWATCH_HISTORY_URL", str(tmp_path / "history.sqlite3"))
    monkeypatch.chdir(tmp_path)  # no ./driftwatch.toml
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    for m in Monitor.instances:
        m.stop()
    Monitor.instances.clear()
    st.cache_data.clear()
    st.cache_resource.clear()


def app(url: str, page: str = "overview", **secrets: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.secrets.update({"DATABASE_URL": url, "DRIFTWATCH_SCHEMA": SCHEMA, **secrets})
    at.run()
    if page != "overview":
        at.switch_page(f"app_pages/{page}.py").run()
    return at


def text(at: AppTest) -> str:
    parts = [str(getattr(e, "value", "")) for kind in (
        "title", "markdown", "caption", "info", "success", "warning", "error", "code", "exception")
        for e in at.get(kind)]
    parts += [d.value.to_string() for d in at.dataframe]
    return "\n".join(parts)


def button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_the_incident_without_an_exception(incident_db, page):
    at = app(incident_db, page, DRIFTWATCH_DEMO_OPERATOR="1")
    assert not at.exception, at.exception
    assert at.title[0].value in ("Overview", "Schema drift", "Migrations", "Health & smoke", "Deployments",
                                 "Actions", "Audit log", "Incident report")
    assert at.sidebar.selectbox[0].label == "Environment"  # the picker is on every page


def test_the_overview_flags_the_missing_table_with_its_age_and_the_next_step(incident_db):
    at = app(incident_db)
    shown = text(at)
    assert "table avatar_projects does not exist" in shown
    assert "migration 20251012082000_add_avatar_projects pending" in shown
    assert " s ago" in shown  # every state shows its age
    incident, banner = at.error
    assert incident.value.startswith("**Incident #1** open on **default**")  # opened in the history store
    assert "drift failing since" in banner.value
    assert "driftwatch migrate deploy" in shown


def test_the_banner_says_since_when_from_the_history_store_not_from_this_dashboards_memory(incident_db, tmp_path):
    """A dashboard started during an incident says how long it has really lasted: the store's
    `since` (written by a poller before this dashboard ever ran), not its own first look."""
    from checks.history.records import CheckSpec

    began = datetime.now(timezone.utc) - timedelta(hours=2, minutes=17)
    with HistoryStore.open(str(tmp_path / "history.sqlite3")) as store:
        ids = store.register_checks("default", [CheckSpec("drift", "drift", 60)])
        store.record_result(ids[("drift", "drift")], CheckResult(
            "drift", "drift", "failing", "table avatar_projects does not exist", checked_at=began))
    at = app(incident_db)
    assert not at.exception, at.exception
    banner = next(e.value for e in at.error if "drift failing since" in e.value)
    expected = began.strftime("%H:%M:%S UTC") if began.date() == datetime.now(timezone.utc).date() \
        else began.strftime("%Y-%m-%d %H:%M UTC")
    assert f"drift failing since {expected}" in banner, banner
    assert "at least" not in banner


def test_the_next_step_button_opens_the_actions_page_on_the_deploy(incident_db):
    at = app(incident_db, DRIFTWATCH_DEMO_OPERATOR="1")
    button(at, "next_step").click().run()
    assert not at.exception
    assert at.title[0].value == "Actions"
    assert at.radio(key="action_choice").value == "deploy"
    assert "20251012082000_add_avatar_projects" in text(at)


def test_a_dead_database_is_shown_as_could_not_run_never_green():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    at = app(f"postgresql://dw:s3cret-pw@127.0.0.1:{port}/app")
    assert not at.exception
    shown = text(at)
    assert "could not run" in shown
    assert "s3cret-pw" not in shown
    assert ":green-badge" not in shown


def test_a_stale_result_is_labelled_stale_and_never_shown_as_the_current_state():
    old = CheckResult("drift", "drift", "ok", checked_at=datetime.now(timezone.utc) - timedelta(minutes=10))
    m = Monitor(lambda env: [], interval_s=15)
    shown = Shown(old, 600, stale=True)
    assert "stale" in ui.cell(shown)
    assert ":green-badge" not in ui.cell(shown)
    from dashboard.monitor import state_of

    assert state_of([shown]) == "unknown"
    m.stop()


def test_without_any_sign_in_configured_action_buttons_are_disabled_and_say_how(incident_db):
    at = app(incident_db, "actions")
    assert not at.exception
    rehearse = button(at, "fix_rehearse")
    assert rehearse.disabled
    assert auth.ENABLE_HINT in text(at)
    assert "DRIFTWATCH_OPERATOR_PASSWORD" in auth.ENABLE_HINT


def test_the_operator_password_signs_in_and_never_appears_on_the_page(incident_db):
    at = app(incident_db, "actions", DRIFTWATCH_OPERATOR_PASSWORD="hunter2-operator")
    assert button(at, "fix_rehearse").disabled
    at.sidebar.text_input(key="auth_name").input("Ada")
    at.sidebar.text_input(key="auth_password").input("wrong")
    at.sidebar.button[0].click().run()
    assert "Wrong operator password." in text(at)
    assert button(at, "fix_rehearse").disabled
    at.sidebar.text_input(key="auth_name").input("Ada")
    at.sidebar.text_input(key="auth_password").input("hunter2-operator")
    at.sidebar.button[0].click().run()
    assert not at.exception
    assert "Signed in as Ada (operator)" in text(at)
    assert not button(at, "fix_rehearse").disabled
    assert "hunter2-operator" not in text(at)


def test_the_password_is_compared_in_constant_time():
    assert auth.password_matches("abc", "abc")
    assert not auth.password_matches("abd", "abc")
    assert not auth.password_matches("", "abc")


def rehearse(at: AppTest) -> AppTest:
    button(at, "fix_rehearse").click().run()
    assert not at.exception
    return at


def test_the_fix_needs_the_typed_environment_name_then_applies_and_rechecks(incident_db, tmp_path):
    at = rehearse(app(incident_db, "actions", DRIFTWATCH_DEMO_OPERATOR="1"))
    assert "Rehearsal clean: 6 statement(s)" in text(at)
    assert button(at, "fix_apply").disabled  # nothing typed yet
    at.text_input(key="fix_confirm").input("production").run()
    assert button(at, "fix_apply").disabled
    assert "That is not 'default'." in text(at)
    at.text_input(key="fix_confirm").input("default").run()
    assert not button(at, "fix_apply").disabled
    button(at, "fix_apply").click().run()
    assert not at.exception, at.exception
    shown = text(at)
    assert "Applied by demo operator. Nothing it applied is still drifting." in shown
    assert "After the change" in shown
    after = [m.value for m in at.markdown if m.value.startswith("**drift**")]
    assert after and ":green-badge" in after[-1]
    with HistoryStore.open(str(tmp_path / "history.sqlite3")) as store:
        fix = store.list_actions(kind="fix")[0]
    assert fix.actor == "demo operator"
    assert fix.environment == "default"
    assert fix.outcome == "applied"


def test_destructive_statements_are_skipped_unless_chosen_explicitly(make_db):
    from conftest import migration_sql

    url = make_db(migration_sql(0) + migration_sql(1) + """
        ALTER TABLE "users" ALTER COLUMN "email" DROP NOT NULL;
        INSERT INTO "users" ("id", "email", "password", "updatedAt") VALUES ('u1', NULL, 'x', now());""")
    at = rehearse(app(url, "actions", DRIFTWATCH_DEMO_OPERATOR="1"))
    assert "destructive" in text(at)
    choice = at.checkbox(key="fix_allow_destructive")
    assert choice.value is False
    at.text_input(key="fix_confirm").input("default").run()
    button(at, "fix_apply").click().run()
    assert not at.exception
    assert "Nothing applied: 1 destructive statement(s) skipped" in text(at)
    assert not at.error
    # With the explicit choice, it runs (and fails on the NULL row, as the plan said it would).
    at.checkbox(key="fix_allow_destructive").check().run()
    button(at, "fix_apply").click().run()
    assert not at.exception
    assert [e.value for e in at.error if "null value" in e.value.lower() or "NULL" in e.value]


def test_a_second_operator_sees_who_holds_the_migration_lock(incident_db):
    at = rehearse(app(incident_db, "actions", DRIFTWATCH_DEMO_OPERATOR="1"))
    at.text_input(key="fix_confirm").input("default").run()
    with psycopg.connect(incident_db, autocommit=True) as other:
        other.execute("SET application_name = 'the-other-operator'")
        other.execute("SELECT pg_advisory_lock(72707369)")
        button(at, "fix_apply").click().run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "the-other-operator" in errors, errors


def test_migrate_deploy_is_rehearsed_then_confirmed_then_applied(incident_db, tmp_path):
    at = app(incident_db, "actions", DRIFTWATCH_DEMO_OPERATOR="1")
    at.radio(key="action_choice").set_value("deploy").run()
    assert "20251012082000_add_avatar_projects" in text(at)
    assert any('CREATE TABLE "avatar_projects"' in c.value for c in at.code)  # the SQL, before anything runs
    assert not [b for b in at.button if b.key == "deploy_apply"]  # no apply before a rehearsal
    button(at, "deploy_rehearse").click().run()
    assert not at.exception, at.exception
    shown = text(at)
    assert "Rehearsal clean: 1 migration(s) ran and were rolled back." in shown
    assert "After the deploy the database would be in sync with the schema." in shown
    assert list(at.dataframe[0].value["rehearsal"]) == ["rehearsed"]
    with psycopg.connect(incident_db) as c:  # rolled back
        assert c.execute("SELECT to_regclass('avatar_projects')").fetchone() == (None,)
    assert button(at, "deploy_apply").disabled
    at.text_input(key="deploy_confirm").input("default").run()
    button(at, "deploy_apply").click().run()
    assert not at.exception, at.exception
    after = [m.value for m in at.markdown if m.value.startswith("**migrations**")]
    assert after and ":green-badge" in after[-1], text(at)
    with HistoryStore.open(str(tmp_path / "history.sqlite3")) as store:
        rows = [(a.kind, a.outcome, a.actor) for a in reversed(store.list_actions(kind="deploy"))]
    assert rows == [("deploy", "rehearsed", "demo operator"), ("deploy", "applied", "demo operator")]


def test_after_the_emergency_sql_the_deploy_rehearsal_fails_and_apply_stays_disabled(incident_db):
    from checks.runbooks import load_runbook
    from checks.operations import run_runbook

    book = load_runbook(ROOT / "examples" / "avatar-studio" / "runbooks", "fix-avatar-projects-table")
    assert run_runbook(incident_db, SCHEMA, book, apply=True).error is None
    at = app(incident_db, "actions", DRIFTWATCH_DEMO_OPERATOR="1")
    at.radio(key="action_choice").set_value("deploy").run()
    button(at, "deploy_rehearse").click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "The deploy would fail on 20251012082000_add_avatar_projects" in errors
    assert 'relation "avatar_projects" already exists' in errors
    at.text_input(key="deploy_confirm").input("default").run()
    assert button(at, "deploy_apply").disabled  # typed, but the rehearsal said no


def test_the_apps_own_migrate_command_from_the_config_runs_from_the_actions_page(empty_db, tmp_path):
    import sys

    command = f'"{sys.executable}" -m checks migrate deploy --migrations "{MIGRATIONS}"'
    (tmp_path / "driftwatch.toml").write_text(
        '[environments.staging]\ndatabase_url = "secret:STAGING_DATABASE_URL"\n'
        f'schema = "{SCHEMA}"\nmigrations = "{MIGRATIONS}"\n'
        f"[environments.staging.migrate]\ncommand = '{command}'\ncwd = \"{ROOT}\"\ntimeout_s = 120\n")
    at = AppTest.from_file(APP, default_timeout=90)
    at.secrets.update({"DRIFTWATCH_CONFIG": str(tmp_path / "driftwatch.toml"), "STAGING_DATABASE_URL": empty_db,
                       "DRIFTWATCH_DEMO_OPERATOR": "1"})
    at.run()
    at.switch_page("app_pages/actions.py").run()
    at.radio(key="action_choice").set_value("deploy").run()
    at.radio(key="deploy_how").set_value("command").run()
    button(at, "deploy_rehearse").click().run()
    assert "Rehearsal clean: 2 migration(s)" in text(at)
    at.text_input(key="deploy_confirm").input("staging").run()
    assert button(at, "deploy_apply").label == "Run the app's migrate command"
    button(at, "deploy_apply").click().run()
    assert not at.exception, at.exception
    shown = text(at)
    assert "Applied by demo operator." in shown and "Applying 20251001083000_init" in shown, shown
    with HistoryStore.open(str(tmp_path / "history.sqlite3")) as store:
        [row] = store.list_actions(kind="migrate_command")
    assert (row.outcome, row.actor, row.environment) == ("applied", "demo operator", "staging")
    assert row.details["applied"] == ["20251001083000_init", "20251012082000_add_avatar_projects"]


def test_without_a_configured_command_the_page_says_how_to_add_one(incident_db):
    at = app(incident_db, "actions", DRIFTWATCH_DEMO_OPERATOR="1")
    at.radio(key="action_choice").set_value("deploy").run()
    assert not [r for r in at.radio if r.key == "deploy_how"]
    assert "[environments.default.migrate] command" in text(at)


def test_the_audit_log_shows_who_did_what_with_the_sql(incident_db):
    at = rehearse(app(incident_db, "actions", DRIFTWATCH_DEMO_OPERATOR="1"))
    at.switch_page("app_pages/audit.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["who"]) == ["demo operator"]
    assert list(table["kind"]) == ["rehearsal"]
    assert any('CREATE TABLE "avatar_projects"' in c.value for c in at.code)


def test_the_migrations_page_lists_the_pending_migration_and_the_free_lock(incident_db):
    at = app(incident_db, "migrations")
    assert not at.exception
    table = at.dataframe[0].value
    assert dict(zip(table["migration"], table["state"]))["20251012082000_add_avatar_projects"] == "pending"
    assert "Prisma's migration lock: free." in text(at)


def test_the_migrations_page_names_the_lock_holder_and_its_buttons_open_the_deploy_and_the_resolve(incident_db):
    with psycopg.connect(incident_db, autocommit=True) as other:
        other.execute("SET application_name = 'prisma-migrate'")
        other.execute("SELECT pg_advisory_lock(72707369)")
        at = app(incident_db, "migrations", DRIFTWATCH_DEMO_OPERATOR="1")
        assert not at.exception, at.exception
        assert "Prisma's migration lock: held by pid" in text(at) and "prisma-migrate" in text(at)
    button(at, "migrations_deploy").click().run()
    assert at.title[0].value == "Actions" and at.radio(key="action_choice").value == "deploy"
    at.switch_page("app_pages/migrations.py").run()
    button(at, "migrations_resolve").click().run()
    assert at.title[0].value == "Actions" and at.radio(key="action_choice").value == "resolve"


def fake_probe(env):
    """Health, smoke and deployment results as the monitoring probes return them, varying per call."""
    fake_probe.calls = getattr(fake_probe, "calls", 0) + 1
    n = fake_probe.calls
    bad = n % 2 == 0
    now = datetime.now(timezone.utc)
    return [
        CheckResult("deployment", "deployment", "ok", detail={
            "status": "finished", "commit": f"cbf49b4{n:03d}", "deployment_uuid": f"dep-{n}",
            "started_at": (now - timedelta(minutes=3)).isoformat(), "finished_at": now.isoformat(),
            "post_deployment_command": None, "migrates_on_deploy": False}),
        CheckResult("health", "api health", "ok", latency_ms=10.0 + n, detail={"status_code": 200}),
        CheckResult("smoke", "create project", "failing" if bad else "ok",
                    "step 1 POST …/projects: [STATUS] == 201: got 400" if bad else None, latency_ms=30.0 + n,
                    detail={"status_code": 400 if bad else 201, "steps": [
                        {"method": "POST", "url": "http://127.0.0.1/api/apps/avatar-creator/projects",
                         "status_code": 400 if bad else 201, "latency_ms": 30.0, "state": "failing" if bad else "ok",
                         "reason": "[STATUS] == 201: got 400" if bad else None,
                         "excerpt": '{"error":"relation avatar_projects does not exist"}' if bad else ""}]}),
    ]


@pytest.mark.parametrize("page", ["health", "deployments", "overview"])
def test_health_smoke_and_deployments_draw_their_history(incident_db, page):
    mon = ui.monitor()
    mon._probe = fake_probe
    at = app(incident_db)  # the Overview waits for the first round
    env = mon._envs["default"]
    for _ in range(4):
        mon.check_now(env)
    if page != "overview":
        mon._history.clear()  # as after a restart: the history comes from the store, not from memory
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    shown = text(at)
    if page == "health":
        assert "create project" in shown and "api health" in shown
        assert at.dataframe[0].value["uptime 30 d %"].notna().all()  # from the history store
        assert at.get("plotly_chart")
        at.selectbox(key="health_detail").set_value("smoke · create project").run()
        assert not at.exception
        assert "relation avatar_projects does not exist" in text(at)
    elif page == "deployments":
        assert "commit `cbf49b4" in shown
        assert "No post-deployment command runs `prisma migrate deploy`" in shown
        changes = at.dataframe[0].value
        assert "smoke create project" in set(changes["check"])  # flips from the store, with their reasons
        assert "got 400" in " ".join(changes["reason"])
        timeline = at.get("plotly_chart")[0].proto.spec
        assert timeline.count("cbf49b4") >= 4  # every deployment the store saw, not just the newest
    else:
        assert "smoke create project" in shown or "create project" in shown


def test_the_emergency_runbook_applies_but_shows_what_it_still_leaves_missing(incident_db):
    at = app(incident_db, "actions", DRIFTWATCH_DEMO_OPERATOR="1")
    at.radio(key="action_choice").set_value("runbook").run()
    assert not at.exception
    assert at.selectbox(key="runbook_name").value == "fix-avatar-projects-table"
    button(at, "runbook_rehearse").click().run()
    assert "Rehearsal clean" in text(at)
    assert button(at, "runbook_apply").disabled
    at.text_input(key="runbook_confirm").input("default").run()
    button(at, "runbook_apply").click().run()
    assert not at.exception, at.exception
    shown = text(at)
    assert "drift remains: the runbook did not cover everything" in shown
    assert "projectId" in shown  # what the hand-written fix left out


def test_with_single_sign_on_configured_a_visitor_must_sign_in_before_acting(incident_db):
    at = AppTest.from_file(APP, default_timeout=90)
    at.secrets.update({"DATABASE_URL": incident_db, "DRIFTWATCH_SCHEMA": SCHEMA,
                       "DRIFTWATCH_OPERATOR_PASSWORD": "ignored-when-sso-is-set"})
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "driftwatch", "client_secret": "sso-client-secret",
                          "server_metadata_url": "http://127.0.0.1:1/.well-known/openid-configuration"}
    at.run()
    at.switch_page("app_pages/actions.py").run()
    assert not at.exception
    assert [b for b in at.sidebar.button if b.label == "Sign in"]
    assert button(at, "fix_rehearse").disabled
    assert "sso-client-secret" not in text(at)


def test_a_sign_in_that_cannot_start_is_an_error_in_the_sidebar_not_a_traceback(incident_db):
    # st.login runs as the button's callback, before the script: an incomplete [auth] (no
    # cookie_secret here) raised StreamlitAuthError there, shown as a traceback on the page.
    at = AppTest.from_file(APP, default_timeout=90)
    at.secrets.update({"DATABASE_URL": incident_db, "DRIFTWATCH_SCHEMA": SCHEMA})
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1/oauth2callback", "client_id": "driftwatch",
                          "client_secret": "sso-client-secret",
                          "server_metadata_url": "http://127.0.0.1:1/.well-known/openid-configuration"}
    at.run()
    [sign_in] = [b for b in at.sidebar.button if b.label == "Sign in"]
    sign_in.click().run()
    assert not at.exception, at.exception
    shown = [e.value for e in at.sidebar.error]
    assert any(e.startswith("Single sign-on is configured but cannot start: ") for e in shown), shown
    assert "sso-client-secret" not in text(at)
    assert [b for b in at.sidebar.button if b.label == "Sign in"]  # still offered: fix the secrets, try again


def test_environments_come_from_the_config_with_secret_references_fed_from_st_secrets(incident_db, tmp_path):
    (tmp_path / "driftwatch.toml").write_text(
        '[environments.production]\ndatabase_url = "secret:PROD_DATABASE_URL"\n'
        f'schema = "{SCHEMA}"\nmigrations = "{MIGRATIONS}"\n\n'
        '[environments.staging]\ndatabase_url = "secret:STAGING_DATABASE_URL"\n'
        f'schema = "{SCHEMA}"\n')
    at = AppTest.from_file(APP, default_timeout=90)
    at.secrets.update({"DRIFTWATCH_CONFIG": str(tmp_path / "driftwatch.toml"), "PROD_DATABASE_URL": incident_db})
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox[0].options == ["production", "staging"]
    shown = text(at)
    assert "table avatar_projects does not exist" in shown  # production, through secret:PROD_DATABASE_URL
    assert ui.monitor().wait_first_round("staging", timeout_s=30)
    at.run()
    table = at.dataframe[0].value
    staging = table[table["environment"] == "staging"].iloc[0]
    assert staging["state"] == "error"  # its secret is unset: that environment only, named
    assert "STAGING_DATABASE_URL" in staging["drift"]


def test_the_report_page_offers_the_three_downloads_for_the_incident_the_dashboard_recorded(incident_db):
    at = app(incident_db)  # the Overview's first round records the failing checks and opens incident #1
    at.switch_page("app_pages/report.py").run()
    assert not at.exception, at.exception
    labels = [b.label for b in at.get("download_button")]
    assert len(labels) == 3, labels


def test_a_second_operator_in_the_same_dashboard_is_told_who_is_acting(incident_db):
    from dashboard import operations

    at = rehearse(app(incident_db, "actions", DRIFTWATCH_DEMO_OPERATOR="1"))
    at.text_input(key="fix_confirm").input("default").run()
    with operations._as("Grace", "default", "fix --apply"):  # another session's action, in flight
        button(at, "fix_apply").click().run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "Grace is running fix --apply on default" in errors, errors


@pytest.mark.parametrize("choice, key", [("deploy", "deploy_rehearse"), ("runbook", "runbook_rehearse"),
                                         ("resolve", "resolve_apply")])
def test_a_viewer_sees_every_action_button_disabled(incident_db, choice, key):
    at = app(incident_db, "actions")
    at.radio(key="action_choice").set_value(choice).run()
    assert not at.exception
    assert button(at, key).disabled
    assert auth.ENABLE_HINT in text(at)


def test_after_the_fix_the_pending_migration_is_resolved_as_applied(incident_db):
    at = rehearse(app(incident_db, "actions", DRIFTWATCH_DEMO_OPERATOR="1"))
    at.text_input(key="fix_confirm").input("default").run()
    button(at, "fix_apply").click().run()
    at.radio(key="action_choice").set_value("resolve").run()
    assert at.selectbox(key="resolve_name").value == "20251012082000_add_avatar_projects"
    assert button(at, "resolve_apply").disabled
    at.text_input(key="resolve_confirm").input("default").run()
    button(at, "resolve_apply").click().run()
    assert not at.exception, at.exception
    assert "recorded 20251012082000_add_avatar_projects as applied" in text(at)
    after = [m.value for m in at.markdown if m.value.startswith("**migrations**")]
    assert after and ":green-badge" in after[-1], text(at)
