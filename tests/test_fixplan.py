"""`driftwatch fix`: plans that apply, rehearsals that change nothing, guarded and audited writes."""
from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import psycopg
import pytest

from checks.catalog import Catalog, Column, Enum, Index, IndexColumn, PrimaryKey, Table, enum_type_ref
from checks.cli import run
from checks.diff import diff
from checks.fixplan import DESTRUCTIVE, PHASES, SAFE, _widens, classify, plan_fixes, transactions
from checks.history import HistoryStore
from checks.inspect.live import inspect_database
from tests.conftest import SAMPLE_MIGRATIONS, SAMPLE_SCHEMA, migration_sql

INCIDENT = {
    ("missing_table", "avatar_projects", None),
    ("missing_index", "avatar_projects", "avatar_projects_userId_idx"),
    ("missing_foreign_key", "avatar_projects", "avatar_projects_userId_fkey"),
    ("missing_column", "avatars", None),
    ("missing_index", "avatars", "avatars_projectId_idx"),
    ("missing_foreign_key", "avatars", "avatars_projectId_fkey"),
}


@pytest.fixture(autouse=True)
def history(tmp_path, monkeypatch) -> Path:
    """Every command here records to the audit log: keep it in the test's folder, never the user's."""
    path = tmp_path / "history.sqlite3"
    monkeypatch.setenv("DRIFTWATCH_HISTORY_URL", str(path))
    return path


