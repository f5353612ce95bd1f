"""The write guard against a real PostgreSQL: locks, timeouts, rollbacks, dead sessions, splitting."""
from __future__ import annotations

import os
import re
import signal
import threading
import time

import psycopg
import pytest

from checks.errors import ConnectionLost, DatabaseError, LockBusy, LockTimeout, StatementFailed, UsageError
from checks.guard import (
    ADVISORY_LOCK_KEY,
    Limits,
    advisory_lock_holders,
    exclusive_session,
    first_line,
    is_transaction_control,
    needs_own_transaction,
    run_in_transaction,
    run_script,
    split_statements,
)

FAST = Limits(lock_timeout=0.5, statement_timeout=5, advisory_wait=0.3)


def regclass(url: str, name: str) -> str | None:
    with psycopg.connect(url, autocommit=True) as c:
        return c.execute("SELECT to_regclass(%s)::text", (name,)).fetchone()[0]


def scalar(url: str, query: str, params: tuple = ()) -> object:
    with psycopg.connect(url, autocommit=True) as c:
        return c.execute(query, params).fetchone()[0]


# ---------------------------------------------------------------------------------------------
# split_statements


TRICKY = r"""
-- a comment; with a semicolon
SELECT 'a;b' AS "x;y";
SELECT 'it''s; fine', E'back\\slash\'; quote', U&'d\0061t;a', B'101', X'1F';
/* a /* nested; */ comment; */ SELECT "we""ird;" FROM (SELECT 1 AS "we""ird;") AS t;
SELECT $$dollar; $ quoted$$, $tag$ inner $$; still $tag$;
CREATE FUNCTION dw_f(a int) RETURNS int LANGUAGE plpgsql AS $body$
BEGIN
  RETURN a + 1; -- a semicolon in the body
END;
$body$;
CREATE FUNCTION dw_atomic(a int) RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN a > 0 THEN a ELSE 0 END;
END;
CREATE TABLE dw_t (a$b int, "c;" int);
CREATE RULE dw_r AS ON INSERT TO dw_t DO ALSO (SELECT 1; SELECT 2);
SELECT a$b FROM dw_t  -- no semicolon at the end, then a trailing comment
"""


def test_split_statements_ends_statements_where_postgresql_does(empty_db):
    pieces = split_statements(TRICKY)
    assert len(pieces) == 9
    # PostgreSQL runs a multi-statement simple query and returns one result per statement.
    with psycopg.connect(empty_db, autocommit=True) as c:
        c.execute("BEGIN")
        cur = c.execute(TRICKY, prepare=False)
        results = 1
        while cur.nextset():
            results += 1
        c.execute("ROLLBACK")
        assert results == len(pieces)
        # and each piece is a complete statement on its own
        c.execute("BEGIN")
        for piece in pieces:
            c.execute(piece, prepare=False)
        c.execute("ROLLBACK")


def test_split_statements_keeps_each_statement_without_leading_comments_or_semicolon():
    assert split_statements("-- CreateTable\nCREATE TABLE a (id int);\n\n-- x\n/* y */ SELECT 1 -- z\n;") == [
        "CREATE TABLE a (id int)",
        "SELECT 1",
    ]


def test_split_statements_drops_empty_and_comment_only_pieces():
    assert split_statements(";; -- nothing\n ; /* still nothing; */") == []


def test_split_statements_treats_dollar_signs_in_identifiers_and_parameters_as_plain_text():
    assert split_statements("SELECT a$b$ FROM t; SELECT $1; SELECT 2") == ["SELECT a$b$ FROM t", "SELECT $1", "SELECT 2"]


def test_split_statements_reads_backslash_escapes_only_in_e_strings():
    assert split_statements(r"SELECT 'a\'; SELECT 2") == [r"SELECT 'a\'", "SELECT 2"]
    assert split_statements(r"SELECT E'a\'; b'; SELECT 2") == [r"SELECT E'a\'; b'", "SELECT 2"]
    assert split_statements(r"SELECT somee'x;'; SELECT 2") == [r"SELECT somee'x;'", "SELECT 2"]


