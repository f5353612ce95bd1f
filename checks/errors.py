"""One exception tree for the engine, so the CLI and the dashboard catch one root.

    DriftwatchError                 every expected failure; str() is one line, no secrets
    ├── SchemaError                 a .prisma file cannot be read, parsed or compiled
    │     (carries file, line, column when known; str() is "file:line:col: message")
    ├── DatabaseError               connecting to or querying PostgreSQL failed
    ├── HistoryError                the history store (audit log, observations) cannot be
    │                               opened, migrated or written; names the store, redacted
    └── UsageError                  the command line or configuration is wrong

Each error's message says what went wrong and where; the CLI prints it on one
line and exits 1. Tracebacks are for bugs, never for bad input.
"""
from __future__ import annotations


class DriftwatchError(Exception):
    """Root of every error Driftwatch expects and reports to the user."""


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
