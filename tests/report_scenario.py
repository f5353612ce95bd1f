"""The avatar_projects incident as report facts and as check results, shared by the report tests.

Times are those of the real incident (2025-10-12, UTC): deployment sos80kw… of commit cbf49b4
finishes 08:36; the create-project smoke check answers 400 while /health says ok; the drift
check finds table avatar_projects missing against that commit's schema; the migration that
creates it is pending; a hand-written emergency SQL runbook fixes part of it, `fix` the rest,
and `migrate resolve --applied` settles the history.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from checks.reports.facts import (
    ActionInfo,
    CheckInfo,
    Deployment,
    DriftPoint,
    Facts,
    FlipInfo,
    IncidentInfo,
    MigrationsPoint,
)

DAY = datetime(2025, 10, 12, tzinfo=timezone.utc)
COMMIT = "cbf49b45c815f9a1250331a0c77e00304a3e4021"
DEPLOYMENT = "sos80kw4koscosckww0wc4co"
MIGRATION = "20251012082000_add_avatar_projects"
SMOKE_URL = "http://127.0.0.1:8080/api/apps/avatar-creator/projects"


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return DAY + timedelta(hours=hh, minutes=mm, seconds=ss)


def finding(kind: str, severity: str, table: str, column: str | None = None, name: str | None = None,
            message: str = "") -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "schema": "public", "table": table, "column": column,
            "name": name, "model": None, "field": None, "expected": None, "actual": None,
            "message": message or f"{kind} {table}", "fix": None}


FULL_DRIFT = (
    finding("missing_table", "critical", "avatar_projects",
            message="table avatar_projects does not exist: every query on model AvatarProject fails"),
    finding("missing_foreign_key", "warning", "avatar_projects", name="avatar_projects_userId_fkey"),
    finding("missing_index", "warning", "avatar_projects", name="avatar_projects_userId_idx"),
    finding("missing_column", "critical", "avatars", column="projectId",
            message="column avatars.projectId does not exist: queries on Avatar that select it fail"),
    finding("missing_foreign_key", "warning", "avatars", name="avatars_projectId_fkey"),
    finding("missing_index", "warning", "avatars", name="avatars_projectId_idx"),
)
# What the emergency SQL of the incident left: everything of avatars.projectId, and the table's FK.
AFTER_RUNBOOK = tuple(f for f in FULL_DRIFT if f["kind"] != "missing_table" and f["name"] != "avatar_projects_userId_idx")


def summary(findings: tuple[dict[str, Any], ...]) -> dict[str, int]:
    return {s: sum(1 for f in findings if f["severity"] == s) for s in ("critical", "warning", "info")}


def drift_json(findings: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return {"in_sync": not findings, "summary": summary(findings), "findings": list(findings)}


RUNBOOK_SQL = ('-- title: fix avatar_projects table\n'
               'CREATE TABLE IF NOT EXISTS "avatar_projects" ("id" TEXT PRIMARY KEY, "userId" TEXT NOT NULL);\n'
               'CREATE INDEX IF NOT EXISTS "avatar_projects_userId_idx" ON "avatar_projects"("userId");')
FIX_SQL = ('ALTER TABLE "avatars" ADD COLUMN "projectId" TEXT;\n'
           'CREATE INDEX "avatars_projectId_idx" ON "avatars"("projectId");')

SMOKE_FAILING_DETAIL = {
    "name": "create project", "state": "failing",
    "reason": f"step 1 POST {SMOKE_URL}: [STATUS] == 201: got 400",
    "steps": [{"method": "POST", "url": SMOKE_URL, "status_code": 400, "latency_ms": 30.1, "state": "failing",
               "reason": "[STATUS] == 201: got 400", "excerpt": '{"error":"Request failed"}'}],
}


def incident_facts(*, until: datetime | None = at(9, 30), resolved: bool = True) -> Facts:
    """The incident as collected facts; `resolved=False` stops the story after the runbook."""
    deployment = Deployment(DEPLOYMENT, COMMIT, "finished", at(8, 33, 57), at(8, 36, 10), at(8, 34),
                            "running", None, False)
    flips = [
        FlipInfo(at(8, 36, 30), "smoke", "create project", "ok", "failing", SMOKE_FAILING_DETAIL["reason"],
                 SMOKE_FAILING_DETAIL),
        FlipInfo(at(8, 36, 40), "drift", "drift", "ok", "failing", "table avatar_projects missing"),
        FlipInfo(at(8, 36, 40), "migrations", "migrations", "ok", "failing", f"pending: {MIGRATION}"),
    ]
    drift = [
        DriftPoint(at(8, 30), "ok", {"critical": 0, "warning": 0, "info": 0}, (), "a1b2c3d4e5"),
        DriftPoint(at(8, 36, 40), "failing", summary(FULL_DRIFT), FULL_DRIFT, COMMIT),
        DriftPoint(at(9, 2, 40), "failing", summary(AFTER_RUNBOOK), AFTER_RUNBOOK, COMMIT),
    ]
    migrations = [
        MigrationsPoint(at(8, 30), "ok", (), (), {"by_state": {"applied": ["20251001000000_init"]}}),
        MigrationsPoint(at(8, 36, 40), "failing", (MIGRATION,), (),
                        {"by_state": {"applied": ["20251001000000_init"], "pending": [MIGRATION]}}),
    ]
    actions = [
        ActionInfo(1, "runbook", "alice@oncall", at(9, 2), at(9, 2, 1), "applied", "fix-avatar-projects-table",
                   RUNBOOK_SQL, None, drift_json(FULL_DRIFT), drift_json(AFTER_RUNBOOK), {}),
    ]
    smoke_end_state, drift_end, mig_end = "failing", "failing", "failing"
    incident = IncidentInfo(7, "production", at(8, 37), None, "production failing: create project, drift, migrations")
    if resolved:
        flips += [
            FlipInfo(at(9, 8, 30), "drift", "drift", "failing", "ok", None),
            FlipInfo(at(9, 8, 40), "smoke", "create project", "failing", "ok", None),
            FlipInfo(at(9, 9, 30), "migrations", "migrations", "failing", "ok", None),
        ]
        drift.append(DriftPoint(at(9, 8, 30), "ok", {"critical": 0, "warning": 0, "info": 0}, (), COMMIT))
        migrations.append(MigrationsPoint(at(9, 9, 30), "ok", (), (),
                                          {"by_state": {"applied": ["20251001000000_init", MIGRATION]}}))
        actions += [
            ActionInfo(2, "fix", "alice@oncall", at(9, 8), at(9, 8, 2), "applied", "prisma/schema.prisma", FIX_SQL,
                       None, drift_json(AFTER_RUNBOOK), drift_json(()), {}),
            ActionInfo(3, "resolve", "alice@oncall", at(9, 9), at(9, 9, 1), "applied", MIGRATION, None, None, None,
                       None, {"migration": MIGRATION, "as": "applied"}),
        ]
        smoke_end_state, drift_end, mig_end = "ok", "ok", "ok"
        incident = IncidentInfo(7, "production", at(8, 37), at(9, 9, 30), incident.title)
    checks = [
        CheckInfo("deployment", "deployment", "ok", "ok", None, {"status": "finished", "commit": COMMIT}, at(9, 29),
                  120, 120, 0),
        CheckInfo("health", "api health", "ok", "ok", None, {"status_code": 200}, at(9, 29, 30), 120, 120, 0, 12.0, 40.0),
        CheckInfo("smoke", "create project", "ok", smoke_end_state,
                  None if resolved else SMOKE_FAILING_DETAIL["reason"],
                  None if resolved else SMOKE_FAILING_DETAIL, at(9, 29), 12, 5, 7, 30.0, 55.0),
        CheckInfo("drift", "drift", "ok", drift_end, None, None, at(9, 29), 60, 12, 48),
        CheckInfo("migrations", "migrations", "ok", mig_end, None, None, at(9, 29), 60, 12, 48),
    ]
    return Facts(environment="production", since=at(8, 30), until=until, now=at(9, 31), incident=incident,
                 incidents=[incident], checks=checks, flips=flips, deployments=[deployment], drift=drift,
                 migrations=migrations, actions=actions, bucket_seconds=60, store="/tmp/history.sqlite3")


def quiet_facts() -> Facts:
    checks = [CheckInfo("health", "api health", "ok", "ok", None, {"status_code": 200}, at(9, 29), 120, 120, 0, 10.0, 20.0)]
    return Facts(environment="staging", since=at(8, 0), until=at(9, 0), now=at(9, 31), checks=checks)


# -- the same incident, recorded in a history store as the poller and the CLI would --------------

PREVIOUS_COMMIT = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
ROUND_S = 30


def _deployment_detail(t: datetime) -> dict[str, Any]:
    if t < at(8, 34):
        return {"status": "finished", "commit": PREVIOUS_COMMIT, "deployment_uuid": "prev0000deploy0000",
                "started_at": "2025-10-12T08:00:00Z", "finished_at": "2025-10-12T08:03:00Z",
                "application_status": "running", "post_deployment_command": "", "migrates_on_deploy": False}
    done = t >= at(8, 36, 30)
    return {"status": "finished" if done else "in_progress", "commit": COMMIT, "deployment_uuid": DEPLOYMENT,
            "started_at": "2025-10-12T08:33:57Z", "finished_at": "2025-10-12T08:36:10Z" if done else None,
            "application_status": "running", "post_deployment_command": "", "migrates_on_deploy": False}


def results_at(t: datetime) -> list[Any]:
    """What one poll round at `t` returns for the five checks of the environment."""
    from checks.monitor.results import CheckResult

    broken = at(8, 36, 30) <= t
    if t >= at(9, 8, 30):
        findings: tuple[dict[str, Any], ...] = ()
    elif t >= at(9, 2, 30):
        findings = AFTER_RUNBOOK
    elif broken:
        findings = FULL_DRIFT
    else:
        findings = ()
    table_missing = broken and t < at(9, 2, 30)
    column_missing = broken and t < at(9, 8, 30)
    pending = [MIGRATION] if broken and t < at(9, 9, 30) else []
    schema_commit = COMMIT if t >= at(8, 36, 30) else PREVIOUS_COMMIT
    smoke_ok = not (table_missing or column_missing)
    step = {"method": "POST", "url": SMOKE_URL, "status_code": 201 if smoke_ok else 400, "latency_ms": 30.0,
            "state": "ok" if smoke_ok else "failing", "reason": None if smoke_ok else "[STATUS] == 201: got 400",
            "excerpt": None if smoke_ok else '{"error":"Request failed with status code 400"}'}
    applied = ["20251001000000_init"] + ([MIGRATION] if broken and not pending else [])
    return [
        CheckResult("deployment", "deployment", "ok", None, t, 80.0, _deployment_detail(t)),
        CheckResult("health", "api health", "ok", None, t, 10.0 + (t.minute % 5), {"status_code": 200}),
        CheckResult("smoke", "create project", "ok" if smoke_ok else "failing",
                    None if smoke_ok else f"step 1 POST {SMOKE_URL}: [STATUS] == 201: got 400", t, 30.0,
                    {"steps": [step]}),
        CheckResult("drift", "drift", "failing" if findings else "ok",
                    f"{summary(findings)['critical']} critical, {summary(findings)['warning']} warning: "
                    + ", ".join(f["kind"] + " " + str(f["table"]) for f in findings[:2]) if findings else None,
                    t, 150.0, {"schema_commit": schema_commit, "summary": summary(findings),
                               "findings": list(findings), "schema_source": "git"}),
        CheckResult("migrations", "migrations", "failing" if pending else "ok",
                    f"pending: {', '.join(pending)}" if pending else None, t, 20.0,
                    {"schema_commit": schema_commit, "directory": "prisma/migrations", "managed": True,
                     "up_to_date": not pending, "pending": pending, "failed": [], "rolled_back": [], "edited": [],
                     "missing_locally": [], "applied_count": len(applied)}),
    ]


def record_incident(store: Any, environment: str = "production", *, start: datetime = at(8, 30),
                    end: datetime = at(9, 30)) -> int:
    """Poll every 30 s from `start` to `end`, and record the three actions; return the incident id."""
    from checks.history import ActionRecord
    from checks.history.records import CheckSpec

    specs = [CheckSpec(r.kind, r.name, ROUND_S) for r in results_at(start)]
    ids = store.register_checks(environment, specs, now=start)
    t = start
    actions = [
        (at(9, 2, 5), ActionRecord(kind="runbook", actor="alice@oncall", started_at=at(9, 2, 5),
                                   finished_at=at(9, 2, 6), environment=environment, target="fix-avatar-projects-table",
                                   statements=RUNBOOK_SQL, outcome="applied", drift_before=drift_json(FULL_DRIFT),
                                   drift_after=drift_json(AFTER_RUNBOOK))),
        (at(9, 8, 5), ActionRecord(kind="fix", actor="alice@oncall", started_at=at(9, 8, 5), finished_at=at(9, 8, 7),
                                   environment=environment, target="prisma/schema.prisma", statements=FIX_SQL,
                                   outcome="applied", drift_before=drift_json(AFTER_RUNBOOK), drift_after=drift_json(()))),
        (at(9, 9, 5), ActionRecord(kind="resolve", actor="alice@oncall", started_at=at(9, 9, 5), finished_at=at(9, 9, 6),
                                   environment=environment, target=MIGRATION, outcome="applied",
                                   details={"migrations": "prisma/migrations", "migration": MIGRATION,
                                            "as": "applied"})),
    ]
    while t <= end:
        for result in results_at(t):
            store.record_result(ids[(result.kind, result.name)], result, failure_threshold=1)
        store.update_incident(environment, now=t)
        for when, action in actions:
            if t <= when < t + timedelta(seconds=ROUND_S):
                store.record_action(action)
        t += timedelta(seconds=ROUND_S)
    return store.incidents(environment)[0].id
