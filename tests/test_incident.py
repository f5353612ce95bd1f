"""The incident Driftwatch exists for, read from the sample app: nothing more, nothing less."""
from __future__ import annotations

import io
import json

from checks.cli import run
from tests.conftest import SAMPLE_SCHEMA, migration_sql

EXPECTED = {
    ("missing_table", "critical", "avatar_projects", None, None),
    ("missing_index", "warning", "avatar_projects", None, "avatar_projects_userId_idx"),
    ("missing_foreign_key", "warning", "avatar_projects", None, "avatar_projects_userId_fkey"),
    ("missing_column", "critical", "avatars", "projectId", None),
    ("missing_index", "warning", "avatars", None, "avatars_projectId_idx"),
    ("missing_foreign_key", "warning", "avatars", None, "avatars_projectId_fkey"),
}


def check(url: str, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["check", "--database-url", url, "--schema", str(SAMPLE_SCHEMA), *extra], out, err)
    return code, out.getvalue(), err.getvalue()


def test_the_incident_reads_as_the_missing_table_column_indexes_and_foreign_keys(incident_db):
    code, out, err = check(incident_db, "--format", "json")
    assert (code, err) == (2, "")
    report = json.loads(out)
    got = {(f["kind"], f["severity"], f["table"], f["column"], f["name"]) for f in report["findings"]}
    assert got == EXPECTED
    assert report["in_sync"] is False
    assert report["summary"] == {"critical": 2, "warning": 4, "info": 0}


def test_the_incident_findings_name_the_prisma_model_and_carry_prismas_own_fix(incident_db):
    _, out, _ = check(incident_db, "--format", "json")
    findings = {(f["kind"], f["table"]): f for f in json.loads(out)["findings"]}
    table = findings[("missing_table", "avatar_projects")]
    assert table["model"] == "AvatarProject"
    column = findings[("missing_column", "avatars")]
    assert (column["model"], column["field"]) == ("Avatar", "projectId")
    # The same statements Prisma generated in the second migration.
    second = migration_sql(1)
    for f in findings.values():
        assert f["fix"] and f["fix"] in second, f["fix"]
    for f in json.loads(out)["findings"]:
        assert set(f) == {"kind", "severity", "schema", "table", "column", "name", "model", "field",
                          "expected", "actual", "message", "fix"}


def test_the_incident_in_text_groups_by_table_worst_first(incident_db):
    code, out, _ = check(incident_db)
    assert code == 2
    lines = out.splitlines()
    assert lines[0].startswith("DRIFT")
    assert "2 critical, 4 warning, 0 info" in lines[0]
    headers = [line for line in lines if line.startswith("public.")]
    assert headers == ["public.avatar_projects  (model AvatarProject)", "public.avatars  (model Avatar)"]
    assert "\033[" not in out  # no colour when not writing to a terminal


def test_after_the_second_migration_the_database_is_in_sync(make_db):
    url = make_db(migration_sql(0) + migration_sql(1))
    code, out, _ = check(url, "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    assert {k: report[k] for k in ("in_sync", "summary", "findings")} == {
        "in_sync": True, "summary": {"critical": 0, "warning": 0, "info": 0}, "findings": []}
    # applied by hand, not by Prisma: the history says so without failing the check
    assert report["migrations"]["managed"] is False


def test_the_emergency_runbook_leaves_the_foreign_keys_and_project_column_missing(incident_db):
    from tests.conftest import SAMPLE_APP
    import psycopg

    runbook = (SAMPLE_APP / "runbooks" / "fix-avatar-projects-table.sql").read_text()
    with psycopg.connect(incident_db, autocommit=True) as conn:
        conn.execute(runbook)
    code, out, _ = check(incident_db, "--format", "json")
    assert code == 2
    kinds = {(f["kind"], f["table"], f["column"] or f["name"]) for f in json.loads(out)["findings"]}
    assert kinds == {
        ("missing_foreign_key", "avatar_projects", "avatar_projects_userId_fkey"),
        ("missing_column", "avatars", "projectId"),
        ("missing_index", "avatars", "avatars_projectId_idx"),
        ("missing_foreign_key", "avatars", "avatars_projectId_fkey"),
    }


def test_info_findings_exit_zero_unless_strict(make_db):
    url = make_db(migration_sql(0) + migration_sql(1) + 'CREATE TABLE "audit_scratch" (id int);')
    code, out, _ = check(url, "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["in_sync"] is True
    assert [f["kind"] for f in report["findings"]] == ["extra_table"]
    code, out, _ = check(url, "--format", "json", "--strict")
    assert code == 2
    assert json.loads(out)["in_sync"] is False


def test_a_prisma_url_with_schema_checks_that_schema(make_db):
    """Prisma apps often connect with ?schema=app&connection_limit=5: libpq knows neither."""
    url = make_db("CREATE SCHEMA app; SET search_path TO app;\n" + migration_sql(0))
    sep = "&" if "?" in url else "?"
    code, out, err = check(url + sep + "schema=app&connection_limit=5", "--format", "json")
    assert (code, err) == (2, "")
    findings = json.loads(out)["findings"]
    assert {(f["schema"], f["kind"], f["table"]) for f in findings if f["kind"].startswith("missing_t")} == {
        ("app", "missing_table", "avatar_projects")}
    assert len(findings) == 6
    # the fixes name the schema, so they run whatever the session's search_path
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for sql in dict.fromkeys(f["fix"] for f in findings):
            conn.execute(sql)
    code, out, _ = check(url + sep + "schema=app", "--format", "json")
    assert code == 0, out


def test_the_incident_report_names_the_migration_that_was_never_applied(incident_db):
    code, out, _ = check(incident_db, "--no-fix")
    assert code == 2
    assert "pending: 20251012082000_add_avatar_projects" in out
    assert "driftwatch migrate deploy" in out
    _, out, _ = check(incident_db, "--format", "json")
    history = json.loads(out)["migrations"]
    assert history["by_state"] == {"applied": ["20251001083000_init"],
                                   "pending": ["20251012082000_add_avatar_projects"]}
    _, out, _ = check(incident_db, "--format", "json", "--migrations", "none")
    assert "migrations" not in json.loads(out)
