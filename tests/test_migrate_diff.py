"""`driftwatch migrate diff`: the migrations folder replayed into a scratch database, compared like `check`."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import psycopg
import pytest

from checks.cli import run
from checks.localpg import find_pg_ctl
from checks.migrations import read_migrations_dir
from checks.migrations import tables_created
from checks.operations.next_step import next_steps
from checks.replay import migrate_diff, required_extensions, unexplained
from tests.conftest import SAMPLE_MIGRATIONS, SAMPLE_SCHEMA

NOTES_SCHEMA = """
datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

enum Mood {
  CALM
  LOUD
}

model Note {
  id    Int    @id @default(autoincrement())
  body  String
  email String
  mood  Mood   @default(CALM)

  @@index([email])
}
"""

# Prisma sends each file as one script: semicolons in comments, strings and DO bodies are
# not statement ends, and a DO block may EXECUTE dynamic SQL.
NOTES_INIT = """-- CreateEnum; a comment with a semicolon
CREATE TYPE "Mood" AS ENUM ('CALM', 'LOUD');

/* block comment; with a semicolon */
CREATE TABLE "Note" (
    "id" SERIAL NOT NULL,
    "body" TEXT NOT NULL,
    "mood" "Mood" NOT NULL DEFAULT 'CALM',
    CONSTRAINT "Note_pkey" PRIMARY KEY ("id")
);

INSERT INTO "Note" ("body") VALUES ('first; second'), ($q$it's; quoted$q$);

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM "Note" WHERE "body" LIKE '%;%') THEN
    RAISE NOTICE 'semicolons; kept';
  END IF;
  EXECUTE 'ALTER TABLE "Note" ADD COLUMN "email" TEXT NOT NULL DEFAULT ''nobody@example.com''';
END $$;