@pytest.mark.parametrize("sql, what", [
    ("SELECT 1;\nSELECT 'open", "quoted string starting at line 2"),
    ("SELECT $x$ never closed", "dollar-quoted string $x$ starting at line 1"),
    ("SELECT 1; /* /* */", "/* comment starting at line 1"),
    ('SELECT "x', "quoted identifier"),
    ("SELECT E'\\'", "E'' string"),
])
def test_split_statements_refuses_an_unterminated_quote_or_comment_naming_its_line(sql, what):
    with pytest.raises(UsageError, match="unterminated") as info:
        split_statements(sql)
    assert what in str(info.value)


def test_split_statements_agrees_with_psycopg_quoting_of_any_literal(empty_db):
    nasty = ["a'b", "semi;colon", "back\\slash", "$$", "$t$", "--", "/*", "\"", "E'", "\\';"]
    with psycopg.connect(empty_db) as c:
        for text in nasty:
            stmt = psycopg.sql.SQL("SELECT {}; SELECT 2").format(psycopg.sql.Literal(text)).as_string(c)
            assert len(split_statements(stmt)) == 2, stmt


@pytest.mark.parametrize("sql, expected", [
    ("CREATE INDEX CONCURRENTLY i ON t (a)", True),
    ("create unique index concurrently if not exists i on t (a)", True),
    ("-- why\nDROP INDEX CONCURRENTLY i", True),
    ("REINDEX (VERBOSE) TABLE CONCURRENTLY t", True),
    ("REINDEX DATABASE app", True),
    ("VACUUM (ANALYZE) t", True),
    ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", True),
    ("ALTER SYSTEM SET work_mem = '8MB'", True),
    ("CREATE DATABASE x", True),
    ("CLUSTER", True),
    ("CLUSTER t USING i", False),
    ("CREATE INDEX i ON t (a)", False),
    ("CREATE INDEX \"concurrently\" ON t (a)", False),
    ("ALTER TABLE t ADD COLUMN concurrently int", False),
    ("ALTER TYPE \"Role\" ADD VALUE 'X'", False),
    ("SELECT 'VACUUM'", False),
])
def test_needs_own_transaction_knows_what_postgresql_refuses_in_a_transaction(sql, expected):
    assert needs_own_transaction(sql) is expected


def test_alter_type_add_value_needs_its_own_transaction_only_before_postgresql_12():
    sql = "ALTER TYPE \"Role\" ADD VALUE 'X'"
    assert needs_own_transaction(sql, server_version_num=110000)
    assert not needs_own_transaction(sql, server_version_num=160000)


@pytest.mark.parametrize("sql, expected", [
    ("BEGIN", True), ("start transaction", True), ("COMMIT", True), ("END", True), ("ABORT", True),
    ("ROLLBACK", True), ("ROLLBACK TO SAVEPOINT s", False), ("SAVEPOINT s", False),
    ("PREPARE TRANSACTION 'x'", True), ("PREPARE q AS SELECT 1", False), ("DO $$ BEGIN END $$", False),
])
def test_is_transaction_control(sql, expected):
    assert is_transaction_control(sql) is expected


def test_first_line_skips_leading_comments_and_shortens():
    assert first_line("-- AddForeignKey\nALTER TABLE \"a\" ADD CONSTRAINT x\n  FOREIGN KEY (b)") == \
        'ALTER TABLE "a" ADD CONSTRAINT x'
    assert first_line("SELECT " + "x" * 200).endswith("…")


@pytest.mark.parametrize("kwargs", [{"lock_timeout": 0}, {"statement_timeout": -1}, {"advisory_wait": float("nan")},
                                    {"lock_timeout": float("inf")}, {"idle_in_transaction": True}])
def test_limits_refuse_values_that_would_disable_a_bound(kwargs):
    with pytest.raises(UsageError):
        Limits(**kwargs)


# ---------------------------------------------------------------------------------------------
# run_in_transaction


def test_statements_commit_together_and_each_is_timed(empty_db):
    with exclusive_session(empty_db, FAST) as conn:
        outcome = run_in_transaction(conn, ["CREATE TABLE a (id int)", "INSERT INTO a VALUES (1), (2)"], FAST)
    assert outcome.committed and not outcome.rehearsed
    assert [r.status for r in outcome.statements] == ["applied", "applied"]
    assert all(r.seconds is not None and r.seconds >= 0 for r in outcome.statements)
    assert outcome.statements[1].rowcount == 2
    assert scalar(empty_db, "SELECT count(*) FROM a") == 2


