"""The resident poller: each check on its own interval, for as long as it runs.

    poller = Poller(units_of(config), store_url=url, notifier=Notifier(...))
    asyncio.run(poller.run())          # until poller.stop() (SIGTERM, SIGINT)

Each turn it leases the checks that are due from the store (`claim_due`: several pollers on
one PostgreSQL store share the checks, none runs twice per interval, a killed poller's
checks fall due again for the others one interval later), runs them (round.Runner: hard
deadlines, bounded concurrency), records results, flips and incidents, sends state changes
to the webhook (never waiting for it), and every `maintenance_s` rolls up and prunes.

A store that is down does not stop the watching: the poller keeps each check's state in
memory (and on /metrics), schedules the checks itself, and retries the store with backoff
(1 s doubling to 60 s); once it is back, the results seen meanwhile are written into it first,
in the order they were seen — with their own times, so the flips, the incident's opening and
the postmortem report say when things really happened — then leasing resumes. At most
`MAX_UNRECORDED` results are kept for that (the oldest are dropped beyond, and the log says
how many); their notifications were sent when they were seen, not again.

`stop()` lets the round in flight finish, then `run` returns.
"""
from __future__ import annotations

import asyncio
import os
from collections import deque
from functools import partial
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TextIO

from .results import CheckResult, utcnow, worst
from .round import Probes, Runner, Unit, UnitResult, record, register
from .state import Status, is_flip, next_status

MAX_SLEEP_S = 5.0
STORE_RETRY_FIRST_S = 1.0
STORE_RETRY_MAX_S = 60.0
MAINTENANCE_S = 600.0
MAX_UNRECORDED = 50_000  # results kept while the store is down (~1 KiB each), written once it is back


def default_owner() -> str:
    """Who holds a lease: host and process, enough to find it."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Change:
    """A check's state change, as the webhook and the log tell it."""

    environment: str
    kind: str
    name: str
    from_state: str | None
    to_state: str
    reason: str | None
    at: datetime
    environment_state: str


