"""One next step for one database state, whoever says it: `check` (text and JSON), `migrate
status`, the poller's migrations result (`detail["next_step"]`) and the incident report built
from what the poller stored all name the same first command (architecture point 16)."""
from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from checks.cli import run
from checks.history import HistoryStore
from checks.history.records import CheckSpec
from checks.monitor.database import Expectations, check_database
from checks.reports import build_report
from tests.conftest import SAMPLE_MIGRATIONS, SAMPLE_SCHEMA

PROJECTS = "20251012082000_add_avatar_projects"
DIR = str(SAMPLE_MIGRATIONS)
SCHEMA = str(SAMPLE_SCHEMA)


@pytest.fixture(autouse=True)
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "history.sqlite3"
    monkeypatch.setenv("DRIFTWATCH_HISTORY_URL", str(path))  # the runbook's audit rows go here
    return path


def call(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def first_commands(url: str, tmp_path: Path) -> dict[str, str | None]:
    """The first command each of them advises for the database at `url`."""
    said: dict[str, str | None] = {}

    _, out, _ = call("check", "--database-url", url, "--schema", SCHEMA, "--migrations", DIR, "--no-fix")
    arrows = [line.strip()[2:] for line in out.split("Migrations (")[1].splitlines() if line.strip().startswith("→ ")]
    said["check text"] = arrows[0] if arrows else None

    _, out, _ = call("check", "--database-url", url, "--schema", SCHEMA, "--migrations", DIR, "--format", "json")
    steps = json.loads(out)["migrations"]["next_steps"]
    said["check json"] = steps[0] if steps else None

    _, out, _ = call("migrate", "status", "--database-url", url, "--migrations", DIR, "--schema", SCHEMA)
    numbered = [line.strip()[3:] for line in out.split("Next: ", 1)[1].splitlines() if line.strip().startswith("1. ")] \
        if "Next: " in out else []
    said["migrate status"] = numbered[0] if numbered else None

    drift, migrations = check_database(url, SAMPLE_SCHEMA, SAMPLE_MIGRATIONS, expectations=Expectations())
    poller = migrations.detail["next_step"]["steps"]
    said["poller"] = f"{poller[0]['say']}: {poller[0]['command']}" if poller else None

    # the report, from what the poller stored: two rounds, so the incident is open
    with HistoryStore.open(str(tmp_path / "store.sqlite3")) as store:
        start = drift.checked_at - timedelta(minutes=1)
        ids = store.register_checks("production", [CheckSpec("drift", "drift", 30), CheckSpec("migrations",
                                                                                                 "migrations", 30)],
                                    now=start)
        for result in (drift, migrations):
            store.record_result(ids[(result.kind, result.name)], result, failure_threshold=1)
        store.update_incident("production", now=drift.checked_at)
        report = build_report(store, "production", since=start, now=drift.checked_at + timedelta(seconds=1)).to_json()
    assert report["status"] == "ongoing"
    item = report["action_items"][0]
    step = report["resolution"]["next_step"]["steps"][0]
    assert item["priority"] == "now" and item["command"] == step["command"]
    assert f"Next: {step['say']}" in item["text"]
    said["report"] = f"{step['say']}: {step['command']}"
    return said


def agree(said: dict[str, str | None]) -> str:
    assert len(set(said.values())) == 1, json.dumps(said, indent=1)
    only = next(iter(said.values()))
    assert only is not None
    return only


def test_the_incident_pending_migration_and_missing_table_one_next_step_everywhere(incident_db, tmp_path):
    said = agree(first_commands(incident_db, tmp_path))
    assert said == f"apply them: driftwatch migrate deploy --migrations {DIR}"


def test_after_the_emergency_runbook_everyone_says_finish_with_fix_not_deploy(incident_db, tmp_path):
    code, out, err = call("runbook", "run", "fix-avatar-projects-table", "--database-url", incident_db,
                          "--schema", SCHEMA, "--apply")
    assert code == 2, out + err  # the column is still missing: drift remains
    said = agree(first_commands(incident_db, tmp_path))
    assert said == f"rehearse the fix (rolled back, nothing changes): driftwatch fix --schema {SCHEMA}"
    assert "migrate deploy" not in said


def test_pending_migration_whose_changes_are_all_there_everyone_says_resolve_applied(incident_db, tmp_path):
    with psycopg.connect(incident_db, autocommit=True) as c:  # the migration's SQL run by hand, not recorded
        c.execute((SAMPLE_MIGRATIONS / PROJECTS / "migration.sql").read_text())
    said = agree(first_commands(incident_db, tmp_path))
    assert said == (f"record it as applied (the database already has its changes): "
                    f"driftwatch migrate resolve --applied {PROJECTS} --migrations {DIR}")


def test_a_failed_migration_in_a_database_in_sync_everyone_says_resolve_applied(incident_db, tmp_path):
    with psycopg.connect(incident_db, autocommit=True) as c:  # it failed, then someone finished it by hand
        c.execute((SAMPLE_MIGRATIONS / PROJECTS / "migration.sql").read_text())
        c.execute("INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, logs) "
                  "VALUES ('x', 'c', %s, now(), 'ERROR: lock timeout')", (PROJECTS,))
    said = agree(first_commands(incident_db, tmp_path))
    assert said == (f"record it as applied (the database already has its changes): "
                    f"driftwatch migrate resolve --applied {PROJECTS} --migrations {DIR}")
