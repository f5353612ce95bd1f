"""Benchmark: the incident report over a week of 30-second checks for 50 checks.

    .venv/bin/python bench/bench_report.py [--checks 50] [--days 7] [--interval 30]
                                           [--history-url postgresql://…] [--runs 3]

Builds a history store (a temporary SQLite file, or the PostgreSQL store given) holding
`days` of results every `interval` seconds for `checks` checks (≈ 1 million observations for
the defaults, an incident in the middle: a deployment, the drift check and a smoke check
failing for two hours, three actions), then times `driftwatch report` over the whole window
in each format, each in a fresh process, printing wall time and peak RSS (the process's
ru_maxrss: Python, its imports and the report). The report must not load the window into
memory: the figures should barely move between --days 1 and --days 7. The store's hourly
roll-ups are made as the poller makes them (--no-rollup: raw results only, the worst case).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENV = "bench"
COMMIT = "cbf49b45c815f9a1250331a0c77e00304a3e4021"


def child(argv: list[str]) -> None:
    """Run one report in this process and print its wall time and peak RSS as JSON."""
    start = time.perf_counter()
    from checks.cli import run
    import checks.history.store  # noqa: F401 - SQLAlchemy: timed apart from the report itself
    import checks.reports.collect  # noqa: F401

    imported = time.perf_counter()
    code = run(argv, open(os.devnull, "w"), sys.stderr)
    done = time.perf_counter()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"code": code, "seconds": done - start, "imports": imported - start, "rss_mib": rss_kib / 1024}))


def build(url: str, checks: int, days: float, interval: int, seed: int = 7, rollup: bool = True) -> tuple[datetime, datetime, int]:
    from sqlalchemy import insert

    from checks.history import ActionRecord, HistoryStore
    from checks.history.records import CheckSpec
    from checks.history.tables import flips, incidents, observations

    rnd = random.Random(seed)
    end = datetime(2025, 10, 12, 12, 0, tzinfo=timezone.utc)
    start = end - timedelta(days=days)
    broken_from, broken_to = end - timedelta(days=days / 2), end - timedelta(days=days / 2) + timedelta(hours=2)
    n_health = max(1, (checks - 3) * 2 // 3)
    specs = [CheckSpec("deployment", "deployment", interval), CheckSpec("drift", "drift", interval),
             CheckSpec("migrations", "migrations", interval)]
    specs += [CheckSpec("health", f"endpoint {i:02d}", interval) for i in range(n_health)]
    specs += [CheckSpec("smoke", f"flow {i:02d}", interval) for i in range(checks - 3 - n_health)]
    missing = [{"kind": "missing_table", "severity": "critical", "table": "avatar_projects", "column": None,
                "name": None, "message": "table avatar_projects does not exist: every query on model AvatarProject fails"},
               {"kind": "missing_column", "severity": "critical", "table": "avatars", "column": "projectId", "name": None,
                "message": "column avatars.projectId does not exist"}]
    rows = 0
    with HistoryStore.open(url) as store:
        ids = store.register_checks(ENV, specs, now=start)
        engine = store.engine
        steps = int((end - start).total_seconds() // interval)
        batch: list[dict] = []
        flip_rows: list[dict] = []
        last_state: dict[int, str] = {}

        def flush() -> None:
            nonlocal batch
            if batch:
                with engine.begin() as conn:
                    conn.execute(insert(observations), batch)
                batch = []

        for spec in specs:
            tid = ids[(spec.kind, spec.name)]
            failing_smoke = spec.kind == "smoke" and spec.name == "flow 00"
            for i in range(steps + 1):
                t = start + timedelta(seconds=i * interval)
                broken = broken_from <= t < broken_to
                state, reason, detail, latency = "ok", None, None, rnd.uniform(5, 60)
                if spec.kind == "deployment":
                    new = t >= broken_from - timedelta(minutes=3)
                    detail = {"status": "finished", "commit": COMMIT if new else "a1b2c3d4e5f6",
                              "deployment_uuid": "sos80kw4koscosckww0wc4co" if new else "prev0000deploy",
                              "started_at": (broken_from - timedelta(minutes=5)).isoformat() if new else start.isoformat(),
                              "finished_at": (broken_from - timedelta(minutes=3)).isoformat() if new else start.isoformat(),
                              "migrates_on_deploy": False, "post_deployment_command": ""}
                elif spec.kind == "drift":
                    state = "failing" if broken else "ok"
                    reason = "2 critical: table avatar_projects missing" if broken else None
                    detail = {"schema_commit": COMMIT, "summary": {"critical": 2 if broken else 0, "warning": 0, "info": 0},
                              "findings": missing if broken else []}
                elif spec.kind == "migrations":
                    state = "failing" if broken else "ok"
                    reason = "pending: 20251012082000_add_avatar_projects" if broken else None
                    detail = {"pending": ["20251012082000_add_avatar_projects"] if broken else [], "failed": []}
                elif spec.kind == "health":
                    if rnd.random() < 0.002:
                        state, reason = "warning", "[RESPONSE_TIME] < 800: got 950"
                    detail = {"status_code": 200}
                else:
                    if failing_smoke and broken:
                        state, reason = "failing", "step 1 POST /projects: [STATUS] == 201: got 400"
                        detail = {"steps": [{"method": "POST", "url": "http://api/projects", "status_code": 400,
                                             "state": "failing", "reason": "got 400", "excerpt": '{"error":"x"}'}]}
                    else:
                        detail = {"steps": [{"method": "POST", "url": "http://api/projects", "status_code": 201,
                                             "state": "ok"}]}
                batch.append({"target_id": tid, "observed_at": t, "state": state, "reason": reason,
                              "latency_ms": latency, "detail": detail})
                if last_state.get(tid) != state:
                    flip_rows.append({"target_id": tid, "at": t, "from_state": last_state.get(tid), "to_state": state,
                                      "reason": reason})
                    last_state[tid] = state
                rows += 1
                if len(batch) >= 20_000:
                    flush()
        flush()
        with engine.begin() as conn:
            conn.execute(insert(flips), flip_rows)
            conn.execute(insert(incidents).values(environment=ENV, opened_at=broken_from, closed_at=broken_to,
                                                  title=f"{ENV} failing: drift, migrations, smoke flow 00", summary={}))
        for minutes, kind, outcome in ((40, "runbook", "applied"), (90, "fix", "applied"), (95, "resolve", "applied")):
            store.record_action(ActionRecord(kind=kind, actor="bench@oncall", started_at=broken_from + timedelta(minutes=minutes),
                                             finished_at=broken_from + timedelta(minutes=minutes, seconds=2),
                                             environment=ENV, statements="SELECT 1;", outcome=outcome))
        if rollup:
            store.rollup(now=end)  # what the poller does every hour
        if store.dialect == "sqlite":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        else:
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE driftwatch.observations")
    return start, end, rows


def _count(url: str) -> int:
    from sqlalchemy import func, select

    from checks.history import HistoryStore
    from checks.history.tables import observations

    with HistoryStore.open(url) as store, store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(observations)).scalar() or 0)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checks", type=int, default=50)
    p.add_argument("--days", type=float, default=7)
    p.add_argument("--interval", type=int, default=30)
    p.add_argument("--history-url", help="a PostgreSQL store to fill (default: a temporary SQLite file)")
    p.add_argument("--pg", choices=("pgserver", "system"),
                   help="start an embedded PostgreSQL (the pgserver wheel, or the system's pg_ctl) for the store")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--formats", default="md,html,json")
    p.add_argument("--no-rollup", action="store_true", help="leave the hourly roll-ups empty (raw results only)")
    p.add_argument("--store", metavar="FILE", help="keep the SQLite store here; reuse it when it exists (skips building)")
    args = p.parse_args()
    server = None
    if args.pg:
        import warnings

        from checks.localpg import start as start_pg

        warnings.filterwarnings("ignore")  # platformdirs chatter from pgserver
        pgdir = Path(tempfile.mkdtemp(prefix="bench-report-pg-"))
        server = start_pg(args.pg, pgdir)
        args.history_url = server.url
    try:
        run_bench(args)
    finally:
        if server is not None:
            import shutil

            server.stop()
            shutil.rmtree(pgdir, ignore_errors=True)


def run_bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        url = args.history_url or args.store or str(Path(tmp) / "history.sqlite3")
        t0 = time.perf_counter()
        if args.store and Path(args.store).exists():
            end = datetime(2025, 10, 12, 12, 0, tzinfo=timezone.utc)
            start, rows = end - timedelta(days=args.days), _count(url)
        else:
            start, end, rows = build(url, args.checks, args.days, args.interval, rollup=not args.no_rollup)
        where = "PostgreSQL" if url.startswith("postgres") else "SQLite"
        print(f"store: {where}, {args.checks} checks × {args.days:g} days every {args.interval} s = "
              f"{rows:,} observations, roll-ups {'off' if args.no_rollup else 'on'} (built in {time.perf_counter() - t0:.1f} s)")
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = float("nan")
        print(f"load average {load:.2f} on {os.cpu_count()} cores; each figure the median of {args.runs} fresh processes")
        print(f"{'format':<6} {'wall':>9} {'of which imports':>17} {'peak RSS':>10} {'output':>9}")
        for fmt in args.formats.split(","):
            out = Path(tmp) / f"report.{fmt}"
            argv = ["report", "--history-url", url, "--env", ENV, "--since", start.isoformat(),
                    "--until", end.isoformat(), "--format", fmt, "--out", str(out)]
            figures = []
            for _ in range(args.runs):
                done = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True, text=True,
                                      cwd=ROOT, check=False)
                if done.returncode != 0:
                    sys.exit(f"report failed: {done.stderr.strip()}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                if result["code"] != 0:
                    sys.exit(f"report exited {result['code']}: {done.stderr.strip()}")
                figures.append(result)
            wall = statistics.median(f["seconds"] for f in figures)
            imports = statistics.median(f["imports"] for f in figures)
            rss = statistics.median(f["rss_mib"] for f in figures)
            print(f"{fmt:<6} {wall * 1000:>7.0f} ms {imports * 1000:>14.0f} ms {rss:>6.0f} MiB "
                  f"{out.stat().st_size / 1024:>6.0f} KiB")


if __name__ == "__main__":
    main()
