"""`migrate deploy --rehearse` (checks.migrations.rehearse_deploy, checks.operations.rehearse_deploy):
what a deploy would do, found by doing it in a transaction that is rolled back — before anyone
runs it for real (issue 7 §2, Actions: "the same flow for … migrate deploy")."""
from __future__ import annotations

import io
import shutil

import psycopg
import pytest

from checks.check import check_database
from checks.cli import run
from checks.errors import LockBusy, MigrateError
from checks.guard import ADVISORY_LOCK_KEY
from checks.history import HistoryStore
from checks.migrations import rehearse_deploy as rehearse_bare, status
from checks.operations import Caller, limits, rehearse_deploy, run_runbook
from checks.runbooks import load_runbook
from tests.conftest import SAMPLE_APP, SAMPLE_MIGRATIONS, SAMPLE_SCHEMA

INIT, PROJECTS = "20251001083000_init", "20251012082000_add_avatar_projects"


@pytest.fixture(autouse=True)
def history(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTWATCH_HISTORY_URL", str(tmp_path / "history.sqlite3"))


def call(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return run(list(argv), out, err), out.getvalue(), err.getvalue()


def actions() -> list:
    with HistoryStore.open() as store:
        return list(reversed(store.list_actions(limit=50)))


def rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as c:
        if c.execute("SELECT to_regclass('_prisma_migrations')").fetchone()[0] is None:
            return []
        return c.execute("SELECT migration_name, finished_at IS NOT NULL FROM _prisma_migrations "
                         "ORDER BY started_at").fetchall()


def folder_with(tmp_path, *extra: tuple[str, str]):
    """The sample app's prisma folder (schema + migrations) with extra migrations appended."""
    root = tmp_path / "prisma"
    shutil.copytree(SAMPLE_MIGRATIONS.parent, root)
    for name, sql in extra:
        (root / "migrations" / name).mkdir()
        (root / "migrations" / name / "migration.sql").write_text(sql)
    return root / "migrations"


def test_the_incident_rehearsed_applies_the_pending_migration_and_leaves_nothing_behind(incident_db):
    before_rows = rows(incident_db)
    done = rehearse_deploy(incident_db, SAMPLE_MIGRATIONS, caller=Caller(actor="ana", environment="production"))
    assert done.error is None and done.ok
    assert [(m.name, m.status) for m in done.result.migrations] == [(PROJECTS, "rehearsed")]
    assert done.result.migrations[0].statements == 6 and done.result.already_applied == (INIT,)
    assert len(done.before.findings) == 6 and done.after.in_sync()
    # rolled back: the table is still missing, the history unchanged, the migration still pending
    assert len(check_database(incident_db, SAMPLE_SCHEMA).report.findings) == 6
    assert rows(incident_db) == before_rows and status(incident_db, SAMPLE_MIGRATIONS).names("pending") == [PROJECTS]
    [row] = actions()
    assert (row.kind, row.outcome, row.actor, row.environment, row.id) == (
        "deploy", "rehearsed", "ana", "production", done.audit_id)
    assert row.statements.startswith(f"-- migration {PROJECTS}\n")
    assert row.details["rehearsed"] == [{"migration": PROJECTS, "status": "rehearsed", "error": None}]
    assert row.details["would_remain"] == [] and len(row.drift_before["findings"]) == 6

    code, out, err = call("migrate", "deploy", "--rehearse", "--database-url", incident_db,
                          "--migrations", str(SAMPLE_MIGRATIONS))
    assert (code, err) == (0, "")
    assert f"  {PROJECTS}: rehearsed (6 statement(s)" in out
    assert "nothing was changed" in out and "After it, the database would be in sync with the schema." in out


def test_after_the_emergency_sql_the_rehearsal_shows_the_deploy_would_fail_before_anyone_runs_it(incident_db):
    book = load_runbook(SAMPLE_APP / "runbooks", "fix-avatar-projects-table")
    assert run_runbook(incident_db, SAMPLE_SCHEMA, book, apply=True).error is None
    before_rows = rows(incident_db)
    done = rehearse_deploy(incident_db, SAMPLE_MIGRATIONS)
    assert done.error is None and not done.ok
    [m] = done.result.migrations
    assert (m.name, m.status, m.sqlstate) == (PROJECTS, "failed", "42P07")
    assert 'relation "avatar_projects" already exists' in m.error and "a deploy would stop here" in m.error
    assert rows(incident_db) == before_rows  # no failed row was written: a real deploy would have left one
    row = actions()[-1]
    assert (row.kind, row.outcome) == ("deploy", "failed") and PROJECTS in row.error

    code, out, _ = call("migrate", "deploy", "--rehearse", "--database-url", incident_db,
                        "--migrations", str(SAMPLE_MIGRATIONS))
    assert code == 1 and f"  {PROJECTS}: failed" in out and "already exists" in out


def test_an_empty_database_rehearses_every_migration_without_creating_prismas_table(empty_db):
    done = rehearse_deploy(empty_db, SAMPLE_MIGRATIONS)
    assert done.ok and done.result.would_create_table
    assert [m.name for m in done.result.migrations] == [INIT, PROJECTS] and done.after.in_sync()
    assert rows(empty_db) == [] and status(empty_db, SAMPLE_MIGRATIONS).managed is False


def test_the_refusals_are_deploys_own(unmanaged_incident_db, incident_db):
    done = rehearse_deploy(unmanaged_incident_db, SAMPLE_MIGRATIONS)
    assert isinstance(done.error, MigrateError) and done.error.code == "P3005" and done.result is None

    with psycopg.connect(incident_db, autocommit=True) as c:  # a failed run blocks deploys: P3009
        c.execute("INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at) "
                  "VALUES ('x', 'y', %s, now())", (PROJECTS,))
    done = rehearse_deploy(incident_db, SAMPLE_MIGRATIONS)
    assert isinstance(done.error, MigrateError) and done.error.code == "P3009"
    assert actions()[-1].outcome in ("failed", "refused") and actions()[-1].error


def test_a_migration_that_would_commit_or_needs_its_own_transaction_is_not_run(incident_db, tmp_path):
    migrations = folder_with(
        tmp_path,
        ("20251101000000_concurrent", 'CREATE INDEX CONCURRENTLY "users_name_idx" ON "users"("name");'),
        ("20251102000000_later", 'CREATE TABLE "later" ("id" INTEGER NOT NULL);'))
    done = rehearse_bare(incident_db, migrations)
    assert [(m.name, m.status) for m in done.migrations] == [
        (PROJECTS, "rehearsed"), ("20251101000000_concurrent", "cannot_rehearse"),
        ("20251102000000_later", "not_rehearsed")]
    assert "cannot run inside a transaction" in done.migrations[1].error
    with psycopg.connect(incident_db) as c:
        assert c.execute("SELECT to_regclass('users_name_idx'), to_regclass('avatar_projects')").fetchone() == (
            None, None)

    own = folder_with(tmp_path / "own", ("20251101000000_own", 'BEGIN;\nCREATE TABLE "x" ("id" INT);\nCOMMIT;'))
    done = rehearse_bare(incident_db, own)
    assert done.migrations[-1].status == "cannot_rehearse" and "would commit" in done.migrations[-1].error
    with psycopg.connect(incident_db) as c:
        assert c.execute("SELECT to_regclass('x')").fetchone() == (None,)

    code, out, _ = call("migrate", "deploy", "--rehearse", "--database-url", incident_db, "--migrations", str(own))
    assert code == 2 and "cannot rehearse" in out


def test_an_enum_value_used_by_a_later_migration_is_named_not_reported_as_a_failure(incident_db, tmp_path):
    migrations = folder_with(
        tmp_path,
        ("20251101000000_owner_role", "ALTER TYPE \"Role\" ADD VALUE 'OWNER';"),
        ("20251102000000_owner_default", "ALTER TABLE \"users\" ALTER COLUMN \"role\" SET DEFAULT 'OWNER';"))
    done = rehearse_bare(incident_db, migrations)
    assert [m.status for m in done.migrations] == ["rehearsed", "rehearsed", "cannot_rehearse"]
    assert "an earlier migration adds" in done.migrations[-1].error
    with psycopg.connect(incident_db) as c:
        assert c.execute("SELECT enum_range(NULL::\"Role\")::text").fetchone() == ("{USER,ADMIN}",)


def test_a_deploy_in_progress_elsewhere_holds_the_lock_and_the_rehearsal_says_who(incident_db):
    holder = psycopg.connect(incident_db, autocommit=True, application_name="prisma-migrate")
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        done = rehearse_deploy(incident_db, SAMPLE_MIGRATIONS, limits=limits(advisory_wait=0.2))
    finally:
        holder.close()
    assert isinstance(done.error, LockBusy) and "prisma-migrate" in str(done.error)
    assert actions()[-1].outcome == "refused"


def test_rehearse_and_command_do_not_mix(incident_db):
    code, _, err = call("migrate", "deploy", "--rehearse", "--command", "true", "--database-url", incident_db,
                        "--migrations", str(SAMPLE_MIGRATIONS))
    assert code == 1 and "cannot rehearse a --command" in err
