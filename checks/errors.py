"""One exception tree for the engine, so the CLI and the dashboard catch one root.

    DriftwatchError                 every expected failure; str() is one line, no secrets
    ├── SchemaError                 a .prisma file cannot be read, parsed or compiled
    │     (carries file, line, column when known; str() is "file:line:col: message")
    ├── DatabaseError               connecting to or querying PostgreSQL failed
    │   ├── LockBusy                another session holds Prisma Migrate's advisory lock
    │   │                           (72707369); names the holders (checks.guard)
    │   ├── StatementFailed         a guarded write failed; says which statement and why,
    │   │   │                       and whether anything was committed (checks.guard)
    │   │   └── LockTimeout         it waited longer than lock_timeout for a lock; names
    │   │                           the relation and the blocking sessions when seen
    │   └── ConnectionLost          the session died mid-write; says whether a commit may
    │                               have happened (only when it died during COMMIT)
    ├── MigrateError                a Prisma Migrate rule refused (checks.migrations);
    │   │                           `code` is Prisma's: P3005, P3008, P3009, P3011, …
    │   └── MigrationFailed         P3018: a migration's script failed; logs recorded
    ├── HistoryError                the history store (audit log, observations) cannot be
    │                               opened, migrated or written; names the store, redacted
    └── UsageError                  the command line or configuration is wrong

Each error's message says what went wrong and where; the CLI prints it on one
line and exits 1. Tracebacks are for bugs, never for bad input.

Each class also says what a failed write it interrupts means for the audit log
(`audit_outcome`, read by `checks.history.timed_action` through `audit_outcome_of`):

    refused      nothing ran: LockBusy, UsageError, MigrateError other than P3018
    rolled_back  it ran and its transaction was undone: StatementFailed (unless committed)
    failed       anything else: LockTimeout (it never got the lock it needed), ConnectionLost,
                 MigrationFailed (P3018: its row is marked failed), a StatementFailed whose
                 statement ran after the commit, a bug
    interrupted  Ctrl-C / SIGTERM (KeyboardInterrupt, SystemExit)
"""
from __future__ import annotations


class DriftwatchError(Exception):
    """Root of every error Driftwatch expects and reports to the user."""

    audit_outcome = "failed"


class SchemaError(DriftwatchError):
    """A Prisma schema problem, located as precisely as we can."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        return f"{where}{self.message}"


class DatabaseError(DriftwatchError):
    """PostgreSQL could not be reached or refused a query; message has no password."""


class HistoryError(DriftwatchError):
    """The history store cannot be opened, upgraded or written.

    Says which store (a SQLite path or a redacted PostgreSQL URL) and why, on one line.
    """


class UsageError(DriftwatchError):
    """The caller asked for something that cannot be done as asked."""

    audit_outcome = "refused"


class LockBusy(DatabaseError):
    """Another session holds Prisma Migrate's advisory lock, so nothing was written.

    `holders` is the list of `checks.guard.LockHolder` seen when giving up (may be empty
    if the holder let go in the meantime); the message names each one.
    """

    def __init__(self, message: str, holders: tuple = ()) -> None:
        super().__init__(message)
        self.holders = tuple(holders)

    audit_outcome = "refused"


class StatementFailed(DatabaseError):
    """A statement of a guarded write failed; its transaction was rolled back.

    `index` is the statement's 0-based position in the list given (None when unknown),
    `statement` its text, `sqlstate` PostgreSQL's error code, `outcome` the
    `checks.guard.TransactionOutcome` so far. `committed` is True only when the failing
    statement ran on its own after the main transaction had committed (a statement that
    cannot run inside a transaction, such as CREATE INDEX CONCURRENTLY).
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        statement: str | None = None,
        sqlstate: str | None = None,
        database_error: str | None = None,
        outcome: object | None = None,
        committed: bool = False,
    ) -> None:
        super().__init__(message)
        self.index = index
        self.statement = statement
        self.sqlstate = sqlstate
        self.database_error = database_error
        self.outcome = outcome
        self.committed = committed

    @property
    def audit_outcome(self) -> str:  # type: ignore[override]
        return "failed" if self.committed else "rolled_back"


class LockTimeout(StatementFailed):
    """A statement waited longer than lock_timeout for a lock another session held.

    `relation` and `mode` say what it waited for and `blockers` (LockHolder list) who
    held it, when the guard's watcher saw the wait; otherwise they are None / empty.
    """

    def __init__(self, message: str, *, relation: str | None = None, mode: str | None = None,
                 blockers: tuple = (), **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.relation = relation
        self.mode = mode
        self.blockers = tuple(blockers)

    @property
    def audit_outcome(self) -> str:  # type: ignore[override]
        return "failed"  # it never got the lock it needed


class ConnectionLost(DatabaseError):
    """The database session ended in the middle of a write.

    PostgreSQL rolls back an open transaction when its session ends, so nothing of it
    was committed, unless the session died while COMMIT was in flight: then
    `maybe_committed` is True and the message says to look before retrying.
    """

    def __init__(self, message: str, *, index: int | None = None, maybe_committed: bool = False,
                 outcome: object | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.maybe_committed = maybe_committed
        self.outcome = outcome


class MigrateError(DriftwatchError):
    """A Prisma Migrate rule refused the operation, with Prisma's own error code.

    `code` is the code `prisma migrate` uses for the same refusal (P3005 non-empty
    unmanaged database, P3008 already applied, P3009 failed migrations present, P3011
    never applied, P3012 not failed, P3015 missing migration.sql, P3017 no such
    migration folder, P3018 a script failed, P3019 provider mismatch); str() is
    "CODE: message" on one line, `details` holds any longer text.
    """

    def __init__(self, code: str, message: str, *, details: str | None = None) -> None:
        self.code = code
        self.message = message
        self.details = details
        super().__init__(f"{code}: {message}")

    audit_outcome = "refused"  # Prisma's rules refuse before anything is written


class MigrationFailed(MigrateError):
    """P3018: a migration's script failed; the row in _prisma_migrations keeps the logs.

    `migration` is its folder name, `sqlstate` and `database_error` PostgreSQL's code
    and message, `logs` the text written to the row's `logs` column.
    """

    def __init__(self, message: str, *, migration: str, sqlstate: str | None,
                 database_error: str, logs: str) -> None:
        super().__init__("P3018", message, details=logs)
        self.migration = migration
        self.sqlstate = sqlstate
        self.database_error = database_error
        self.logs = logs

    audit_outcome = "failed"  # the script ran (and failed); its row says so


def audit_outcome_of(exc: BaseException) -> str:
    """The audit log's outcome for an action that ended with `exc` (see the table above)."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return "interrupted"
    said = getattr(exc, "audit_outcome", None) if isinstance(exc, DriftwatchError) else None
    return said if isinstance(said, str) else "failed"
