"""Benchmark: one round of 1,000 health checks against a local server.

    python bench/bench_http_round.py [--endpoints 1000] [--rounds 3] [--concurrency 64,3]

A benchmark, not a test: it prints figures and exits 0 whatever they are (1 only if it
cannot run). The server (tests/servers/fast.py: asyncio, keep-alive) runs in a process of
its own on 127.0.0.1:0 so it does not share the client's GIL. Each concurrency is measured
in a fresh worker process (so its peak RSS is its own, not inherited from an earlier run):
a warm-up round, then `--rounds` rounds; the median wall time and the median CPU time of
the worker per round are printed with its peak RSS, and the server's own CPU time per round
(it must stay well below the client's, or the round measures the server). Wall time depends on what else the
machine runs (the load average is printed); CPU time much less so. Every check is judged as
in production: `[STATUS] == 200` and `[BODY].status == ok` on a JSON body.

The endpoints answer at once (`--latency-ms 0`, the client's own cost) and after 20 ms (a
realistic fast endpoint, where the number of checks in flight decides the round):
`--latency-ms 0,20` is the default.

Two ways to run rounds: `fresh` (run_http_checks: new clients per round, as `poll --once`)
and `resident` (one HttpChecker for all rounds: connections kept between rounds, as the
resident poller can).

Gatus runs its endpoints with a default concurrency of 3; the same runner at concurrency 3
is measured in the same run for comparison. Target: ≤ 1 s per round at the default
concurrency (checks.monitor.http_checks.DEFAULT_CONCURRENCY).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def worker(port: int, endpoints: int, concurrency: int, rounds: int, resident: bool) -> dict[str, object]:
    from checks.config import HealthCheck
    from checks.monitor.http_checks import HttpChecker, run_http_checks

    checks = [HealthCheck.model_validate({
        "name": f"endpoint {i}", "url": f"http://127.0.0.1:{port}/health/{i}", "timeout_s": 10,
        "conditions": ["[STATUS] == 200", "[BODY].status == ok"]}) for i in range(endpoints)]
    times: list[float] = []
    cpu: list[float] = []
    states: dict[str, int] = {}

    async def all_rounds() -> None:
        checker = HttpChecker(concurrency=concurrency) if resident else None
        for n in range(rounds + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            if checker is not None:
                results = await checker.run(checks)
            else:
                results = await run_http_checks(checks, concurrency=concurrency)
            if n:  # the first round is the warm-up
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            for r in results:
                states[r.state] = states.get(r.state, 0) + 1
        if checker is not None:
            await checker.aclose()

    asyncio.run(all_rounds())
    return {"concurrency": concurrency, "resident": resident, "rounds_s": times, "median_s": statistics.median(times),
            "cpu_s": statistics.median(cpu),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "states": states}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", default="0,20", help="server-side delay per answer, comma-separated")
    parser.add_argument("--concurrency", default=None,
                        help="comma-separated (default: the default concurrency, then Gatus' 3)")
    parser.add_argument("--worker", nargs=4, type=int, metavar=("PORT", "CONCURRENCY", "ROUNDS", "RESIDENT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        port, concurrency, rounds, resident = args.worker
        print(json.dumps(worker(port, args.endpoints, concurrency, rounds, bool(resident))))
        return 0

    from checks.monitor.http_checks import DEFAULT_CONCURRENCY

    levels = [int(c) for c in args.concurrency.split(",")] if args.concurrency else [DEFAULT_CONCURRENCY, 3]
    summary = []
    for latency in [float(x) for x in args.latency_ms.split(",")]:
        rows = run_against(latency, levels, args)
        if rows is None:
            return 1
        summary.append((latency, rows))
    print()
    for latency, rows in summary:
        default = next((r for r in rows if r["concurrency"] == DEFAULT_CONCURRENCY and not r["resident"]), None)
        gatus = next((r for r in rows if r["concurrency"] == 3 and not r["resident"]), None)
        if default:
            verdict = "PASS" if default["median_s"] <= 1.0 else "MISS"
            print(f"endpoints answering in {latency:g} ms: one round of {args.endpoints} at the default concurrency "
                  f"{DEFAULT_CONCURRENCY}: {default['median_s'] * 1000:.0f} ms wall, {default['cpu_s'] * 1000:.0f} ms "
                  f"CPU, {default['peak_rss_mib']:.0f} MiB peak RSS, load {default['load']:.1f} "
                  f"(target ≤ 1 s wall: {verdict})")
        if default and gatus:
            print(f"    Gatus' default concurrency 3, same runner: {gatus['median_s'] * 1000:.0f} ms wall "
                  f"({gatus['median_s'] / default['median_s']:.1f}× the default's), {gatus['cpu_s'] * 1000:.0f} ms CPU, "
                  f"load {gatus['load']:.1f}")
    return 0


def run_against(latency: float, levels: list[int], args: argparse.Namespace) -> list[dict] | None:
    from checks.monitor.http_checks import DEFAULT_CONCURRENCY

    server = subprocess.Popen([sys.executable, "-m", "tests.servers.fast", str(latency)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        if not line.strip().isdigit():
            print("bench_http_round: the test server did not start", file=sys.stderr)
            return None
        port = int(line)
        print(f"\n{args.endpoints} health endpoints answering after {latency:g} ms on 127.0.0.1:{port} "
              f"(asyncio server, own process); {args.rounds} rounds after a warm-up; "
              f"load {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
        print(f"{'concurrency':>12}  {'rounds':>8}  {'wall (median)':>13}  {'CPU (median)':>12}  "
              f"{'checks/s':>8}  {'peak RSS':>9}  {'server CPU':>10}  {'load':>5}  states")
        rows = []
        for level in levels:
            for resident in (0, 1):
                before = _cpu_seconds(server.pid)
                out = subprocess.run([sys.executable, __file__, "--endpoints", str(args.endpoints),
                                      "--worker", str(port), str(level), str(args.rounds), str(resident)],
                                     cwd=ROOT, capture_output=True, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                after = _cpu_seconds(server.pid)
                # the server's CPU per round (warm-up included in the average): it must stay well
                # under the client's, or the benchmark measures the server
                row["server_cpu_s"] = (after - before) / (args.rounds + 1) if before is not None and after else None
                server_cpu = f"{row['server_cpu_s'] * 1000:>7.0f} ms" if row["server_cpu_s"] is not None else "n/a"
                row["load"] = os.getloadavg()[0]
                rows.append(row)
                label = f"{level}" + (" (default)" if level == DEFAULT_CONCURRENCY else " (Gatus)" if level == 3 else "")
                print(f"{label:>12}  {'resident' if resident else 'fresh':>8}  {row['median_s'] * 1000:>10.0f} ms  "
                      f"{row['cpu_s'] * 1000:>9.0f} ms  {args.endpoints / row['median_s']:>8.0f}  "
                      f"{row['peak_rss_mib']:>5.1f} MiB  {server_cpu:>10}  {row['load']:>5.1f}  {row['states']}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        return rows
    finally:
        server.terminate()
        server.wait(10)


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
