"""What every operation shares: who acts where, the audit store, guarded runs, failure texts."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Sequence

if TYPE_CHECKING:
    from checks.findings import DriftReport
    from checks.guard import Limits, StatementResult, TransactionOutcome
    from checks.history import HistoryStore


@dataclass(frozen=True)
class Caller:
    """Who runs an operation, where, and which audit store records it.

    `actor` and `environment` default to $DRIFTWATCH_ACTOR (else `$USER@host`) and
    $DRIFTWATCH_ENVIRONMENT; the dashboard passes the signed-in user and the environment
    picked. `store` is an open HistoryStore (the dashboard keeps one); without it,
    `history_url` (else $DRIFTWATCH_HISTORY_URL, else the user's SQLite file) is opened for
    the operation and closed after it.
    """

    actor: str | None = None
    environment: str | None = None
    history_url: str | None = None
    store: "HistoryStore | None" = None

    @contextmanager
    def audit_store(self) -> Iterator["HistoryStore"]:
        """The store to record in: opened before anything else, so that no record means no write."""
        if self.store is not None:
            yield self.store
            return
        from checks.history import HistoryStore

        store = HistoryStore.open(self.history_url)
        try:
            yield store
        finally:
            store.close()

    def action(self, store: "HistoryStore", kind: str, *, warnings: list[str], **fields: Any) -> Any:
        """`timed_action` with this caller's actor and environment; a lost outcome becomes a warning."""
        from checks.history import timed_action

        return timed_action(store, kind, actor=self.actor, environment=self.environment,
                            on_lost=warnings.append, **fields)


def limits(lock_timeout: float | None = None, statement_timeout: float | None = None,
           advisory_wait: float | None = None) -> "Limits":
    """`checks.guard.Limits` with the guard's defaults for whatever is None."""
    from checks.guard import Limits

    given = {name: value for name, value in (("lock_timeout", lock_timeout), ("statement_timeout", statement_timeout),
                                              ("advisory_wait", advisory_wait)) if value is not None}
    return Limits(**given)


@dataclass
class GuardedRun:
    """What `run_statements` did: one outcome per transaction, and what it left out."""

    outcomes: list["TransactionOutcome"] = field(default_factory=list)
    batches: list[list[int]] = field(default_factory=list)  # positions (in the list given) per transaction
    not_rehearsed: list[int] = field(default_factory=list)  # positions left out of a rehearsal
    server_version: int | None = None

    def status_of(self) -> dict[int, "StatementResult"]:
        """position → the guard's StatementResult."""
        found = {}
        for outcome, positions in zip(self.outcomes, self.batches):
            for result in outcome.statements:
                found[positions[result.index]] = result
        return found

    @property
    def seconds(self) -> float:
        return sum(o.seconds for o in self.outcomes)

    @property
    def committed(self) -> list[int]:
        """Positions of statements whose transaction committed."""
        return [i for o, b in zip(self.outcomes, self.batches) if o.committed for i in b]

    def position(self, index: int | None) -> int | None:
        """The position (in the list given) of statement `index` of the last transaction run."""
        if index is None or not self.batches or index >= len(self.batches[-1]):
            return None
        return self.batches[-1][index]


def run_statements(conn: Any, statements: Sequence[str], limits: "Limits", *, rehearse: bool,
                   ops: Sequence[str] | None = None, run: GuardedRun | None = None,
                   before_rollback: Any = None) -> GuardedRun:
    """Run statements through the guard on `conn`, a session of `checks.guard.exclusive_session`
    (it holds Prisma's advisory lock): one transaction, or two when enum values must be committed
    before the rest may use them (`checks.fixplan.transactions`).

    A rehearsal runs everything in one rolled-back transaction, leaving out (and listing)
    statements that use an enum value the same plan adds: PostgreSQL accepts those only
    after the value is committed; `before_rollback(conn)` then sees the rehearsed state.
    `run` is filled as it goes, so a caller that catches a failure still sees what ran.
    """
    from checks.errors import ConnectionLost, StatementFailed
    from checks.fixplan import PlannedStatement, classify, transactions, uses_added_values
    from checks.guard import TransactionOutcome, run_in_transaction

    run = run if run is not None else GuardedRun()
    kinds = list(ops) if ops is not None else [classify(s) for s in statements]
    planned = [PlannedStatement(s, "", "safe", None, (), i, kinds[i]) for i, s in enumerate(statements)]
    run.server_version = conn.info.server_version
    if rehearse:
        adds = [p for p in planned if p.op == "add_value"]
        left_out = {p.unit for p in uses_added_values(adds, [p for p in planned if p.op != "add_value"])} \
            if adds else set()
        run.not_rehearsed = sorted(left_out)
        batches = [[p for p in planned if p.unit not in left_out]]
    else:
        batches = transactions(planned, run.server_version)
    for batch in batches:
        if not batch:
            continue
        run.batches.append([p.unit for p in batch])
        try:
            run.outcomes.append(run_in_transaction(conn, [p.sql for p in batch], limits, rehearse=rehearse,
                                                   before_rollback=before_rollback if rehearse else None))
        except (StatementFailed, ConnectionLost) as exc:
            if isinstance(exc.outcome, TransactionOutcome):
                run.outcomes.append(exc.outcome)
            else:
                run.batches.pop()
            raise
    return run


def record_refusal(caller: Caller, store: "HistoryStore", kind: str, url: str, target: str,
                   details: dict[str, Any], exc: BaseException, result: Any) -> None:
    """Record a write that never started (Prisma's lock busy, no connection, a failed check)
    with the outcome its exception names; sets `result.audit_id`. The caller re-raises `exc`."""
    try:
        with caller.action(store, kind, warnings=result.warnings, database=url, target=target,
                           details=details) as action:
            result.audit_id = action.id
            raise exc
    except type(exc):
        pass


def describe_failure(exc: BaseException, label: Any = None) -> list[str]:
    """What a failed guarded run waited for or tripped on, for the report (the error line says the rest).

    `label(index)` names the failing statement (the guard's 0-based index in its transaction)
    the way the caller numbers it."""
    from checks.errors import ConnectionLost, LockBusy, LockTimeout, StatementFailed

    def name(index: int | None) -> str:
        if index is None:
            return "a statement"
        return label(index) if label is not None else f"statement {index + 1}"

    lines = []
    if isinstance(exc, LockBusy):
        holders = [h.describe() for h in exc.holders] or ["a session that has since let go"]
        lines.append("Prisma's migration lock is held by " + "; ".join(holders))
    elif isinstance(exc, LockTimeout):
        what = f"{exc.mode or 'a lock'} on {exc.relation}" if exc.relation else (exc.mode or "a lock")
        holders = "; ".join(h.describe() for h in exc.blockers)
        lines.append(f"{name(exc.index)} waited for {what}" + (f" held by {holders}" if holders else
                                                                 " (the holder was not seen)"))
    elif isinstance(exc, StatementFailed):
        lines.append(f"{name(exc.index)} failed: " + " ".join(
            x for x in (exc.sqlstate, exc.database_error or str(exc)) if x))
    elif isinstance(exc, ConnectionLost):
        lines.append("the connection was lost" + (" during COMMIT: check before retrying"
                                                  if exc.maybe_committed else ": nothing was committed"))
    return lines


def drift_json(report: "DriftReport") -> dict[str, Any]:
    """The drift as the audit log keeps it (before and after an action)."""
    data = report.to_json()
    return {"summary": data["summary"], "findings": data["findings"]}


def drift_peek(expected: Any, into: Any, warnings: list[str]) -> Any:
    """A `before_rollback` hook for a rehearsal: inside its transaction, inspect the catalog the
    rehearsed statements left and diff it with `expected`, setting `into.after` — so that a
    rehearsal says what would still be missing *after* it, not only what is missing now. A
    failed inspection only loses that preview (a warning), never the rehearsal."""
    from checks.diff import diff
    from checks.errors import DriftwatchError
    from checks.inspect.live import inspect_database

    def peek(conn: Any) -> None:
        try:
            conn.execute("SAVEPOINT driftwatch_peek", prepare=False)
            actual = inspect_database(conn, expected.schemas)
            conn.execute("RELEASE SAVEPOINT driftwatch_peek", prepare=False)
        except DriftwatchError as exc:
            conn.execute("ROLLBACK TO SAVEPOINT driftwatch_peek", prepare=False)
            warnings.append(f"could not inspect the rehearsed database: {exc}")
            return
        into.after = diff(expected, actual)

    return peek


def pending_migrations(url: str, schema: str | None, migrations_dir: str | None = None) -> Any:
    """The migration summary for the folder beside `schema` (or the one given), or None.

    Fix and runbook runs use it to warn, before anything runs, that a pending migration would
    collide with a hand fix (`checks.operations.next_step`)."""
    from checks.migrations import default_migrations_dir, summarize

    folder = default_migrations_dir(schema, migrations_dir)
    if folder is None or not folder.is_dir():
        return None
    return summarize(url, folder)
