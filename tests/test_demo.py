from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import sys
import uuid
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from checks.demo import DemoEnvironment, sample_migrations, start_demo
from checks.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent


def fresh_state_dir() -> Path:
    """A state dir outside pytest's basetemp.

    As root, pgserver runs PostgreSQL as the `pgserver` user and opens the path up for it;
    a pytest starting concurrently re-closes /tmp/pytest-of-root to 0700 and pg_ctl then
    fails with "Permission denied".
    """
    return Path(tempfile.mkdtemp(prefix="driftwatch-demo-test-"))


def discard(state: Path) -> None:
    if (state / "demo-pg").exists():
        start_demo(state).stop()  # this process's handle: stops the server
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def demo_dir() -> Iterator[Path]:
    state = fresh_state_dir()
    yield state
    discard(state)


@pytest.fixture(scope="module")
def incident(demo_dir: Path) -> DemoEnvironment:
    return start_demo(demo_dir)


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def migration_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, "
            'applied_steps_count FROM "_prisma_migrations" ORDER BY started_at'
        ).fetchall()


def test_the_demo_database_is_the_sample_app_without_avatar_projects(incident):
    assert incident.database == "avatar_studio"
    assert incident.seeded
    assert incident.schema_path == ROOT / "examples" / "avatar-studio" / "prisma" / "schema.prisma"
    assert incident.migrations_path == ROOT / "examples" / "avatar-studio" / "prisma" / "migrations"
    names = tables(incident.url)
    assert {"users", "sessions", "avatars", "pose_datasets", "ai_usage_logs", "_prisma_migrations"} <= names
    assert "avatar_projects" not in names


def test_prisma_migrations_holds_the_first_migration_as_prisma_writes_it(incident):
    first = sample_migrations()[0]
    [row] = migration_rows(incident.url)
    row_id, checksum, finished_at, name, logs, rolled_back_at, started_at, steps = row
    assert uuid.UUID(row_id).version == 4
    assert checksum == hashlib.sha256((first / "migration.sql").read_bytes()).hexdigest()
    assert name == first.name == "20251001083000_init"
    assert finished_at is not None and started_at is not None and finished_at >= started_at
    assert logs is None and rolled_back_at is None
    assert steps == 1


def test_the_demo_holds_the_incident_and_data_the_app_can_read(incident):
    from checks.check import check_database

    with psycopg.connect(incident.url) as conn:
        avatars = conn.execute('SELECT count(*) FROM "avatars"').fetchone()[0]
        owned = conn.execute('SELECT count(*) FROM "avatars" a JOIN "users" u ON u."id" = a."userId"').fetchone()[0]
        statuses = {r[0] for r in conn.execute('SELECT DISTINCT "status"::text FROM "avatars"')}
        signed_in = conn.execute('SELECT u."email" FROM "sessions" s JOIN "users" u ON u."id" = s."userId"').fetchall()
    assert avatars >= 3 and owned == avatars  # every avatar belongs to a user, as the foreign key says
    assert {"COMPLETED", "PROCESSING", "FAILED"} <= statuses  # the enum values the app shows
    assert len(signed_in) == 1
    # the incident exactly as the README tells it: the table and the column of the second migration
    report = check_database(incident.url, incident.schema_path).report
    assert {(f.kind, f.table, f.column or f.name) for f in report.findings} == {
        ("missing_table", "avatar_projects", None),
        ("missing_foreign_key", "avatar_projects", "avatar_projects_userId_fkey"),
        ("missing_index", "avatar_projects", "avatar_projects_userId_idx"),
        ("missing_column", "avatars", "projectId"),
        ("missing_foreign_key", "avatars", "avatars_projectId_fkey"),
        ("missing_index", "avatars", "avatars_projectId_idx"),
    }


def test_a_second_start_reuses_the_server_and_does_not_reseed(demo_dir, incident):
    before = migration_rows(incident.url)
    again = start_demo(demo_dir)
    assert not again.seeded
    assert again.url == incident.url
    assert migration_rows(again.url) == before


def test_the_healthy_scenario_has_both_migrations_in_its_own_database(demo_dir, incident):
    healthy = start_demo(demo_dir, "healthy")
    assert healthy.database != incident.database
    assert "avatar_projects" in tables(healthy.url)
    rows = migration_rows(healthy.url)
    assert [r[3] for r in rows] == [p.name for p in sample_migrations()]
    assert [r[1] for r in rows] == [
        hashlib.sha256((p / "migration.sql").read_bytes()).hexdigest() for p in sample_migrations()
    ]
    assert "avatar_projects" not in tables(incident.url)  # the incident database is untouched


def test_a_restarted_server_keeps_the_seeded_database():
    state = fresh_state_dir()
    try:
        first = start_demo(state)
        rows = migration_rows(first.url)
        first.stop()
        second = start_demo(state)
        assert not second.seeded
        assert migration_rows(second.url) == rows
    finally:
        discard(state)


def test_an_unknown_scenario_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="unknown demo scenario 'staging'"):
        start_demo(tmp_path, "staging")
    assert not (tmp_path / "demo-pg").exists()


def test_the_demo_module_does_not_import_streamlit():
    code = "import sys, checks.demo; sys.exit('streamlit' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
