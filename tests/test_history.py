"""The history store: audit log and monitoring history, on SQLite and on PostgreSQL alike."""
from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import UniqueConstraint, create_engine, inspect, select, text

from checks.cli import run
from checks.errors import (
    ConnectionLost,
    HistoryError,
    LockBusy,
    LockTimeout,
    MigrateError,
    MigrationFailed,
    StatementFailed,
    UsageError,
)
from checks.history import ActionRecord, CheckSpec, HistoryStore, timed_action
from checks.monitor.results import CheckResult
from checks.history import migrations, tables
from tests.conftest import ROOT

SECRET = "s3cr3t-Pa55"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def psycopg_url(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@pytest.fixture(autouse=True)
def no_real_store(tmp_path, monkeypatch):
    """No test may read or write the user's own store."""
    monkeypatch.delenv("DRIFTWATCH_HISTORY_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A URL for an empty store: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite3'}"
    return psycopg_url(request.getfixturevalue("make_db")())


@pytest.fixture
def store(store_url):
    with HistoryStore.open(store_url) as s:
        yield s


def call(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def assert_one_clean_line(code: int, err: str) -> None:
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith("driftwatch: error: ")
    assert "Traceback" not in err
    assert SECRET not in err


DRIFT_BEFORE = {
    "in_sync": False,
    "summary": {"critical": 1, "warning": 1, "info": 0},
    "findings": [
        {"kind": "missing_table", "severity": "critical", "table": "avatar_projects",
         "message": "table avatar_projects does not exist"},
        {"kind": "missing_index", "severity": "warning", "table": "avatar_projects",
         "message": "index avatar_projects_userId_idx does not exist"},
    ],
}
DRIFT_AFTER = {"in_sync": True, "summary": {"critical": 0, "warning": 0, "info": 0}, "findings": []}


def full_action(**overrides) -> ActionRecord:
    fields = dict(
        kind="fix", outcome="applied", actor="alice@ops-1",
        started_at=T0, finished_at=T0 + timedelta(milliseconds=1500), duration_ms=1500,
        environment="production", database="postgresql://app@db.internal:5432/avatar_studio",
        target="prisma/schema.prisma",
        statements='CREATE TABLE "avatar_projects" ("id" TEXT NOT NULL);\nCREATE INDEX "x" ON "a"("b");',
        drift_before=DRIFT_BEFORE, drift_after=DRIFT_AFTER,
        details={"plan": ["create table", "create index"], "rehearsed": True},
    )
    fields.update(overrides)
    return ActionRecord(**fields)


# -- the audit log ---------------------------------------------------------------------------


def test_an_action_round_trips_with_every_field(store):
    record = full_action()
    action_id = store.record_action(record)
    got = store.get_action(action_id)
    assert got is not None
    assert got.id == action_id
    record.id = action_id
    assert got == record
    assert got.started_at.tzinfo is not None and got.started_at.utcoffset() == timedelta(0)


def test_a_missing_action_is_none(store):
    assert store.get_action(12345) is None


def test_actions_are_listed_newest_first_and_filter_by_kind_and_time(store):
    for minutes, kind in [(0, "fix"), (10, "deploy"), (20, "fix"), (30, "runbook")]:
        store.record_action(full_action(kind=kind, started_at=T0 + timedelta(minutes=minutes)))
    listed = store.list_actions()
    assert [a.started_at for a in listed] == sorted((a.started_at for a in listed), reverse=True)
    assert [a.kind for a in listed] == ["runbook", "fix", "deploy", "fix"]
    assert [a.kind for a in store.list_actions(limit=2)] == ["runbook", "fix"]
    assert {a.kind for a in store.list_actions(kind="fix")} == {"fix"}
    assert len(store.list_actions(kind="fix")) == 2
    assert [a.kind for a in store.list_actions(since=T0 + timedelta(minutes=15))] == ["runbook", "fix"]


def test_an_unknown_outcome_is_refused_before_anything_is_written(store):
    with pytest.raises(ValueError, match="outcome"):
        store.record_action(full_action(outcome="done"))
    assert store.list_actions() == []


def test_timed_action_records_success_with_its_timing(store):
    with timed_action(store, "fix", database="postgresql://app@db/app", environment="staging") as action:
        action.statements = "ALTER TABLE a ADD COLUMN b int;"
        action.outcome = "rehearsed"
    assert action.id is not None
    got = store.get_action(action.id)
    assert got.outcome == "rehearsed"
    assert got.statements == "ALTER TABLE a ADD COLUMN b int;"
    assert got.finished_at >= got.started_at
    assert got.duration_ms is not None and got.duration_ms >= 0
    assert got.error is None
    assert "@" in got.actor  # $USER@hostname by default


def test_timed_action_records_a_failure_and_reraises_the_same_exception(store):
    boom = RuntimeError(f"could not apply to postgresql://bob:{SECRET}@db/app\nsecond line")
    with pytest.raises(RuntimeError) as raised:
        with timed_action(store, "deploy", database=f"postgresql://bob:{SECRET}@db/app") as action:
            action.statements = "CREATE TABLE t ();"
            raise boom
    assert raised.value is boom
    got = store.get_action(action.id)
    assert got.outcome == "failed"
    assert got.error.startswith("RuntimeError: could not apply to postgresql://bob:***@db/app")
    assert "second line" not in got.error and "\n" not in got.error
    assert SECRET not in got.error
    assert got.finished_at is not None and got.duration_ms is not None
    assert got.database == "postgresql://bob@db/app"


def test_timed_action_keeps_refused_when_the_body_set_it_before_raising(store):
    class Refused(Exception):
        pass

    with pytest.raises(Refused):
        with timed_action(store, "fix") as action:
            action.outcome = "refused"
            raise Refused("DROP COLUMN needs --allow-destructive")
    assert store.get_action(action.id).outcome == "refused"


@pytest.mark.parametrize("exc, outcome", [
    (StatementFailed("statement 3/4 failed; the transaction was rolled back", index=2), "rolled_back"),
    (StatementFailed("statement 2/2 (CREATE INDEX CONCURRENTLY) failed after the commit", committed=True), "failed"),
    (LockTimeout("statement 1/1 waited longer than lock_timeout", index=0), "failed"),
    (LockBusy("another migration holds Prisma's advisory lock"), "refused"),
    (UsageError("--record-migration goes with --apply"), "refused"),
    (MigrateError("P3009", "migrate found failed migrations"), "refused"),
    (MigrationFailed("migration x failed", migration="x", sqlstate="42P07", database_error="exists", logs="…"),
     "failed"),
    (ConnectionLost("the session ended"), "failed"),
    (KeyboardInterrupt(), "interrupted"),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v)
def test_timed_action_takes_the_outcome_the_engine_exception_names(store, exc, outcome):
    with pytest.raises(type(exc)):
        with timed_action(store, "fix") as action:
            raise exc
    assert store.get_action(action.id).outcome == outcome


def test_timed_action_stores_the_start_before_the_body_runs(store):
    with timed_action(store, "deploy", statements="CREATE TABLE t ();") as action:
        during = store.get_action(action.id)
    assert (during.outcome, during.finished_at, during.statements) == ("started", None, "CREATE TABLE t ();")
    after = store.get_action(action.id)
    assert after.outcome == "applied" and after.finished_at is not None
    assert [a.id for a in store.list_actions()] == [action.id]  # the same row, finished: not a second one


def test_timed_action_never_runs_the_body_when_the_store_cannot_record_the_start():
    class DownStore:
        def record_action(self, record):
            raise HistoryError("cannot record an action in history store x: disk full")

    ran = []
    with pytest.raises(HistoryError, match="disk full"):
        with timed_action(DownStore(), "fix"):
            ran.append(True)
    assert ran == []


def test_timed_action_never_hides_the_failure_when_the_store_cannot_write():
    class BrokenStore:  # takes the start, then goes away before the outcome
        def record_action(self, record):
            return 1

        def update_action(self, record):
            raise HistoryError("cannot record an action in history store x: disk full")

    with pytest.raises(KeyError) as raised:
        with timed_action(BrokenStore(), "fix"):
            raise KeyError("the real failure")
    assert any("was not stored" in note for note in raised.value.__notes__)


def test_timed_action_reports_a_lost_outcome_after_success_and_keeps_the_started_row(store):
    lost = []

    def down(record):
        raise HistoryError("cannot record an action's outcome in history store x: disk full")

    store.update_action = down  # the store goes away while the action runs
    with timed_action(store, "fix", on_lost=lost.append) as action:
        pass
    del store.update_action
    assert len(lost) == 1 and "(applied) was not stored" in lost[0] and "stays 'started'" in lost[0]
    assert store.get_action(action.id).outcome == "started"


def test_no_password_is_stored_even_when_handed_one(store, store_url):
    url = f"postgresql+psycopg://bob:{SECRET}@db.internal:5432/app"
    action_id = store.record_action(full_action(
        database=url,
        statements=f"driftwatch check --database-url postgresql://bob:{SECRET}@db.internal/app",
        error=f"connection to {url} failed",
        details={"url": url, "password": SECRET, "nested": [{"api_key": SECRET}]},
        drift_before={"note": f"postgres://bob:{SECRET}@h/db"},
    ))
    got = store.get_action(action_id)
    assert got.database == "postgresql://bob@db.internal:5432/app"
    assert SECRET not in json.dumps(got.to_json())
    # Read the raw row too: what is on disk, not what the API shows.
    engine = create_engine(store_url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET search_path TO driftwatch"))
        row = conn.execute(text("SELECT * FROM actions")).one()
    engine.dispose()
    assert SECRET not in " ".join(str(v) for v in row)


# -- migrations ------------------------------------------------------------------------------


def test_opening_twice_is_idempotent(store_url):
    with HistoryStore.open(store_url) as first:
        first.record_action(full_action())
    with HistoryStore.open(store_url) as second:
        assert second.schema_version() == migrations.LATEST
        assert len(second.list_actions()) == 1
        with second.engine.connect() as conn:
            versions = conn.execute(select(tables.schema_version.c.version)).scalars().all()
        assert versions == [m.version for m in migrations.MIGRATIONS]


def test_a_store_at_version_1_upgrades_to_the_latest_and_keeps_its_actions(store_url):
    old = HistoryStore.open(store_url, migrate=False)
    assert migrations.upgrade(old.engine, to=1) == [1]
    assert old.schema_version() == 1
    with old.engine.connect() as conn:
        assert not inspect(conn).has_table("targets", schema=tables.PG_SCHEMA if old.dialect == "postgresql" else None)
    action_id = old.record_action(full_action())
    old.close()

    with HistoryStore.open(store_url) as store:
        assert store.schema_version() == migrations.LATEST
        assert store.get_action(action_id).statements == full_action().statements
        [tid] = store.register_checks("production", [CheckSpec("health", "api", 30)]).values()
        assert store.record_result(tid, CheckResult("health", "api", "ok", None, T0)).flip is not None


def test_the_migrations_build_exactly_the_schema_the_code_uses(store):
    schema = tables.PG_SCHEMA if store.dialect == "postgresql" else None
    with store.engine.connect() as conn:
        insp = inspect(conn)
        assert set(insp.get_table_names(schema=schema)) == set(tables.metadata.tables)
        for table in tables.metadata.sorted_tables:
            live = {c["name"]: c for c in insp.get_columns(table.name, schema=schema)}
            assert list(live) == [c.name for c in table.columns], table.name
            for column in table.columns:
                assert live[column.name]["nullable"] == column.nullable, (table.name, column.name)
                want = column.type.compile(dialect=conn.dialect)
                got = live[column.name]["type"].compile(dialect=conn.dialect)
                assert got.split("(")[0] == want.split("(")[0], (table.name, column.name, got, want)
            live_indexes = {i["name"]: i["column_names"] for i in insp.get_indexes(table.name, schema=schema)
                            if not i.get("duplicates_constraint")}  # PostgreSQL lists a unique's index too
            want_indexes = {i.name: [c.name for c in i.columns] for i in table.indexes}
            assert live_indexes == want_indexes, table.name
            live_uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(table.name, schema=schema)}
            want_uniques = {tuple(c.name for c in k.columns) for k in table.constraints
                            if isinstance(k, UniqueConstraint)} | {(c.name,) for c in table.columns if c.unique}
            assert live_uniques == want_uniques, table.name
            live_fks = {(tuple(f["constrained_columns"]), f["referred_table"], f["options"].get("ondelete"))
                        for f in insp.get_foreign_keys(table.name, schema=schema)}
            want_fks = {((f.parent.name,), f.column.table.name, f.ondelete) for f in table.foreign_keys}
            assert live_fks == want_fks, table.name


def test_postgresql_tables_live_in_their_own_schema_not_the_applications(store):
    if store.dialect != "postgresql":
        pytest.skip("SQLite has no schemas")
    with store.engine.connect() as conn:
        assert inspect(conn).get_table_names(schema="public") == []


def test_a_store_newer_than_this_code_is_refused(store_url):
    with HistoryStore.open(store_url) as store:
        with store.engine.connect() as conn:
            conn.execute(tables.schema_version.insert().values(
                version=migrations.LATEST + 1, description="from the future", applied_at=T0))
            conn.commit()
    with pytest.raises(HistoryError, match="newer than this Driftwatch"):
        HistoryStore.open(store_url)


def test_stores_opened_at_the_same_time_apply_each_migration_once(store_url):
    errors: list[BaseException] = []

    def open_it():
        try:
            HistoryStore.open(store_url).close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with HistoryStore.open(store_url) as store, store.engine.connect() as conn:
        versions = conn.execute(select(tables.schema_version.c.version)).scalars().all()
    assert sorted(versions) == [m.version for m in migrations.MIGRATIONS]


# -- monitoring ------------------------------------------------------------------------------


def result(kind="health", name="api", state="ok", at=T0, reason=None, latency=12.5, **detail):
    if state != "ok" and reason is None:
        reason = f"{name} is {state}"
    return CheckResult(kind, name, state, reason, at, latency, detail)


def register(store, environment="production", *checks, now=T0):
    specs = [CheckSpec(kind, name, interval) for kind, name, interval in
             (checks or [("health", "api", 30)])]
    return store.register_checks(environment, specs, now=now)


def test_checks_are_named_by_environment_kind_and_name(store):
    prod = register(store, "production", ("health", "api", 30), ("drift", "drift", 60))
    staging = register(store, "staging", ("health", "api", 30))
    assert prod[("health", "api")] != staging[("health", "api")]
    assert register(store, "production", ("health", "api", 30)) == {("health", "api"): prod[("health", "api")]}
    assert [(t.environment, t.kind, t.name) for t in store.targets()] == [
        ("production", "drift", "drift"), ("production", "health", "api"), ("staging", "health", "api")]
    assert store.environments() == ["production", "staging"]
    with pytest.raises(ValueError, match="check kind"):
        store.register_checks("production", [CheckSpec("ping", "x", 30)])


def test_a_check_turns_failing_only_after_the_threshold_and_ok_on_the_first_success(store):
    tid = register(store)[("health", "api")]
    states = ["ok", "failing", "ok", "failing", "failing", "failing", "error", "ok"]
    seen = []
    for i, s in enumerate(states):
        rec = store.record_result(tid, result(state=s, at=T0 + timedelta(seconds=30 * i)), failure_threshold=2)
        seen.append((rec.status.state, rec.flip is not None))
    assert seen == [("ok", True), ("warning", True), ("ok", True), ("warning", True), ("failing", True),
                    ("failing", False), ("error", True), ("ok", True)]
    flips = store.flips("production")
    assert [(f.from_state, f.to_state) for f in flips] == [
        (None, "ok"), ("ok", "warning"), ("warning", "ok"), ("ok", "warning"), ("warning", "failing"),
        ("failing", "error"), ("error", "ok")]
    assert flips[1].reason == "api is failing (failure 1 of 2 before failing)"
    assert flips[4].reason == "api is failing" and flips[4].name == "api" and flips[4].kind == "health"
    # raw observations keep the probe's own state
    assert [o.state for o in store.observations(tid)] == states


def test_the_latest_state_of_every_check_comes_with_its_result_and_age(store):
    ids = register(store, "production", ("health", "api", 30), ("drift", "drift", 60), ("smoke", "create", 300))
    store.record_result(ids[("drift", "drift")], CheckResult(
        "drift", "drift", "failing", "table avatar_projects missing", T0, 40.0,
        {"schema_commit": "cbf49b4", "summary": {"critical": 2}}), failure_threshold=1)
    store.record_result(ids[("health", "api")], result(at=T0 + timedelta(seconds=10)))
    latest = store.latest("production")
    assert [(c.kind, c.name, c.state) for c in latest] == [
        ("health", "api", "ok"), ("smoke", "create", "unknown"), ("drift", "drift", "failing")]
    drift = latest[2]
    assert drift.detail == {"schema_commit": "cbf49b4", "summary": {"critical": 2}}
    assert drift.reason == "table avatar_projects missing" and drift.since == T0
    assert drift.age_s(T0 + timedelta(seconds=90)) == 90.0
    assert not drift.is_stale(T0 + timedelta(seconds=90)) and drift.is_stale(T0 + timedelta(seconds=121))
    assert latest[1].checked_at is None and latest[1].age_s() is None
    assert store.environment_states() == {"production": "failing"}


def test_flips_keep_the_result_that_caused_them_and_new_deployments_are_flips_too(store):
    ids = register(store, "production", ("deployment", "deployment", 60), ("drift", "drift", 60))
    dep, drift = ids[("deployment", "deployment")], ids[("drift", "drift")]

    def deployed(i, commit, status="finished", uuid="d1"):
        return CheckResult("deployment", "deployment", "ok", None, T0 + timedelta(minutes=i), 30.0,
                           {"status": status, "commit": commit, "deployment_uuid": uuid})

    store.record_result(dep, deployed(0, "a" * 40))
    store.record_result(dep, deployed(1, "a" * 40))  # the same deployment: nothing new
    store.record_result(dep, deployed(2, "b" * 40, "in_progress", "d2"))
    store.record_result(dep, deployed(3, "b" * 40, "finished", "d2"))
    findings = {"summary": {"critical": 1}, "findings": [{"kind": "missing_table", "table": "avatar_projects"}]}
    store.record_result(drift, CheckResult("drift", "drift", "failing", "table avatar_projects missing",
                                           T0 + timedelta(minutes=4), 50.0, findings))
    flips = store.flips("production")
    assert [(f.kind, f.from_state, f.to_state, f.reason) for f in flips] == [
        ("deployment", None, "ok", "deployment d1 of aaaaaaa finished"),
        ("deployment", "ok", "ok", "deployment d2 of bbbbbbb in_progress"),
        ("deployment", "ok", "ok", "deployment d2 of bbbbbbb finished"),
        ("drift", None, "failing", "table avatar_projects missing"),
    ]
    assert flips[2].detail["commit"] == "b" * 40 and flips[3].detail == findings


def test_a_late_result_is_kept_but_changes_no_state(store):
    tid = register(store)[("health", "api")]
    store.record_result(tid, result(state="ok", at=T0 + timedelta(minutes=5)))
    rec = store.record_result(tid, result(state="failing", at=T0), failure_threshold=1)
    assert rec.flip is None and rec.status.state == "ok"
    assert [o.state for o in store.observations(tid)] == ["failing", "ok"]


def test_pollers_racing_on_one_check_record_one_flip(store):
    tid = register(store)[("health", "api")]
    errors = []

    def probe():
        try:
            for _ in range(5):
                store.record_result(tid, result(state="failing", at=datetime.now(timezone.utc)))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=probe) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.observations(tid)) == 20
    assert [(f.from_state, f.to_state) for f in store.flips()] == [(None, "failing")]
    # a result that lost the race to a newer one is kept but counts as late
    assert 1 <= store.latest()[0].failures <= 20 and store.latest()[0].state == "failing"


def test_due_checks_are_leased_once_per_interval(store):
    ids = register(store, "production", ("health", "api", 30), ("drift", "drift", 60))
    store.register_checks("production", [CheckSpec("migrations", "migrations", 60, scheduled=False)], now=T0)
    first = store.claim_due("poller-a", now=T0)
    assert sorted((c.kind, c.name) for c in first) == [("drift", "drift"), ("health", "api")]
    assert store.claim_due("poller-b", now=T0 + timedelta(seconds=29)) == []
    again = store.claim_due("poller-b", now=T0 + timedelta(seconds=30))
    assert [(c.kind, c.target_id) for c in again] == [("health", ids[("health", "api")])]
    assert store.next_due() == T0 + timedelta(seconds=60)
    assert store.claim_due("x", now=T0 + timedelta(hours=1), environments=["staging"]) == []


def test_a_check_removed_from_the_config_is_unscheduled_but_keeps_its_history(store):
    ids = register(store, "production", ("health", "api", 30), ("health", "old", 30))
    store.record_result(ids[("health", "old")], result(name="old"))
    register(store, "production", ("health", "api", 30), now=T0 + timedelta(seconds=1))
    store.register_checks("production", [CheckSpec("health", "api", 30)], now=T0, retire_others=True)
    assert [c.name for c in store.claim_due("a", now=T0 + timedelta(hours=1))] == ["api"]
    assert [o.state for o in store.observations(ids[("health", "old")])] == ["ok"]
    assert [c.name for c in store.latest()] == ["api"]
    assert [c.name for c in store.latest(include_retired=True)] == ["api", "old"]
    assert [t.name for t in store.targets()] == ["api"]
    # a retired check that failed keeps no incident open
    store.record_result(ids[("health", "old")], result(name="old", state="failing"))
    store.record_result(ids[("health", "api")], result(at=T0 + timedelta(seconds=2)))
    assert store.update_incident("production") is None
    # back in the config: watched again
    register(store, "production", ("health", "api", 30), ("health", "old", 30))
    assert [c.name for c in store.latest()] == ["api", "old"]


def test_a_shorter_interval_brings_the_next_run_closer(store):
    register(store, "production", ("health", "api", 300))
    store.claim_due("a", now=T0)
    assert store.next_due() == T0 + timedelta(seconds=300)
    register(store, "production", ("health", "api", 30), now=T0 + timedelta(seconds=10))
    assert store.next_due() == T0 + timedelta(seconds=40)


def test_claims_from_many_threads_never_hand_out_a_check_twice(store):
    register(store, "production", *[("health", f"h{i}", 60) for i in range(40)])
    got: list[int] = []
    lock = threading.Lock()

    def claim():
        for _ in range(5):
            claims = store.claim_due(threading.current_thread().name, now=T0, limit=3)
            with lock:
                got.extend(c.target_id for c in claims)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(set(got))


def test_an_incident_opens_when_an_environment_turns_failing_and_closes_when_ok(store):
    ids = register(store, "production", ("health", "api", 30), ("smoke", "create", 60))
    api, smoke = ids[("health", "api")], ids[("smoke", "create")]
    store.record_result(api, result(at=T0))
    store.record_result(smoke, result("smoke", "create", "ok", at=T0))
    assert store.update_incident("production", now=T0) is None
    store.record_result(smoke, result("smoke", "create", "failing", T0 + timedelta(minutes=1),
                                      reason="step 1 POST /projects: [STATUS] == 201: got 400"))
    opened = store.update_incident("production", now=T0 + timedelta(minutes=1))
    assert opened.action == "opened"
    assert opened.incident.title == ("production failing: smoke 'create': "
                                     "step 1 POST /projects: [STATUS] == 201: got 400")
    assert opened.incident.summary["checks"][0]["name"] == "create"
    assert store.update_incident("production", now=T0 + timedelta(minutes=2)) is None  # still failing: one incident
    store.record_result(smoke, result("smoke", "create", "warning", T0 + timedelta(minutes=3)))
    assert store.update_incident("production", now=T0 + timedelta(minutes=3)) is None  # not ok yet
    store.record_result(smoke, result("smoke", "create", "ok", T0 + timedelta(minutes=4)))
    closed = store.update_incident("production", now=T0 + timedelta(minutes=4))
    assert closed.action == "closed" and closed.incident.duration_s() == 180.0
    [incident] = store.incidents("production")
    assert incident.closed_at == T0 + timedelta(minutes=4) and not incident.is_open
    assert store.incidents("staging") == []
    assert store.get_incident(incident.id) == incident


def test_one_open_incident_per_environment_even_by_hand(store):
    first = store.open_incident("production", "api down", {"targets": ["api"]}, opened_at=T0)
    with pytest.raises(UsageError, match="already has an open incident"):
        store.open_incident("production", "again", opened_at=T0)
    second = store.open_incident("staging", "drift in staging", opened_at=T0 + timedelta(hours=1))
    store.close_incident(first, closed_at=T0 + timedelta(minutes=20), summary={"cause": "missing table"})
    assert [i.id for i in store.incidents()] == [second, first]
    assert [i.id for i in store.incidents(open_only=True)] == [second]
    assert [i.id for i in store.incidents(since=T0 + timedelta(minutes=30))] == [second]
    assert [i.id for i in store.incidents(until=T0 + timedelta(minutes=30))] == [first]
    with pytest.raises(UsageError):
        store.close_incident(first)


def fill(store, tid, start, hours, every_s=30, state_of=lambda i: "ok", latency_of=lambda i: float(i % 100)):
    n = int(hours * 3600 // every_s)
    for i in range(n):
        store.record_result(tid, result(state=state_of(i), at=start + timedelta(seconds=every_s * i),
                                        latency=latency_of(i)))
    return n


def test_rollups_aggregate_each_hour_in_sql_and_series_joins_them_with_raw(store):
    tid = register(store)[("health", "api")]
    # 3 hours at 5-minute steps: 12 results an hour, every 4th failing, latencies 0..11 per hour.
    fill(store, tid, T0, 3, every_s=300, state_of=lambda i: "failing" if i % 4 == 3 else "ok",
         latency_of=lambda i: float(i % 12))
    now = T0 + timedelta(hours=2, minutes=30)
    assert store.rollup(now=now) == 2  # hours 12:00 and 13:00 are complete
    series = store.series(tid, since=T0, until=now)
    assert [(p.hour, p.source, p.count, p.ok_count, p.failing_count) for p in series] == [
        (T0, "rollup", 12, 9, 3), (T0 + timedelta(hours=1), "rollup", 12, 9, 3),
        (T0 + timedelta(hours=2), "raw", 6, 5, 1)]
    assert (series[0].latency_avg, series[0].latency_p95, series[0].latency_max) == (5.5, 11.0, 11.0)
    assert (series[2].latency_avg, series[2].latency_p95, series[2].latency_max) == (2.5, 5.0, 5.0)
    # The same figures whether an hour is rolled up or not.
    store.rollup(now=T0 + timedelta(hours=3))
    assert [(p.count, p.ok_count, p.latency_p95) for p in store.series(tid, since=T0, until=now)][:2] == \
        [(12, 9, 11.0), (12, 9, 11.0)]
    assert store.rollup(now=T0 + timedelta(hours=3)) == 1  # the newest hour again, for late results


def test_uptime_counts_rollups_and_raw_results_once(store):
    ids = register(store, "production", ("health", "api", 30), ("health", "web", 30))
    api, web = ids[("health", "api")], ids[("health", "web")]
    fill(store, api, T0, 3, every_s=600, state_of=lambda i: "failing" if i % 2 else "ok")  # 18, half ok
    fill(store, web, T0, 1, every_s=600)  # 6, all ok
    until = T0 + timedelta(hours=3)
    before = store.uptime(since=T0, until=until)
    store.rollup(now=T0 + timedelta(hours=2, minutes=5))
    after = store.uptime(since=T0, until=until)
    assert before == after == {api: 0.5, web: 1.0}
    assert store.counts(since=T0 + timedelta(minutes=30), until=until, environment="production") == {
        api: (15, 7, 8), web: (3, 3, 0)}
    assert store.uptime(since=T0, until=until, target_ids=[web]) == {web: 1.0}


def test_prune_keeps_rollups_for_90_days_and_raw_results_for_7(store):
    tid = register(store)[("health", "api")]
    fill(store, tid, T0, 2, every_s=1200)  # 6 results at 12:00..13:40
    late = T0 + timedelta(days=8)
    store.record_result(tid, result(at=late))
    pruned = store.prune(now=late + timedelta(minutes=1), batch=2)
    assert pruned.observations == 6 and pruned.rollups == 0
    assert [o.observed_at for o in store.observations(tid)] == [late]
    assert [p.count for p in store.series(tid, since=T0, until=T0 + timedelta(hours=2))] == [3, 3]
    assert store.latest()[0].checked_at == late  # the current state lives on
    assert store.prune(now=T0 + timedelta(days=91)).rollups == 2
    assert store.series(tid, since=T0, until=T0 + timedelta(hours=2)) == []
    assert len(store.flips()) == 1  # flips are the record: never pruned


def test_observations_stream_in_batches_within_a_window(store):
    tid = register(store)[("health", "api")]
    fill(store, tid, T0, 1, every_s=60)
    stream = store.iter_observations(tid, since=T0 + timedelta(minutes=10), until=T0 + timedelta(minutes=20),
                                     batch=3)
    assert [o.observed_at.minute for o in stream] == list(range(10, 20))


def test_actions_are_listed_per_environment_and_window(store):
    store.record_action(full_action(environment="production", started_at=T0))
    store.record_action(full_action(environment="staging", started_at=T0 + timedelta(minutes=5)))
    store.record_action(full_action(environment="production", started_at=T0 + timedelta(hours=2)))
    assert [a.started_at for a in store.list_actions(environment="production", until=T0 + timedelta(hours=1))] \
        == [T0]


def test_a_result_and_check_config_are_stored_without_secrets(store, store_url):
    [tid] = store.register_checks("production", [CheckSpec(
        "drift", "drift", 60, {"database_url": f"postgresql://bob:{SECRET}@db/app", "token": SECRET})]).values()
    store.record_result(tid, CheckResult("drift", "drift", "error",
                                         f"cannot connect to postgresql://bob:{SECRET}@db/app", T0, None,
                                         {"authorization": SECRET}))
    [target] = store.targets()
    assert target.config == {"database_url": "postgresql://bob:***@db/app", "token": "***"}
    engine = create_engine(store_url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET search_path TO driftwatch"))
        for table in ("targets", "target_state", "observations", "flips"):
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            assert rows and SECRET not in repr(rows), table
    engine.dispose()


def test_a_version_2_store_keeps_its_monitoring_rows_in_the_new_states(store_url):
    old = HistoryStore.open(store_url, migrate=False)
    assert migrations.upgrade(old.engine, to=2) == [1, 2]
    with old.engine.begin() as conn:
        if old.dialect == "postgresql":
            conn.execute(text("SET LOCAL search_path TO driftwatch"))
        conn.execute(text("INSERT INTO targets (name, kind, config, created_at) "
                          "VALUES ('api', 'health', '{}', :t)"), {"t": T0})
        for i, status in enumerate(["up", "down", "degraded"]):
            conn.execute(text("INSERT INTO observations (target_id, observed_at, status, latency_ms) "
                              "VALUES (1, :t, :s, 5)"), {"t": T0 + timedelta(minutes=i), "s": status})
        conn.execute(text("INSERT INTO flips (target_id, at, from_status, to_status) VALUES (1, :t, NULL, 'up')"),
                     {"t": T0})
        conn.execute(text("INSERT INTO flips (target_id, at, from_status, to_status) VALUES (1, :t, 'up', 'down')"),
                     {"t": T0 + timedelta(minutes=1)})
        conn.execute(text("INSERT INTO incidents (opened_at, title, summary) VALUES (:t, 'api down', '{}')"),
                     {"t": T0})
    old.close()
    with HistoryStore.open(store_url) as store:
        [target] = store.targets()
        assert (target.environment, target.kind, target.name) == ("default", "health", "api")
        assert [(o.state, o.reason) for o in store.observations(target.id)] == [
            ("ok", None), ("failing", "recorded as down"), ("warning", "recorded as degraded")]
        assert [(f.from_state, f.to_state) for f in store.flips()] == [(None, "ok"), ("ok", "failing")]
        [now] = store.latest()
        assert (now.state, now.checked_at, now.due_at) == ("warning", T0 + timedelta(minutes=2), None)
        [incident] = store.incidents()
        assert (incident.environment, incident.title, incident.is_open) == ("default", "api down", True)
        # new rows get new ids
        ids = store.register_checks("default", [CheckSpec("health", "web", 30)])
        assert ids[("health", "web")] == 2
        store.record_result(2, result(name="web"))




# -- where the store lives, and when it cannot be opened ------------------------------------


def test_the_default_store_is_a_private_file_under_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.delenv("DRIFTWATCH_HISTORY_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with HistoryStore.open() as store:
        store.record_action(full_action())
    path = tmp_path / "data" / "driftwatch" / "history.sqlite3"
    assert store.location == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_driftwatch_history_url_overrides_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("DRIFTWATCH_HISTORY_URL", str(tmp_path / "team.sqlite3"))
    with HistoryStore.open() as store:
        assert store.location == str(tmp_path / "team.sqlite3")
    assert not (tmp_path / "data").exists()


def test_a_plain_postgresql_url_uses_psycopg_and_never_shows_its_password(make_db):
    from urllib.parse import urlsplit

    url = make_db()
    parts = urlsplit(url)
    if not parts.password:  # a trusting test server ignores it; it must still never be shown
        host = parts.netloc.rsplit("@", 1)[-1]
        url = parts._replace(netloc=f"{parts.username or 'postgres'}:{SECRET}@{host}").geturl()
    with_password = url
    with HistoryStore.open(with_password) as store:
        assert store.dialect == "postgresql"
        assert store.engine.dialect.driver == "psycopg"
        assert SECRET not in store.location and SECRET not in repr(store)
        store.record_action(full_action())


def test_a_store_in_a_missing_directory_is_one_clean_error_line(tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "history.sqlite3"
    code, out, err = call("audit", "--history-url", str(path))
    assert_one_clean_line(code, err)
    assert f"{tmp_path / 'no' / 'such' / 'dir'} does not exist" in err
    assert not path.parent.exists()


def test_a_store_under_a_file_is_one_clean_error_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    code, _, err = call("audit", "--history-url", f"sqlite:///{tmp_path / 'afile' / 'history.sqlite3'}")
    assert_one_clean_line(code, err)
    assert "is not a directory" in err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_a_store_in_a_read_only_directory_is_one_clean_error_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        code, _, err = call("audit", "--history-url", str(locked / "history.sqlite3"))
    finally:
        locked.chmod(0o700)
    assert_one_clean_line(code, err)
    assert "cannot create it" in err


def test_a_file_that_is_not_a_store_is_one_clean_error_line(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("this is not a database, it is a shopping list\n" * 100)
    code, _, err = call("audit", "--history-url", str(bogus))
    assert_one_clean_line(code, err)
    assert str(bogus) in err


def test_an_unreachable_postgresql_store_is_one_line_naming_it_without_the_password():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = call("audit", "--history-url", f"postgresql://bob:{SECRET}@127.0.0.1:{port}/ops")
    assert_one_clean_line(code, err)
    assert f"postgresql://bob@127.0.0.1:{port}/ops" in err
    assert "connection refused" in err


def test_an_unsupported_url_is_one_clean_error_line():
    code, _, err = call("audit", "--history-url", f"mysql://bob:{SECRET}@db/ops")
    assert_one_clean_line(code, err)
    assert "unsupported history store URL mysql://" in err


# -- the CLI ---------------------------------------------------------------------------------


def test_the_cli_lists_actions_newest_first(store, store_url):
    store.record_action(full_action(kind="fix", started_at=T0))
    store.record_action(full_action(kind="deploy", outcome="failed", started_at=T0 + timedelta(hours=1),
                                    duration_ms=65_000, error="exit 1"))
    code, out, err = call("audit", "--history-url", store_url)
    assert (code, err) == (0, "")
    header, newest, oldest = out.splitlines()
    assert header.split() == ["ID", "WHEN", "(UTC)", "WHO", "KIND", "DATABASE", "OUTCOME", "DURATION"]
    assert newest.split()[3:] == ["alice@ops-1", "deploy", "postgresql://app@db.internal:5432/avatar_studio",
                                  "failed", "1m05s"]
    assert "2026-03-01 13:00:00" in newest
    assert oldest.split()[4] == "fix" and oldest.split()[-1] == "1.5s"

    code, out, _ = call("audit", "--history-url", store_url, "--kind", "fix", "--format", "json")
    assert code == 0
    listed = json.loads(out)["actions"]
    assert [a["kind"] for a in listed] == ["fix"]
    assert listed[0]["drift_before"] == DRIFT_BEFORE
    assert listed[0]["started_at"] == "2026-03-01T12:00:00+00:00"

    code, out, _ = call("audit", "--history-url", store_url, "--limit", "1")
    assert len(out.splitlines()) == 2


def test_the_cli_shows_one_action_with_its_sql_and_drift(store, store_url):
    action_id = store.record_action(full_action())
    code, out, err = call("audit", "show", str(action_id), "--history-url", store_url)
    assert (code, err) == (0, "")
    assert f"action {action_id}" in out
    assert 'CREATE TABLE "avatar_projects" ("id" TEXT NOT NULL);' in out
    assert "drift before: drift (1 critical, 1 warning, 0 info)" in out
    assert "missing_table" in out and "table avatar_projects does not exist" in out
    assert "drift after: in sync (0 critical, 0 warning, 0 info)" in out
    assert "production" in out and "prisma/schema.prisma" in out

    code, out, _ = call("audit", "--history-url", store_url, "show", str(action_id), "--format", "json")
    assert code == 0
    assert json.loads(out)["statements"] == full_action().statements


def test_the_cli_says_so_when_an_action_does_not_exist(store_url):
    code, _, err = call("audit", "show", "999", "--history-url", store_url)
    assert_one_clean_line(code, err)
    assert "no action 999" in err


def test_the_cli_says_so_when_the_log_is_empty(tmp_path):
    code, out, _ = call("audit", "--history-url", str(tmp_path / "h.sqlite3"))
    assert code == 0
    assert out == f"no actions recorded in {tmp_path / 'h.sqlite3'}\n"


def test_driftwatch_help_does_not_import_sqlalchemy():
    probe = ("import sys, checks.cli as c, checks.history, checks.commands.audit; c.build_parser(); "
             "print('sqlalchemy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_actor_and_environment_come_from_the_deployment_when_not_given(monkeypatch):
    from checks.history.records import ActionRecord

    monkeypatch.setenv("DRIFTWATCH_ACTOR", "ci@deploy-gate")
    monkeypatch.setenv("DRIFTWATCH_ENVIRONMENT", "production")
    record = ActionRecord(kind="fix", outcome="applied")
    assert (record.actor, record.environment) == ("ci@deploy-gate", "production")
    monkeypatch.delenv("DRIFTWATCH_ACTOR")
    monkeypatch.delenv("DRIFTWATCH_ENVIRONMENT")
    record = ActionRecord(kind="fix", outcome="applied")
    assert "@" in record.actor and record.environment is None
