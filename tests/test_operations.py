"""The operations layer (checks.operations): the workflows the CLI and the dashboard share,
and the next step in every state users reach (issue 7 §1)."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from checks.check import check_database
from checks.cli import run
from checks.errors import LockBusy
from checks.findings import CRITICAL, DriftReport, Finding
from checks.guard import ADVISORY_LOCK_KEY
from checks.history import HistoryStore
from checks.migrations import MigrationSummary, summarize
from checks.operations import (
    Caller,
    apply_fix,
    deploy_migrations,
    next_steps,
    plan_fix,
    rehearse_fix,
    resolve_migration,
    run_runbook,
)
from checks.runbooks import load_runbook
from tests.conftest import ROOT, SAMPLE_APP, SAMPLE_MIGRATIONS, SAMPLE_SCHEMA

INIT, PROJECTS = "20251001083000_init", "20251012082000_add_avatar_projects"
DIR = str(SAMPLE_MIGRATIONS)
RUNBOOK = "fix-avatar-projects-table"


@pytest.fixture(autouse=True)
def history(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "history.sqlite3"
    monkeypatch.setenv("DRIFTWATCH_HISTORY_URL", str(path))
    return path


def call(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def actions() -> list:
    with HistoryStore.open() as store:
        return list(reversed(store.list_actions(limit=50)))  # oldest first


# ---------------------------------------------------------------------------------------------
# The next step, as a pure function: one test per state of issue 7 §1


DRIFT = DriftReport((Finding("missing_table", CRITICAL, "public", "avatar_projects", None, None, "AvatarProject",
                             None, "avatar_projects", None, "table avatar_projects does not exist", None),))
IN_SYNC = DriftReport(())


def summary(**kw) -> MigrationSummary:
    base = dict(directory=DIR, managed=True, up_to_date=False, local=(INIT, PROJECTS), empty=False)
    return MigrationSummary(**{**base, **kw})


def commands(advice) -> list[str]:
    return [s.command for s in advice.steps]


def test_a_pending_migration_with_its_table_missing_says_deploy_or_fix_then_resolve():
    advice = next_steps(DRIFT, summary(by_state={"applied": (INIT,), "pending": (PROJECTS,)}), schema="s.prisma")
    assert advice.state == "pending" and advice.warning is None
    assert commands(advice) == [f"driftwatch migrate deploy --migrations {DIR}"]
    assert [s.command for s in advice.alternative] == [
        "driftwatch fix --apply --schema s.prisma", f"driftwatch migrate resolve --applied {PROJECTS} --migrations {DIR}"]


def test_a_pending_migration_whose_objects_exist_warns_that_deploy_would_fail_and_gives_the_way_out():
    advice = next_steps(DRIFT, summary(by_state={"applied": (INIT,), "pending": (PROJECTS,)},
                                       existing={PROJECTS: ("table avatar_projects",)}), schema="s.prisma")
    assert advice.state == "pending_collides"
    assert "migrate deploy would fail" in advice.warning and "table avatar_projects" in advice.warning
    assert commands(advice) == ["driftwatch fix --schema s.prisma", "driftwatch fix --apply --schema s.prisma",
                                f"driftwatch migrate resolve --applied {PROJECTS} --migrations {DIR}"]
    assert not any("migrate deploy" in c for c in commands(advice))


def test_a_pending_migration_already_there_in_a_database_in_sync_is_only_recorded():
    advice = next_steps(IN_SYNC, summary(by_state={"applied": (INIT,), "pending": (PROJECTS,)},
                                         existing={PROJECTS: ("table avatar_projects",)}))
    assert advice.state == "pending_collides"
    assert commands(advice) == [f"driftwatch migrate resolve --applied {PROJECTS} --migrations {DIR}"]


def test_a_failed_migration_in_a_database_now_in_sync_says_resolve_applied_never_deploy():
    advice = next_steps(IN_SYNC, summary(by_state={"applied": (INIT,), "failed": (PROJECTS,)}))
    assert advice.state == "failed_in_sync"
    assert commands(advice) == [f"driftwatch migrate resolve --applied {PROJECTS} --migrations {DIR}"]
    assert all("deploy" not in (s.command or "") for s in (*advice.steps, *advice.alternative))


def test_a_failed_migration_with_drift_remaining_says_roll_back_then_deploy():
    advice = next_steps(DRIFT, summary(by_state={"applied": (INIT,), "failed": (PROJECTS,)}))
    assert advice.state == "failed_drift"
    assert commands(advice) == [f"driftwatch migrate resolve --rolled-back {PROJECTS} --migrations {DIR}",
                                f"driftwatch migrate deploy --migrations {DIR}"]


def test_a_failed_migration_without_a_drift_check_gives_both_ways_out():
    advice = next_steps(None, summary(by_state={"failed": (PROJECTS,)}))
    assert advice.state == "failed"
    assert [s.action for s in advice.steps] == ["resolve_rolled_back", "deploy"]
    assert [s.action for s in advice.alternative] == ["resolve_applied"]


def test_an_edited_migration_is_named_with_where_to_look():
    advice = next_steps(IN_SYNC, summary(by_state={"applied": (INIT,), "edited": (PROJECTS,)}))
    assert advice.state == "edited"
    assert commands(advice) == [f"git log -p -- {DIR}/{PROJECTS}/migration.sql"]


def test_a_migration_missing_locally_asks_whether_this_is_the_right_folder():
    advice = next_steps(IN_SYNC, summary(by_state={"applied": (INIT,), "missing_locally": ("2024_gone",)}))
    assert advice.state == "missing_locally"
    assert "right branch or folder" in advice.steps[0].say


def test_a_database_prisma_never_managed_is_baselined_not_deployed():
    advice = next_steps(DRIFT, summary(managed=False, by_state={"pending": (INIT, PROJECTS)}))
    assert advice.state == "unmanaged" and "P3005" in advice.warning
    assert commands(advice) == [f"driftwatch migrate resolve --applied {INIT} --migrations {DIR}",
                                f"driftwatch migrate deploy --migrations {DIR}"]
    in_sync = next_steps(IN_SYNC, summary(managed=False, by_state={"pending": (INIT, PROJECTS)}))
    assert [s.migration for s in in_sync.steps] == [INIT, PROJECTS]
    assert all(s.action == "resolve_applied" for s in in_sync.steps)


def test_an_empty_database_prisma_never_managed_is_simply_deployed():
    advice = next_steps(DRIFT, summary(managed=False, empty=True, by_state={"pending": (INIT, PROJECTS)}))
    assert (advice.state, commands(advice)) == ("unmanaged_empty", [f"driftwatch migrate deploy --migrations {DIR}"])


def test_drift_with_every_migration_applied_is_fixed_and_recorded_as_a_migration():
    advice = next_steps(DRIFT, summary(up_to_date=True, by_state={"applied": (INIT, PROJECTS)}), schema="s.prisma")
    assert advice.state == "drift"
    assert commands(advice)[-1] == f"driftwatch fix --apply --schema s.prisma --record-migration {DIR}"


def test_a_missing_table_no_migration_creates_asks_for_a_migration_first():
    history = summary(up_to_date=True, by_state={"applied": (INIT,)}, created_tables=frozenset({"users"}))
    advice = next_steps(DRIFT, history, schema="s.prisma")
    assert advice.state == "drift"
    assert advice.texts() == ["no migration creates table avatar_projects: create one with `prisma migrate dev`"]
    assert advice.alternative[-1].command.endswith(f"--record-migration {DIR}")
    pending = next_steps(DRIFT, summary(by_state={"applied": (INIT,), "pending": (PROJECTS,)},
                                        created_tables=frozenset({"users"})))
    assert [s.action for s in pending.steps] == ["deploy", "create_migration"]


def test_in_sync_and_up_to_date_needs_nothing():
    advice = next_steps(IN_SYNC, summary(up_to_date=True, by_state={"applied": (INIT, PROJECTS)}))
    assert (advice.state, advice.steps) == ("in_sync", ())


def test_an_unreadable_history_is_judged_by_the_drift_alone():
    advice = next_steps(DRIFT, MigrationSummary(DIR, error="cannot connect"))
    assert advice.state == "history_unreadable" and advice.steps[0].action == "fix"


# ---------------------------------------------------------------------------------------------
# The next step against real databases, through the CLI


def test_check_says_deploy_would_fail_once_the_emergency_sql_ran(incident_db):
    code, out, err = call("runbook", "run", RUNBOOK, "--database-url", incident_db, "--schema", str(SAMPLE_SCHEMA),
                          "--apply")
    assert code == 2, out + err
    history = summarize(incident_db, SAMPLE_MIGRATIONS)
    assert history.existing == {PROJECTS: ("table avatar_projects", "index avatar_projects_userId_idx")}
    code, out, _ = call("check", "--database-url", incident_db, "--schema", str(SAMPLE_SCHEMA), "--no-fix")
    assert code == 2
    migrations = out.split("Migrations (")[1]
    assert "migrate deploy would fail (P3018)" in migrations
    assert f"driftwatch migrate resolve --applied {PROJECTS}" in migrations
    assert "→ apply them: driftwatch migrate deploy" not in migrations


def test_migrate_status_says_resolve_applied_for_a_failed_migration_once_the_database_is_in_sync(incident_db):
    url = incident_db
    with psycopg.connect(url, autocommit=True) as c:  # the migration failed, then someone finished it by hand
        c.execute((SAMPLE_MIGRATIONS / PROJECTS / "migration.sql").read_text())
        c.execute("INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, logs) "
                  "VALUES ('x', 'c', %s, now(), 'ERROR: lock timeout')", (PROJECTS,))
    code, out, _ = call("migrate", "status", "--database-url", url, "--migrations", DIR)
    assert code == 2
    nxt = out.split("Next: ")[1]
    assert f"driftwatch migrate resolve --applied {PROJECTS}" in nxt
    assert "driftwatch migrate deploy" not in nxt
    code, out, _ = call("migrate", "resolve", "--applied", PROJECTS, "--database-url", url, "--migrations", DIR)
    assert code == 0
    code, out, _ = call("migrate", "status", "--database-url", url, "--migrations", DIR)
    assert code == 0 and "Next:" not in out


# ---------------------------------------------------------------------------------------------
# The operations themselves: values in, values out, audit rows attributed to the caller


def test_apply_fix_returns_what_it_did_and_attributes_the_audit_row(incident_db, history):
    caller = Caller(actor="ana@example.com", environment="staging")
    planned = plan_fix(incident_db, SAMPLE_SCHEMA)
    assert planned.error is None and len(planned.run) == 6 and planned.audit_id is None
    assert planned.pending == [PROJECTS]  # the trap a hand fix sets
    rehearsed = rehearse_fix(incident_db, SAMPLE_SCHEMA, caller=caller)
    assert rehearsed.ok and rehearsed.guarded.outcomes[0].rehearsed and not rehearsed.applied
    done = apply_fix(incident_db, SAMPLE_SCHEMA, caller=caller)
    assert done.ok and done.applied and done.after.in_sync() and done.left == []
    assert done.next_steps().state == "pending_collides"  # now deploy would fail: resolve instead
    rows = actions()
    assert [(a.kind, a.outcome, a.actor, a.environment) for a in rows] == [
        ("rehearsal", "rehearsed", "ana@example.com", "staging"), ("fix", "applied", "ana@example.com", "staging")]
    assert rows[-1].id == done.audit_id and rows[-1].drift_after["findings"] == []


def test_a_busy_lock_is_an_error_value_and_a_refused_audit_row(incident_db):
    holder = psycopg.connect(incident_db, autocommit=True, application_name="prisma-migrate")
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        from checks.operations import limits

        done = apply_fix(incident_db, SAMPLE_SCHEMA, limits=limits(advisory_wait=0.2))
    finally:
        holder.close()
    assert isinstance(done.error, LockBusy) and done.stage == "lock" and not done.applied
    assert [(a.kind, a.outcome, a.id) for a in actions()] == [("fix", "refused", done.audit_id)]


def test_deploy_and_resolve_are_audited_with_their_sql_and_the_drift(incident_db):
    done = deploy_migrations(incident_db, SAMPLE_MIGRATIONS, caller=Caller(actor="ops"))
    assert done.error is None and [a.name for a in done.result.applied] == [PROJECTS]
    [row] = actions()
    assert (row.kind, row.outcome, row.actor) == ("deploy", "applied", "ops")
    assert row.statements.startswith(f"-- migration {PROJECTS}\n") and 'CREATE TABLE "avatar_projects"' in row.statements
    assert len(row.drift_before["findings"]) == 6 and row.drift_after["findings"] == []

    again = resolve_migration(incident_db, SAMPLE_MIGRATIONS, PROJECTS, applied=True)
    assert again.error is not None and again.error.code == "P3008"
    row = actions()[-1]
    assert (row.kind, row.outcome, row.target) == ("resolve", "refused", PROJECTS)
    assert row.drift_before is not None


def test_resolve_records_the_rows_it_wrote(incident_db):
    with psycopg.connect(incident_db, autocommit=True) as c:
        c.execute((SAMPLE_MIGRATIONS / PROJECTS / "migration.sql").read_text())
    done = resolve_migration(incident_db, SAMPLE_MIGRATIONS, PROJECTS, applied=True)
    assert done.error is None
    row = actions()[-1]
    assert row.outcome == "applied" and row.statements.startswith('INSERT INTO "public"."_prisma_migrations"')
    assert row.drift_before["findings"] == []


def test_a_runbook_rehearsal_warns_about_the_pending_migration_and_shows_what_would_remain(incident_db):
    book = load_runbook(SAMPLE_APP / "runbooks", RUNBOOK)
    result = run_runbook(incident_db, SAMPLE_SCHEMA, book)
    assert result.error is None and not result.apply
    assert result.collisions == {PROJECTS: ("table avatar_projects", "index avatar_projects_userId_idx")}
    remaining = {(f.kind, f.table, f.column or f.name) for f in result.after.findings}
    assert remaining == {
        ("missing_foreign_key", "avatar_projects", "avatar_projects_userId_fkey"),
        ("missing_column", "avatars", "projectId"),
        ("missing_index", "avatars", "avatars_projectId_idx"),
        ("missing_foreign_key", "avatars", "avatars_projectId_fkey"),
    }
    assert len(check_database(incident_db, SAMPLE_SCHEMA).report.findings) == 6  # rolled back

    code, out, err = call("runbook", "run", RUNBOOK, "--database-url", incident_db, "--schema", str(SAMPLE_SCHEMA))
    assert (code, err) == (0, "")
    assert f"{PROJECTS} (table avatar_projects, index avatar_projects_userId_idx)" in out.split("Before:")[0]
    after = out.split("Still missing after it (seen inside the rehearsal, before the rollback):")[1]
    assert "avatars_projectId_fkey" in after and "missing_table" not in after


def test_a_store_that_cannot_record_means_nothing_is_written(incident_db, tmp_path):
    blocked = tmp_path / "afile"
    blocked.write_text("")
    done = apply_fix(incident_db, SAMPLE_SCHEMA, caller=Caller(history_url=f"sqlite:///{blocked}/h.sqlite3"))
    assert done.error is not None and done.stage == "audit" and not done.applied
    assert len(check_database(incident_db, SAMPLE_SCHEMA).report.findings) == 6


def test_a_process_killed_mid_action_leaves_a_started_row(tmp_path):
    store_path = tmp_path / "killed.sqlite3"
    code = ("import os; from checks.history import HistoryStore, timed_action\n"
            f"store = HistoryStore.open({str(store_path)!r})\n"
            "with timed_action(store, 'fix', statements='ALTER TABLE a ADD COLUMN b int;'):\n"
            "    os._exit(9)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60)
    assert done.returncode == 9
    with HistoryStore.open(str(store_path)) as store:
        [row] = store.list_actions()
    assert (row.outcome, row.finished_at, row.statements) == ("started", None, "ALTER TABLE a ADD COLUMN b int;")


def test_no_command_module_imports_another_and_no_dashboard_module_imports_the_commands():
    import ast

    for path in [*(ROOT / "checks" / "commands").glob("*.py"), *(ROOT / "dashboard").rglob("*.py")]:
        in_commands = path.parent.name == "commands"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                name = "." * node.level + (node.module or "")
                assert not name.startswith("checks.commands"), f"{path.relative_to(ROOT)} imports {name}"
                assert not (in_commands and node.level), f"{path.relative_to(ROOT)} imports {name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("checks.commands"), f"{path.relative_to(ROOT)} imports {alias.name}"


def test_check_json_keeps_the_migrations_object_as_it_was(incident_db):
    _, out, _ = call("check", "--database-url", incident_db, "--schema", str(SAMPLE_SCHEMA), "--format", "json")
    assert json.loads(out)["migrations"] == {
        "directory": DIR, "managed": True, "up_to_date": False,
        "by_state": {"applied": [INIT], "pending": [PROJECTS]},
        "next_steps": [f"apply them: driftwatch migrate deploy --migrations {DIR}"]}


def test_the_dashboard_acts_through_the_operations_as_the_signed_in_user(incident_db):
    from dashboard import data

    target = data.Target(incident_db, str(SAMPLE_SCHEMA))
    before = data.check(target)
    assert before.advice.state == "pending" and before.advice.first.action == "deploy"
    done = data.deploy(target, actor="ana@example.com", environment="demo")
    assert done.error is None and [a.name for a in done.result.applied] == [PROJECTS]
    after = data.check(target)  # the cached check was dropped: the database is asked again
    assert after.report.in_sync() and after.advice.state == "in_sync"
    [row] = actions()
    assert (row.kind, row.actor, row.environment, row.outcome) == ("deploy", "ana@example.com", "demo", "applied")


def test_the_pollers_migrations_result_carries_the_same_next_step(incident_db):
    from checks.monitor.database import check_database as probe

    _, migrations = probe(incident_db, str(SAMPLE_SCHEMA), str(SAMPLE_MIGRATIONS))
    assert migrations.detail["next_step"]["state"] == "pending"
    assert migrations.detail["next_step"]["steps"][0]["command"] == f"driftwatch migrate deploy --migrations {DIR}"
    book = load_runbook(SAMPLE_APP / "runbooks", RUNBOOK)
    assert run_runbook(incident_db, SAMPLE_SCHEMA, book, apply=True).error is None
    _, migrations = probe(incident_db, str(SAMPLE_SCHEMA), str(SAMPLE_MIGRATIONS))
    assert migrations.detail["next_step"]["state"] == "pending_collides"
    assert "finish the job with fix" in migrations.reason and "driftwatch fix" in migrations.reason
