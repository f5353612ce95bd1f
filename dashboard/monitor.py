"""The states the pages show: every check of an environment as a CheckResult, with its age.

Pages never run a probe themselves, so a dead database or a hanging endpoint cannot block
a page: a background thread (one per dashboard process, `st.cache_resource`) checks each
environment every `interval_s` and keeps the newest results plus a bounded history in
memory; pages read them. A result older than `STALE_AFTER` intervals is shown as stale,
never as the current state, and a probe that could not run is an `error` state saying so.

The probes are the engine's: the drift check and the migration history of the environment's
database, plus — when the monitoring modules and the configuration provide them — the
Coolify deployment and the HTTP health and smoke checks.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from checks.monitor.results import CheckResult, worst

DEFAULT_INTERVAL_S = 15.0
STALE_AFTER = 3  # intervals without a fresh result before a state is shown as stale
HISTORY = 2_000  # results kept per check in memory
KIND_ORDER = ("deployment", "health", "smoke", "drift", "migrations")


@dataclass(frozen=True)
class Shown:
    """A result as a page shows it now."""

    result: CheckResult
    age_s: float
    stale: bool

    @property
    def state(self) -> str:
        return self.result.state

    @property
    def age(self) -> str:
        return age_text(self.age_s)


def age_text(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min ago"
    return f"{s // 86400} d ago"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Monitor:
    """Checks environments in a background thread; the pages' one source of states."""

    instances: list[Monitor] = []  # every monitor started in this process (tests stop them)

    def __init__(self, probe: Callable[[Any], list[CheckResult]], interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._probe = probe
        self._envs: dict[str, Any] = {}
        self._latest: dict[str, dict[tuple[str, str], CheckResult]] = {}
        self._history: dict[tuple[str, str, str], deque[CheckResult]] = {}
        self._rounds: dict[str, int] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        Monitor.instances.append(self)

    # -- running -------------------------------------------------------------------------
    def watch(self, environments: Iterable[Any]) -> None:
        """Check these environments (by name) from now on; starts the thread on first use."""
        with self._lock:
            for env in environments:
                if env.name not in self._envs or self._envs[env.name] != env:
                    if env.name in self._envs:  # another database under the same name: start afresh
                        self._forget(env.name)
                    self._envs[env.name] = env
                    self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="driftwatch-monitor", daemon=True)
                self._thread.start()

    def _forget(self, name: str) -> None:
        self._latest.pop(name, None)
        self._rounds.pop(name, None)
        for key in [k for k in self._history if k[0] == name]:
            del self._history[key]

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                envs = list(self._envs.values())
            for env in envs:
                if self._stop.is_set():
                    return
                self.check_now(env)
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def check_now(self, env: Any) -> list[CheckResult]:
        """Probe one environment now (also after an action), store and return its results."""
        try:
            results = self._probe(env)
        except Exception as exc:  # a bug in a probe must not end the thread: show it as an error
            results = [CheckResult("drift", "drift", "error", f"could not run: {type(exc).__name__}: {exc}")]
        with self._lock:
            if env.name in self._envs and self._envs[env.name] != env:
                return results  # the environment changed while this probe ran: keep nothing of it
            latest = self._latest.setdefault(env.name, {})
            for r in results:
                latest[(r.kind, r.name)] = r
                self._history.setdefault((env.name, r.kind, r.name), deque(maxlen=HISTORY)).append(r)
            self._rounds[env.name] = self._rounds.get(env.name, 0) + 1
        return results

    def refresh_soon(self) -> None:
        self._wake.set()

    # -- reading -------------------------------------------------------------------------
    def rounds(self, env_name: str) -> int:
        with self._lock:
            return self._rounds.get(env_name, 0)

    def wait_first_round(self, env_name: str, timeout_s: float) -> bool:
        """Wait (bounded) for an environment's first results, so a first visit shows states."""
        deadline = time.monotonic() + timeout_s
        while self.rounds(env_name) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.rounds(env_name) > 0

    def latest(self, env_name: str, now: datetime | None = None) -> list[Shown]:
        now = now or _now()
        with self._lock:
            results = list(self._latest.get(env_name, {}).values())
        shown = []
        for r in sorted(results, key=lambda r: (KIND_ORDER.index(r.kind), r.name)):
            age = (now - r.checked_at).total_seconds()
            shown.append(Shown(r, age, age > STALE_AFTER * self.interval_s))
        return shown

    def history(self, env_name: str, kind: str, name: str) -> list[CheckResult]:
        with self._lock:
            return list(self._history.get((env_name, kind, name), ()))


def state_of(shown: list[Shown]) -> str:
    """The environment's state: the worst current one; stale results count as unknown."""
    return worst("unknown" if s.stale else s.state for s in shown)


# -- the probes ------------------------------------------------------------------------------

def probe(env: Any) -> list[CheckResult]:
    """Every check of one environment, each as a CheckResult; never raises."""
    if env.error:
        return [CheckResult("drift", "drift", "error", f"could not run: {env.error}")]
    results: list[CheckResult] = []
    config = env.config
    if config is not None and getattr(config, "coolify", None) is not None:
        results.append(_deployment(config))
    http = [c for c in (*(getattr(config, "health", None) or ()), *(getattr(config, "smoke", None) or ()))]
    if http:
        results.extend(_http(http))
    results.extend(database(env))
    return results


