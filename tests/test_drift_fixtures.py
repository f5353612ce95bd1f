"""Patterns seen on real applications, each reproduced in a case folder of our own.

`tests/fixtures/drift/<case>/` holds `schema.prisma` and `db.sql` (Prisma's own DDL for
the schema, from `oracle.mjs ddl`, then what the case changes by hand). Each case expects
exactly its findings; then the whole fix plan runs (destructive statements included) and
exactly the findings the plan keeps on purpose must remain: convergence, as in
test_drift_cases.py. `PRISMA` records what Prisma's own drift check says about the same
database; with Node.js and `PRISMA_ORACLE_DIR`, a test asks Prisma again.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from checks.check import check_database
from checks.cli import run
from checks.fixplan import DESTRUCTIVE, SAFE, LiveData, plan_fixes

CASES_DIR = Path(__file__).resolve().parent / "fixtures" / "drift"

# case: (findings as (kind, severity, table, column or name), findings the plan keeps)
CASES: dict[str, tuple[set[tuple], set[tuple]]] = {
    "block_comments": (set(), set()),
    "hand_written_indexes": (
        {("extra_index", "info", "User", "User_email_live_key"),
         ("extra_index", "info", "User", "User_email_lower_key"),
         ("extra_index", "info", "User", "User_score_covering_idx"),
         ("index", "info", "User", "User_name_idx")},
        {("extra_index", "info", "User", "User_email_live_key"),
         ("extra_index", "info", "User", "User_email_lower_key"),
         ("extra_index", "info", "User", "User_score_covering_idx"),
         ("index", "info", "User", "User_name_idx")},
    ),
    "scalar_lists": ({("column_nullable", "critical", "Post", "topics")}, set()),
    "duplicate_indexes": (
        {("extra_index", "info", "accounts", "Account_email_key"),
         ("extra_index", "info", "accounts", "Account_ownerId_idx")},
        set(),
    ),
    "include_columns": ({("index", "warning", "Order", "Order_customerId_idx")}, set()),
    "type_text_to_boolean": ({("column_type", "critical", "Feature", "enabled")}, set()),
    "type_text_to_boolean_lossy": (
        {("column_type", "critical", "Feature", "enabled"),
         ("extra_index", "info", "Feature", "Feature_enabled_lower_idx")},
        set(),  # the drop-and-add takes the hand-written index with the column (and says so)
    ),
    "renamed_foreign_key": ({("foreign_key", "info", "C", "C_p_id_ws_fkey")}, set()),
    "truncated_index_name": (
        {("index", "info", "ClassificationFeedback", "ClassificationFeedback_emailAccountId_sender_ruleId_message_key")},
        set(),
    ),
}

# What Prisma's drift check (`oracle.mjs drift`) says of each case's database: in sync, or
# the objects its script changes. Where it is in sync and `check` is not, README's
# "Where Driftwatch and Prisma differ on purpose" says why.
PRISMA = {
    "block_comments": True,
    "hand_written_indexes": {"User_score_covering_idx"},  # it would drop the covering index
    "scalar_lists": True,  # differs on purpose: creating a Post without topics fails
    "duplicate_indexes": True,
    "include_columns": {"Order_customerId_idx"},
    "type_text_to_boolean": {"enabled"},  # drop and re-add: every value lost
    "type_text_to_boolean_lossy": {"enabled"},
    "renamed_foreign_key": {"C_p_id_ws_fkey"},  # it renames, as the fix does; a rename is info here
    "truncated_index_name": {"ClassificationFeedback_emailAccountId_sender_ruleId_message_key"},
}
DIFFER_ON_PURPOSE = {"scalar_lists"}


def findings_of(result) -> set[tuple]:
    return {(f.kind, f.severity, f.table, f.column or f.name) for f in result.report.findings}


def case_db(make_db, case: str) -> str:
    return make_db((CASES_DIR / case / "db.sql").read_text(encoding="utf-8"))


def schema_of(case: str) -> Path:
    return CASES_DIR / case / "schema.prisma"


def plan_for(url: str, case: str, **options):
    result = check_database(url, schema_of(case))
    with psycopg.connect(url) as conn:
        return plan_fixes(result.expected, result.actual, result.report, LiveData(conn), **options)


def apply(url: str, statements) -> None:
    with psycopg.connect(url) as conn, conn.transaction():
        for s in statements:
            conn.execute(s.sql)


@pytest.mark.parametrize("case", list(CASES))
def test_the_case_is_reported_exactly_and_its_plan_converges(case, make_db):
    expected, kept = CASES[case]
    url = case_db(make_db, case)
    assert findings_of(check_database(url, schema_of(case))) == expected
    plan = plan_for(url, case)
    apply(url, plan.statements)
    assert findings_of(check_database(url, schema_of(case))) == kept, f"{case}: the plan did not converge"


def test_indexes_the_schema_cannot_express_are_kept_and_described(make_db):
    url = case_db(make_db, "hand_written_indexes")
    result = check_database(url, schema_of("hand_written_indexes"))
    assert result.report.in_sync()  # `check` exits 0, as Prisma's drift is (nearly) empty
    messages = {f.name: f.message for f in result.report.findings}
    assert messages["User_email_live_key"] == \
        "unique index User_email_live_key on User is not expressible in the Prisma schema: kept"
    assert messages["User_email_lower_key"].endswith("not expressible in the Prisma schema: kept")
    assert messages["User_name_idx"] == ('index User_name_idx on User is partial (WHERE "deletedAt" IS NULL), '
                                         "which the Prisma schema cannot express: kept")
    assert all(f.fix is None for f in result.report.findings)
    plan = plan_for(url, "hand_written_indexes")
    assert plan.empty  # not even with --allow-destructive


def test_a_kept_index_is_dropped_only_when_named(make_db):
    url = case_db(make_db, "hand_written_indexes")
    plan = plan_for(url, "hand_written_indexes", drop_indexes=["User_email_lower_key"])
    (drop,) = plan.statements
    assert drop.sql == 'DROP INDEX "User_email_lower_key";'
    assert drop.safety == DESTRUCTIVE and drop.reason.startswith("drops unique index User_email_lower_key")
    apply(url, plan.statements)
    left = findings_of(check_database(url, schema_of("hand_written_indexes")))
    assert ("extra_index", "info", "User", "User_email_lower_key") not in left and len(left) == 3


def test_fix_drop_index_names_an_index_on_the_command_line(make_db, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTWATCH_HISTORY_URL", str(tmp_path / "history.sqlite3"))
    url = case_db(make_db, "hand_written_indexes")
    argv = ["fix", "--database-url", url, "--schema", str(schema_of("hand_written_indexes")), "--format", "json"]
    out, err = io.StringIO(), io.StringIO()
    assert run(argv, out, err) == 0, err.getvalue()
    assert json.loads(out.getvalue())["statements"] == []
    out = io.StringIO()
    assert run(argv[:-2], out, err) == 0, err.getvalue()
    assert ("Kept (not expressible in the Prisma schema; --drop-index NAME drops one): extra_index "
            "User_email_live_key on User, extra_index User_email_lower_key on User") in out.getvalue()
    assert "No automatic fix" not in out.getvalue()
    out = io.StringIO()
    code = run(argv + ["--drop-index", "User_email_live_key", "--apply", "--allow-destructive"], out, err)
    assert code == 0, err.getvalue()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'User_email_live_key'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'User_email_lower_key'").fetchone() == (1,)


def test_a_list_without_default_stored_not_null_says_what_fails(make_db):
    url = case_db(make_db, "scalar_lists")
    (finding,) = check_database(url, schema_of("scalar_lists")).report.findings
    assert finding.message == ("list column Post.topics is NOT NULL without a default: a Post create without "
                               "topics fails (Prisma sends no value for an omitted list); updates and reads work")
    with psycopg.connect(url) as conn:  # what the message says, shown on the database itself
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute('INSERT INTO "Post" ("id") VALUES (2)')
        conn.rollback()
        conn.execute('INSERT INTO "Post" ("id", "topics") VALUES (3, ARRAY[]::text[])')


def test_a_duplicate_index_is_described_as_one_and_dropped_safely(make_db):
    url = case_db(make_db, "duplicate_indexes")
    result = check_database(url, schema_of("duplicate_indexes"))
    assert result.report.in_sync()
    by_name = {f.name: f for f in result.report.findings}
    assert by_name["Account_email_key"].message == \
        "unique index Account_email_key on accounts duplicates the schema's index accounts_email_key"
    assert by_name["Account_email_key"].expected == "accounts_email_key"
    plan = plan_for(url, "duplicate_indexes")
    assert [(s.sql, s.safety) for s in plan.statements] == [
        ('DROP INDEX "Account_email_key";', SAFE), ('DROP INDEX "Account_ownerId_idx";', SAFE)]


def test_a_foreign_key_under_another_name_is_renamed_not_dropped_and_re_added(make_db):
    url = case_db(make_db, "renamed_foreign_key")
    (finding,) = check_database(url, schema_of("renamed_foreign_key")).report.findings
    assert finding.message == "foreign key C_pId_ws_fkey on C should be named C_p_id_ws_fkey"
    (rename,) = plan_for(url, "renamed_foreign_key").statements
    # Prisma's own drift script, word for word
    assert rename.sql == 'ALTER TABLE "C" RENAME CONSTRAINT "C_pId_ws_fkey" TO "C_p_id_ws_fkey";'
    assert rename.safety == SAFE and rename.phase == "foreign_keys"


def test_an_include_column_is_drift_and_named(make_db):
    url = case_db(make_db, "include_columns")
    (finding,) = check_database(url, schema_of("include_columns")).report.findings
    assert finding.actual == "btree (customerId) INCLUDE (total)" and finding.expected == "btree (customerId)"


def test_a_type_every_value_converts_to_is_changed_with_using_and_keeps_the_values(make_db):
    url = case_db(make_db, "type_text_to_boolean")
    plan = plan_for(url, "type_text_to_boolean")
    assert [(s.sql, s.safety) for s in plan.statements] == [
        ('ALTER TABLE "Feature" ALTER COLUMN "enabled" DROP DEFAULT;', SAFE),
        ('ALTER TABLE "Feature" ALTER COLUMN "enabled" SET DATA TYPE BOOLEAN USING "enabled"::BOOLEAN;', SAFE),
        ('ALTER TABLE "Feature" ALTER COLUMN "enabled" SET DEFAULT false;', SAFE),
    ]
    apply(url, plan.statements)
    with psycopg.connect(url) as conn:
        rows = conn.execute('SELECT "id", "enabled" FROM "Feature" ORDER BY "id"').fetchall()
    assert rows == [(1, True), (2, False), (3, True), (4, False)]


def test_a_type_some_values_cannot_convert_to_is_dropped_and_re_added_destructively(make_db):
    url = case_db(make_db, "type_text_to_boolean_lossy")
    plan = plan_for(url, "type_text_to_boolean_lossy")
    assert [(s.sql, s.safety) for s in plan.statements] == [
        ('ALTER TABLE "Feature" DROP COLUMN "enabled";', DESTRUCTIVE),
        ('ALTER TABLE "Feature" ADD COLUMN     "enabled" BOOLEAN NOT NULL DEFAULT false;', DESTRUCTIVE),
        ('CREATE INDEX "Feature_enabled_idx" ON "Feature"("enabled");', DESTRUCTIVE),  # DROP COLUMN took it
    ]
    assert plan.statements[0].reason == ("drops and re-adds Feature.enabled as boolean: not every value converts "
                                         "from text, so 3 rows lose their value; it also drops index "
                                         "Feature_enabled_lower_idx, which the schema does not declare")
    run_now, skipped = plan.select(allow_destructive=False)
    assert run_now == [] and len(skipped) == 3


def _oracle() -> Path | None:
    folder = os.environ.get("PRISMA_ORACLE_DIR")
    if not folder or not shutil.which("node") or not (Path(folder) / "oracle.mjs").is_file():
        return None
    return Path(folder)


@pytest.mark.parametrize("case", list(CASES))
def test_prisma_agrees_or_the_difference_is_on_purpose(case, make_db):
    oracle = _oracle()
    if oracle is None:
        pytest.skip("needs Node.js and PRISMA_ORACLE_DIR (Prisma's schema engine)")
    url = case_db(make_db, case)
    done = subprocess.run(["node", str(oracle / "oracle.mjs"), "drift", url, str(schema_of(case))],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 2), done.stderr
    report = check_database(url, schema_of(case)).report
    named = {f.name for f in report.findings} | {f.column for f in report.findings}
    if PRISMA[case] is True:
        assert done.returncode == 0, done.stdout
        assert report.in_sync() or case in DIFFER_ON_PURPOSE
    else:
        assert done.returncode == 2
        for obj in PRISMA[case]:
            assert f'"{obj}"' in done.stdout and obj in named
