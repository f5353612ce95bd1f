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
from typing import Callable, TextIO

from .errors import DriftwatchError, UsageError

EXIT_OK, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2
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


# Command groups that live in their own modules (checks/commands/<group>.py), each with
# `register(subparsers)`; their handlers import the heavy modules lazily.
_COMMAND_GROUPS = ("migrate", "fix", "runbook", "audit", "config", "poll", "report", "dashboard", "demo")


def _command_registrars() -> list[Callable[[argparse._SubParsersAction], None]]:
    import importlib

    found = []
    for group in _COMMAND_GROUPS:
        try:
            module = importlib.import_module(f"checks.commands.{group}")
        except ModuleNotFoundError as exc:
            if exc.name != f"checks.commands.{group}":
                raise
            continue
        found.append(module.register)
    return found


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
        if history is not None and "error" not in history:
            from .replay import check_advice  # drift no migration explains: deploying cannot fix it

            history["next_steps"] = check_advice(report.findings, str(history["directory"]))
        if args.format == "json":
            import json

            payload = report.to_json(args.strict)
            if history is not None:
                payload["migrations"] = history
            out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        else:
            from .db import redact
            from .report import render_text

            colour = hasattr(out, "isatty") and out.isatty() and not os.environ.get("NO_COLOR")
            out.write(render_text(report, target=redact(url), strict=args.strict, colour=colour,
                                  show_fix=not args.no_fix))
            if history is not None:
                out.write(_history_text(history))
        return EXIT_OK if report.in_sync(args.strict) else EXIT_DRIFT
    finally:
        if gc_was_enabled:
            gc.enable()


def _migration_history(url: str, args: argparse.Namespace) -> dict[str, object] | None:
    """The migrations folder against _prisma_migrations, next to the drift: in the incident
    the drift was the symptom and an unapplied migration the cause. Never fails the check."""
    from pathlib import Path

    if args.migrations == "none":
        return None
    folder = Path(args.migrations) if args.migrations else Path(args.schema).parent / "migrations"
    if not args.migrations and not folder.is_dir():
        return None
    from .migrations import history_summary

    return history_summary(url, folder)


def _history_text(history: dict[str, object]) -> str:
    if "error" in history:
        return f"\nMigrations ({history['directory']}): could not read the history: {history['error']}\n"
    if not history["managed"]:
        return (f"\nMigrations ({history['directory']}): this database is not managed by Prisma Migrate "
                f"(no _prisma_migrations table)\n")
    by_state: dict[str, list[str]] = history["by_state"]  # type: ignore[assignment]
    if history["up_to_date"]:
        return (f"\nMigrations ({history['directory']}): all {len(by_state.get('applied', []))} applied\n"
                + _steps_text(history))
    lines = [f"\nMigrations ({history['directory']}):"]
    for state, names in by_state.items():
        if state != "applied":
            lines.append(f"  {state.replace('_', ' ')}: {', '.join(names)}")
    if "pending" in by_state:
        lines.append("  → apply them: driftwatch migrate deploy --migrations " + str(history["directory"]))
    return "\n".join(lines) + "\n" + _steps_text(history)


def _steps_text(history: dict[str, object]) -> str:
    return "".join(f"  → {step}\n" for step in history.get("next_steps") or ())  # type: ignore[attr-defined]


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
    except BrokenPipeError:  # `driftwatch audit --format json | head`: the reader has gone
        return _reader_gone(out)
    except Exception as exc:  # a bug: still one line, still no secret, unless asked
        if os.environ.get("DRIFTWATCH_DEBUG"):
            raise
        from .db import scrub

        err.write(f"driftwatch: internal error: {type(exc).__name__}: {scrub(str(exc))} "
                  f"(set DRIFTWATCH_DEBUG=1 for a traceback)\n")
        return EXIT_ERROR


EXIT_PIPE = 128 + 13  # what a shell reports for a process that SIGPIPE ended


def _reader_gone(out: TextIO) -> int:
    """The process reading our output closed the pipe: nothing more to say, and no error to
    print. Python ignores SIGPIPE, so the write raises instead; point stdout at /dev/null so
    the flush at exit cannot raise again ("Exception ignored … BrokenPipeError")."""
    if out is sys.stdout:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # not a real file descriptor (a test's stream)
            pass
    return EXIT_PIPE


def main() -> None:
    code = run(sys.argv[1:])
    try:
        sys.stdout.flush()  # block-buffered output to a pipe is written here, not in run()
    except BrokenPipeError:
        code = _reader_gone(sys.stdout)
    sys.exit(code)