class Poller:
    def __init__(
        self,
        units: Sequence[Unit],
        *,
        store_url: str | None = None,
        owner: str | None = None,
        probes: Probes | None = None,
        concurrency: int = 64,
        notifier: Any = None,
        environments: Iterable[str] | None = None,
        maintenance_s: float = MAINTENANCE_S,
        raw_retention: timedelta | None = None,
        rollup_retention: timedelta | None = None,
        log: TextIO | None = None,
        open_store: Callable[[str | None], Any] | None = None,
        store_retry_s: tuple[float, float] = (STORE_RETRY_FIRST_S, STORE_RETRY_MAX_S),
    ) -> None:
        self.units = {u.key: u for u in units}
        self.environments = list(environments) if environments is not None else \
            list(dict.fromkeys(u.environment for u in units))
        self.store_url = store_url
        self.owner = owner or default_owner()
        self.runner = Runner(probes, concurrency=concurrency)
        self.notifier = notifier
        self.maintenance_s = maintenance_s
        self.raw_retention = raw_retention
        self.rollup_retention = rollup_retention
        self.log = log or sys.stderr
        self._open_store = open_store or _open_store
        # What /metrics shows, whether or not the store is up.
        self.states: dict[tuple[str, str, str], Status] = {}
        self.results: dict[tuple[str, str, str], CheckResult] = {}
        self.store: Any = None
        self.store_error: str | None = None
        self.rounds = 0
        self._ids: dict[tuple[str, str, str], int] = {}
        self._retry_at = 0.0
        self._retry_first_s, self._retry_max_s = store_retry_s
        self._retry_s = self._retry_first_s
        self._local_due: dict[tuple[str, str, str], datetime] = {}
        self._running: set[tuple[str, str, str]] = set()
        self._next_maintenance = 0.0
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        # Results seen while the store was down, oldest first, to be written once it is back.
        self._unrecorded: deque[UnitResult] = deque()
        self._unrecorded_count = 0
        self.dropped_while_down = 0

    # -- control -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the round in flight, then return from `run` (safe from a signal handler)."""
        self._stop_requested = True
        if self._stop is not None:
            self._stop.set()

    @property
    def store_up(self) -> bool:
        return self.store is not None

    async def run(self, *, rounds: int | None = None) -> None:
        """Poll until `stop()` (or for `rounds` batches that ran something, for tests).

        Each batch of due checks runs as its own task and each check's results are recorded as
        soon as that check is done, so a slow database check never delays the endpoints due
        meanwhile; a check still running when it falls due again is skipped that time.
        """
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        await self.runner.start()
        try:
            while not self._stop.is_set():
                await self._connect(loop.time())
                units = [u for u in await self._due() if u.key not in self._running]
                if units:
                    self._running.update(u.key for u in units)
                    task = loop.create_task(self._batch(units))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                await self._maintain(loop.time())
                if rounds is not None and self.rounds >= rounds:
                    break
                await self._sleep(tasks, busy=bool(units))
        finally:
            if tasks:  # the round in flight finishes, and is recorded
                await asyncio.gather(*tasks, return_exceptions=True)
            await self.runner.close()
            if self.store is not None:
                await asyncio.to_thread(self.store.close)
                self.store = None
            if self.notifier is not None:
                await self.notifier.drain()

    async def _batch(self, units: list[Unit]) -> None:
        """Run one batch: an environment's deployment and database in order, the rest at once,
        each recorded when it is done."""
        groups: dict[Any, list[Unit]] = {}
        for unit in units:
            key = ("db", unit.environment) if unit.kind in ("deployment", "drift") else unit.key
            groups.setdefault(key, []).append(unit)

        async def one(group: list[Unit]) -> None:
            try:
                results = await self.runner.run(group)
                await self._settle(results)
            finally:
                self._running.difference_update(u.key for u in group)

        await asyncio.gather(*(one(g) for g in groups.values()))
        self.rounds += 1

    # -- the store, or memory when it is down ------------------------------------------------

    async def _connect(self, now: float) -> None:
        if self.store is not None or now < self._retry_at:
            return
        try:
            store = await asyncio.to_thread(self._open_store, self.store_url)
            ids = await asyncio.to_thread(partial(register, retire_others=True), store, list(self.units.values()))
            latest = await asyncio.to_thread(store.latest)
        except Exception as exc:  # noqa: BLE001 - HistoryError, or a driver error on the way
            self._store_down(exc, now)
            return
        if self._unrecorded:
            # The worker thread writes a snapshot and counts what it wrote; only this (the event
            # loop's) thread changes the deque, so results kept meanwhile are never lost or re-sent.
            items, done = list(self._unrecorded), [0, 0]  # items written, results written
            try:
                await asyncio.to_thread(self._replay, store, ids, items, done)
            except Exception as exc:  # noqa: BLE001 - down again: keep what is left, retry later
                self._forget_replayed(items[:done[0]])
                await asyncio.to_thread(_close_quietly, store)
                self._store_down(exc, now)
                return
            self._forget_replayed(items[:done[0]])
            self._say(f"recorded {done[1]} result(s) seen while the history store was down"
                      + (f" ({self.dropped_while_down} older one(s) could not be kept)" if self.dropped_while_down
                         else ""))
            self.dropped_while_down = 0
        self.store, self._ids = store, ids
        if self.store_error is not None:
            self._say(f"history store is back: {store.location}")
        self.store_error = None
        self._retry_s = self._retry_first_s
        for check in latest:
            key = (check.environment, check.kind, check.name)
            if key not in self.states and check.checked_at is not None:
                self.states[key] = Status(check.state, check.reason, check.failures, check.since)
            if check.kind == "deployment" and check.detail and check.detail.get("commit"):
                self.runner.commits.setdefault(check.environment, check.detail["commit"])

    def _keep_unrecorded(self, results: list[UnitResult]) -> None:
        """Keep results the store could not take, for `_replay`; beyond MAX_UNRECORDED the
        oldest go (counted, and said when the store is back)."""
        for item in results:
            self._unrecorded.append(item)
            self._unrecorded_count += len(item.results)
        while self._unrecorded_count > MAX_UNRECORDED and self._unrecorded:
            dropped = self._unrecorded.popleft()
            self._unrecorded_count -= len(dropped.results)
            self.dropped_while_down += len(dropped.results)

    @staticmethod
    def _replay(store: Any, ids: dict[tuple[str, str, str], int], items: list[UnitResult], done: list[int]) -> None:
        """Write kept results in the order they were seen, each environment's incident judged at
        each result's own time (an outage's incident opens when it began, not when the store came
        back). Runs in a worker thread; `done` counts the items and results written so far, so a
        store that fails again midway loses nothing and repeats nothing."""
        for item in items:
            for result in item.results:
                key = (item.unit.environment, result.kind, result.name)
                if key in ids:
                    store.record_result(ids[key], result, failure_threshold=item.unit.failure_threshold)
                    done[1] += 1
            if item.results:
                store.update_incident(item.unit.environment, now=max(r.checked_at for r in item.results))
            done[0] += 1

    def _forget_replayed(self, written: list[UnitResult]) -> None:
        """Remove what `_replay` wrote: a prefix of the deque, less any item the bound dropped
        from the front meanwhile (so a newer, unwritten one is never taken for it)."""
        gone = {id(item) for item in written}
        while self._unrecorded and id(self._unrecorded[0]) in gone:
            self._unrecorded_count -= len(self._unrecorded.popleft().results)

    def _store_down(self, exc: BaseException, now: float) -> None:
        message = _one_line(exc)
        if self.store is not None:
            try:
                self.store.close()
            except Exception:  # noqa: BLE001 - it is down already
                pass
        self.store = None
        if message != self.store_error:
            self._say(f"history store unavailable, retrying in {self._retry_s:g} s "
                      f"(states kept in memory): {message}")
        self.store_error = message
        self._retry_at = now + self._retry_s
        self._retry_s = min(self._retry_s * 2, self._retry_max_s)

    async def _due(self) -> list[Unit]:
        now = utcnow()
        if self.store is not None:
            try:
                claims = await asyncio.to_thread(self.store.claim_due, self.owner, now=now,
                                                 environments=self.environments)
            except Exception as exc:  # noqa: BLE001
                self._store_down(exc, asyncio.get_running_loop().time())
            else:
                return [self.units[(c.environment, c.kind, c.name)] for c in claims
                        if (c.environment, c.kind, c.name) in self.units]
        due = []
        for key, unit in self.units.items():
            if self._local_due.get(key, now) <= now:
                self._local_due[key] = now + timedelta(seconds=unit.interval_s)
                due.append(unit)
        return due

    async def _settle(self, results: list[UnitResult]) -> None:
        changes: list[Change] = []
        incidents: list[Any] = []
        recorded = False
        if self.store is not None:
            try:
                statuses, flips, incidents = await asyncio.to_thread(record, self.store, results, self._ids)
            except Exception as exc:  # noqa: BLE001
                self._store_down(exc, asyncio.get_running_loop().time())
            else:
                recorded = True
                self.states.update(statuses)
                flipped = {(f.environment, f.kind, f.name): f for f in flips}
                for key, flip in flipped.items():
                    changes.append(Change(key[0], key[1], key[2], flip.from_state, flip.to_state, flip.reason,
                                          flip.at, "?"))
        if not recorded:
            self._keep_unrecorded(results)
        for item in results:
            for result in item.results:
                key = (item.unit.environment, result.kind, result.name)
                self.results[key] = result
                if recorded:
                    continue
                previous = self.states.get(key)
                status = next_status(previous, result, item.unit.failure_threshold)
                self.states[key] = status
                if is_flip(previous, status):
                    changes.append(Change(key[0], key[1], key[2], previous.state if previous else None,
                                          status.state, status.reason, result.checked_at, "?"))
        changes = [_with_env_state(c, self.environment_state(c.environment)) for c in changes]
        for change in changes:
            if change.from_state is not None or change.to_state != "ok":
                self._say(f"{change.environment} {change.kind} {change.name}: "
                          f"{change.from_state or 'new'} -> {change.to_state}"
                          + (f": {change.reason}" if change.reason else ""))
        for inc in incidents:
            self._say(f"{inc.incident.environment}: incident {inc.incident.id} {inc.action}: {inc.incident.title}")
        if self.notifier is not None:
            for change in changes:
                if change.from_state is not None or change.to_state not in ("ok", "unknown"):
                    self.notifier.notify_change(change)  # a new check that works is not news
            for inc in incidents:
                self.notifier.notify_incident(inc)

    def environment_state(self, environment: str) -> str:
        return worst(s.state for (env, _k, _n), s in self.states.items() if env == environment)

    async def _maintain(self, now: float) -> None:
        if self.store is None or now < self._next_maintenance:
            return
        self._next_maintenance = now + self.maintenance_s
        kwargs: dict[str, Any] = {}
        if self.raw_retention is not None:
            kwargs["raw_older_than"] = self.raw_retention
        if self.rollup_retention is not None:
            kwargs["rollups_older_than"] = self.rollup_retention
        try:
            await asyncio.to_thread(self.store.prune, **kwargs)
        except Exception as exc:  # noqa: BLE001
            self._store_down(exc, now)

    async def _sleep(self, tasks: set[asyncio.Task[None]], *, busy: bool) -> None:
        """Until the next check is due, a batch finishes, or stop(); at most MAX_SLEEP_S."""
        assert self._stop is not None
        wait = 0.0 if busy else MAX_SLEEP_S
        now = utcnow()
        if not busy and self.store is not None:
            try:
                due = await asyncio.to_thread(self.store.next_due, self.environments)
            except Exception as exc:  # noqa: BLE001
                self._store_down(exc, asyncio.get_running_loop().time())
                due = None
            if due is not None:
                wait = (due - now).total_seconds()
        elif not busy and self._local_due:
            wait = (min(self._local_due.values()) - now).total_seconds()
            wait = min(wait, max(0.05, self._retry_at - asyncio.get_running_loop().time()))
        wait = min(max(wait, 0.05), MAX_SLEEP_S)
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({stopped, *tasks}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()

    def _say(self, line: str) -> None:
        stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            self.log.write(f"{stamp} driftwatch poll: {line}\n")
            self.log.flush()
        except (OSError, ValueError):
            pass


def _with_env_state(change: Change, state: str) -> Change:
    from dataclasses import replace

    return replace(change, environment_state=state)


def _open_store(url: str | None) -> Any:
    from ..history import HistoryStore

    return HistoryStore.open(url)


def _close_quietly(store: Any) -> None:
    try:
        store.close()
    except Exception:  # noqa: BLE001 - it is down already
        pass


def _one_line(exc: BaseException) -> str:
    from ..errors import DriftwatchError
    from ..history.records import one_line_error, scrub_text

    if isinstance(exc, DriftwatchError):
        text = str(exc).strip()
        return scrub_text(text.splitlines()[0] if text else type(exc).__name__)
    return one_line_error(exc)