def call(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def fix(url: str, *extra: str, schema: Path | str = SAMPLE_SCHEMA) -> tuple[int, str, str]:
    return call("fix", "--database-url", url, "--schema", str(schema), *extra)


def fix_json(url: str, *extra: str, schema: Path | str = SAMPLE_SCHEMA) -> tuple[int, dict, str]:
    code, out, err = fix(url, "--format", "json", *extra, schema=schema)
    return code, json.loads(out), err


def check_json(url: str, schema: Path | str = SAMPLE_SCHEMA) -> tuple[int, dict]:
    code, out, err = call("check", "--database-url", url, "--schema", str(schema), "--format", "json")
    assert err == "", err
    doc = json.loads(out)
    return code, {k: doc[k] for k in ("in_sync", "summary", "findings")}


def kinds(report: dict) -> set[tuple]:
    return {(f["kind"], f["table"], f["name"]) for f in report["findings"]}


def catalog(url: str, schemas=("public",)) -> Catalog:
    return inspect_database(url, list(schemas))


def actions(kind: str | None = None) -> list:
    with HistoryStore.open() as store:
        return store.list_actions(limit=50, kind=kind)


def scalar(url: str, sql: str, params=()):
    with psycopg.connect(url, autocommit=True) as c:
        row = c.execute(sql, params).fetchone()
        return row[0] if row else None


def write_schema(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schema.prisma"
    path.write_text('datasource db {\n  provider = "postgresql"\n}\n\n' + text)
    return path


# ---------------------------------------------------------------------------------------------
# The incident, end to end


def test_the_incident_end_to_end_check_then_plan_then_a_rehearsal_that_changes_nothing_then_apply_then_clean(
        incident_db):
    code, before = check_json(incident_db)
    assert code == 2 and kinds(before) == INCIDENT
    untouched = catalog(incident_db)

    code, plan, err = fix_json(incident_db)
    assert (code, err) == (0, "")
    assert [s["safety"] for s in plan["statements"]] == [SAFE] * 6
    assert {(f["kind"], f["table"], f["name"]) for s in plan["statements"] for f in s["findings"]} == INCIDENT
    assert plan["rehearsal"]["clean"] is True and plan["applied"] is False
    assert [r["status"] for r in plan["rehearsal"]["statements"]] == ["rehearsed"] * 6
    assert catalog(incident_db) == untouched  # the rehearsal rolled back

    code, out, err = fix(incident_db, "--apply")
    assert (code, err) == (0, ""), out
    assert "Applied 6 statements in one transaction" in out and "Everything the plan covered is fixed." in out
    assert check_json(incident_db) == (0, {"in_sync": True, "summary": {"critical": 0, "warning": 0, "info": 0},
                                           "findings": []})

    (done,) = actions("fix")
    (rehearsal,) = actions("rehearsal")
    assert rehearsal.outcome == "rehearsed" and rehearsal.statements == done.statements
    assert done.outcome == "applied" and done.duration_ms is not None
    assert len(done.drift_before["findings"]) == 6 and done.drift_after["findings"] == []
    assert done.database.startswith("postgresql://") and "avatar_projects" in done.statements
    # the audit keeps the exact SQL that ran, which is Prisma's own second migration
    for statement in done.statements.split(";\n"):
        assert statement.strip().rstrip(";") in migration_sql(1)


def test_the_plan_is_the_same_statements_prisma_wrote_in_the_missing_migration(incident_db):
    _, plan, _ = fix_json(incident_db)
    for s in plan["statements"]:
        assert s["sql"] in migration_sql(1)


def test_nothing_to_fix_exits_zero_without_a_rehearsal_or_an_audit_row(make_db):
    url = make_db(migration_sql(0) + migration_sql(1))
    code, doc, _ = fix_json(url, "--apply")
    assert code == 0 and doc["statements"] == [] and doc["rehearsal"] is None and doc["exit"] == 0
    assert actions() == []


# ---------------------------------------------------------------------------------------------
# Order


ORDERING_SCHEMA = """
enum Plan {
  FREE
  PRO
}

model Account {
  id      Int      @id
  teamId  Int?
  team    Team?    @relation(fields: [teamId], references: [id])
}

model Team {
  id       Int       @id
  plan     Plan      @default(FREE)
  accounts Account[]
  @@index([plan])
}
"""


def test_a_plan_creating_an_enum_a_table_using_it_and_a_foreign_key_to_that_table_applies(make_db, tmp_path):
    schema = write_schema(tmp_path, ORDERING_SCHEMA)
    url = make_db('CREATE TABLE "Account" ("id" INTEGER NOT NULL, CONSTRAINT "Account_pkey" PRIMARY KEY ("id"));'
                  'INSERT INTO "Account" VALUES (1), (2);')
    code, plan, _ = fix_json(url, schema=schema)
    assert code == 0 and plan["rehearsal"]["clean"], plan
    phases = [s["phase"] for s in plan["statements"]]
    assert phases == sorted(phases, key=PHASES.index)
    assert phases.index("enums") < phases.index("tables") < phases.index("columns") < phases.index("foreign_keys")
    assert all(s["safety"] == SAFE for s in plan["statements"])
    code, out, _ = fix(url, "--apply", schema=schema)
    assert code == 0, out
    assert check_json(url, schema)[0] == 0


def test_the_order_comes_from_the_phases_not_from_the_order_of_the_findings(make_db, tmp_path):
    from checks.check import check_database
    from checks.findings import DriftReport

    schema = write_schema(tmp_path, ORDERING_SCHEMA)
    url = make_db()
    result = check_database(url, schema)
    forward = plan_fixes(result.expected, result.actual, result.report)
    backward = plan_fixes(result.expected, result.actual, DriftReport(tuple(reversed(result.report.findings))))
    assert [s.sql for s in forward.statements] == [s.sql for s in backward.statements]
    assert [s.op for s in forward.statements][:2] == ["create_schema", "create_type"] or \
        forward.statements[0].op == "create_type"
    assert forward.statements[-1].op == "add_foreign_key"


def test_extra_tables_are_dropped_referencing_first_and_foreign_keys_before_what_they_use(make_db, tmp_path):
    schema = write_schema(tmp_path, "model Keep {\n  id Int @id\n}\n")
    url = make_db('CREATE TABLE "Keep" ("id" INTEGER NOT NULL, "oldId" int, CONSTRAINT "Keep_pkey" PRIMARY KEY ("id"));'
                  "CREATE TABLE parent (id int PRIMARY KEY);"
                  "CREATE TABLE child (id int, p int REFERENCES parent(id));"
                  'ALTER TABLE "Keep" ADD CONSTRAINT keep_old FOREIGN KEY ("oldId") REFERENCES parent(id);'
                  'CREATE INDEX keep_old_idx ON "Keep" ("oldId");')
    code, plan, _ = fix_json(url, "--allow-destructive", schema=schema)
    assert code == 0 and plan["rehearsal"]["clean"], plan
    sql = [s["sql"] for s in plan["statements"]]
    assert sql.index('ALTER TABLE "Keep" DROP CONSTRAINT "keep_old";') < sql.index('DROP INDEX "keep_old_idx";') \
        < sql.index('ALTER TABLE "Keep" DROP COLUMN "oldId";') < sql.index('DROP TABLE "child";') \
        < sql.index('DROP TABLE "parent";')
    assert fix(url, "--apply", "--allow-destructive", schema=schema)[0] == 0
    assert check_json(url, schema)[1]["findings"] == []


# ---------------------------------------------------------------------------------------------
# Safe and destructive


def test_destructive_statements_are_skipped_without_allow_destructive_and_applied_with_it(make_db):
    url = make_db(migration_sql(0) + migration_sql(1)
                  + "CREATE TABLE scratch (id int); INSERT INTO scratch VALUES (1), (2), (3);"
                  + 'ALTER TABLE "users" ADD COLUMN "legacy" text;')
    code, plan, _ = fix_json(url, "--apply")
    assert code == 0  # skipped on purpose: listed, not counted
    drops = {s["sql"]: s for s in plan["statements"]}
    assert drops['DROP TABLE "scratch";']["safety"] == DESTRUCTIVE
    assert drops['DROP TABLE "scratch";']["reason"] == "drops table scratch with 3 rows"
    assert drops['ALTER TABLE "users" DROP COLUMN "legacy";']["safety"] == DESTRUCTIVE
    assert plan["applied"] is False and plan["skipped"] == [1, 2]
    assert {f["kind"] for f in plan["remaining"]} == {"extra_table", "extra_column"}
    assert scalar(url, "SELECT count(*) FROM scratch") == 3

    code, out, _ = fix(url, "--apply")
    assert code == 0 and "Skipped 2 destructive statements (add --allow-destructive to apply them):" in out
    assert "drops table scratch with 3 rows" in out

    code, out, _ = fix(url, "--apply", "--allow-destructive")
    assert code == 0, out
    assert scalar(url, "SELECT to_regclass('scratch')") is None
    assert check_json(url)[1]["findings"] == []
    assert [a.outcome for a in actions("fix")] == ["applied"]


def test_set_not_null_on_a_column_holding_nulls_is_destructive_and_says_how_many(make_db):
    url = make_db(migration_sql(0) + migration_sql(1)
                  + 'ALTER TABLE "users" ALTER COLUMN "password" DROP NOT NULL;'
                  + "INSERT INTO users (id, email, password, \"updatedAt\") VALUES "
                    "('a', 'a@x', NULL, now()), ('b', 'b@x', NULL, now()), ('c', 'c@x', 'pw', now());")
    code, plan, _ = fix_json(url)
    (s,) = plan["statements"]
    assert s["sql"] == 'ALTER TABLE "users" ALTER COLUMN "password" SET NOT NULL;'
    assert s["safety"] == DESTRUCTIVE
    assert s["reason"].startswith("would fail: 2 rows of users hold NULL in password")
    assert [f["kind"] for f in s["findings"]] == ["column_nullable"]
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("UPDATE users SET password = 'x' WHERE password IS NULL")
    code, plan, _ = fix_json(url, "--apply")
    assert plan["statements"][0]["safety"] == SAFE and code == 0 and plan["remaining"] == []


def test_adding_a_not_null_column_without_default_to_a_table_with_rows_is_marked_as_failing(make_db):
    init = migration_sql(0).replace('    "updatedAt" TIMESTAMP(3) NOT NULL,\n\n    CONSTRAINT "users_pkey"',
                                    '    CONSTRAINT "users_pkey"')
    url = make_db(init + "INSERT INTO users (id, email, password) VALUES ('a', 'a@x', 'pw');")
    _, plan, _ = fix_json(url)
    (add,) = [s for s in plan["statements"] if '"updatedAt"' in s["sql"] and '"users"' in s["sql"]]
    assert add["safety"] == DESTRUCTIVE
    assert add["reason"].startswith("would fail: users has 1 row and the new column updatedAt is NOT NULL")


def test_a_type_change_is_safe_only_when_it_widens():
    assert _widens("character varying(100)", "character varying(120)")
    assert _widens("character varying(100)", "text")
    assert _widens("integer", "bigint") and _widens("numeric(10,2)", "numeric(12,2)")
    assert _widens("timestamp(3) without time zone", "timestamp without time zone")
    assert _widens("integer[]", "bigint[]")
    assert not _widens("character varying(120)", "character varying(100)")
    assert not _widens("text", "character varying(100)")
    assert not _widens("bigint", "integer") and not _widens("numeric(10,4)", "numeric(10,2)")
    assert not _widens("timestamp(3) without time zone", "timestamp(3) with time zone")
    assert not _widens("text", "integer") and not _widens("integer", "integer[]")


def test_a_unique_index_the_rows_violate_is_marked_as_failing(make_db):
    url = make_db(migration_sql(0) + migration_sql(1) + 'DROP INDEX "users_email_key";'
                  + "INSERT INTO users (id, email, password, \"updatedAt\") VALUES "
                    "('a', 'same@x', 'pw', now()), ('b', 'same@x', 'pw', now());")
    _, plan, _ = fix_json(url)
    (s,) = plan["statements"]
    assert s["safety"] == DESTRUCTIVE and s["reason"].startswith("would fail: 1 value of (email) appears in more")


# ---------------------------------------------------------------------------------------------
# Dedupe, split, units (no database)


def _enum_catalogs(values_live: tuple[str, ...]) -> tuple[Catalog, Catalog]:
    col = Column("role", enum_type_ref("public", "Role"), False, "'A'")
    table = Table("public", "t", (Column("id", "integer", False), col), PrimaryKey("t_pkey", ("id",)))
    expected = Catalog(tables=(table,), enums=(Enum("public", "Role", ("A",)),))
    actual = Catalog(tables=(table,), enums=(Enum("public", "Role", values_live),))
    return expected, actual


def test_one_enum_recreation_shared_by_several_extra_values_runs_once_and_lists_them_all():
    expected, actual = _enum_catalogs(("A", "B", "C"))
    report = diff(expected, actual)
    assert [f.kind for f in report.findings] == ["extra_enum_value", "extra_enum_value"]
    plan = plan_fixes(expected, actual, report)
    assert [s.sql.split(" ")[0] for s in plan.statements].count("CREATE") == 1
    assert all(len(s.findings) == 2 for s in plan.statements)
    assert all(s.destructive and s.phase == "enums" for s in plan.statements)
    assert plan.statements[0].reason == ("recreates enum Role without 'B', 'C': rows holding them make it fail "
                                         "(not checked)")
    assert len({s.unit for s in plan.statements}) == 1


def test_a_changed_index_is_split_into_its_drop_and_create_which_run_only_together():
    idx = Index("t_a_idx", (IndexColumn("a"),))
    want = Table("public", "t", (Column("a", "integer", True),), indexes=(idx,))
    have = Table("public", "t", (Column("a", "integer", True),), indexes=(Index("t_a_idx", (IndexColumn("a"),),
                                                                                 unique=True),))
    expected, actual = Catalog(tables=(want,)), Catalog(tables=(have,))
    plan = plan_fixes(expected, actual, diff(expected, actual))
    drop, create = plan.statements
    assert (drop.op, drop.phase, create.op, create.phase) == ("drop_index", "drop_indexes", "create_index", "indexes")
    assert drop.destructive and create.destructive  # never re-create an index whose DROP was skipped
    assert create.reason.startswith("runs only together with statement 1")
    assert plan.select(allow_destructive=False) == ([], list(plan.statements))


def test_statements_are_classified_by_keywords_never_by_what_a_name_says():
    evil = '"x""; DROP TABLE users; --"'
    assert classify(f'ALTER TABLE {evil} ADD COLUMN "a" TEXT;') == "add_column"
    assert classify(f'ALTER TABLE "s".{evil} ALTER COLUMN {evil} SET NOT NULL;') == "set_not_null"
    assert classify(f'CREATE INDEX {evil} ON {evil}("a");') == "create_index"
    assert classify(f'ALTER TABLE {evil} ADD CONSTRAINT {evil} FOREIGN KEY ("a") REFERENCES "b"("id");') \
        == "add_foreign_key"
    assert classify('ALTER TABLE naïve ALTER COLUMN "select" DROP NOT NULL;') == "drop_not_null"


def test_enum_values_are_committed_first_when_later_statements_use_them_or_the_server_is_before_12():
    from checks.fixplan import PlannedStatement

    def st(sql: str) -> PlannedStatement:
        return PlannedStatement(sql, "", SAFE, None, (), 0, classify(sql))

    add = st("ALTER TYPE \"Role\" ADD VALUE 'GUEST';")
    use = st("ALTER TABLE \"users\" ALTER COLUMN \"role\" SET DEFAULT 'GUEST';")
    other = st('CREATE INDEX "i" ON "t"("a");')
    assert transactions([add, other], 160000) == [[add, other]]
    assert transactions([add, use, other], 160000) == [[add], [use, other]]
    assert transactions([add, other], 110000) == [[add], [other]]


def test_an_enum_value_added_and_used_as_a_default_is_committed_before_its_use(make_db, tmp_path):
    schema = write_schema(tmp_path, 'enum Role {\n  USER\n  GUEST\n}\n\nmodel User {\n  id   Int  @id\n'
                                    '  role Role @default(GUEST)\n  @@map("users")\n}\n')
    url = make_db("CREATE TYPE \"Role\" AS ENUM ('USER'); CREATE TABLE users (id int NOT NULL, "
                  "role \"Role\" NOT NULL DEFAULT 'USER', CONSTRAINT users_pkey PRIMARY KEY (id));")
    code, plan, _ = fix_json(url, schema=schema)
    assert code == 0
    assert [r["status"] for r in plan["rehearsal"]["statements"]] == ["rehearsed", "not_rehearsed"]
    code, out, _ = fix(url, "--apply", schema=schema)
    assert code == 0 and "in 2 transactions, enum values first" in out, out
    assert check_json(url, schema)[1]["findings"] == []


# ---------------------------------------------------------------------------------------------
# Guarded writes: locks, concurrency, failures


def _hold(url: str, sql: str, application_name: str) -> psycopg.Connection:
    holder = psycopg.connect(url, application_name=application_name)  # not autocommit: keeps the lock
    holder.execute(sql)
    return holder


def test_a_lock_held_by_another_session_makes_the_fix_wait_lock_timeout_then_fail_with_nothing_changed(incident_db):
    untouched = catalog(incident_db)
    blocker = _hold(incident_db, "LOCK TABLE avatars IN ACCESS SHARE MODE", "long-report")
    pid = blocker.info.backend_pid
    safety = threading.Timer(20, blocker.close)
    safety.start()
    try:
        t0 = time.monotonic()
        code, out, err = fix(incident_db, "--apply", "--lock-timeout", "0.5")
        waited = time.monotonic() - t0
    finally:
        safety.cancel()
        blocker.close()
    assert code == 1 and 0.5 <= waited < 10
    assert err.count("\n") == 1 and err.startswith("driftwatch: error: ")
    assert "lock_timeout = 0.5 s" in err and "nothing was changed" in err
    assert f"pid {pid} (long-report" in out
    assert "statement 2 waited for AccessExclusiveLock on avatars" in out
    assert catalog(incident_db) == untouched
    (row,) = actions("fix")
    assert row.outcome == "failed" and "LockTimeout" in row.error and row.drift_after is None


def test_two_fixes_at_once_one_refuses_naming_the_other_as_the_holder(incident_db):
    blocker = _hold(incident_db, "LOCK TABLE avatars IN ACCESS SHARE MODE", "long-report")
    first: dict = {}

    def slow_fix() -> None:
        first["result"] = fix(incident_db, "--apply", "--lock-timeout", "8")

    thread = threading.Thread(target=slow_fix)
    try:
        thread.start()
        deadline = time.monotonic() + 10
        holder = None
        while holder is None and time.monotonic() < deadline:
            holder = scalar(incident_db, "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                                         "WHERE l.locktype = 'advisory' AND l.granted "
                                         "AND a.application_name = 'driftwatch fix'")
            time.sleep(0.05)
        assert holder is not None, "the first fix never took Prisma's lock"
        code, out, err = fix(incident_db, "--apply", "--advisory-wait", "0.3")
        assert code == 1
        assert "another migration holds Prisma's advisory lock" in err
        assert f"pid {holder} (driftwatch fix" in err
        assert f"Prisma's migration lock is held by pid {holder} (driftwatch fix" in out
    finally:
        blocker.close()  # the first fix can go on now
        thread.join(20)
    assert first["result"][0] == 0, first["result"]
    assert sorted(a.outcome for a in actions("fix")) == ["applied", "refused"]
    assert check_json(incident_db)[0] == 0


def test_a_statement_failing_midway_rolls_everything_back(make_db):
    url = make_db(migration_sql(0)
                  + 'ALTER TABLE "users" ALTER COLUMN "password" DROP NOT NULL;'
                  + "INSERT INTO users (id, email, password, \"updatedAt\") VALUES ('a', 'a@x', NULL, now());")
    untouched = catalog(url)
    code, out, err = fix(url, "--apply", "--allow-destructive")
    assert code == 1
    assert "SET NOT NULL" in err and "nothing was changed" in err and "23502" in err
    # the statements before it (table, column) ran and were undone
    assert "statement 3 failed: 23502" in out
    assert catalog(url) == untouched
    (row,) = actions("fix")
    assert row.outcome == "rolled_back" and "avatar_projects" in row.statements


def test_json_output_has_the_documented_shape_on_failure_too(make_db):
    url = make_db(migration_sql(0)
                  + 'ALTER TABLE "users" ALTER COLUMN "password" DROP NOT NULL;'
                  + "INSERT INTO users (id, email, password, \"updatedAt\") VALUES ('a', 'a@x', NULL, now());")
    code, doc, err = fix_json(url, "--apply", "--allow-destructive")
    assert code == 1 and doc["exit"] == 1 and err.startswith("driftwatch: error: ")
    assert {"statements", "rehearsal", "applied", "remaining", "exit"} <= set(doc)
    assert doc["applied"] is False and doc["rehearsal"] is None
    s = doc["statements"][0]
    assert set(s) >= {"sql", "safety", "reason", "findings"}
    assert set(s["findings"][0]) >= {"kind", "table", "column", "name"}


# ---------------------------------------------------------------------------------------------
# Names


WEIRD_SCHEMA = r"""
enum Mood {
  HAPPY
  SAD   @map("it's sad")
  @@map("mood \"type\"")
}

model Weird {
  id     Int     @id @default(autoincrement())
  select String  @map("select")
  naive  String? @map("naïve ✓ 名前")
  evil   String? @map("x\"; DROP TABLE users; --")
  mood   Mood    @default(HAPPY)
  others Other[]
  @@index([select])
  @@map("we\"ird table")
}

model Other {
  id      Int   @id
  weirdId Int   @map("weird id")
  weird   Weird @relation(fields: [weirdId], references: [id])
  @@map("x\"; DROP TABLE users; --")
}
"""


def test_names_with_quotes_spaces_unicode_and_reserved_words_are_fixed_as_names(make_db, tmp_path):
    schema = write_schema(tmp_path, WEIRD_SCHEMA)
    url = make_db("CREATE TABLE users (id int); INSERT INTO users VALUES (1);")
    code, plan, _ = fix_json(url, schema=schema)
    assert code == 0 and plan["rehearsal"]["clean"], plan
    code, out, _ = fix(url, "--apply", schema=schema)
    assert code == 0, out
    assert scalar(url, "SELECT count(*) FROM users") == 1  # still there: a name is never SQL
    remaining = check_json(url, schema)[1]["findings"]
    assert [(f["kind"], f["table"]) for f in remaining] == [("extra_table", "users")]
    # drift on the odd names converges too: a dropped FK and index, a nullable column, an extra column
    with psycopg.connect(url, autocommit=True) as c:
        c.execute('ALTER TABLE "x""; DROP TABLE users; --" DROP CONSTRAINT "x""; DROP TABLE users; --_weird id_fkey";'
                  'DROP INDEX "we""ird table_select_idx";'
                  'ALTER TABLE "we""ird table" ALTER COLUMN "select" DROP NOT NULL;'
                  'ALTER TABLE "we""ird table" ADD COLUMN "naïve; DROP TABLE users" int;')
    code, out, _ = fix(url, "--apply", "--allow-destructive", schema=schema)
    assert code == 0, out
    assert scalar(url, "SELECT to_regclass('users')") is None  # dropped as the extra table it is, by name
    assert check_json(url, schema)[1]["findings"] == []


# ---------------------------------------------------------------------------------------------
# --record-migration


def test_record_migration_writes_the_applied_sql_as_a_migration_prisma_sees_as_applied(empty_db, tmp_path):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')
    init = sorted(p for p in SAMPLE_MIGRATIONS.iterdir() if p.is_dir())[0]
    (migrations / init.name).mkdir()
    (migrations / init.name / "migration.sql").write_bytes((init / "migration.sql").read_bytes())
    assert call("migrate", "deploy", "--database-url", empty_db, "--migrations", str(migrations))[0] == 0

    code, out, err = fix(empty_db, "--apply", "--record-migration", str(migrations))
    assert (code, err) == (0, ""), (out, err)
    (made,) = [p for p in migrations.iterdir() if p.name.endswith("_driftwatch_fix")]
    assert len(made.name) == len("20250101000000_driftwatch_fix")
    assert 'CREATE TABLE "avatar_projects"' in (made / "migration.sql").read_text()
    assert f"Recorded as migration {made.name} (applied)" in out
    code, status_out, _ = call("migrate", "status", "--database-url", empty_db, "--migrations", str(migrations),
                               "--format", "json")
    assert code == 0, status_out


def test_record_migration_needs_apply(incident_db, tmp_path):
    code, _, err = fix(incident_db, "--record-migration", str(tmp_path))
    assert code == 1 and "--record-migration goes with --apply" in err


def test_fix_warns_when_a_pending_migration_would_collide_with_a_hand_fix(incident_db, tmp_path):
    """In the incident the real fix is the pending migration; a hand fix makes its next deploy fail."""
    import io

    from checks.cli import run
    from tests.conftest import SAMPLE_SCHEMA

    out, err = io.StringIO(), io.StringIO()
    code = run(["fix", "--database-url", incident_db, "--schema", str(SAMPLE_SCHEMA),
                "--history-url", str(tmp_path / "h.sqlite3")], out, err)
    assert code == 0
    assert err.getvalue() == ""
    assert "20251012082000_add_avatar_projects" in out.getvalue().split("Fix plan")[0]
    assert "driftwatch migrate deploy" in out.getvalue()


def test_without_live_rows_every_question_is_unknown_and_a_misspelled_one_fails():
    from checks.fixplan import DataProbe, _NoData

    probe = _NoData()
    questions = [name for name in vars(DataProbe) if not name.startswith("_")]
    assert questions and all(getattr(probe, name)(*[None] * (getattr(DataProbe, name).__code__.co_argcount - 1))
                             is None for name in questions)
    with pytest.raises(AttributeError):
        probe.null_cuont("public", "t", "c")  # noqa: B018 - a typo must not read as "unknown"


def test_fixes_are_data_whose_ops_agree_with_what_their_sql_says():
    """Every statement a finding carries names its op and target; a plan reads those, and they
    agree with what the SQL itself says (classify stays only for runbooks' free SQL)."""
    from checks.catalog import ForeignKey
    from checks.ddl import Statement

    users = Table("public", "users", (Column("id", "integer", False), Column("email", "text", True)),
                  PrimaryKey("users_pkey", ("id",)),
                  (Index("users_email_key", (IndexColumn("email"),), unique=True),))
    posts = Table("public", "posts", (Column("id", "integer", False), Column("userId", "integer", False)),
                  PrimaryKey("posts_pkey", ("id",)), (),
                  (ForeignKey("posts_userId_fkey", ("userId",), "public", "users", ("id",), "CASCADE", "CASCADE"),))
    expected = Catalog(("public",), (users, posts), ())
    live_users = Table("public", "users", (Column("id", "bigint", False), Column("email", "text", False),
                                           Column("old", "text", True)),
                       PrimaryKey("users_pk_old", ("email",)),
                       (Index("users_email_idx", (IndexColumn("email"),), unique=True),))
    live_posts = Table("public", "posts", (Column("id", "integer", False), Column("userId", "integer", False)),
                       PrimaryKey("posts_pkey", ("id",)), (),
                       (ForeignKey("posts_userId_fkey", ("userId",), "public", "users", ("id",), "NO ACTION",
                                   "CASCADE"),))
    actual = Catalog(("public",), (live_users, live_posts), ())
    report = diff(expected, actual)
    statements = [st for f in report.findings for st in f.statements]
    assert statements and all(isinstance(st, Statement) for st in statements)
    assert all(classify(st.sql) == st.op for st in statements), [
        (st.op, classify(st.sql), st.sql) for st in statements if classify(st.sql) != st.op]
    # a primary key drop is judged by its target, not by the finding's display text
    plan = plan_fixes(expected, actual, report)
    [drop_pk] = [s for s in plan.statements if s.op == "drop_constraint" and "users_pk_old" in s.sql]
    assert drop_pk.phase == "primary_keys" and "primary key users_pk_old of users" in drop_pk.reason
    [drop_fk] = [s for s in plan.statements if s.op == "drop_constraint" and "posts_userId_fkey" in s.sql]
    assert drop_fk.phase == "drop_foreign_keys"
    from dataclasses import replace

    from checks.findings import DriftReport

    shown = ("primary_key", "extra_primary_key", "index", "extra_index", "foreign_key", "extra_foreign_key")
    reworded = DriftReport(tuple(replace(f, message="reworded", actual="reworded" if f.kind in shown else f.actual)
                                 for f in report.findings))  # the display texts, not the types
    again = plan_fixes(expected, actual, reworded)
    assert [(s.sql, s.safety, s.reason) for s in again.statements] == \
        [(s.sql, s.safety, s.reason) for s in plan.statements]
