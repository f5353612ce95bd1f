"""The report read from a real history store (SQLite and PostgreSQL) and through the CLI:
the incident as the poller and the audit log recorded it, told in all three formats."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from checks.cli import run
from checks.history import HistoryStore
from checks.reports import build_report, render
from tests.report_scenario import COMMIT, MIGRATION, at, record_incident

TOP_KEYS = ["title", "environment", "status", "window", "summary", "impact", "detection", "root_cause",
            "resolution", "timeline", "action_items", "evidence"]


@pytest.fixture(scope="module")
def incident_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    path = tmp_path_factory.mktemp("report") / "history.sqlite3"
    with HistoryStore.open(str(path)) as store:
        incident = record_incident(store)
    return str(path), incident


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def check_story(data: dict) -> None:  # type: ignore[type-arg]
    assert list(data)[: len(TOP_KEYS)] == TOP_KEYS
    assert data["status"] == "resolved"
    assert data["root_cause"]["statements"] == [
        "deployment sos80kw4… of commit cbf49b4 finished at 08:36:10",
        "that commit's schema expects table avatar_projects and column avatars.projectId, which the database did not have",
        f"migration {MIGRATION} was not applied",
        "no post-deployment migration command is configured",
    ]
    steps = data["resolution"]["steps"]
    assert [(s["kind"], s["partial"]) for s in steps] == [("runbook", True), ("fix", False), ("resolve", False)]
    assert "in sync with the schema of cbf49b4" in data["resolution"]["final_state"]
    smoke = next(f for f in data["impact"]["failing"] if f["kind"] == "smoke")
    assert (smoke["from"], smoke["until"]) == ("2025-10-12T08:36:30Z", "2025-10-12T09:08:30Z")
    assert "HTTP 400" in smoke["returned"]
    timeline = data["timeline"]
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    texts = [e["text"] for e in timeline]
    assert "deployment sos80kw4… of commit cbf49b4 started" in texts
    assert any(t.startswith("deployment sos80kw4… of commit cbf49b4 finished") for t in texts)
    assert any(t.startswith("drift (failing → failing): 1 critical, 3 warning") or
               t.startswith("drift: 1 critical, 3 warning") for t in texts)
    ev = data["evidence"]
    assert ev["drift_before"]["summary"] == {"critical": 2, "warning": 4, "info": 0}
    assert ev["drift_before"]["schema_commit"] == COMMIT
    assert ev["drift_after"]["summary"] == {"critical": 0, "warning": 0, "info": 0}
    assert [m["name"] for m in ev["migrations"]] == [MIGRATION]
    assert ev["migrations"][0]["state_at_end"] == "applied"
    assert ev["migrations"][0]["first_seen"] == {"at": "2025-10-12T08:36:30Z", "state": "pending"}
    assert ev["migrations"][0]["state_at_start"].startswith("not listed")
    assert ev["migrations"][0]["changed_by"][0].startswith(f"alice@oncall: driftwatch migrate resolve --applied {MIGRATION}")
    assert [d["uuid"] for d in ev["deployments"]] == ["sos80kw4koscosckww0wc4co"]
    assert ev["smoke"][0]["status_code"] == 400
    health = next(c for c in ev["checks"] if c["kind"] == "health")
    assert health["ok_pct"] == 100.0 and health["observations"] == 90  # 08:30 to 09:14:30, every 30 s


def test_the_report_of_the_recorded_incident_tells_the_whole_story(incident_store: tuple[str, int]):
    path, incident = incident_store
    with HistoryStore.open(path) as store:
        report = build_report(store, "production", incident=incident, now=at(10, 0))
    data = json.loads(render(report, "json"))
    check_story(data)
    assert data["incident"]["id"] == incident
    assert data["window"] == {"since": "2025-10-12T08:06:30Z", "until": "2025-10-12T09:14:30Z", "open": False}
    assert report.charts["latency"] and report.charts["states"] and report.charts["drift"]


def test_a_window_reported_while_still_open_is_ongoing_and_says_what_fails(incident_store: tuple[str, int]):
    path, _ = incident_store
    with HistoryStore.open(path) as store:
        data = json.loads(render(build_report(store, "production", since="2025-10-12T08:30:00Z",
                                              until="2025-10-12T09:05:00Z", now=at(10, 0)), "json"))
    assert data["status"] == "ongoing"
    assert "Still failing at 09:05:00" in data["resolution"]["final_state"]
    assert "column avatars.projectId missing" in data["resolution"]["final_state"]
    assert [s["partial"] for s in data["resolution"]["steps"]] == [True]


def test_a_quiet_window_says_no_incident(incident_store: tuple[str, int]):
    path, _ = incident_store
    code, out, err = cli("report", "--history-url", path, "--env", "production", "--since", "2025-10-12T08:30:00Z",
                         "--until", "2025-10-12T08:33:00Z", "--format", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["status"] == "no incident" and data["summary"].startswith("No incident in production")


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_the_cli_writes_each_format(incident_store: tuple[str, int], tmp_path: Path, fmt: str):
    path, incident = incident_store
    target = tmp_path / f"report.{fmt}"
    code, out, err = cli("report", "--history-url", path, "--env", "production", "--incident", str(incident),
                         "--format", fmt, "--out", str(target))
    assert (code, err) == (0, "")
    assert out.startswith(f"wrote {target} ({fmt}, ") and "resolved" in out
    text = target.read_text()
    assert "avatar_projects" in text and "alice@oncall" in text
    if fmt == "json":
        check_story(json.loads(text))


def test_the_cli_lists_incidents(incident_store: tuple[str, int]):
    path, incident = incident_store
    code, out, err = cli("report", "--list", "--history-url", path)
    assert (code, err) == (0, "")
    header, row = out.splitlines()[:2]
    assert header.split()[:3] == ["ID", "ENVIRONMENT", "OPENED"]
    assert row.split()[:6] == [str(incident), "production", "2025-10-12", "08:36:30", "2025-10-12", "09:09:30"]
    code, out, _ = cli("report", "--list", "--history-url", path, "--format", "json")
    assert json.loads(out)["incidents"][0]["id"] == incident


@pytest.mark.parametrize("argv, message", [
    (["--env", "staging", "--since", "2h"], "no environment 'staging' in history store"),
    (["--env", "production", "--incident", "999"], "no incident 999 in history store"),
    (["--env", "production", "--since", "yesterday"], "--since 'yesterday': not a time"),
    (["--env", "production"], "give --incident ID or --since T"),
    (["--since", "2h"], "--env NAME is required"),
    (["--env", "production", "--incident", "1", "--since", "2h"], "exclude each other"),
])
def test_errors_are_one_line_and_exit_1(incident_store: tuple[str, int], argv: list[str], message: str):
    path, _ = incident_store
    code, out, err = cli("report", "--history-url", path, *argv)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_postgresql_store_gives_the_same_report(make_db, incident_store: tuple[str, int]):  # type: ignore[no-untyped-def]
    """The buckets are computed by the database: PostgreSQL's SQL must agree with SQLite's."""
    path, _ = incident_store
    url = make_db()
    with HistoryStore.open(url) as store:
        incident = record_incident(store)
        on_pg = build_report(store, "production", incident=incident, now=at(10, 0))
    with HistoryStore.open(path) as store:
        on_sqlite = build_report(store, "production", incident=incident, now=at(10, 0))
    a, b = on_pg.to_json(), on_sqlite.to_json()
    a["evidence"].pop("store"), b["evidence"].pop("store")
    a["incident"].pop("id"), b["incident"].pop("id")
    assert a == b
    assert on_pg.charts["latency"] == on_sqlite.charts["latency"]


def test_hourly_buckets_read_the_rollups_and_agree_with_the_raw_results(tmp_path: Path):
    """A week's report reads whole hours from the poller's roll-ups: same figures as raw."""
    from checks.reports.collect import collect
    from checks.reports.window import Window

    with HistoryStore.open(str(tmp_path / "h.sqlite3")) as store:
        record_incident(store)
        win = Window(at(8, 10), at(10, 0), at(11, 0))
        raw = collect(store, "production", win, max_points=2)
        assert store.rollup(now=at(11, 0)) >= 2
        rolled = collect(store, "production", win, max_points=2)
    assert raw.bucket_seconds == rolled.bucket_seconds == 3600
    key = lambda b: (b.kind, b.name, b.start)  # noqa: E731
    a, b = sorted(raw.buckets, key=key), sorted(rolled.buckets, key=key)
    assert [(x.kind, x.name, x.start, x.count, x.ok_count, x.bad_count) for x in a] == \
           [(x.kind, x.name, x.start, x.count, x.ok_count, x.bad_count) for x in b]
    assert all(abs((x.latency_avg or 0) - (y.latency_avg or 0)) < 1e-6 and x.latency_max == y.latency_max
               for x, y in zip(a, b))
    assert [c.count for c in raw.checks] == [c.count for c in rolled.checks]