ALTER TABLE "Note" ALTER COLUMN "email" DROP DEFAULT;
"""

# CREATE INDEX CONCURRENTLY refuses a transaction block: alone in its file it runs, as with Prisma.
NOTES_INDEX = 'CREATE INDEX CONCURRENTLY "Note_email_idx" ON "Note"("email");\n'


def write_migrations(root: Path, *scripts: str) -> Path:
    folder = root / "migrations"
    folder.mkdir()
    (folder / "migration_lock.toml").write_text('provider = "postgresql"\n')
    for i, script in enumerate(scripts):
        sub = folder / f"2025010100000{i}_step{i}"
        sub.mkdir()
        (sub / "migration.sql").write_text(script)
    return folder


def write_schema(root: Path, text: str = NOTES_SCHEMA) -> Path:
    path = root / "schema.prisma"
    path.write_text(text)
    return path


def diff_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["migrate", "diff", *args], out, err)
    return code, out.getvalue(), err.getvalue()


def user_objects(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
            "UNION ALL SELECT n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND t.typtype = 'e' "
            "UNION ALL SELECT nspname, '(schema)' FROM pg_namespace WHERE nspname NOT IN "
            "('pg_catalog', 'information_schema', 'pg_toast', 'public') AND nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2"
        ).fetchall()


# ---------------------------------------------------------------------------------------------
# The sample app, on the embedded PostgreSQL (the default: nothing to set up)


def test_the_sample_apps_two_migrations_build_its_schema(tmp_path):
    code, out, err = diff_cli("--migrations", str(SAMPLE_MIGRATIONS), "--schema", str(SAMPLE_SCHEMA),
                              "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["in_sync"] is True and payload["findings"] == []
    assert payload["replayed"] == 2 and payload["failed"] is None


def test_only_the_first_migration_leaves_avatar_projects_missing_and_says_no_migration_creates_it(tmp_path):
    folder = tmp_path / "migrations"
    folder.mkdir()
    shutil.copy(SAMPLE_MIGRATIONS / "migration_lock.toml", folder)
    first = sorted(p for p in SAMPLE_MIGRATIONS.iterdir() if p.is_dir())[0]
    shutil.copytree(first, folder / first.name)

    code, out, err = diff_cli("--migrations", str(folder), "--schema", str(SAMPLE_SCHEMA), "--format", "json")
    assert code == 2, err
    payload = json.loads(out)
    assert payload["replayed"] == 1 and payload["failed"] is None
    assert {(f["kind"], f["table"], f["column"]) for f in payload["findings"] if f["severity"] == "critical"} == {
        ("missing_table", "avatar_projects", None), ("missing_column", "avatars", "projectId")}
    assert "no migration creates table avatar_projects: create one with `prisma migrate dev`" in payload["next_steps"]

    code, text, _ = diff_cli("--migrations", str(folder), "--schema", str(SAMPLE_SCHEMA), "--no-fix")
    assert code == 2
    assert "Replayed 1 of 1 migration(s)" in text and "missing_table" in text
    assert "no migration creates table avatar_projects" in text


def test_a_migration_needing_an_extension_no_server_has_is_one_line_naming_both(tmp_path):
    folder = write_migrations(tmp_path, NOTES_INIT, 'CREATE EXTENSION IF NOT EXISTS "driftwatch_nowhere";\n')
    code, out, err = diff_cli("--migrations", str(folder), "--schema", str(write_schema(tmp_path)))
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert "20250101000001_step1" in err and "'driftwatch_nowhere'" in err and "--shadow-database-url" in err


@pytest.mark.skipif(find_pg_ctl() is None, reason="no system PostgreSQL (pg_ctl) to fall back on")
def test_an_extension_the_embedded_server_lacks_is_replayed_on_the_systems_postgresql(tmp_path):
    folder = write_migrations(tmp_path, 'CREATE EXTENSION IF NOT EXISTS "pg_trgm";\n' + NOTES_INIT, NOTES_INDEX)
    code, out, err = diff_cli("--migrations", str(folder), "--schema", str(write_schema(tmp_path)))
    assert code == 0, err
    assert "into local PostgreSQL" in out


# ---------------------------------------------------------------------------------------------
# Into a given shadow database


def test_do_blocks_semicolons_in_strings_and_comments_and_a_lone_concurrently_replay_like_prisma(
        tmp_path, empty_db):
    folder = write_migrations(tmp_path, NOTES_INIT, NOTES_INDEX)
    result = migrate_diff(folder, write_schema(tmp_path), shadow_url=empty_db)
    assert result.failed is None and result.replayed == 2
    assert result.report.findings == ()
    assert result.exit_code() == 0
    assert [name for name, _ in result.timings] == ["20250101000000_step0", "20250101000001_step1"]


def test_concurrently_next_to_other_statements_fails_as_it_does_under_prisma(tmp_path, empty_db):
    folder = write_migrations(tmp_path, NOTES_INIT, 'SELECT 1;\n' + NOTES_INDEX)
    code, out, err = diff_cli("--migrations", str(folder), "--schema", str(write_schema(tmp_path)),
                              "--shadow-database-url", empty_db, "--format", "json")
    assert code == 1
    payload = json.loads(out)
    assert payload["replayed"] == 1 and payload["in_sync"] is False
    assert payload["failed"]["name"] == "20250101000001_step1"
    assert payload["failed"]["error"].startswith("25001 ")
    assert "20250101000001_step1" in err and err.count("\n") == 1
    # what came before is still compared: the index is what is missing
    assert [f["kind"] for f in payload["findings"]] == ["missing_index"]


def test_a_failing_migration_is_reported_with_its_name_and_postgresqls_error(tmp_path, empty_db):
    folder = write_migrations(tmp_path, NOTES_INIT, 'ALTER TABLE "Nope" ADD COLUMN "x" TEXT;\n', NOTES_INDEX)
    result = migrate_diff(folder, write_schema(tmp_path), shadow_url=empty_db)
    assert result.replayed == 1 and result.total == 3
    assert result.failed is not None and result.failed.name == "20250101000001_step1"
    assert result.failed.sqlstate == "42P01" and '"Nope"' in result.failed.error
    assert result.exit_code() == 1
    assert result.advice().texts()[0].startswith("migration 20250101000001_step1 fails on an empty database")


def test_a_shadow_database_that_is_not_empty_is_refused_and_left_alone(tmp_path, make_db):
    url = make_db('CREATE TABLE "keep_me" (id int)')
    folder = write_migrations(tmp_path, NOTES_INIT)
    code, out, err = diff_cli("--migrations", str(folder), "--schema", str(write_schema(tmp_path)),
                              "--shadow-database-url", url)
    assert code == 1 and out == ""
    assert "not empty" in err and "public.keep_me" in err and err.count("\n") == 1
    assert user_objects(url) == [("public", "keep_me")]


def test_the_shadow_database_is_empty_again_afterwards_even_after_a_failure(tmp_path, empty_db):
    folder = write_migrations(
        tmp_path,
        NOTES_INIT + 'CREATE SCHEMA "audit"; CREATE TABLE "audit"."log" (id int);\n'
                     'CREATE FUNCTION "touch"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n'
                     'CREATE VIEW "NoteView" AS SELECT "id" FROM "Note";\n',
        "SELECT 1/0;\n")
    result = migrate_diff(folder, write_schema(tmp_path), shadow_url=empty_db)
    assert result.failed is not None and result.failed.sqlstate == "22012"
    assert user_objects(empty_db) == []
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                            "WHERE n.nspname = 'public'").fetchone()[0] == 0
    # and it can be used again
    again = tmp_path / "again"
    again.mkdir()
    assert migrate_diff(write_migrations(again, NOTES_INIT, NOTES_INDEX), write_schema(again),
                        shadow_url=empty_db).exit_code() == 0


def test_an_extension_created_dynamically_that_the_server_lacks_is_still_named(tmp_path, empty_db):
    folder = write_migrations(
        tmp_path, "DO $$ BEGIN EXECUTE 'CREATE EXTENSION ' || 'driftwatch_no_such_extension'; END $$;\n")
    code, out, err = diff_cli("--migrations", str(folder), "--schema", str(write_schema(tmp_path)),
                              "--shadow-database-url", empty_db)
    assert code == 1
    assert "20250101000000_step0" in err and "driftwatch_no_such_extension" in err
    assert user_objects(empty_db) == []


# ---------------------------------------------------------------------------------------------
# Pure functions


def test_required_extensions_reads_statements_not_comments(tmp_path):
    folder = read_migrations_dir(write_migrations(
        tmp_path,
        '-- CREATE EXTENSION "commented_out";\nCREATE EXTENSION IF NOT EXISTS "pg_trgm";\n',
        'create extension citext;\nCREATE EXTENSION IF NOT EXISTS pg_trgm;\nCREATE EXTENSION plpgsql;\n'))
    assert required_extensions(folder) == [("20250101000000_step0", "pg_trgm"), ("20250101000001_step1", "citext")]


def test_tables_created_reads_create_and_rename(tmp_path):
    folder = read_migrations_dir(write_migrations(
        tmp_path,
        'CREATE TABLE "users" (id int);\n-- CREATE TABLE "ghost" (id int);\n',
        'CREATE TABLE IF NOT EXISTS app."teams" (id int);\nALTER TABLE "old" RENAME TO "projects";\n'))
    created = tables_created(folder)
    assert [t for t in ["users", "teams", "projects", "ghost", "user"] if t not in created] == ["ghost", "user"]


def test_unexplained_keeps_the_live_findings_the_replay_has_too(tmp_path, empty_db):
    from checks.check import check_database

    folder = write_migrations(tmp_path, NOTES_INIT)  # no index migration
    replay = migrate_diff(folder, write_schema(tmp_path), shadow_url=empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(NOTES_INIT + 'ALTER TABLE "Note" DROP COLUMN "body";')  # live: no body column either
    live = check_database(empty_db, write_schema(tmp_path)).report
    assert sorted(f.kind for f in live.findings) == ["missing_column", "missing_index"]
    assert [f.kind for f in unexplained(live.findings, replay.report.findings)] == ["missing_index"]


def test_the_next_step_names_missing_tables_no_migration_creates(tmp_path):
    from checks.findings import DriftReport, Finding
    from checks.migrations import MigrationSummary

    folder = write_migrations(tmp_path, NOTES_INIT)
    missing = DriftReport(tuple(Finding("missing_table", "critical", "public", t, None, None, None, None, t, None, "",
                                        None) for t in ("Note", "Tag")))
    history = MigrationSummary(str(folder), managed=True, up_to_date=True,
                               by_state={"applied": ("20250101000000_step0",)},
                               created_tables=tables_created(read_migrations_dir(folder)))
    assert next_steps(missing, history).texts() == [
        "no migration creates table Tag: create one with `prisma migrate dev`"]


def test_migrate_diff_and_check_say_a_missing_table_no_migration_creates_in_the_same_words(tmp_path, empty_db):
    folder = write_migrations(tmp_path, NOTES_INIT)
    schema = write_schema(tmp_path, NOTES_SCHEMA + '\nmodel Tag {\n  id Int @id\n}\n')
    replay = migrate_diff(folder, schema, shadow_url=empty_db)
    from checks.findings import DriftReport
    from checks.migrations import MigrationSummary

    tag_missing = DriftReport(tuple(f for f in replay.report.findings if f.table == "Tag"))
    history = MigrationSummary(str(folder), managed=True, up_to_date=True,
                               by_state={"applied": ("20250101000000_step0",)},
                               created_tables=tables_created(read_migrations_dir(folder)))
    said = "no migration creates table Tag: create one with `prisma migrate dev`"
    assert said in replay.advice().texts() and said in replay.to_json()["next_steps"]
    assert next_steps(tag_missing, history).texts() == [said]


def test_check_says_no_migration_creates_the_missing_table_only_when_none_does(tmp_path, incident_db):
    from checks.migrations import deploy

    # the incident: the pending migration creates avatar_projects, so deploying is the advice
    out = io.StringIO()
    assert run(["check", "--database-url", incident_db, "--schema", str(SAMPLE_SCHEMA), "--no-fix",
                "--migrations", str(SAMPLE_MIGRATIONS)], out, io.StringIO()) == 2
    assert "migrate deploy" in out.getvalue() and "no migration creates" not in out.getvalue()

    # the other cause: the schema gained a model and nobody wrote the migration
    folder = tmp_path / "migrations"
    folder.mkdir()
    shutil.copy(SAMPLE_MIGRATIONS / "migration_lock.toml", folder)
    first = sorted(p for p in SAMPLE_MIGRATIONS.iterdir() if p.is_dir())[0]
    shutil.copytree(first, folder / first.name)
    deploy(incident_db, folder)  # nothing pending: the first migration is already recorded
    out = io.StringIO()
    assert run(["check", "--database-url", incident_db, "--schema", str(SAMPLE_SCHEMA), "--no-fix",
                "--migrations", str(folder)], out, io.StringIO()) == 2
    assert "all 1 applied" in out.getvalue()
    assert "→ no migration creates table avatar_projects: create one with `prisma migrate dev`" in out.getvalue()
    out = io.StringIO()
    run(["check", "--database-url", incident_db, "--schema", str(SAMPLE_SCHEMA), "--format", "json",
         "--migrations", str(folder)], out, io.StringIO())
    assert json.loads(out.getvalue())["migrations"]["next_steps"] == [
        "no migration creates table avatar_projects: create one with `prisma migrate dev`"]


def test_a_shadow_url_with_prismas_schema_parameter_replays_there_and_drops_that_schema_after(empty_db):
    result = migrate_diff(SAMPLE_MIGRATIONS, SAMPLE_SCHEMA, shadow_url=empty_db + "&schema=app"
                          if "?" in empty_db else empty_db + "?schema=app")
    assert result.exit_code() == 0 and result.replayed == 2
    assert user_objects(empty_db) == []
