"""The states the pages show: every check of an environment as a CheckResult, with its age.

Pages never run a probe themselves, so a dead database or a hanging endpoint cannot block
a page: a background thread (one per dashboard process, `st.cache_resource`) keeps each
environment's newest results; pages read them, and their history from the store. The
configured environments run in the team's Poller (each check on its own interval_s, leased
from the store, so a resident `driftwatch poll` and the dashboard share the checks instead of
running them twice); the thread reads their states back from the store every `interval_s`
(DRIFTWATCH_REFRESH_S). An environment without configuration, or any when the store is
unavailable, is probed by the thread itself every `interval_s`. A result older than
`STALE_AFTER` intervals (its check's, or the refresh's when longer) is shown as stale, never
as the current state, and a probe that could not run is an `error` state saying so.

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

    def __init__(self, probe: Callable[[Any], list[CheckResult]], interval_s: float = DEFAULT_INTERVAL_S,
                 store_url: str | None = None) -> None:
        self.interval_s = interval_s
        self._probe = probe
        self.store_url = store_url
        self._store: Any = None
        self._ids: dict[str, dict[tuple[str, str], int]] = {}
        self.store_error: str | None = None
        self._since: dict[tuple[str, str, str], datetime | None] = {}
        self._last_write: dict[str, datetime] = {}
        self.following = False  # True once a resident poller's results were read instead of probing
        self._envs: dict[str, Any] = {}
        self._latest: dict[str, dict[tuple[str, str], CheckResult]] = {}
        self._history: dict[tuple[str, str, str], deque[CheckResult]] = {}
        self._rounds: dict[str, int] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The configured environments run in a real Poller (checks.monitor.poller) in its own
        # thread and event loop: each check on its own interval_s, leased from the store, so a
        # resident `driftwatch poll` and this dashboard share the work instead of doubling it.
        self._poller: Any = None
        self._poller_loop: asyncio.AbstractEventLoop | None = None
        self._poller_thread: threading.Thread | None = None
        self._polled: dict[str, Any] = {}  # environment name -> its config, as the poller runs it
        self._intervals: dict[tuple[str, str, str], float] = {}  # each check's interval_s
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
        self._stop_poller()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._lock:
                    envs = list(self._envs.values())
                polled = self._poll(envs)
                for env in envs:
                    if self._stop.is_set():
                        return
                    if env.name in polled:
                        if not self._read_store(env):
                            self._read_poller(env)
                    elif not self._follow_other_poller(env):
                        self.check_now(env)
                self._wake.wait(self.interval_s)
                self._wake.clear()
        finally:
            self._stop_poller()

    # -- the background poller ---------------------------------------------------------------
    def _poll(self, envs: list[Any]) -> set[str]:
        """Keep a Poller running over the configured environments (restarted when their
        configuration changes); the names it runs. Without a store the thread probes itself:
        the pages could not read the poller's results back."""
        configured = {e.name: e.config for e in envs if e.config is not None}
        if not configured or self._open_store() is None:
            self._stop_poller()
            return set()
        alive = self._poller_thread is not None and self._poller_thread.is_alive()
        if alive and configured == self._polled:
            return set(configured)
        self._stop_poller()
        from types import SimpleNamespace

        from checks.monitor.poller import Poller
        from checks.monitor.round import units_of

        units = units_of(SimpleNamespace(environments=configured), list(configured))
        self._intervals = {u.key: float(u.interval_s) for u in units}
        for u in units:
            if u.kind == "drift":
                self._intervals[(u.environment, "migrations", "migrations")] = float(u.interval_s)
        poller = Poller(units, store_url=self.store_url, environments=list(configured), log=_Quiet())
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(poller.run())
            finally:
                loop.close()

        thread = threading.Thread(target=run, name="driftwatch-dashboard-poller", daemon=True)
        self._poller, self._poller_loop, self._poller_thread, self._polled = poller, loop, thread, dict(configured)
        thread.start()
        return set(configured)

    def _stop_poller(self, timeout_s: float = 10.0) -> None:
        poller, loop, thread = self._poller, self._poller_loop, self._poller_thread
        self._poller = self._poller_loop = self._poller_thread = None
        self._polled = {}
        if poller is None or loop is None or thread is None:
            return
        try:
            loop.call_soon_threadsafe(poller.stop)
        except RuntimeError:  # the loop is closed already
            return
        if thread is not threading.current_thread():
            thread.join(timeout_s)

    def _read_store(self, env: Any) -> bool:
        """The poller's newest results of one environment, from the store, as the pages show them."""
        store = self._open_store()
        if store is None:
            return False
        try:
            states = store.latest(env.name)
        except Exception as exc:  # noqa: BLE001
            self.store_error = f"history store unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            return False
        self._show(env, states)
        return True

    def _read_poller(self, env: Any) -> bool:
        """The store is down: show the in-process poller's own newest results instead (it keeps
        checking and keeps each state in memory), so that pages stay current rather than
        turning stale while the checks are in fact running. The banner says the store is down."""
        poller = self._poller
        if poller is None:
            return False
        results = [(k, r) for k, r in list(poller.results.items()) if k[0] == env.name]
        if not results:
            return False
        with self._lock:
            latest = self._latest.setdefault(env.name, {})
            for (name, kind, check), r in results:
                status = poller.states.get((name, kind, check))
                if status is not None and status.state != r.state:
                    r = r.with_state(status.state, status.reason)
                old = latest.get((kind, check))
                if old is None or old.checked_at != r.checked_at:
                    latest[(kind, check)] = r
                    self._history.setdefault((name, kind, check), deque(maxlen=HISTORY)).append(r)
                if status is not None:
                    self._since[(name, kind, check)] = status.since
            self._rounds[env.name] = self._rounds.get(env.name, 0) + 1
        return True

    def check_now(self, env: Any) -> list[CheckResult]:
        """Probe one environment now (also after an action), store and return its results,
        each with the state the failure threshold gives it."""
        try:
            results = self._probe(env)
        except Exception as exc:  # a bug in a probe must not end the thread: show it as an error
            results = [CheckResult("drift", "drift", "error", f"could not run: {type(exc).__name__}: {exc}")]
        results = self._record(env, results)
        with self._lock:
            if env.name in self._envs and self._envs[env.name] != env:
                return results  # the environment changed while this probe ran: keep nothing of it
            latest = self._latest.setdefault(env.name, {})
            for r in results:
                latest[(r.kind, r.name)] = r
                self._history.setdefault((env.name, r.kind, r.name), deque(maxlen=HISTORY)).append(r)
            self._rounds[env.name] = self._rounds.get(env.name, 0) + 1
        return results

    def _open_store(self) -> Any:
        if self._store is None and self.store_url is not False:
            from checks.history import HistoryStore

            try:
                self._store = HistoryStore.open(self.store_url)
                self.store_error = None
            except Exception as exc:  # noqa: BLE001 - the pages say so; states still show
                self.store_error = f"history store unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        return self._store

    def _record(self, env: Any, results: list[CheckResult]) -> list[CheckResult]:
        """Write results to the history store (observations, states, flips, incidents) so the
        report and the CLI see what the dashboard saw; return them as the store judged them."""
        store = self._open_store()
        if store is None or not results:
            return results
        from checks.history.records import CheckSpec

        threshold = int(getattr(env.config, "failure_threshold", 1) or 1) if env.config is not None else 1
        interval = int(getattr(env.config, "interval_s", self.interval_s) or self.interval_s) if env.config else int(self.interval_s)
        judged = []
        try:
            ids = self._ids.get(env.name, {})
            missing = [r for r in results if (r.kind, r.name) not in ids]
            if missing:
                # A check the background poller runs stays scheduled (a recheck after an action
                # must not take it off the poller's schedule); the others are not leased.
                scheduled = env.name in self._polled
                specs = [CheckSpec(r.kind, r.name, int(self._intervals.get((env.name, r.kind, r.name), interval)),
                                   scheduled=scheduled) for r in results]
                ids = store.register_checks(env.name, specs)
                self._ids[env.name] = ids
            for r in results:
                recorded = store.record_result(ids[(r.kind, r.name)], r, failure_threshold=threshold)
                status = recorded.status
                self._since[(env.name, r.kind, r.name)] = status.since
                judged.append(r.with_state(status.state, status.reason) if status.state != r.state else r)
            store.update_incident(env.name)
            self._last_write[env.name] = max(r.checked_at for r in results)
            self.store_error = None
            return judged
        except Exception as exc:  # noqa: BLE001
            self.store_error = f"history store unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            return results

    def _follow_other_poller(self, env: Any) -> bool:
        """When a resident poller (`driftwatch poll`) already keeps this environment fresh in
        the store, read its results instead of probing again; True if it did."""
        store = self._open_store()
        if store is None:
            return False
        try:
            states = store.latest(env.name)
        except Exception:  # noqa: BLE001
            return False
        stamps = [c.checked_at for c in states if c.checked_at is not None]
        if not stamps:
            return False
        newest = max(stamps)
        interval = float(getattr(env.config, "interval_s", self.interval_s) or self.interval_s) if env.config else self.interval_s
        mine = self._last_write.get(env.name)
        if (mine is not None and newest <= mine) or (_now() - newest).total_seconds() > 2 * interval:
            return False
        self._show(env, states)
        self.following = True
        return True

    def _show(self, env: Any, states: list[Any]) -> None:
        """Take the store's current states of an environment as its newest results."""
        if not any(c.checked_at is not None for c in states):
            return  # nothing reported yet: the Overview keeps waiting for the first round
        with self._lock:
            latest = self._latest.setdefault(env.name, {})
            for c in states:
                if c.checked_at is None or c.kind not in KIND_ORDER:
                    continue
                r = CheckResult(c.kind, c.name, c.state, c.reason or (None if c.state == "ok" else c.state),
                                checked_at=c.checked_at, latency_ms=c.latency_ms, detail=c.detail or {})
                old = latest.get((c.kind, c.name))
                if old is None or old.checked_at != r.checked_at:
                    latest[(c.kind, c.name)] = r
                    self._history.setdefault((env.name, c.kind, c.name), deque(maxlen=HISTORY)).append(r)
                self._since[(env.name, c.kind, c.name)] = c.since
            self._rounds[env.name] = self._rounds.get(env.name, 0) + 1

    def uptime(self, env_name: str, days: int = 30) -> dict[tuple[str, str], float | None]:
        """Each check's share of ok results over the last `days`, from the store (roll-ups and
        raw results summed in SQL); empty without a store."""
        store = self._open_store()
        if store is None:
            return {}
        from datetime import timedelta

        try:
            ids = {t.id: (t.kind, t.name) for t in store.targets(env_name)}
            shares = store.uptime(since=_now() - timedelta(days=days), environment=env_name)
        except Exception:  # noqa: BLE001 - the page shows what memory has
            return {}
        return {ids[tid]: share for tid, share in shares.items() if tid in ids}

    def flips(self, env_name: str, days: int = 30) -> list[Any]:
        """The environment's state changes (with their reasons) from the store, oldest first."""
        store = self._open_store()
        if store is None:
            return []
        from datetime import timedelta

        try:
            return store.flips(env_name, since=_now() - timedelta(days=days))
        except Exception:  # noqa: BLE001
            return []

    # -- history, from the store the poller writes (survives a restart) -------------------
    def _target_id(self, store: Any, env_name: str, kind: str, name: str) -> int | None:
        ids = self._ids.get(env_name, {})
        if (kind, name) in ids:
            return ids[(kind, name)]
        for t in store.targets(env_name):
            if (t.kind, t.name) == (kind, name):
                return t.id
        return None

    def series(self, env_name: str, kind: str, name: str, hours: int = 24) -> list[Any]:
        """A check's hours (count, ok, latency avg/p95/max) over the last `hours`, from the store's
        roll-ups plus the raw results not rolled up yet; empty without a store."""
        store = self._open_store()
        if store is None:
            return []
        from datetime import timedelta

        try:
            tid = self._target_id(store, env_name, kind, name)
            return [] if tid is None else store.series(tid, since=_now() - timedelta(hours=hours))
        except Exception:  # noqa: BLE001 - the page says the store is unavailable
            return []

    def observations(self, env_name: str, kind: str, name: str, since: datetime) -> list[Any]:
        """A check's raw results since `since` (a short window), oldest first, from the store."""
        store = self._open_store()
        if store is None:
            return []
        try:
            tid = self._target_id(store, env_name, kind, name)
            return [] if tid is None else store.observations(tid, since=since)
        except Exception:  # noqa: BLE001
            return []

    def failures(self, env_name: str, kind: str, name: str, *, hours: int = 24, limit: int = 5) -> list[Any]:
        """The newest `limit` results that were not ok in the last `hours`, newest first (the raw
        results are streamed, so a day of 30-second results never sits in memory at once)."""
        store = self._open_store()
        if store is None:
            return []
        from datetime import timedelta

        kept: deque[Any] = deque(maxlen=limit)
        try:
            tid = self._target_id(store, env_name, kind, name)
            if tid is None:
                return []
            rows = store.iter_observations(tid, since=_now() - timedelta(hours=hours))
            try:
                for o in rows:
                    if o.state != "ok":
                        kept.append(o)
            finally:
                rows.close()
        except Exception:  # noqa: BLE001
            return []
        return list(reversed(kept))

    def deployments(self, env_name: str, days: int = 30, flips: list[Any] | None = None) -> list[dict[str, Any]]:
        """The deployments the store saw (its deployment flips carry the result's detail), oldest
        first, one per deployment uuid with its newest status; `flips` when already read."""
        seen: dict[str, dict[str, Any]] = {}
        for f in self.flips(env_name, days=days) if flips is None else flips:
            if f.kind != "deployment" or not f.detail:
                continue
            for dep in [f.detail, *(f.detail.get("deployments") or [])]:
                uuid = dep.get("deployment_uuid")
                if uuid and dep.get("started_at"):
                    seen[uuid] = dep
        return sorted(seen.values(), key=lambda d: d["started_at"])

    def since(self, env_name: str, kind: str, name: str) -> datetime | None:
        """Since when the check has been in its current state (from the store)."""
        return self._since.get((env_name, kind, name))

    def open_incidents(self) -> dict[str, Any]:
        """Each environment's open incident, from the store (one query for all environments)."""
        store = self._open_store()
        if store is None:
            return {}
        try:
            found = store.incidents(open_only=True)
        except Exception:  # noqa: BLE001
            return {}
        return {i.environment: i for i in reversed(found)}

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
            every = max(self.interval_s, self._intervals.get((env_name, r.kind, r.name), 0.0))
            shown.append(Shown(r, age, age > STALE_AFTER * every))
        return shown

    def history(self, env_name: str, kind: str, name: str) -> list[CheckResult]:
        with self._lock:
            return list(self._history.get((env_name, kind, name), ()))


