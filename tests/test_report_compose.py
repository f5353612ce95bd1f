"""The report's story, from hand-built facts of the avatar_projects incident: every sentence
the issue asks for is stated from the evidence, in all three formats."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from checks.errors import UsageError
from checks.reports import render
from checks.reports.compose import compose
from checks.reports.window import bucket_seconds, parse_time, window
from tests.report_scenario import COMMIT, MIGRATION, at, incident_facts, quiet_facts

TOP_KEYS = ["title", "environment", "status", "window", "summary", "impact", "detection", "root_cause",
            "resolution", "timeline", "action_items", "evidence"]
SOURCES = {"deployment", "health", "smoke", "drift", "migrations", "action"}


def as_json(facts):  # type: ignore[no-untyped-def]
    return json.loads(render(compose(facts), "json"))


def test_json_has_the_issue_keys_first_and_the_evidence_keys():
    data = as_json(incident_facts())
    assert list(data)[: len(TOP_KEYS)] == TOP_KEYS
    assert set(data["window"]) >= {"since", "until"}
    assert set(data["evidence"]) >= {"drift_before", "drift_after", "migrations", "smoke", "deployments", "actions"}
    for action in data["evidence"]["actions"]:
        assert {"who", "command", "sql", "outcome"} <= set(action)


def test_timeline_is_in_time_order_with_known_sources():
    data = as_json(incident_facts())
    times = [e["at"] for e in data["timeline"]]
    assert times == sorted(times)
    assert {e["source"] for e in data["timeline"]} <= SOURCES
    assert {e["source"] for e in data["timeline"]} == SOURCES - {"health"}  # health never changed state


def test_root_cause_is_stated_from_the_evidence():
    root = as_json(incident_facts())["root_cause"]
    assert root["statements"] == [
        "deployment sos80kw4… of commit cbf49b4 finished at 08:36:10",
        "that commit's schema expects table avatar_projects and column avatars.projectId, which the database did not have",
        f"migration {MIGRATION} was not applied",
        "no post-deployment migration command is configured",
    ]
    assert root["trigger"]["commit"] == COMMIT
    assert root["pending_migrations"] == [MIGRATION]


def test_resolution_lists_each_action_with_the_drift_it_left_so_the_emergency_sql_shows_as_partial():
    steps = as_json(incident_facts())["resolution"]["steps"]
    assert [(s["who"], s["kind"], s["outcome"], s["partial"]) for s in steps] == [
        ("alice@oncall", "runbook", "applied", True),
        ("alice@oncall", "fix", "applied", False),
        ("alice@oncall", "resolve", "applied", False),
    ]
    assert "CREATE TABLE IF NOT EXISTS \"avatar_projects\"" in steps[0]["sql"]
    assert "column avatars.projectId missing" in steps[0]["drift_after"]["remaining"]
    assert steps[0]["drift_after"]["summary"] == {"critical": 1, "warning": 3, "info": 0}
    assert steps[1]["drift_after"]["remaining"] == []
    assert steps[2]["command"] == f"driftwatch migrate resolve --applied {MIGRATION}"


def test_a_resolved_incident_says_it_is_now_in_sync():
    data = as_json(incident_facts())
    assert data["status"] == "resolved"
    assert "in sync with the schema of cbf49b4" in data["resolution"]["final_state"]
    assert "every migration is applied" in data["resolution"]["final_state"]
    assert data["summary"].count(".") >= 2 and "Resolved after 3 action(s) by alice@oncall" in data["summary"]


def test_impact_names_the_failing_checks_with_times_and_what_the_endpoint_returned():
    impact = as_json(incident_facts())["impact"]
    smoke = next(f for f in impact["failing"] if f["kind"] == "smoke")
    assert smoke["from"] == "2025-10-12T08:36:30Z" and smoke["until"] == "2025-10-12T09:08:40Z"
    assert "HTTP 400" in smoke["returned"]
    assert any('health "api health" stayed ok throughout (HTTP 200)' == line for line in impact["lines"])


def test_detection_gives_first_failure_first_finding_and_time_to_act():
    det = as_json(incident_facts())["detection"]
    assert det["first_failing_check"]["name"] == "create project"
    assert det["first_drift_finding"]["at"] == "2025-10-12T08:36:40Z"
    assert "table avatar_projects missing" in det["first_drift_finding"]["findings"]
    assert det["time_to_first_action_s"] == int((at(9, 2) - at(8, 36, 30)).total_seconds())
    assert "a health check alone would not have detected this" in det["text"]


def test_action_items_follow_from_what_was_found():
    texts = " | ".join(i["text"] for i in as_json(incident_facts())["action_items"])
    assert "post-deployment command" in texts and "prisma migrate deploy" in texts
    assert "Gate CI" in texts and "driftwatch check" in texts
    assert "Alert on the smoke check" in texts
    assert "Retire or complete `driftwatch runbook run fix-avatar-projects-table --apply`" in texts


def test_lessons_are_left_as_prompts_for_humans():
    lessons = as_json(incident_facts())["lessons"]
    assert lessons[:3] == ["What went well? (for a human to answer)", "What went wrong? (for a human to answer)",
                           "Where did we get lucky? (for a human to answer)"]


def test_an_ongoing_incident_says_what_still_fails_now():
    data = as_json(incident_facts(resolved=False, until=None))
    assert data["status"] == "ongoing"
    assert data["window"]["until"] is None and data["window"]["open"] is True
    final = data["resolution"]["final_state"]
    assert final.startswith("Still failing at 09:31:00")
    # the drift as it is now (after the partial runbook), not as it was when it broke
    assert "drift (1 critical, 3 warning: " in final and "column avatars.projectId missing" in final
    assert f"migrations (pending {MIGRATION})" in final
    assert "HTTP 400" in final
    assert data["action_items"][0]["priority"] == "now"


def test_a_window_without_incident_says_so_plainly():
    data = as_json(quiet_facts())
    assert data["status"] == "no incident"
    assert data["summary"].startswith("No incident in staging between 08:00:00 and 09:00:00 UTC")
    assert data["action_items"] == [] and data["timeline"] == [] and data["lessons"] == []
    md = render(compose(quiet_facts()), "md")
    assert "## Root cause" not in md and "No incident" in md


def test_markdown_reads_as_a_postmortem():
    md = render(compose(incident_facts()), "md")
    for heading in ("## Summary", "## Impact", "## Detection", "## Root cause", "## Resolution",
                    "## Timeline (UTC)", "## Action items", "## Lessons learned", "## Evidence"):
        assert heading in md
    assert "**partial**: left 4 finding(s)" in md
    assert "```sql\n   -- title: fix avatar_projects table" in md
    assert "| 2025-10-12 08:36:10 | deployment | deployment sos80kw4… of commit cbf49b4 finished" in md
    assert "- [ ] Run `prisma migrate deploy`" in md


def test_html_is_self_contained_with_inline_plotly_and_prints():
    html = render(compose(incident_facts()), "html")
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?(https?:)?//", html, re.IGNORECASE)
    assert not re.search(r"@import|url\(\s*[\"']?(https?:)?//", html.split("<script>")[0], re.IGNORECASE)
    assert "Plotly.newPlot" in html and html.count("<script>") >= 2
    assert "id='chart-states'" in html and "id='chart-drift'" in html
    assert "@media print" in html
    assert "partial</span>" in html


def test_window_times_parse_as_iso_or_relative_and_fail_in_one_line():
    now = datetime(2025, 10, 12, 9, 30, tzinfo=timezone.utc)
    assert parse_time("2h", now=now) == now - timedelta(hours=2)
    assert parse_time("90m", now=now) == now - timedelta(minutes=90)
    assert parse_time("7d", now=now) == now - timedelta(days=7)
    assert parse_time("2025-10-12T08:30:00Z") == datetime(2025, 10, 12, 8, 30, tzinfo=timezone.utc)
    assert parse_time("2025-10-12T10:30:00+02:00") == datetime(2025, 10, 12, 8, 30, tzinfo=timezone.utc)
    assert parse_time("2025-10-12 08:30") == datetime(2025, 10, 12, 8, 30, tzinfo=timezone.utc)  # naive is UTC
    with pytest.raises(UsageError, match=r"--since 'yesterday': not a time"):
        parse_time("yesterday")
    with pytest.raises(UsageError, match="the window is empty"):
        window("1h", "2h", now=now)


def test_buckets_stay_few_whatever_the_window():
    assert bucket_seconds(timedelta(hours=1)) == 30
    assert timedelta(days=7).total_seconds() / bucket_seconds(timedelta(days=7)) <= 300
    assert timedelta(days=90).total_seconds() / bucket_seconds(timedelta(days=90)) <= 300


def test_an_action_without_outcome_and_a_deploy_are_told_as_such():
    import dataclasses

    from checks.reports.facts import ActionInfo

    facts = incident_facts()
    facts.actions[1] = dataclasses.replace(facts.actions[1], outcome="started", drift_after=None)
    facts.actions.append(ActionInfo(4, "deploy", "bob", at(9, 20), at(9, 20, 5), "refused", "prisma/migrations", None,
                                    "P3018: migration failed", None, None,
                                    {"migrations": "prisma/migrations", "applied": []}))
    steps = as_json(facts)["resolution"]["steps"]
    assert "no outcome recorded (the process ended mid-action)" in steps[1]["text"]
    assert steps[1]["partial"] is False
    assert steps[3]["command"] == "driftwatch migrate deploy --migrations prisma/migrations"
    assert steps[3]["text"].endswith("refused (P3018: migration failed) — changed nothing")


def test_a_check_flapping_between_ok_and_warning_is_one_timeline_line():
    from checks.reports.facts import FlipInfo

    facts = incident_facts()
    for i in range(20):
        facts.flips.append(FlipInfo(at(8, 40 + i), "health", "api health", "ok" if i % 2 == 0 else "warning",
                                    "warning" if i % 2 == 0 else "ok", "[RESPONSE_TIME] < 800: got 950" if i % 2 == 0 else None))
    facts.flips.sort(key=lambda f: f.at)
    lines = [e for e in as_json(facts)["timeline"] if e["source"] == "health"]
    assert [e["text"] for e in lines] == [
        'health "api health" flapped between ok and warning 20 times (first 08:40:00, last 08:59:00): '
        "[RESPONSE_TIME] < 800: got 950"]


def test_a_check_changing_state_hundreds_of_times_keeps_the_timeline_short():
    from checks.reports.facts import FlipInfo

    facts = incident_facts()
    for i in range(300):
        facts.flips.append(FlipInfo(at(9, 10) + timedelta(seconds=30 * i), "health", "api health",
                                    "ok" if i % 2 == 0 else "failing", "failing" if i % 2 == 0 else "ok",
                                    "[STATUS] == 200: got 502" if i % 2 == 0 else None))
    facts.flips.sort(key=lambda f: f.at)
    facts.until = at(12, 0)
    health = [e["text"] for e in as_json(facts)["timeline"] if e["source"] == "health"]
    assert len(health) == 11
    assert health[5] == 'health "api health" changed state 290 more times until 11:37:00 (see the charts)'
