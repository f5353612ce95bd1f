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
                       None, {"applied": MIGRATION}),
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
