#!/usr/bin/env python3
"""First load of each dashboard page with 50 environments × 20 checks and 30 days of history.

    python bench/bench_dashboard.py [--envs 50] [--checks 20] [--days 30] [--every-min 120] [--runs 3]

A benchmark, not a test: it prints figures and exits 0 (1 only if it cannot run). Each page
is rendered through Streamlit's AppTest (the page's whole server-side script run, router and
sidebar included) with every cache cleared before the run: a first load. The environments'
states and history sit in the dashboard's monitor, as its background thread leaves them
(history at one point per --every-min minutes, capped as the monitor caps it); every
environment points at the same embedded PostgreSQL in the incident state, so the pages that
read a database (Schema drift, Migrations, Actions' preview) do real work. Target: ≤ 2 s per page.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = ("overview", "drift", "migrations", "health", "deployments", "actions", "audit", "report")
TARGET_S = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=50)
    parser.add_argument("--checks", type=int, default=20, help="checks per environment (health + smoke + 3 fixed)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--every-min", type=int, default=120, help="history resolution in minutes")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import logging
    import os

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    state = Path(tempfile.mkdtemp(prefix="driftwatch-bench-dash-"))
    os.environ["DRIFTWATCH_HISTORY_URL"] = str(state / "history.sqlite3")
    os.environ["XDG_CACHE_HOME"] = str(state / "cache")
    os.chdir(state)

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from checks.demo import start_demo
    from checks.monitor.results import CheckResult
    from dashboard import environments, monitor as monitor_mod, ui

    demo = start_demo(state, "incident")
    try:
        envs = [environments.Environment(f"env-{i:02d}", demo.url, str(demo.schema_path), str(demo.migrations_path))
                for i in range(args.envs)]
        environments.load = lambda: envs  # the configuration's 50 environments
        mon = monitor_mod.Monitor(lambda env: [], interval_s=3600)  # no probing during the benchmark
        now = datetime.now(timezone.utc)
        points = min(args.days * 24 * 60 // args.every_min, monitor_mod.HISTORY)
        health = max(1, args.checks - 3) // 2
        smoke = max(0, args.checks - 3 - health)
        t0 = time.monotonic()
        for e in envs:
            specs = [("deployment", "deployment"), ("drift", "drift"), ("migrations", "migrations")]
            specs += [("health", f"health {j}") for j in range(health)] + [("smoke", f"smoke {j}") for j in range(smoke)]
            for kind, name in specs:
                series = mon._history.setdefault((e.name, kind, name), monitor_mod.deque(maxlen=monitor_mod.HISTORY))
                for p in range(points):
                    at = now - timedelta(minutes=args.every_min * (points - p))
                    bad = p % 97 == 0
                    detail = {"status_code": 500 if bad else 200}
                    if kind == "deployment":
                        detail = {"status": "finished", "commit": f"{p:07x}", "deployment_uuid": f"d{p}",
                                  "started_at": at.isoformat(), "finished_at": (at + timedelta(minutes=2)).isoformat()}
                    series.append(CheckResult(kind, name, "failing" if bad else "ok", "HTTP 500" if bad else None,
                                              checked_at=at, latency_ms=20 + p % 50, detail=detail))
                mon._latest.setdefault(e.name, {})[(kind, name)] = series[-1]
            mon._rounds[e.name] = 1
        print(f"monitor filled: {args.envs} environments × {args.checks} checks × {points} results "
              f"in {time.monotonic() - t0:.1f} s")
        t0 = time.monotonic()
        hours = fill_store(os.environ["DRIFTWATCH_HISTORY_URL"], mon, args.days)
        print(f"store filled: {hours} hourly roll-ups ({args.days} days) in {time.monotonic() - t0:.1f} s")
        mon.store_url = os.environ["DRIFTWATCH_HISTORY_URL"]
        st.cache_resource.clear()
        ui.monitor = lambda: mon  # the pages' `ui.monitor()`

        # Warm-up: the server's imports (pandas, plotly) and the store's creation happen once per process.
        for page in PAGES:
            warm = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
            warm.secrets.update({"DRIFTWATCH_DEMO_OPERATOR": "1"})
            warm.run()
            warm.switch_page(f"app_pages/{page}.py").run()
        figures: dict[str, list[float]] = {p: [] for p in PAGES}
        for _ in range(args.runs):
            for page in PAGES:
                st.cache_data.clear()
                at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
                at.secrets.update({"DRIFTWATCH_DEMO_OPERATOR": "1"})
                started = time.monotonic()
                if page == "overview":
                    at.run()
                else:
                    at.run()  # the router must run once before switching; time only the page itself
                    st.cache_data.clear()
                    started = time.monotonic()
                    at.switch_page(f"app_pages/{page}.py").run()
                figures[page].append(time.monotonic() - started)
                if at.exception:
                    print(f"{page}: exception {at.exception[0].value}")
                if page == "report" and len(at.get("download_button")) != 3:
                    print("report: the page composed no report (its figure measures nothing)")
        print(f"\nfirst load per page (median of {args.runs}, caches cleared; target ≤ {TARGET_S:.0f} s)")
        for page, times in figures.items():
            med = statistics.median(times)
            print(f"  {page:<12} {med * 1000:7.0f} ms   {'PASS' if med <= TARGET_S else 'MISS'}")
    finally:
        mon_stop = getattr(ui.monitor(), "stop", None)
        if mon_stop:
            mon_stop()
        demo.stop()
    return 0


def fill_store(url: str, mon, days: int) -> int:
    """The history store as a month of polling leaves it: every check registered, with one
    roll-up row per hour (what the 30-day uptime reads)."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import insert

    from checks.history import HistoryStore
    from checks.history.records import CheckSpec
    from checks.history.tables import rollups

    store = HistoryStore.open(url)
    top = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    rows = []
    for (env, kind, name) in list(mon._history):
        ids = mon._ids.setdefault(env, {})
        if not ids:
            keys = [k for k in mon._history if k[0] == env]
            ids.update(store.register_checks(env, [CheckSpec(k, n, 60) for _, k, n in keys]))
        tid = ids[(kind, name)]
        for h in range(days * 24):
            bad = h % 97 == 0
            rows.append({"target_id": tid, "hour": top - timedelta(hours=days * 24 - h), "count": 60,
                         "ok_count": 59 if bad else 60, "failing_count": 1 if bad else 0,
                         "latency_avg": 25.0, "latency_p95": 60.0, "latency_max": 90.0})
    with store.engine.begin() as conn:
        for i in range(0, len(rows), 20_000):
            conn.execute(insert(rollups), rows[i:i + 20_000])
    # One incident on the first environment (its drift failing for two hours, then fixed), so that
    # the report page's first load composes a real report instead of saying there is none.
    from checks.monitor.results import CheckResult

    first = next(iter(mon._ids))
    drift = mon._ids[first][("drift", "drift")]
    now = datetime.now(timezone.utc)
    for minutes, state, reason in ((180, "failing", "table avatar_projects does not exist"), (60, "ok", None)):
        store.record_result(drift, CheckResult("drift", "drift", state, reason, checked_at=now - timedelta(minutes=minutes)))
        store.update_incident(first, now=now - timedelta(minutes=minutes))
    store.close()
    return len(rows)


if __name__ == "__main__":
    sys.exit(main())
