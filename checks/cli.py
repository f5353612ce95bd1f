"""The `driftwatch` command line.

Exit codes are a contract for CI gates (as with `prisma migrate diff --exit-code`):
0 in sync, 2 drift found, 1 error. Every expected error is one line on stderr
without a password. Heavy modules are imported inside the commands so that
`driftwatch --help` and error paths start fast.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Callable, TextIO

from .errors import DriftwatchError, UsageError

if TYPE_CHECKING:
    from .guard import Limits
    from .migrations import MigrationSummary
    from .operations import Caller, NextSteps

EXIT_OK, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2
EXIT_PIPE = 141  # as a shell reports a writer killed by SIGPIPE
DEFAULT_SCHEMA = os.path.join("prisma", "schema.prisma")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so `run` owns every exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def database_url_from(args: argparse.Namespace) -> str:
    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise UsageError("no database: pass --database-url URL or set DATABASE_URL")
    return url


def add_schema_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schema", default=DEFAULT_SCHEMA, metavar="PATH",
                   help="a .prisma file or a folder of them (default: prisma/schema.prisma)")


def add_database_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", metavar="URL", help="PostgreSQL URL (default: $DATABASE_URL)")


def add_history_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--history-url", metavar="URL",
                   help="audit log store (default: $DRIFTWATCH_HISTORY_URL, else the user's SQLite file)")


def add_guard_options(p: argparse.ArgumentParser) -> None:
    """The write guard's limits and the audit store, for every command that writes SQL."""
    p.add_argument("--lock-timeout", type=float, metavar="S",
                   help="give up a statement that waits longer than S seconds for a lock (default: 5)")
    p.add_argument("--statement-timeout", type=float, metavar="S",
                   help="give up a statement that runs longer than S seconds (default: 60)")
    p.add_argument("--advisory-wait", type=float, metavar="S",
                   help="wait at most S seconds for Prisma's migration lock held by another deploy or fix "
                        "(default: 10)")
    add_history_option(p)


def limits_from(args: argparse.Namespace) -> "Limits":
    """`checks.guard.Limits` from --lock-timeout, --statement-timeout, --advisory-wait (those given)."""
    from .operations import limits

    return limits(getattr(args, "lock_timeout", None), getattr(args, "statement_timeout", None),
                  getattr(args, "advisory_wait", None))


def caller_from(args: argparse.Namespace) -> "Caller":
    """Who acts (DRIFTWATCH_ACTOR, else $USER@host), where (DRIFTWATCH_ENVIRONMENT), which audit store."""
    from .operations import Caller

    return Caller(history_url=getattr(args, "history_url", None))


# Command groups that live in their own modules (checks/commands/<group>.py), each with
# `register(subparsers)`; their handlers import the heavy modules lazily.
_COMMAND_GROUPS = ("migrate", "fix", "runbook", "audit", "config", "poll", "report", "dashboard", "demo")


def _command_registrars() -> list[Callable[[argparse._SubParsersAction], None]]:
    import importlib

    return [importlib.import_module(f"checks.commands.{group}").register for group in _COMMAND_GROUPS]


