"""One polling round: run a set of checks concurrently, each under a hard deadline, and say
what every environment looks like.

    report = poll_once(config)                    # every check of every environment, once
    report = poll_once(config, envs=["production"], store=store)   # and record it

A *unit* is one thing a probe runs: an environment's deployment, one health check, one
smoke scenario, or its database (one read yields both the drift and the migrations result).
Within an environment the deployment runs first and the database after it, because the
database is compared with the schema *of the deployed commit*; everything else runs at once,
bounded by the config's concurrency. A unit that overruns its deadline, or a probe that
raises, becomes an `error` result with a one-line reason: no probe can hold or crash a round.

The probes are parameters (`Probes`): the real ones are the HTTP checks (health.py's
`run_health`/`run_smoke`), Coolify (`coolify.check_deployment`) and the database
(`database.check_database` on `gitsource.source_at_commit`); a test passes small stand-ins.
"""
from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .results import KINDS, CheckResult, utcnow, worst
from .state import Status, next_status

if TYPE_CHECKING:
    from ..history import CheckSpec, HistoryStore

# Backstops over each probe's own timeouts: a probe that ignores them still cannot hold a round.
DEADLINE_MARGIN_S = 5.0
DEPLOYMENT_DEADLINE_S = 60.0
DATABASE_DEADLINE_S = 120.0
DEFAULT_CONCURRENCY = 64
UNIT_KINDS = ("deployment", "health", "smoke", "drift")  # "drift" is the database unit


@dataclass(frozen=True)
class Unit:
    """One scheduled thing to run. `check` is what the probe takes (a HealthCheck, a
    SmokeCheck, the EnvironmentConfig for deployment and database); `problem`, when set, is
    a configuration problem (an unset secret) that makes the unit `error` without running."""

    environment: str
    kind: str
    name: str
    interval_s: int
    failure_threshold: int = 1
    check: Any = None
    deadline_s: float = 60.0
    problem: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.environment, self.kind, self.name)

    def kinds(self) -> tuple[str, ...]:
        """The result kinds this unit yields."""
        return ("drift", "migrations") if self.kind == "drift" else (self.kind,)


HealthProbe = Callable[[Any, Any], Awaitable[CheckResult]]
SmokeProbe = Callable[[Any, Any, str], Awaitable[CheckResult]]
DeploymentProbe = Callable[[Any, Any], Awaitable[CheckResult]]
DatabaseProbe = Callable[..., "tuple[CheckResult, CheckResult]"]  # (env, commit, no_commit_reason)


@dataclass
class Probes:
    """The callables a round runs. `database` is synchronous (psycopg, git) and runs in a
    worker thread; `client` makes the one HTTP client a round shares."""

    health: HealthProbe
    smoke: SmokeProbe
    deployment: DeploymentProbe
    database: DatabaseProbe
    client: Callable[[int], Any]

    @classmethod
    def real(cls) -> Probes:
        """The real probes (imported here: they pull in httpx, psycopg and the engine)."""
        from . import http_checks

        async def health(client: Any, check: Any) -> CheckResult:
            return await http_checks.run_health(client, check)

        async def smoke(client: Any, check: Any, run_id: str) -> CheckResult:
            return await http_checks.run_smoke(client, check, run_id=run_id)

        async def deployment(client: Any, env: Any) -> CheckResult:
            from .coolify import check_deployment

            coolify = env.coolify
            return await check_deployment(client, url=str(coolify.url), token=coolify.token,
                                          application=coolify.application)

        def client(concurrency: int) -> Any:
            return http_checks.make_client(concurrency=concurrency)

        return cls(health, smoke, deployment, database_probe, client)


def database_probe(env: Any, commit: str | None, no_commit_reason: str | None = None
                   ) -> tuple[CheckResult, CheckResult]:
    """The drift and migrations results of one environment's database, against the schema of
    `commit` when the environment reads its schema from git (else its local files)."""
    from .database import check_database, check_database_at_commit

    if env.git is not None:
        git = env.git
        return check_database_at_commit(env.database_url, repo=git.repo, commit=commit, ref=git.ref,
                                        schema=git.schema_path, migrations=git.migrations, fetch=git.fetch,
                                        no_commit_reason=no_commit_reason)
    return check_database(env.database_url, env.schema_path, env.migrations)


# -- what a config asks for ------------------------------------------------------------------