def test_a_rehearsal_runs_every_statement_and_changes_nothing(empty_db):
    with exclusive_session(empty_db, FAST) as conn:
        outcome = run_in_transaction(conn, ["CREATE TABLE a (id int)", "INSERT INTO a VALUES (1)"], FAST,
                                     rehearse=True)
    assert outcome.rehearsed and not outcome.committed
    assert [r.status for r in outcome.statements] == ["rehearsed", "rehearsed"]
    assert regclass(empty_db, "a") is None


def test_a_statement_failing_midway_rolls_everything_back_and_names_itself(empty_db):
    with exclusive_session(empty_db, FAST) as conn:
        with pytest.raises(StatementFailed) as info:
            run_in_transaction(conn, ["CREATE TABLE a (id int)", "INSERT INTO a VALUES (1)",
                                      "-- oops\nINSERT INTO missing VALUES (1)", "CREATE TABLE b (id int)"], FAST)
        # the session is still usable and not inside a transaction
        assert conn.execute("SELECT 1").fetchone() == (1,)
    exc = info.value
    assert exc.index == 2 and exc.sqlstate == "42P01" and not exc.committed
    assert "statement 3/4 (INSERT INTO missing VALUES (1))" in str(exc)
    assert 'relation "missing" does not exist' in str(exc)
    assert "rolled back: nothing was changed" in str(exc)
    assert [r.status for r in exc.outcome.statements] == ["rolled_back", "rolled_back", "failed", "not_run"]
    assert regclass(empty_db, "a") is None and regclass(empty_db, "b") is None


def test_a_constraint_checked_at_commit_fails_the_write_and_changes_nothing(empty_db):
    with psycopg.connect(empty_db, autocommit=True) as c:
        c.execute("CREATE TABLE p (id int PRIMARY KEY)")
        c.execute("CREATE TABLE ch (pid int REFERENCES p DEFERRABLE INITIALLY DEFERRED)")
    with exclusive_session(empty_db, FAST) as conn:
        with pytest.raises(StatementFailed, match="COMMIT failed: 23503") as info:
            run_in_transaction(conn, ["CREATE TABLE a (id int)", "INSERT INTO ch VALUES (1)"], FAST)
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not info.value.outcome.committed
    assert [r.status for r in info.value.outcome.statements] == ["rolled_back", "rolled_back"]
    assert regclass(empty_db, "a") is None