class _Quiet:
    """The background poller's log: its lines (store down, state changes) are on the pages."""

    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def state_of(shown: list[Shown]) -> str:
    """The environment's state: the worst current one; stale results count as unknown."""
    return worst("unknown" if s.stale else s.state for s in shown)


# -- the probes ------------------------------------------------------------------------------

def probe(env: Any) -> list[CheckResult]:
    """Every check of one environment, each as a CheckResult; never raises.

    A configured environment runs as the poller runs it (checks.monitor.round: its probes,
    each under its deadline, the deployment before the database so the drift reads the
    deployed commit's schema); one without configuration gets the drift and migration checks.
    """
    if env.config is None:
        if env.error:
            return [CheckResult("drift", "drift", "error", f"could not run: {env.error}"),
                    CheckResult("migrations", "migrations", "error", f"could not run: {env.error}")]
        return database(env)
    from types import SimpleNamespace

    from checks.monitor.round import Runner, units_of

    units = units_of(SimpleNamespace(environments={env.name: env.config}), [env.name])
    done = asyncio.run(Runner(concurrency=16).run(units))
    return [r for unit_result in done for r in unit_result.results]


def database(env: Any, deployment: CheckResult | None = None) -> list[CheckResult]:
    """Drift and migrations of the environment's database, against the deployed commit's
    schema when the environment reads it from git."""
    from checks.monitor.database import check_database

    problems = getattr(env.config, "database_problems", ()) if env.config is not None else ()
    if problems:
        reason = f"could not run: {problems[0]}"
        return [CheckResult("drift", "drift", "error", reason), CheckResult("migrations", "migrations", "error", reason)]
    if not env.database_url or not (env.schema or getattr(env.config, "git", None)):
        reason = "could not run: no database_url or schema configured"
        return [CheckResult("drift", "drift", "error", reason), CheckResult("migrations", "migrations", "error", reason)]
    try:
        source, migrations = schema_source(env, deployment)
        drift, migrations_result = check_database(env.database_url, source, migrations)
        return [drift, migrations_result]
    except Exception as exc:  # noqa: BLE001 - shown as a state, never a traceback
        return _both_error(exc, env.database_url)