def units_of(config: Any, envs: Iterable[str] | None = None) -> list[Unit]:
    """Every unit of the selected environments (all when `envs` is None), in config order."""
    selected = list(config.environments) if envs is None else list(envs)
    units: list[Unit] = []
    for name in selected:
        env = config.environment(name) if hasattr(config, "environment") else config.environments[name]
        threshold = int(getattr(env, "failure_threshold", 1) or 1)
        interval = _seconds(env.interval_s)
        # The threshold is for what flaps: endpoints answering over a network. A deployment
        # Coolify reports failed, or a table the catalog does not have, is a fact on its first
        # reading; holding it back as a `warning` would only delay the truth.
        if env.coolify is not None:
            problem = _problems(env, "coolify")
            units.append(Unit(name, "deployment", "deployment", interval, 1, env,
                              DEPLOYMENT_DEADLINE_S, problem))
        for check in env.health:
            units.append(Unit(name, "health", check.name, _seconds(check.interval_s), threshold, check,
                              float(check.timeout_s) + DEADLINE_MARGIN_S))
        for check in env.smoke:
            steps = max(1, len(check.steps))
            units.append(Unit(name, "smoke", check.name, _seconds(check.interval_s), threshold, check,
                              float(check.timeout_s) * steps + DEADLINE_MARGIN_S))
        if env.database_url is not None or _problems(env, "database_url"):
            problem = _problems(env, "database_url") or _problems(env, "git")
            units.append(Unit(name, "drift", "drift", interval, 1, env, DATABASE_DEADLINE_S, problem))
    return units


def _seconds(value: Any) -> int:
    """Intervals are whole seconds in the store's schedule; at least one."""
    return max(1, int(round(float(value))))


def _problems(env: Any, key: str) -> str | None:
    under = getattr(env, "problems_under", None)
    found = under(key) if under is not None else ()
    return "; ".join(str(p) for p in found) or None


def check_specs(units: Iterable[Unit]) -> dict[str, list[CheckSpec]]:
    """What to register in the store per environment: one check per result kind; migrations
    is not scheduled on its own (it rides with the drift unit's database read)."""
    from ..history import CheckSpec

    specs: dict[str, list[CheckSpec]] = {}
    for unit in units:
        out = specs.setdefault(unit.environment, [])
        out.append(CheckSpec(unit.kind, unit.name, unit.interval_s, _spec_config(unit)))
        if unit.kind == "drift":
            out.append(CheckSpec("migrations", "migrations", unit.interval_s, {}, scheduled=False))
    return specs


def _spec_config(unit: Unit) -> dict[str, Any]:
    """What the dashboard may show about a check's configuration (never a secret: the store
    scrubs secret-looking keys again)."""
    check = unit.check
    if unit.kind == "health":
        return {"url": _masked_url(getattr(check, "url", None)), "method": getattr(check, "method", None)}
    if unit.kind == "smoke":
        return {"steps": [{"method": getattr(s, "method", None), "url": _masked_url(getattr(s, "url", None))}
                          for s in getattr(check, "steps", ())]}
    if unit.kind == "deployment":
        coolify = getattr(check, "coolify", None)
        return {"url": _masked_url(getattr(coolify, "url", None)),
                "application": getattr(coolify, "application", None)}
    return {}


def _masked_url(url: Any) -> str | None:
    if url is None:
        return None
    from ..history.records import scrub_text

    text = str(url)
    return scrub_text(text.split("?", 1)[0])


# -- running units ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitResult:
    unit: Unit
    results: tuple[CheckResult, ...]