def test_a_table_lock_held_elsewhere_times_out_after_lock_timeout_and_names_the_blocker(empty_db):
    with psycopg.connect(empty_db, autocommit=True) as c:
        c.execute("CREATE TABLE busy (id int)")
    blocker = psycopg.connect(empty_db, application_name="long-report")
    safety = threading.Timer(10, blocker.close)  # if the guard ever waits forever, fail instead of hanging
    safety.start()
    try:
        blocker.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")  # an open transaction holds it
        with exclusive_session(empty_db, FAST) as conn:
            t0 = time.monotonic()
            with pytest.raises(LockTimeout) as info:
                run_in_transaction(conn, ["CREATE TABLE other (id int)", "ALTER TABLE busy ADD COLUMN x int"], FAST)
            waited = time.monotonic() - t0
        exc = info.value
        assert 0.45 <= waited < 3
        assert exc.sqlstate == "55P03" and exc.index == 1
        assert "lock_timeout = 0.5 s" in str(exc) and "statement 2/2" in str(exc)
        assert exc.relation == "busy" and exc.mode == "AccessExclusiveLock"
        assert [b.pid for b in exc.blockers] == [blocker.info.backend_pid]
        assert exc.blockers[0].application_name == "long-report"
        assert f"pid {blocker.info.backend_pid} (long-report" in str(exc)
    finally:
        safety.cancel()
        blocker.close()
    assert regclass(empty_db, "other") is None
    assert scalar(empty_db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'busy'") == 1


def test_a_statement_longer_than_statement_timeout_is_cancelled_and_rolled_back(empty_db):
    limits = Limits(lock_timeout=0.5, statement_timeout=0.3)
    with exclusive_session(empty_db, limits) as conn:
        with pytest.raises(StatementFailed, match="ran longer than statement_timeout = 0.3 s") as info:
            run_in_transaction(conn, ["CREATE TABLE a (id int)", "SELECT pg_sleep(3)"], limits)
    assert info.value.sqlstate == "57014"
    assert regclass(empty_db, "a") is None


def test_a_terminated_session_is_a_clear_connection_error_with_nothing_committed(empty_db):
    with exclusive_session(empty_db, FAST) as conn:
        pid = conn.info.backend_pid

        def terminate() -> None:
            with psycopg.connect(empty_db, autocommit=True) as killer:
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    busy = killer.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND query LIKE %s",
                                          (pid, "%pg_sleep%")).fetchone()
                    if busy:
                        killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
                        return
                    time.sleep(0.02)

        thread = threading.Thread(target=terminate)
        thread.start()
        with pytest.raises(ConnectionLost) as info:
            run_in_transaction(conn, ["CREATE TABLE a (id int)", "INSERT INTO a VALUES (1)", "SELECT pg_sleep(5)"],
                               FAST)
        thread.join()
    exc = info.value
    assert isinstance(exc, DatabaseError) and not exc.maybe_committed
    assert "statement 3/3 (SELECT pg_sleep(5))" in str(exc)
    assert "nothing was committed" in str(exc)
    assert regclass(empty_db, "a") is None


def test_ctrl_c_mid_statement_rolls_back_and_leaves_the_session_usable(empty_db):
    with exclusive_session(empty_db, FAST) as conn:
        timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            run_in_transaction(conn, ["CREATE TABLE a (id int)", "SELECT pg_sleep(5)"], FAST)
        timer.join()
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert regclass(empty_db, "a") is None


def test_statements_that_cannot_run_in_a_transaction_run_after_the_commit_and_are_reported(empty_db):
    statements = ["CREATE TABLE a (id int)", "CREATE INDEX CONCURRENTLY a_id ON a (id)", "INSERT INTO a VALUES (1)"]
    with exclusive_session(empty_db, FAST) as conn:
        rehearsal = run_in_transaction(conn, statements, FAST, rehearse=True)
        assert [r.status for r in rehearsal.statements] == ["rehearsed", "skipped", "rehearsed"]
        assert regclass(empty_db, "a") is None
        outcome = run_in_transaction(conn, statements, FAST)
    assert [(r.status, r.own_transaction) for r in outcome.statements] == [
        ("applied", False), ("applied", True), ("applied", False)]
    assert regclass(empty_db, "a_id") == "a_id"


def test_a_failing_own_transaction_statement_says_the_transaction_already_committed(empty_db):
    with exclusive_session(empty_db, FAST) as conn:
        with pytest.raises(StatementFailed) as info:
            run_in_transaction(conn, ["CREATE TABLE a (id int)", "CREATE INDEX CONCURRENTLY x ON missing (id)"], FAST)
    assert info.value.committed and info.value.index == 1
    assert "after the transaction had committed" in str(info.value)
    assert regclass(empty_db, "a") == "a"


@pytest.mark.parametrize("statements, message", [
    (["CREATE TABLE a (id int)", "COMMIT"], "controls the transaction"),
    (["CREATE TABLE a (id int); DROP TABLE a"], "holds 2 statements"),
    (["CREATE TABLE a (id int)", "-- nothing"], "is empty"),
])
def test_dangerous_input_is_refused_before_anything_runs(empty_db, statements, message):
    with exclusive_session(empty_db, FAST) as conn:
        with pytest.raises(UsageError, match=message):
            run_in_transaction(conn, statements, FAST)
    assert regclass(empty_db, "a") is None


def test_a_whole_script_as_one_string_is_refused(empty_db):
    with exclusive_session(empty_db, FAST) as conn:
        with pytest.raises(UsageError, match="split_statements"):
            run_in_transaction(conn, "CREATE TABLE a (id int)", FAST)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# run_script: Prisma's way of running a migration