def schema_source(env: Any, deployment: CheckResult | None = None) -> tuple[Any, str | None]:
    """The schema to compare with: the deployed commit's from git, else the configured file."""
    git = getattr(env.config, "git", None) if env.config is not None else None
    if git is None:
        return env.schema, env.migrations
    from checks.monitor.gitsource import source_at_commit

    commit = (deployment.detail or {}).get("commit") if deployment is not None else None
    why = None
    if deployment is None:
        why = "no Coolify deployment is configured"
    elif not commit:
        why = f"the deployment check reported no commit ({deployment.reason or deployment.state})"
    source = source_at_commit(git.repo, commit=commit, ref=git.ref, schema=git.schema_path,
                              migrations=git.migrations, fetch=git.fetch, no_commit_reason=why)
    return source, None


def _both_error(exc: BaseException, url: str | None) -> list[CheckResult]:
    from checks.db import scrub

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = f"could not run: {scrub(text, url)}"
    return [CheckResult("drift", "drift", "error", reason), CheckResult("migrations", "migrations", "error", reason)]


def _deployment(config: Any) -> CheckResult:
    import httpx

    from checks.monitor.coolify import check_deployment

    coolify = config.coolify
    if coolify.problems:
        return CheckResult("deployment", "deployment", "error", f"could not run: {coolify.problems[0]}")

    async def run() -> CheckResult:
        async with httpx.AsyncClient(timeout=coolify.timeout_s) as client:
            return await check_deployment(client, url=str(coolify.url), token=coolify.token,
                                          application=coolify.application)
    try:
        return asyncio.run(run())
    except Exception as exc:  # noqa: BLE001
        return CheckResult("deployment", "deployment", "error", f"could not run: {type(exc).__name__}")


def _http(config: Any) -> list[CheckResult]:
    from checks.monitor.http_checks import run_http_checks

    checks = config.http_checks()
    try:
        return asyncio.run(run_http_checks(checks, concurrency=16))
    except Exception as exc:  # noqa: BLE001
        return [CheckResult("smoke" if hasattr(c, "steps") else "health", c.name, "error",
                            f"could not run: {type(exc).__name__}") for c in checks]