def database(env: Any) -> list[CheckResult]:
    """Drift and migrations of the environment's database (H4's probe when present)."""
    if not env.database_url or not env.schema:
        reason = "could not run: no database_url or schema configured"
        return [CheckResult("drift", "drift", "error", reason), CheckResult("migrations", "migrations", "error", reason)]
    try:
        from checks.monitor.database import check_database as monitored
    except ImportError:
        monitored = None
    if monitored is not None and env.config is not None:
        try:
            source = _source(env)
            drift, migrations = monitored(env.database_url, source)
            return [drift, migrations]
        except Exception as exc:  # noqa: BLE001 - shown as a state, never a traceback
            return _both_error(exc, env.database_url)
    return _engine_database(env)


def _source(env: Any) -> Any:
    git = getattr(env.config, "git", None)
    if git is None:
        from pathlib import Path

        return Path(env.schema), Path(env.migrations) if env.migrations else None
    from checks.monitor.gitsource import source_at_commit

    return source_at_commit(git.repo, commit=None, ref=git.ref, schema=git.schema,
                            migrations=getattr(git, "migrations", None), fetch=bool(getattr(git, "fetch", False)))


def _both_error(exc: BaseException, url: str | None) -> list[CheckResult]:
    from checks.db import scrub

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = f"could not run: {scrub(text, url)}"
    return [CheckResult("drift", "drift", "error", reason), CheckResult("migrations", "migrations", "error", reason)]


def _engine_database(env: Any) -> list[CheckResult]:
    from checks.check import check_database
    from checks.findings import CRITICAL, WARNING
    from checks.migrations import history_summary

    started = time.monotonic()
    try:
        report = check_database(env.database_url, env.schema, cache=True).report
    except Exception as exc:  # noqa: BLE001
        return _both_error(exc, env.database_url)
    latency = (time.monotonic() - started) * 1000
    s = report.summary
    findings = [f for f in report.findings]
    detail = {"schema_commit": None, "summary": dict(s),
              "findings": [{"kind": f.kind, "severity": f.severity, "table": f.table, "column": f.column,
                            "model": f.model, "field": f.field, "message": f.message} for f in findings]}
    if report.in_sync():
        drift = CheckResult("drift", "drift", "ok", None, latency_ms=latency, detail=detail)
    else:
        worst_finding = min(findings, key=lambda f: (0 if f.severity == CRITICAL else 1 if f.severity == WARNING else 2))
        more = len([f for f in findings if f.severity in (CRITICAL, WARNING)]) - 1
        reason = worst_finding.message + (f" (+{more} more)" if more > 0 else "")
        drift = CheckResult("drift", "drift", "failing" if s[CRITICAL] else "warning", reason,
                            latency_ms=latency, detail=detail)
    if not env.migrations:
        return [drift]
    history = history_summary(env.database_url, env.migrations)
    by_state = history.get("by_state", {})
    detail_m = {"pending": by_state.get("pending", []), "failed": by_state.get("failed", []), **history}
    if "error" in history:
        migrations = CheckResult("migrations", "migrations", "error", f"could not run: {history['error']}", detail=detail_m)
    elif not history.get("managed"):
        migrations = CheckResult("migrations", "migrations", "warning",
                                 "not managed by Prisma Migrate (no _prisma_migrations table)", detail=detail_m)
    elif history.get("up_to_date"):
        migrations = CheckResult("migrations", "migrations", "ok", None, detail=detail_m)
    else:
        problems = "; ".join(f"{state.replace('_', ' ')}: {', '.join(names)}"
                             for state, names in by_state.items() if state != "applied")
        migrations = CheckResult("migrations", "migrations", "failing", problems, detail=detail_m)
    return [drift, migrations]


def _deployment(config: Any) -> CheckResult:
    try:
        import httpx

        from checks.monitor.coolify import check_deployment
    except ImportError:
        return CheckResult("deployment", "deployment", "unknown", "no Coolify support in this Driftwatch yet")
    coolify = config.coolify

    async def run() -> CheckResult:
        async with httpx.AsyncClient(timeout=10) as client:
            return await check_deployment(client, url=str(coolify.url), token=_secret(coolify.token),
                                          application=coolify.application)
    try:
        return asyncio.run(run())
    except Exception as exc:  # noqa: BLE001
        return CheckResult("deployment", "deployment", "error", f"could not run: {type(exc).__name__}")


def _http(checks: list[Any]) -> list[CheckResult]:
    try:
        from checks.monitor.http_checks import run_http_checks
    except ImportError:
        return [CheckResult("health", getattr(c, "name", "check"), "unknown", "no HTTP check support in this Driftwatch yet")
                for c in checks]
    try:
        return asyncio.run(run_http_checks(checks, concurrency=8))
    except Exception as exc:  # noqa: BLE001
        return [CheckResult("health", getattr(c, "name", "check"), "error", f"could not run: {type(exc).__name__}")
                for c in checks]


def _secret(value: Any) -> str:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