def test_run_script_is_all_or_nothing_like_prismas_native_engine(empty_db):
    script = "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\nSELECT 1/0;\nCREATE TABLE b (id int);\n"
    with exclusive_session(empty_db, FAST) as conn:
        with pytest.raises(StatementFailed, match="division by zero") as info:
            run_script(conn, script, FAST)
        assert conn.execute("SHOW lock_timeout").fetchone() == ("0",)  # session settings restored
    assert info.value.sqlstate == "22012"
    assert regclass(empty_db, "a") is None


def test_run_script_locates_the_failing_statement_when_postgresql_gives_a_position(empty_db):
    with exclusive_session(empty_db, FAST) as conn:
        with pytest.raises(StatementFailed) as info:
            run_script(conn, "CREATE TABLE a (id int);\n-- next\nINSERT INTO nope VALUES (1);\n", FAST)
    assert info.value.index == 1
    assert "statement 2/2 (INSERT INTO nope VALUES (1))" in str(info.value)


def test_run_script_with_its_own_failing_transaction_leaves_the_session_clean(empty_db):
    with exclusive_session(empty_db, FAST) as conn:
        with pytest.raises(StatementFailed, match="its own transaction control"):
            run_script(conn, "BEGIN; CREATE TABLE a (id int); SELECT 1/0; COMMIT;", FAST)
        assert conn.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(StatementFailed, match="did not commit"):
            run_script(conn, "BEGIN; CREATE TABLE b (id int);", FAST)
    assert regclass(empty_db, "a") is None and regclass(empty_db, "b") is None


# ---------------------------------------------------------------------------------------------
# Prisma's advisory lock


def hold_advisory_lock(url: str, application_name: str = "prisma-migrate") -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True, application_name=application_name)
    conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
    return conn


def test_exclusive_session_refuses_while_another_session_holds_prismas_lock_and_names_it(empty_db):
    holder = hold_advisory_lock(empty_db)
    try:
        t0 = time.monotonic()
        with pytest.raises(LockBusy) as info:
            with exclusive_session(empty_db, FAST):
                pytest.fail("must not get the lock")
        assert 0.25 <= time.monotonic() - t0 < 3
        exc = info.value
        assert str(exc).startswith("another migration holds Prisma's advisory lock")
        assert f"pid {holder.info.backend_pid} (prisma-migrate / " in str(exc)
        assert "SELECT pg_advisory_lock" in str(exc)
        assert [h.pid for h in exc.holders] == [holder.info.backend_pid]
    finally:
        holder.close()


def test_exclusive_session_waits_for_the_lock_to_be_released(empty_db):
    holder = hold_advisory_lock(empty_db)
    threading.Timer(0.3, holder.close).start()
    with exclusive_session(empty_db, Limits(advisory_wait=5)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s "
                            "AND pid = pg_backend_pid()", (ADVISORY_LOCK_KEY,)).fetchone() == (1,)


def test_exclusive_session_releases_the_lock_even_when_the_body_fails(empty_db):
    with pytest.raises(RuntimeError):
        with exclusive_session(empty_db, FAST):
            raise RuntimeError("boom")
    with psycopg.connect(empty_db, autocommit=True) as c:
        assert c.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone() == (True,)


def test_the_lock_is_per_database(make_db):
    one, two = make_db(), make_db()
    holder = hold_advisory_lock(one)
    try:
        with exclusive_session(two, FAST) as conn:
            assert advisory_lock_holders(conn) == []
    finally:
        holder.close()


def test_advisory_lock_holders_reports_who_and_for_how_long(empty_db):
    holder = hold_advisory_lock(empty_db, "deployer")
    try:
        with psycopg.connect(empty_db, autocommit=True) as c:
            (h,) = advisory_lock_holders(c)
        assert (h.pid, h.application_name) == (holder.info.backend_pid, "deployer")
        assert h.usename and h.age is not None and h.age >= 0 and h.state == "idle"
        assert re.fullmatch(rf"pid {h.pid} \(deployer / {h.usename}( from \S+)?\) for [0-9.]+ s, idle: "
                            r"SELECT pg_advisory_lock\(\$1\)", h.describe()), h.describe()
    finally:
        holder.close()
