"""Stand-in probes for the poller's tests, and a poller process that uses them.

The probes are the poller's real seam (`round.Probes`): small callables that return
CheckResults as scripted, so the tests exercise the real runner, store, leases, signals,
webhook and metrics without depending on the HTTP, Coolify and database probes.

    python tests/poller_standin.py --store URL --owner a --checks 6 --interval 2 --runs FILE [--sleep S]

runs a resident poller over `--checks` health checks of environment `production`; each probe
appends `owner name start end` to FILE (one line, O_APPEND) and sleeps `--sleep` seconds.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checks.monitor.results import CheckResult, utcnow  # noqa: E402
from checks.monitor.round import Probes, Unit  # noqa: E402


def scripted(states: dict[str, list[str]] | None = None, *, sleep: float = 0.0,
             on_run: Callable[[str, float, float], None] | None = None,
             detail: dict[str, dict[str, Any]] | None = None,
             commit: str | None = "cbf49b4", seen_commits: list[str | None] | None = None,
             sleeps: dict[str, float] | None = None) -> Probes:
    """Probes whose results follow `states[name]` (cycling; default ok), after `sleep` s."""
    counters: dict[str, itertools.count] = {}

    def next_state(name: str) -> str:
        script = (states or {}).get(name) or ["ok"]
        i = next(counters.setdefault(name, itertools.count()))
        return script[min(i, len(script) - 1)]

    def result(kind: str, name: str, state: str, started: float, **extra: Any) -> CheckResult:
        reason = None if state == "ok" else f"{name} scripted {state}"
        merged = {**extra, **(detail or {}).get(name, {})}
        return CheckResult(kind, name, state, reason, utcnow(), (time.time() - started) * 1000, merged)

    async def health(client: Any, check: Any) -> CheckResult:
        started = time.time()
        pause = (sleeps or {}).get(check.name, sleep)
        if pause:
            await asyncio.sleep(pause)
        if on_run:
            on_run(check.name, started, time.time())
        return result("health", check.name, next_state(check.name), started, status_code=200)

    async def smoke(client: Any, check: Any, run_id: str) -> CheckResult:
        started = time.time()
        return result("smoke", check.name, next_state(check.name), started, steps=[])

    async def deployment(client: Any, env: Any) -> CheckResult:
        started = time.time()
        return result("deployment", "deployment", next_state("deployment"), started,
                      status="finished", commit=commit)

    def database(env: Any, deployed: str | None, why: str | None = None) -> tuple[CheckResult, CheckResult]:
        if seen_commits is not None:
            seen_commits.append(deployed)
        started = time.time()
        drift = result("drift", "drift", next_state("drift"), started, schema_commit=deployed,
                       summary={"critical": 0, "warning": 0, "info": 0}, findings=[])
        migrations = result("migrations", "migrations", next_state("migrations"), started, pending=[], failed=[])
        return drift, migrations

    return Probes(health, smoke, deployment, database, lambda n: None)


def health_units(environment: str, count: int, interval: int, threshold: int = 1, deadline: float = 30.0) -> list[Unit]:
    return [Unit(environment, "health", f"h{i}", interval, threshold, SimpleNamespace(name=f"h{i}"), deadline)
            for i in range(count)]


def main() -> None:
    from checks.monitor.poller import Poller

    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--owner", required=True)
    ap.add_argument("--checks", type=int, default=6)
    ap.add_argument("--interval", type=int, default=2)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--sleep", type=float, default=0.0)
    args = ap.parse_args()

    def on_run(name: str, start: float, end: float) -> None:
        line = f"{args.owner} {name} {start:.3f} {end:.3f}\n".encode()
        fd = os.open(args.runs, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    poller = Poller(health_units("production", args.checks, args.interval), store_url=args.store,
                    owner=args.owner, probes=scripted(sleep=args.sleep, on_run=on_run), log=sys.stderr)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, poller.stop)
        print("ready", flush=True)
        await poller.run()

    asyncio.run(run())
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
