"""Emergency runbooks: headers, list/show, and running one under the write guard."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import psycopg
import pytest

from checks.cli import run
from checks.errors import UsageError
from checks.history import HistoryStore
from checks.inspect.live import inspect_database
from checks.runbooks import find_runbooks_dir, list_runbooks, load_runbook, parse_runbook, title_from_name
from tests.conftest import SAMPLE_APP, SAMPLE_SCHEMA

SAMPLE_RUNBOOKS = SAMPLE_APP / "runbooks"
SAMPLE = "fix-avatar-projects-table"

# What the hand-written emergency fix leaves missing, by (kind, table, column or name).
LEFT_BY_THE_RUNBOOK = {
    ("missing_foreign_key", "avatar_projects", "avatar_projects_userId_fkey"),
    ("missing_column", "avatars", "projectId"),
    ("missing_index", "avatars", "avatars_projectId_idx"),
    ("missing_foreign_key", "avatars", "avatars_projectId_fkey"),
}


@pytest.fixture(autouse=True)
def history(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "history.sqlite3"
    monkeypatch.setenv("DRIFTWATCH_HISTORY_URL", str(path))
    return path


def call(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def drift(url: str) -> tuple[int, set]:
    code, out, _ = call("check", "--database-url", url, "--schema", str(SAMPLE_SCHEMA), "--format", "json")
    return code, {(f["kind"], f["table"], f["column"] or f["name"]) for f in json.loads(out)["findings"]}


def actions() -> list:
    with HistoryStore.open() as store:
        return list(reversed(store.list_actions(limit=50)))  # oldest first


def runbook_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


# ---------------------------------------------------------------------------------------------
# Headers


def test_the_samples_free_comment_header_gives_a_title_from_the_file_name_a_description_and_warnings():
    book = load_runbook(SAMPLE_RUNBOOKS, SAMPLE)
    assert book.title == "Fix avatar projects table"
    assert book.description.startswith("Emergency fix written by hand during the avatar_projects incident.")
    assert "a drift check after running it still reports what is missing." in book.description
    assert (book.when, book.author, book.fields) == (None, None, {})
    assert [w.split(":")[0] for w in book.warnings] == ["no `-- title", "no `-- when", "no `-- author"]
    assert [s.split("(")[0].strip() for s in book.statements()] == [
        'CREATE TABLE IF NOT EXISTS "avatar_projects"', 'CREATE INDEX IF NOT EXISTS "avatar_projects_userId_idx"\nON "avatar_projects"']


def test_key_value_header_lines_are_fields_and_other_comments_the_description(tmp_path):
    folder = runbook_dir(tmp_path, {"add-index.sql": (
        "-- title: Add the missing email index\n"
        "-- when: logins time out and pg_stat_statements shows seq scans on users\n"
        "-- author: jane@example.com\n"
        "-- reviewed-by: sam@example.com\n"
        "-- Builds the index Prisma expects (see: users_email_key).\n"
        "\n"
        "CREATE INDEX users_email_idx ON users (email);  -- title: not a header any more\n")})
    book = parse_runbook(folder / "add-index.sql")
    assert book.title == "Add the missing email index"
    assert book.when.startswith("logins time out") and book.author == "jane@example.com"
    assert book.fields["reviewed-by"] == "sam@example.com"
    assert book.description == "Builds the index Prisma expects (see: users_email_key)."
    assert book.warnings == ()


def test_a_begin_commit_wrapper_is_taken_off_and_other_transaction_control_is_refused(tmp_path):
    folder = runbook_dir(tmp_path, {"wrapped.sql": "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n",
                                    "split.sql": "CREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\n"})
    wrapped = load_runbook(folder, "wrapped")
    assert wrapped.statements() == ["CREATE TABLE a (id int);"]
    assert any("BEGIN/COMMIT" in w for w in wrapped.warnings)
    with pytest.raises(UsageError, match="statement 2 .*controls the transaction"):
        load_runbook(folder, "split").statements()


def test_titles_from_file_names():
    assert title_from_name("fix-avatar-projects-table") == "Fix avatar projects table"
    assert title_from_name("2024_10_restore.seq") == "2024 10 restore seq"


def test_runbook_names_are_file_stems_that_cannot_leave_the_folder(tmp_path):
    folder = runbook_dir(tmp_path, {"a.sql": "SELECT 1;"})
    (tmp_path / "secret.sql").write_text("DROP TABLE users;")
    assert load_runbook(folder, "a.sql").name == "a"
    for name in ("../secret", "/etc/passwd", ".."):
        with pytest.raises(UsageError):
            load_runbook(folder, name)
    with pytest.raises(UsageError, match=r"no runbook nope in .* \(there: a\)"):
        load_runbook(folder, "nope")


def test_the_default_folder_is_runbooks_here_else_beside_the_schemas_prisma_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_runbooks_dir(None, str(SAMPLE_SCHEMA)) == SAMPLE_RUNBOOKS
    (tmp_path / "runbooks").mkdir()
    assert find_runbooks_dir(None, str(SAMPLE_SCHEMA)) == Path("runbooks")
    with pytest.raises(UsageError, match="runbooks folder nowhere does not exist"):
        find_runbooks_dir("nowhere")
    shutil.rmtree(tmp_path / "runbooks")
    with pytest.raises(UsageError, match="no runbooks folder"):
        find_runbooks_dir(None, str(tmp_path / "prisma" / "schema.prisma"))


# ---------------------------------------------------------------------------------------------
# list and show


def test_runbook_list_and_show_name_the_sample_and_flag_its_missing_fields():
    code, out, err = call("runbook", "list", "--schema", str(SAMPLE_SCHEMA))
    assert (code, err) == (0, "")
    assert f"  {SAMPLE}  Fix avatar projects table  (3 warnings)" in out
    code, out, err = call("runbook", "show", SAMPLE, "--runbooks", str(SAMPLE_RUNBOOKS))
    assert (code, err) == (0, "")
    assert out.startswith(f"{SAMPLE}: Fix avatar projects table\n")
    assert "  warning: no `-- when:` line" in out and "  warning: no `-- author:` line" in out
    assert 'CREATE TABLE IF NOT EXISTS "avatar_projects"' in out
    assert list_runbooks(SAMPLE_RUNBOOKS)[0].name == SAMPLE


# ---------------------------------------------------------------------------------------------
# run


def test_the_sample_runbook_leaves_the_foreign_keys_and_the_project_column_missing_and_fix_closes_the_gap(
        incident_db):
    untouched = inspect_database(incident_db, ["public"])
    code, out, err = call("runbook", "run", SAMPLE, "--database-url", incident_db, "--schema", str(SAMPLE_SCHEMA))
    assert (code, err) == (0, ""), out
    assert "It applies cleanly." in out
    assert inspect_database(incident_db, ["public"]) == untouched  # rehearsed: rolled back

    code, out, err = call("runbook", "run", SAMPLE, "--database-url", incident_db, "--schema", str(SAMPLE_SCHEMA),
                          "--apply")
    assert (code, err) == (2, ""), out
    after = out.split("Drift check after the runbook:")[1]
    for needle in ("avatar_projects_userId_fkey", "avatars.projectId", "avatars_projectId_idx",
                   "avatars_projectId_fkey"):
        assert needle in after
    assert "Plan the rest: driftwatch fix" in out
    assert drift(incident_db) == (2, LEFT_BY_THE_RUNBOOK)

    code, out, err = call("fix", "--database-url", incident_db, "--schema", str(SAMPLE_SCHEMA), "--apply")
    assert (code, err) == (0, ""), out
    assert "Applied 4 statements" in out
    assert drift(incident_db) == (0, set())

    got = [(a.kind, a.outcome) for a in actions()]
    assert got == [("runbook", "rehearsed"), ("runbook", "applied"), ("fix", "applied")]
    applied = actions()[1]
    assert applied.target == SAMPLE and len(applied.drift_before["findings"]) == 6
    assert {(f["kind"], f["table"], f["column"] or f["name"]) for f in applied.drift_after["findings"]} \
        == LEFT_BY_THE_RUNBOOK


def test_a_failing_runbook_changes_nothing_and_is_recorded_as_rolled_back(incident_db, tmp_path):
    folder = runbook_dir(tmp_path, {"bad.sql": "-- title: bad\n-- when: never\n-- author: me\n"
                                               "CREATE TABLE scratch (id int);\n"
                                               "ALTER TABLE no_such_table ADD COLUMN x int;\n"})
    code, out, err = call("runbook", "run", "bad", "--runbooks", str(folder), "--database-url", incident_db,
                          "--schema", str(SAMPLE_SCHEMA), "--apply")
    assert code == 1 and err.count("\n") == 1
    assert "statement 2/2" in err and "nothing was changed" in err
    assert "Run failed; nothing was changed:" in out and "statement 2 failed: 42P01" in out
    with psycopg.connect(incident_db, autocommit=True) as c:
        assert c.execute("SELECT to_regclass('scratch')").fetchone()[0] is None
    assert [(a.kind, a.outcome) for a in actions()] == [("runbook", "rolled_back")]


def test_a_runbook_refuses_while_prismas_lock_is_held_and_names_the_holder(incident_db):
    from checks.guard import ADVISORY_LOCK_KEY

    holder = psycopg.connect(incident_db, autocommit=True, application_name="prisma-migrate")
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        code, out, err = call("runbook", "run", SAMPLE, "--database-url", incident_db, "--schema",
                              str(SAMPLE_SCHEMA), "--apply", "--advisory-wait", "0.2")
        assert code == 1 and f"pid {holder.info.backend_pid} (prisma-migrate" in err
        assert "Nothing was run:" in out
    finally:
        holder.close()
    assert [(a.kind, a.outcome) for a in actions()] == [("runbook", "refused")]
    assert drift(incident_db)[0] == 2