class Runner:
    """Runs units with the given probes, sharing one HTTP client and a concurrency bound.

    `commits` remembers each environment's newest deployed commit, so a database unit that
    runs without its deployment (on its own interval) still reads the deployed schema.
    """

    def __init__(self, probes: Probes | None = None, *, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.probes = probes or Probes.real()
        self.concurrency = max(1, concurrency)
        self.commits: dict[str, str | None] = {}
        self.no_commit: dict[str, str] = {}  # why an environment's deployed commit is unknown
        self._client: Any = None
        self._gate: asyncio.Semaphore | None = None

    async def start(self) -> None:
        """Keep one HTTP client and one concurrency bound for every `run` until `close` (the
        resident poller: connections are reused from one check to the next)."""
        if self._client is None:
            self._client = self.probes.client(self.concurrency)
            self._gate = asyncio.Semaphore(self.concurrency)

    async def close(self) -> None:
        client, self._client, self._gate = self._client, None, None
        if client is not None and hasattr(client, "aclose"):
            with contextlib.suppress(Exception):
                await client.aclose()

    async def run(self, units: Sequence[Unit]) -> list[UnitResult]:
        """Run `units` once; an environment's deployment before its database. Never raises."""
        shared = self._client is not None
        client = self._client if shared else self.probes.client(self.concurrency)
        gate = self._gate if shared and self._gate is not None else asyncio.Semaphore(self.concurrency)
        try:
            by_env: dict[str, list[Unit]] = {}
            for unit in units:
                by_env.setdefault(unit.environment, []).append(unit)
            jobs = []
            for env_units in by_env.values():
                first = [u for u in env_units if u.kind == "deployment"]
                after = [u for u in env_units if u.kind == "drift"]
                rest = [u for u in env_units if u.kind not in ("deployment", "drift")]
                jobs.append(self._chain(client, gate, first, after))
                jobs.extend(self._one(client, gate, u) for u in rest)
            done = await asyncio.gather(*jobs)
        finally:
            if not shared:
                with contextlib.suppress(Exception):
                    if client is not None and hasattr(client, "aclose"):
                        await client.aclose()
        out: list[UnitResult] = []
        for item in done:
            out.extend(item if isinstance(item, list) else [item])
        order = {u.key: i for i, u in enumerate(units)}
        return sorted(out, key=lambda r: order.get(r.unit.key, 0))

    async def _chain(self, client: Any, gate: asyncio.Semaphore, first: list[Unit], after: list[Unit]) -> list[UnitResult]:
        got = [await self._one(client, gate, u) for u in first]
        got += [await self._one(client, gate, u) for u in after]
        return got

    async def _one(self, client: Any, gate: asyncio.Semaphore, unit: Unit) -> UnitResult:
        started = utcnow()
        if unit.problem:
            return UnitResult(unit, tuple(CheckResult(kind, _result_name(unit, kind), "error", unit.problem, started)
                                          for kind in unit.kinds()))
        try:
            async with gate:
                results = await asyncio.wait_for(self._probe(client, unit), timeout=unit.deadline_s)
        except asyncio.TimeoutError:
            reason = f"did not finish within {unit.deadline_s:g} s (the poller's deadline for this check)"
            results = tuple(CheckResult(kind, _result_name(unit, kind), "error", reason, started)
                            for kind in unit.kinds())
        except Exception as exc:  # noqa: BLE001 - a probe's bug must not end the round
            reason = _one_line(exc)
            results = tuple(CheckResult(kind, _result_name(unit, kind), "error", reason, started)
                            for kind in unit.kinds())
        if unit.kind == "deployment" and results:
            commit = results[0].detail.get("commit")
            if commit:
                self.commits[unit.environment] = commit
                self.no_commit.pop(unit.environment, None)
            else:
                self.no_commit[unit.environment] = f"the deployment check said: {results[0].reason or 'no commit'}"
        return UnitResult(unit, results)

    async def _probe(self, client: Any, unit: Unit) -> tuple[CheckResult, ...]:
        p = self.probes
        if unit.kind == "health":
            return (await p.health(client, unit.check),)
        if unit.kind == "smoke":
            return (await p.smoke(client, unit.check, uuid.uuid4().hex[:8]),)
        if unit.kind == "deployment":
            return (await p.deployment(client, unit.check),)
        if unit.kind == "drift":
            commit = self.commits.get(unit.environment)
            why = None if commit else self.no_commit.get(unit.environment)
            drift, migrations = await asyncio.to_thread(p.database, unit.check, commit, why)
            return (drift, migrations)
        raise ValueError(f"unknown unit kind {unit.kind!r}")


def _result_name(unit: Unit, kind: str) -> str:
    return kind if kind in ("deployment", "drift", "migrations") else unit.name


def _one_line(exc: BaseException) -> str:
    from ..errors import DriftwatchError
    from ..history.records import one_line_error

    if isinstance(exc, DriftwatchError):
        from ..history.records import scrub_text

        return scrub_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return "probe failed: " + one_line_error(exc)


# -- the report ------------------------------------------------------------------------------


@dataclass
class EnvironmentReport:
    name: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def state(self) -> str:
        return worst(r.state for r in self.results)

    def to_json(self) -> dict[str, Any]:
        def one(kind: str) -> dict[str, Any] | None:
            found = [r for r in self.results if r.kind == kind]
            return _result_json(found[0]) if found else None

        return {
            "name": self.name,
            "state": self.state,
            "deployment": one("deployment"),
            "health": [_result_json(r) for r in self.results if r.kind == "health"],
            "smoke": [_result_json(r) for r in self.results if r.kind == "smoke"],
            "drift": one("drift"),
            "migrations": one("migrations"),
        }


def _result_json(result: CheckResult) -> dict[str, Any]:
    out = result.to_json()
    if result.kind in ("deployment", "drift", "migrations"):
        out.pop("name", None)
        out = {"state": out.pop("state"), **out}
    return out


@dataclass
class PollReport:
    """What one `poll --once` saw: each environment's checks with their states (the failure
    threshold applied over the store's history), and whether it could record them."""

    checked_at: datetime
    environments: list[EnvironmentReport]
    recorded_in: str | None = None
    store_error: str | None = None
    flips: list[Any] = field(default_factory=list)
    incidents: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.state == "ok" for env in self.environments for r in env.results)

    @property
    def exit_code(self) -> int:
        """0 when everything is ok, 2 when anything is not."""
        return 0 if self.ok else 2

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checked_at": self.checked_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "environments": [env.to_json() for env in self.environments],
        }
        if self.recorded_in is not None:
            out["recorded_in"] = self.recorded_in
        if self.store_error is not None:
            out["store_error"] = self.store_error
        return out