def build_parser(groups: bool = True) -> argparse.ArgumentParser:
    parser = _Parser(prog="driftwatch", description="Catch Prisma schema drift in PostgreSQL.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"driftwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("check", help="compare a database with a Prisma schema (exit 0 in sync, 2 drift, 1 error)")
    add_database_option(p)
    add_schema_option(p)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--strict", action="store_true", help="also fail (exit 2) on info findings (extra objects)")
    p.add_argument("--no-fix", action="store_true", help="text format: do not print the fix SQL under findings")
    p.add_argument("--migrations", metavar="DIR",
                   help="also compare this migrations folder with _prisma_migrations "
                        "(default: the schema's sibling migrations/ folder when it exists; 'none' to skip)")
    p.set_defaults(func=cmd_check)

    for register in _command_registrars() if groups else ():
        register(sub)

    p = sub.add_parser("sql", help="print the SQL Prisma would run to create the schema on an empty database")
    add_schema_option(p)
    p.set_defaults(func=cmd_sql)
    return parser


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import atexit
    import gc

    from .check import check_database

    url = database_url_from(args)
    # A check allocates a few hundred thousand objects and keeps nearly all of them to the
    # end, so the cyclic GC would only re-scan a growing heap (10-20% of the run on large
    # schemas): paused for the command, as it was before afterwards. And at interpreter
    # exit, the final GC passes over everything still alive (psycopg's modules alone make
    # them ~20 ms) are skipped: the OS takes the memory back, and Python does not promise
    # finalizers at exit. Nothing changes before exit for a process that runs many commands.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    try:
        # cache=True: an unchanged schema is not parsed and compiled again (checks/cache.py;
        # DRIFTWATCH_NO_CACHE=1 turns it off)
        result = check_database(url, args.schema, cache=True)
        report = result.report
        history = _migration_history(url, args)
        advice = None
        if history is not None:
            from .operations.next_step import next_steps

            advice = next_steps(report, history, schema=args.schema)
        if args.format == "json":
            import json

            payload = report.to_json(args.strict)
            if history is not None:
                payload["migrations"] = history.to_json()
                if history.error is None:
                    payload["migrations"]["next_steps"] = advice.texts()  # type: ignore[union-attr]
            out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        else:
            from .db import redact
            from .drift_text import render_text

            colour = hasattr(out, "isatty") and out.isatty() and not os.environ.get("NO_COLOR")
            out.write(render_text(report, target=redact(url), strict=args.strict, colour=colour,
                                  show_fix=not args.no_fix))
            if history is not None:
                out.write(_history_text(history, advice))  # type: ignore[arg-type]
        return EXIT_OK if report.in_sync(args.strict) else EXIT_DRIFT
    finally:
        if gc_was_enabled:
            gc.enable()


def _migration_history(url: str, args: argparse.Namespace) -> "MigrationSummary | None":
    """The migrations folder against _prisma_migrations, next to the drift: in the incident
    the drift was the symptom and an unapplied migration the cause. Never fails the check."""
    from .migrations import default_migrations_dir, summarize

    folder = default_migrations_dir(args.schema, args.migrations)
    return summarize(url, folder) if folder is not None else None


def _history_text(history: "MigrationSummary", advice: "NextSteps") -> str:
    if history.error is not None:
        return f"\nMigrations ({history.directory}): could not read the history: {history.error}\n"
    if not history.managed:
        lines = [f"\nMigrations ({history.directory}): this database is not managed by Prisma Migrate "
                 f"(no _prisma_migrations table)"]
    elif history.up_to_date:
        lines = [f"\nMigrations ({history.directory}): all {len(history.names('applied'))} applied"]
    else:
        lines = [f"\nMigrations ({history.directory}):"]
        lines += [f"  {problem}" for problem in history.problems]
    if advice.warning:
        lines.append(f"  ! {advice.warning}")
    lines += [f"  → {text}" for text in advice.texts()]
    if advice.state != "pending":  # there deploy is the answer; the dashboard shows the other way
        lines += [f"    or {step.text}" for step in advice.alternative]
    return "\n".join(lines) + "\n"


def cmd_sql(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .check import expected_catalog
    from .ddl import render_script

    out.write(render_script(expected_catalog(args.schema)))
    return EXIT_OK


def run(argv: list[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run one command; return its exit code. Tests call this directly."""
    try:
        # check and sql (the CI gate and the hot path) need no command group: skip importing them
        core_only = bool(argv) and argv[0] in ("check", "sql") and not {"-h", "--help"} & set(argv)
        args = build_parser(groups=not core_only).parse_args(argv)
        func: Callable[[argparse.Namespace, TextIO, TextIO], int] | None = getattr(args, "func", None)
        if func is None:
            build_parser().print_help(out)
            return EXIT_ERROR
        return func(args, out, err)
    except DriftwatchError as exc:
        err.write(f"driftwatch: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.write("driftwatch: interrupted\n")
        return 130
    except BrokenPipeError:  # `driftwatch audit --format json | head`: the reader had enough
        _silence_stdout()
        return EXIT_PIPE
    except Exception as exc:  # a bug: still one line, still no secret, unless asked
        if os.environ.get("DRIFTWATCH_DEBUG"):
            raise
        from .db import scrub

        err.write(f"driftwatch: internal error: {type(exc).__name__}: {scrub(str(exc))} "
                  f"(set DRIFTWATCH_DEBUG=1 for a traceback)\n")
        return EXIT_ERROR


def main() -> None:
    code = run(sys.argv[1:])
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # what was left in the buffer when the reader closed the pipe
        _silence_stdout()
        code = EXIT_PIPE
    sys.exit(code)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit finds no broken pipe
    (and prints no "Exception ignored" about it)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
