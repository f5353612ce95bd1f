from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from checks.demo import sample_migrations, start_demo

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")  # from_file resolves relative paths against this file
SCHEMA = str(ROOT / "examples" / "avatar-studio" / "prisma" / "schema.prisma")
SETTINGS = ("DATABASE_URL", "DRIFTWATCH_SCHEMA", "DRIFTWATCH_DEMO", "DRIFTWATCH_STATE_DIR")


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app reads the environment too: only what a test sets may count."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def fresh_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Cached environments and the monitor thread must not carry over from another test."""
    import streamlit as st
    from dashboard.monitor import Monitor

    monkeypatch.chdir(tmp_path)  # no ./driftwatch.toml
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    for m in Monitor.instances:
        m.stop()
    Monitor.instances.clear()


def run_app(**secrets: str) -> AppTest:
    """The Schema drift page (the app opens on the Overview)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets.update(secrets)  # non-empty: replaces any .streamlit/secrets.toml for this run
    at.run()
    return at.switch_page("app_pages/drift.py").run()


def page_text(at: AppTest) -> str:
    """Everything the page shows as text, tables included."""
    parts = [str(getattr(e, "value", "")) for kind in (
        "title", "markdown", "caption", "info", "success", "warning", "error", "code", "exception"
    ) for e in at.get(kind)]
    parts += [d.value.to_string() for d in at.dataframe]
    parts += [e.label for e in at.expander]
    return "\n".join(parts)


def test_the_page_reports_the_missing_table_on_an_incident_database(incident_db):
    at = run_app(DATABASE_URL=incident_db, DRIFTWATCH_SCHEMA=SCHEMA)
    assert not at.exception
    assert at.title[0].value == "Schema drift"
    [verdict] = at.error
    assert verdict.value.startswith("Drift: ")
    assert "critical" in verdict.value
    table = at.dataframe[0].value
    assert "avatar_projects" in set(table["table"])
    assert table["severity"].iloc[0] == "critical"  # worst first
    assert any('CREATE TABLE "avatar_projects"' in c.value for c in at.code)
    assert all(c.language == "sql" for c in at.code)
    assert "Demo database" not in page_text(at)


def test_the_page_names_the_migration_that_was_never_applied(incident_db):
    """The drift is the symptom; the pending migration is the cause an on-call engineer needs."""
    at = run_app(DATABASE_URL=incident_db, DRIFTWATCH_SCHEMA=SCHEMA)
    assert not at.exception
    [history] = [w.value for w in at.warning if "Migrations" in w.value]
    assert "pending: 20251012082000_add_avatar_projects" in history
    assert "driftwatch migrate deploy" in history


def test_re_check_asks_the_database_again_instead_of_the_cached_result(incident_db):
    import psycopg

    at = run_app(DATABASE_URL=incident_db, DRIFTWATCH_SCHEMA=SCHEMA)
    assert at.error[0].value.startswith("Drift: ")
    pending = sample_migrations()[1] / "migration.sql"
    with psycopg.connect(incident_db, autocommit=True) as conn:  # someone fixes the database meanwhile
        conn.execute(pending.read_text())
    at.run()  # a plain rerun: the cached result, still drift
    assert not at.exception and at.error and at.error[0].value.startswith("Drift: ")
    next(b for b in at.button if b.label == "Re-check").click().run()  # forget(): the database is asked again
    assert not at.exception
    assert not at.error
    assert at.success[0].value.startswith("In sync")
    # the migration is still recorded as pending while its objects exist: deploy would fail
    assert any("migrate deploy would fail" in w.value for w in at.warning)


def test_a_database_with_every_migration_applied_is_in_sync(make_db):
    url = make_db("\n".join((p / "migration.sql").read_text() for p in sample_migrations()))
    at = run_app(DATABASE_URL=url, DRIFTWATCH_SCHEMA=SCHEMA)
    assert not at.exception
    assert not at.error
    assert at.success[0].value.startswith("In sync")
    assert not at.dataframe


def test_an_unreachable_database_is_one_error_line_without_the_password():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://driftwatch:s3cret-pw@127.0.0.1:{port}/avatar_studio"
    at = run_app(DATABASE_URL=url, DRIFTWATCH_SCHEMA=SCHEMA)
    assert not at.exception
    [error] = at.error
    assert "\n" not in error.value
    assert f"postgresql://driftwatch@127.0.0.1:{port}/avatar_studio" in error.value
    assert "s3cret-pw" not in page_text(at)
    assert not at.dataframe


@pytest.fixture
def demo_state() -> Iterator[Path]:
    # Outside pytest's basetemp: see tests/test_demo.py::fresh_state_dir.
    state = Path(tempfile.mkdtemp(prefix="driftwatch-demo-test-"))
    yield state
    if (state / "demo-pg").exists():
        start_demo(state).stop()  # the handle the app opened in this process
    shutil.rmtree(state, ignore_errors=True)


def test_without_a_database_url_the_page_checks_the_embedded_demo(demo_state):
    at = run_app(DRIFTWATCH_STATE_DIR=str(demo_state))
    assert not at.exception
    assert "Demo database: the sample app in the incident state" in at.info[0].value
    assert at.error[0].value.startswith("Drift: ")
    assert "avatar_projects" in set(at.dataframe[0].value["table"])


def test_the_healthy_demo_wins_over_database_url_and_is_in_sync(demo_state):
    at = run_app(DRIFTWATCH_DEMO="healthy", DRIFTWATCH_STATE_DIR=str(demo_state),
                 DATABASE_URL="postgresql://nobody:pw@127.0.0.1:1/none")
    assert not at.exception
    assert "Demo database: the sample app with every migration applied" in at.info[0].value
    assert at.success[0].value.startswith("In sync")


def test_findings_can_be_filtered_and_show_expected_and_actual(incident_db):
    at = run_app(DATABASE_URL=incident_db, DRIFTWATCH_SCHEMA=SCHEMA)
    table = at.dataframe[0].value
    assert {"expected", "actual"} <= set(table.columns)
    at.text_input(key="drift_filter").input("avatars").run()
    assert not at.exception
    assert set(at.dataframe[0].value["table"]) == {"avatars"}
    at.text_input(key="drift_filter").input("").run()
    at.pills(key="drift_severity").set_value(["warning"]).run()
    assert set(at.dataframe[0].value["severity"]) == {"warning"}