def apply_states(results: Sequence[UnitResult], statuses: dict[tuple[str, str, str], Status] | None = None
                 ) -> dict[str, EnvironmentReport]:
    """Results with each check's derived state: from `statuses` (what the store derived), else
    the failure threshold applied to this one result alone."""
    envs: dict[str, EnvironmentReport] = {}
    for item in results:
        report = envs.setdefault(item.unit.environment, EnvironmentReport(item.unit.environment))
        for result in item.results:
            key = (item.unit.environment, result.kind, result.name)
            status = (statuses or {}).get(key) or next_status(None, result, item.unit.failure_threshold)
            report.results.append(result.with_state(status.state, status.reason))
    return envs


def record(store: HistoryStore, results: Sequence[UnitResult], ids: dict[tuple[str, str, str], int]
           ) -> tuple[dict[tuple[str, str, str], Status], list[Any], list[Any]]:
    """Store every result (threshold applied in the store), then open or close incidents of the
    environments concerned; return the derived states, the flips and the incident changes."""
    statuses: dict[tuple[str, str, str], Status] = {}
    flips: list[Any] = []
    for item in results:
        for result in item.results:
            key = (item.unit.environment, result.kind, result.name)
            recorded = store.record_result(ids[key], result, failure_threshold=item.unit.failure_threshold)
            s = recorded.status
            statuses[key] = Status(s.state, s.reason, s.failures, s.since)
            if recorded.flip is not None:
                flips.append(recorded.flip)
    changes = []
    for env in dict.fromkeys(item.unit.environment for item in results):
        change = store.update_incident(env)
        if change is not None:
            changes.append(change)
    return statuses, flips, changes


def register(store: HistoryStore, units: Sequence[Unit], *, retire_others: bool = False
             ) -> dict[tuple[str, str, str], int]:
    """Register the units' checks; their ids by (environment, kind, name). `retire_others`
    unschedules the environments' checks that are no longer configured (the resident poller)."""
    ids: dict[tuple[str, str, str], int] = {}
    for env, specs in check_specs(units).items():
        for (kind, name), tid in store.register_checks(env, specs, retire_others=retire_others).items():
            ids[(env, kind, name)] = tid
    return ids


def poll_once(config: Any, envs: Iterable[str] | None = None, store: HistoryStore | None = None, *,
              probes: Probes | None = None, units: Sequence[Unit] | None = None) -> PollReport:
    """Run every check of the selected environments once, concurrently, each under its
    deadline; with a store, record results, state changes and incidents.

    A store that fails is reported in `store_error` (the checks' results are still returned,
    with the threshold applied to this round alone); it does not stop the round.
    """
    from ..errors import HistoryError

    selected = list(envs) if envs is not None else None
    units = list(units) if units is not None else units_of(config, selected)
    concurrency = int(getattr(config, "concurrency", DEFAULT_CONCURRENCY) or DEFAULT_CONCURRENCY)
    runner = Runner(probes, concurrency=concurrency)
    checked_at = utcnow()
    results = asyncio.run(runner.run(units))
    statuses = None
    report = PollReport(checked_at, [])
    if store is not None:
        try:
            ids = register(store, units)
            statuses, report.flips, report.incidents = record(store, results, ids)
            report.recorded_in = store.location
        except HistoryError as exc:
            report.store_error = str(exc)
    by_env = apply_states(results, statuses)
    names = selected if selected is not None else list(
        dict.fromkeys([*getattr(config, "environments", {}), *(u.environment for u in units)]))
    report.environments = [by_env.get(name) or EnvironmentReport(name) for name in names]
    return report


__all__ = ["KINDS", "EnvironmentReport", "PollReport", "Probes", "Runner", "Unit", "UnitResult",
           "apply_states", "check_specs", "poll_once", "record", "register", "units_of"]
