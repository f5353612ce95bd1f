"""Benchmark the monitoring store: the dashboard's 24-hour per-check query on a full store.

    .venv/bin/python bench/bench_store.py [--checks 200] [--days 30] [--every 30] [--raw-days 7]
                                          [--queries 200] [--backends sqlite,postgresql]

Builds, on SQLite and on PostgreSQL (the pgserver wheel, or --pg-url), the store a poller
leaves after `--days` days of one result every `--every` seconds for `--checks` checks: raw
results for the retention period (`--raw-days`, 7 by default — what `prune` keeps) and hourly
roll-ups for every hour of the `--days` (the ones older than the raw period written directly,
the ones inside it by the store's own `rollup()`, which is timed), the current hour left raw
as it is between two roll-ups. Then it times, per backend:

- `series(check, since=now-24h)`: the dashboard's per-check 24-hour chart (target ≤ 100 ms),
  over `--queries` random checks: median, p95 and max;
- `latest(environment)`: the overview's "every check now" for one environment of 20 checks;
- `uptime(since=now-24h, environment)`: 24-hour uptime of an environment, summed in SQL.

Prints figures; asserts nothing (tests never assert times).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENV_SIZE = 20


def sqlite_time(t: datetime) -> str:
    return t.astimezone(timezone.utc).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def build(store, args, now: datetime) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Fill `store`; return timings (s) of the phases."""
    from checks.history import CheckSpec
    from checks.history.tables import rollups

    rng = random.Random(7)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ids: list[int] = []
    for e in range(args.checks // ENV_SIZE):
        env = f"env-{e:02d}"
        specs = [CheckSpec("health", f"check-{i:02d}", args.every) for i in range(ENV_SIZE)]
        ids.extend(store.register_checks(env, specs, now=now).values())
    hour_now = now.replace(minute=0, second=0, microsecond=0)
    start = hour_now - timedelta(days=args.days)
    raw_start = hour_now - timedelta(days=args.raw_days)
    per_hour = 3600 // args.every

    # Roll-ups older than the raw period: written directly, shaped as the raw results would be.
    rows = []
    h = start
    while h < raw_start:
        for tid in ids:
            failing = 1 if rng.random() < 0.03 else 0
            avg = rng.uniform(20, 60)
            rows.append({"target_id": tid, "hour": h, "count": per_hour, "ok_count": per_hour - failing,
                         "failing_count": failing, "latency_avg": avg, "latency_p95": avg * 2.5,
                         "latency_max": avg * 6})
        h += timedelta(hours=1)
        if len(rows) >= 20_000:
            with store.engine.begin() as conn:
                conn.execute(rollups.insert(), rows)
            rows = []
    if rows:
        with store.engine.begin() as conn:
            conn.execute(rollups.insert(), rows)
    timings["old roll-ups"] = time.perf_counter() - t0

    # Raw results of the retention period, up to now, written in bulk by the driver.
    t0 = time.perf_counter()
    detail = json.dumps({"status_code": 200})
    n_raw = 0
    pg = store.dialect == "postgresql"
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        t = raw_start
        step = timedelta(seconds=args.every)
        batch: list[tuple] = []

        def flush() -> None:
            if not batch:
                return
            if pg:
                with cur.copy("COPY driftwatch.observations (target_id, observed_at, state, reason, latency_ms, "
                              "detail) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
            else:
                cur.executemany("INSERT INTO observations (target_id, observed_at, state, reason, latency_ms, "
                                "detail) VALUES (?, ?, ?, ?, ?, ?)", batch)
            raw.commit()
            batch.clear()

        if not pg:
            cur.execute("BEGIN")
        while t < now:
            stamp = t if pg else sqlite_time(t)
            for tid in ids:
                failing = rng.random() < 0.01
                batch.append((tid, stamp, "failing" if failing else "ok",
                              "[STATUS] == 200: got 503" if failing else None,
                              round(rng.lognormvariate(3.4, 0.5), 1), detail))
            n_raw += len(ids)
            t += step
            if len(batch) >= 50_000:
                flush()
                if not pg:
                    cur.execute("BEGIN")
        flush()
    finally:
        raw.close()
    timings["raw results"] = time.perf_counter() - t0
    timings["raw rows"] = n_raw

    t0 = time.perf_counter()
    if pg:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("COMMIT")
        import psycopg

        with psycopg.connect(args._pg_db_url, autocommit=True) as c:
            c.execute("VACUUM ANALYZE driftwatch.observations")
            c.execute("VACUUM ANALYZE driftwatch.rollups")
    else:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    timings["analyze"] = time.perf_counter() - t0

    # The raw period's roll-ups by the store itself, up to the current hour (left raw).
    t0 = time.perf_counter()
    hours = store.rollup(now=now)
    timings["rollup() s"] = time.perf_counter() - t0
    timings["rollup() hours"] = hours
    return timings


def measure(store, args, now: datetime) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    rng = random.Random(11)
    targets = store.targets()
    out: dict[str, list[float]] = {"series": [], "latest": [], "uptime": []}
    since = now - timedelta(hours=24)
    for _ in range(3):  # warm the caches as a running dashboard has them
        store.series(targets[0].id, since=since, until=now)
    points = 0
    for _ in range(args.queries):
        t = rng.choice(targets)
        t0 = time.perf_counter()
        series = store.series(t.id, since=since, until=now)
        out["series"].append((time.perf_counter() - t0) * 1000)
        points = len(series)
    out["points"] = [points]
    envs = sorted({t.environment for t in targets})
    for _ in range(max(10, args.queries // 10)):
        env = rng.choice(envs)
        t0 = time.perf_counter()
        store.latest(env)
        out["latest"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        store.uptime(since=since, until=now, environment=env)
        out["uptime"].append((time.perf_counter() - t0) * 1000)
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checks", type=int, default=200)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--every", type=int, default=30, help="seconds between two results of a check")
    ap.add_argument("--raw-days", type=int, default=7, help="raw results kept (the default retention: 7)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--pg", choices=("pgserver", "system"), default="pgserver")
    ap.add_argument("--pg-url", help="an existing server's maintenance URL instead of starting one")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    from checks.history import HistoryStore

    now = datetime.now(timezone.utc)
    now = now.replace(minute=37, second=0, microsecond=0)  # the current hour is 37 minutes old
    print(f"store benchmark: {args.checks} checks, {args.days} days at {args.every} s "
          f"(raw kept {args.raw_days} days, hourly roll-ups for all), load {os.getloadavg()[0]:.2f}",
          flush=True)
    results = {}
    server = None
    tmp = Path(tempfile.mkdtemp(prefix="dw-bench-store-"))
    try:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if backend == "sqlite":
                url = str(tmp / "history.sqlite3")
            else:
                import psycopg

                if args.pg_url:
                    admin = args.pg_url
                else:
                    from checks.localpg import start

                    server = start(args.pg, tmp / "pg")
                    admin = server.url
                with psycopg.connect(admin, autocommit=True) as c:
                    c.execute("DROP DATABASE IF EXISTS dw_bench_store")
                    c.execute("CREATE DATABASE dw_bench_store")
                from urllib.parse import urlsplit, urlunsplit

                args._pg_db_url = urlunsplit(urlsplit(admin)._replace(path="/dw_bench_store"))
                url = "postgresql+psycopg://" + args._pg_db_url.split("://", 1)[1]
            with HistoryStore.open(url) as store:
                t0 = time.perf_counter()
                timings = build(store, args, now)
                print(f"\n[{backend}] built in {time.perf_counter() - t0:.1f} s: "
                      f"{int(timings['raw rows']):,} raw results in {timings['raw results']:.1f} s, "
                      f"old roll-ups in {timings['old roll-ups']:.1f} s, rollup() of "
                      f"{int(timings['rollup() hours'])} hours in {timings['rollup() s']:.1f} s "
                      f"({timings['rollup() s'] / max(1, timings['rollup() hours']) * 1000:.0f} ms/hour "
                      f"for {args.checks} checks)", flush=True)
                if backend == "sqlite":
                    print(f"  file size {os.path.getsize(tmp / 'history.sqlite3') / 2**20:.0f} MiB", flush=True)
                got = measure(store, args, now)
                results[backend] = got
                s = got["series"]
                print(f"  series(check, 24 h) [{got['points'][0]} points]: median {statistics.median(s):.1f} ms, "
                      f"p95 {p95(s):.1f} ms, max {max(s):.1f} ms over {len(s)} checks (target ≤ 100 ms)")
                for key in ("latest", "uptime"):
                    v = got[key]
                    label = {"latest": f"latest(env) [{ENV_SIZE} checks]",
                             "uptime": f"uptime(env, 24 h) [{ENV_SIZE} checks]"}[key]
                    print(f"  {label}: median {statistics.median(v):.1f} ms, p95 {p95(v):.1f} ms")
                sys.stdout.flush()
    finally:
        if server is not None:
            server.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
