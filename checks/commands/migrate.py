"""`driftwatch migrate`: Prisma-compatible status, deploy and resolve, without Node.

    driftwatch migrate status  --database-url URL [--migrations DIR] [--format text|json]
    driftwatch migrate deploy  --database-url URL [--migrations DIR] [--lock-timeout S] [--statement-timeout S]
    driftwatch migrate deploy  --database-url URL [--migrations DIR] --rehearse
    driftwatch migrate deploy  --database-url URL [--migrations DIR] --command "bunx prisma migrate deploy" [--timeout S]
    driftwatch migrate resolve --applied NAME | --rolled-back NAME  --database-url URL [--migrations DIR]
    driftwatch migrate diff    [--migrations DIR] [--schema PATH] [--shadow-database-url URL] [--format text|json]

Exit codes: `status` 0 when every migration is applied, 2 otherwise (pending, failed, rolled
back, edited, missing locally, or no `_prisma_migrations` table), 1 on error. `deploy` 0 when
nothing is left pending or failed afterwards, 2 when something still is (possible with
--command: Prisma reported success on another database), 1 on error (P3005, P3009, P3018,
lock busy, timeout…). `resolve` 0 or 1. `diff` (checks.replay) 0 when the migrations build the
schema, 2 when they do not, 1 when a migration fails on an empty database or on error.

`deploy --rehearse` runs every pending migration's script in one transaction that is rolled
back, under Prisma's lock, and says which would fail and what would still differ from the
schema beside the migrations folder afterwards (exit 0 clean and in sync, 2 clean but drift
would remain or a migration cannot be rehearsed in a transaction, 1 a migration fails or error).

`deploy --command` runs Prisma's own deploy (any shell command) with DATABASE_URL set to the
given URL, streams its output, kills its process group after --timeout, and checks the
history before and after. Driftwatch does not hold Prisma's advisory lock meanwhile: Prisma
takes it itself.

Each deploy and resolve is recorded in the audit log through `checks.operations.migrate`
(which does the work; this module parses and prints): started before it writes, with its SQL
and the drift before and after. If the audit store cannot be opened, nothing is written.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from checks.migrations import MigrationStatus

DEFAULT_MIGRATIONS = "prisma/migrations"  # as Prisma's CLI; `check` and `fix` use checks.migrations.default_migrations_dir
DEFAULT_COMMAND_TIMEOUT = 600.0


def register(subparsers: argparse._SubParsersAction) -> None:
    from checks.cli import add_database_option, add_schema_option

    p = subparsers.add_parser("migrate", help="Prisma-compatible migrate status, deploy and resolve (no Node needed)")
    p.set_defaults(func=_help(p))
    sub = p.add_subparsers(dest="migrate_command", metavar="SUBCOMMAND", parser_class=type(p))

    s = sub.add_parser("status", help="every migration's state, including what `prisma migrate status` hides "
                                      "(exit 0 all applied, 2 otherwise, 1 error)")
    add_database_option(s)
    _add_migrations_option(s)
    s.add_argument("--schema", metavar="PATH",
                   help="judge the next step by the drift against this schema too (default: schema.prisma beside "
                        "the migrations folder when it exists; 'none' to skip)")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=cmd_status)

    d = sub.add_parser("deploy", help="apply pending migrations exactly as `prisma migrate deploy`, with bounded "
                                      "lock waits; or supervise Prisma's own deploy with --command")
    add_database_option(d)
    _add_migrations_option(d)
    d.add_argument("--lock-timeout", type=float, metavar="S",
                   help="give up a statement that waits longer than S seconds for a lock (default: 5)")
    d.add_argument("--statement-timeout", type=float, metavar="S",
                   help="give up a statement that runs longer than S seconds (default: 60)")
    d.add_argument("--rehearse", action="store_true",
                   help="run the pending migrations in a transaction that is rolled back: what would fail, and "
                        "what would still differ from the schema after the deploy")
    d.add_argument("--command", metavar="CMD",
                   help='run this deploy command instead (e.g. "bunx prisma migrate deploy"), with DATABASE_URL '
                        "set to --database-url; its output is streamed")
    d.add_argument("--timeout", type=float, metavar="S",
                   help=f"with --command: kill it after S seconds (default: {DEFAULT_COMMAND_TIMEOUT:g})")
    _add_history_option(d)
    d.set_defaults(func=cmd_deploy)

    f = sub.add_parser("diff", help="does the migrations folder build the schema? replay it into a scratch database "
                                    "and compare like `check` (exit 0 yes, 2 no, 1 a migration fails or error)")
    add_schema_option(f)
    _add_migrations_option(f)
    f.add_argument("--shadow-database-url", metavar="URL",
                   help="replay into this empty database (cleaned afterwards) instead of the embedded PostgreSQL")
    f.add_argument("--format", choices=("text", "json"), default="text")
    f.add_argument("--strict", action="store_true", help="also fail (exit 2) on info findings")
    f.add_argument("--no-fix", action="store_true", help="text format: do not print the fix SQL under findings")
    f.set_defaults(func=cmd_diff)

    r = sub.add_parser("resolve", help="mark a failed migration as rolled back, or a migration as applied "
                                       "(Prisma's rules: P3008, P3011, P3012, P3017)")
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--applied", metavar="NAME", help="record NAME as applied without running it")
    which.add_argument("--rolled-back", metavar="NAME", help="mark NAME's failed run as rolled back")
    add_database_option(r)
    _add_migrations_option(r)
    _add_history_option(r)
    r.set_defaults(func=cmd_resolve)


def _help(p: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
        from checks.cli import EXIT_ERROR

        p.print_help(out)
        return EXIT_ERROR

    return show


def _add_migrations_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--migrations", default=DEFAULT_MIGRATIONS, metavar="DIR",
                   help=f"the Prisma migrations folder (default: {DEFAULT_MIGRATIONS})")


def _add_history_option(p: argparse.ArgumentParser) -> None:
    from checks.cli import add_history_option

    add_history_option(p)


# ---------------------------------------------------------------------------------------------
# status


def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import json

    from checks.cli import EXIT_DRIFT, EXIT_OK, database_url_from
    from checks.migrations import status

    url = database_url_from(args)
    st = status(url, args.migrations)
    if args.format == "json":
        json.dump(st.to_json(), out, indent=2)
        out.write("\n")
    else:
        out.write(render_status(st))
        out.write(_next_text(url, st, args))
    return EXIT_OK if st.up_to_date else EXIT_DRIFT


def _next_text(url: str, st: "MigrationStatus", args: argparse.Namespace) -> str:
    """The next step (`checks.operations.next_step`), judged with the drift when a schema is at hand."""
    from pathlib import Path

    from checks.check import check_database
    from checks.errors import DriftwatchError
    from checks.migrations import summarize
    from checks.operations import next_steps

    schema: Path | None = None
    if args.schema != "none":
        beside = Path(args.migrations).parent / "schema.prisma"
        schema = Path(args.schema) if args.schema else (beside if beside.is_file() else None)
    drift, note = None, ""
    if schema is not None:
        try:
            drift = check_database(url, schema).report
        except DriftwatchError as exc:
            note = f"(the drift check against {schema} failed: {exc})\n"
    advice = next_steps(drift, summarize(url, args.migrations, st), schema=str(schema) if schema else None)
    if advice.state == "in_sync":
        return note
    return note + "Next: " + "\n".join(advice.lines()) + "\n"


_LABELS = {
    "applied": "applied",
    "pending": "PENDING",
    "failed": "FAILED",
    "rolled_back": "ROLLED BACK",
    "edited": "EDITED",
    "missing_locally": "MISSING LOCALLY",
}


def _when(t: Any) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t is not None else "?"


def render_status(st: "MigrationStatus") -> str:
    """The text report: one line per migration, then what Prisma's own status would not say."""
    local = [m for m in st.migrations if m.local_checksum is not None]
    lines = [f"{st.database} (schema {st.schema}): {len(local)} migration(s) in {st.directory}", ""]
    if not st.managed:
        lines.append(f"The database is not managed by Prisma Migrate: there is no _prisma_migrations table in "
                     f"schema {st.schema}.")
        lines.append("")
    width = max((len(m.name) for m in st.migrations), default=0)
    for m in st.migrations:
        note = ""
        if m.state == "applied":
            note = f"finished {_when(m.finished_at)}"
        elif m.state == "pending":
            note = "not applied yet"
        elif m.state == "failed":
            logs = (m.logs or "").strip().splitlines()
            note = f"started {_when(m.started_at)}, never finished"
            if m.local_checksum is None:
                note += "; no folder on disk"
            if logs:
                shown = next((x for x in logs if x.startswith("ERROR")), None) or \
                    next((x for x in logs if x.startswith("Database error")), logs[0])
                note += f"; logs: {shown[:120]}"
        elif m.state == "rolled_back":
            note = "marked rolled back; the next deploy applies it again"
        elif m.state == "edited":
            note = (f"applied {_when(m.finished_at)}, but migration.sql changed since "
                    f"(database {(m.checksum or '')[:12]}…, file {(m.local_checksum or '')[:12]}…)")
        elif m.state == "missing_locally":
            note = f"in the database (finished {_when(m.finished_at)}) but no folder in {st.directory}"
        lines.append(f"  {_LABELS[m.state]:<16} {m.name:<{width}}  {note}")
    if not st.migrations:
        lines.append("  (no migrations)")
    lines.append("")

    counts = {s: len(st.names(s)) for s in _LABELS}
    if st.up_to_date:
        lines.append("Up to date: every migration is applied, and matches its file.")
    else:
        parts = [f"{counts[s]} {_LABELS[s].lower()}" for s in _LABELS if s != "applied" and counts[s]]
        lines.append("Not up to date" + (": " + ", ".join(parts) if parts else "") + ".")
    hidden = []
    if counts["edited"]:
        hidden.append(f"{counts['edited']} migration(s) changed after they were applied: "
                      f"{', '.join(st.names('edited'))} (Prisma's status never shows edited migrations)")
    if counts["missing_locally"]:
        hidden.append(f"{counts['missing_locally']} applied migration(s) have no folder here: "
                      f"{', '.join(st.names('missing_locally'))} (Prisma still says \"Database schema is up to "
                      f"date!\"; is this the right branch or folder?)")
    if counts["failed"] and (counts["pending"] or counts["rolled_back"]):
        hidden.append(f"{', '.join(st.names('failed'))} failed while other migrations are pending (Prisma reports "
                      f"only \"pending\"; deploy will stop with P3009)")
    if hidden:
        lines.append("What `prisma migrate status` would not tell you:")
        lines += [f"  - {h}" for h in hidden]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# deploy


def cmd_deploy(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.cli import database_url_from
    from checks.errors import UsageError

    url = database_url_from(args)
    if args.rehearse and args.command is not None:
        raise UsageError("--rehearse rehearses Driftwatch's own deploy; it cannot rehearse a --command")
    if args.command is not None:
        if args.lock_timeout is not None or args.statement_timeout is not None:
            raise UsageError("--lock-timeout and --statement-timeout apply to Driftwatch's own deploy; "
                             "with --command, Prisma runs the migrations")
        return _deploy_command(args, url, out, err)
    if args.timeout is not None:
        raise UsageError("--timeout goes with --command")
    if args.rehearse:
        return _deploy_rehearsal(args, url, out, err)
    return _deploy_native(args, url, out, err)


def _deploy_rehearsal(args: argparse.Namespace, url: str, out: TextIO, err: TextIO) -> int:
    from checks.cli import EXIT_DRIFT, EXIT_ERROR, EXIT_OK, caller_from, limits_from
    from checks.operations import rehearse_deploy

    done = rehearse_deploy(url, args.migrations, limits=limits_from(args), caller=caller_from(args))
    _warn(done.warnings, err)
    if done.error is not None:
        _print_details(done.error, out)
        raise done.error
    out.write(render_rehearsal(done))
    result = done.result
    assert result is not None
    if result.names("failed"):
        return EXIT_ERROR
    if not result.clean or (done.after is not None and not done.after.in_sync()):
        return EXIT_DRIFT
    return EXIT_OK


def render_rehearsal(done: Any) -> str:
    """A deploy rehearsal as text: per migration what happened, then what would remain."""
    result = done.result
    lines = []
    if not result.migrations:
        lines.append(f"{done.database}: no pending migrations: a deploy would apply nothing.")
    else:
        lines.append(f"{done.database}: rehearsed {len(result.migrations)} pending migration(s) in one transaction, "
                     f"rolled back ({result.seconds:.2f} s): nothing was changed.")
        for m in result.migrations:
            line = f"  {m.name}: {m.status.replace('_', ' ')}"
            if m.status == "rehearsed":
                line += f" ({m.statements} statement(s), {m.seconds:.2f} s)"
            lines.append(line)
            if m.error:
                lines.append(f"    {m.error}")
        if result.would_create_table:
            lines.append("The deploy would also create the _prisma_migrations table.")
    if done.after is not None and result.migrations:
        findings = list(done.after.findings)
        if not findings:
            lines.append("After it, the database would be in sync with the schema.")
        else:
            lines.append(f"After it, {len(findings)} finding(s) would remain:")
            lines += [f"  - {f.severity} {f.message}" for f in findings]
    elif done.after is None and result.migrations:
        lines.append("What would remain after it is unknown (no schema.prisma beside the migrations folder, or the "
                     "inspection failed).")
    return "\n".join(lines) + "\n"


def _deploy_native(args: argparse.Namespace, url: str, out: TextIO, err: TextIO) -> int:
    from checks.cli import EXIT_OK, caller_from, limits_from
    from checks.operations import deploy_migrations

    mid_line = [False]

    def progress(event: str, name: str, detail: Any) -> None:
        if event == "applying":
            out.write(f"Applying {name} … ")
            mid_line[0] = True
        elif event == "applied":
            out.write(f"done ({detail.seconds:.2f} s, {detail.statements} statement(s))\n")
            mid_line[0] = False
        out.flush()

    done = deploy_migrations(url, args.migrations, limits=limits_from(args), on_progress=progress,
                             caller=caller_from(args))
    _warn(done.warnings, err)
    if done.error is not None:
        if mid_line[0]:
            out.write("failed\n")
        _print_details(done.error, out)
        raise done.error
    result = done.result
    assert result is not None
    out.write(f"{done.database}: ")
    if result.applied:
        out.write(f"applied {len(result.applied)} migration(s) in {result.seconds:.2f} s: "
                  f"{', '.join(a.name for a in result.applied)}\n")
    else:
        out.write("no pending migrations to apply.\n")
    if result.created_table:
        out.write("Created the _prisma_migrations table.\n")
    for w in result.warnings:
        out.write(f"warning: {w}\n")
    return EXIT_OK


def _deploy_command(args: argparse.Namespace, url: str, out: TextIO, err: TextIO) -> int:
    from checks.cli import EXIT_DRIFT, EXIT_ERROR, EXIT_OK, caller_from
    from checks.operations import deploy_with_command

    timeout = args.timeout if args.timeout is not None else DEFAULT_COMMAND_TIMEOUT

    def start(outcome: Any) -> None:
        waiting = outcome.waiting
        out.write(f"{outcome.before.database}: {len(waiting)} migration(s) to apply"
                  + (f": {', '.join(waiting)}" if waiting else "") + "\n")
        out.write(f"Running: {outcome.command}\n")
        out.flush()

    def line(text: str) -> None:
        out.write(f"  | {text}\n")
        out.flush()

    done = deploy_with_command(url, args.migrations, args.command, timeout=timeout, on_line=line, on_start=start,
                               caller=caller_from(args))
    _warn(done.warnings, err)
    if done.error is not None:
        raise done.error
    assert done.result is not None and done.after is not None
    if done.result.timed_out or done.result.exit_code != 0:
        err.write(f"driftwatch: error: {done.message}\n")
        return EXIT_ERROR
    if done.left:
        out.write(f"The command succeeded, but {done.after.database} still has {len(done.left)} migration(s) not "
                  f"applied: {', '.join(done.left)}. Did it deploy to another database (check its DATABASE_URL)?\n")
        return EXIT_DRIFT
    out.write(f"Up to date: {len(done.applied)} migration(s) applied by the command"
              + (f" ({', '.join(done.applied)})" if done.applied else "") + ".\n")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# resolve


def cmd_resolve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.cli import EXIT_OK, caller_from, database_url_from
    from checks.operations import resolve_migration

    url = database_url_from(args)
    name = args.applied if args.applied is not None else args.rolled_back
    done = resolve_migration(url, args.migrations, name, applied=args.applied is not None, caller=caller_from(args))
    _warn(done.warnings, err)
    if done.error is not None:
        _print_details(done.error, out)
        raise done.error
    result = done.result
    assert result is not None
    if done.applied:
        extra = f" ({result.rolled_back_rows} failed run(s) marked rolled back)" if result.rolled_back_rows else ""
        created = " Created the _prisma_migrations table." if result.created_table else ""
        out.write(f"{done.database}: recorded {name} as applied{extra}.{created}\n")
    elif result.rolled_back_rows:
        out.write(f"{done.database}: marked {name} as rolled back; the next deploy applies it again.\n")
    else:
        out.write(f"{done.database}: {name} has no failed run left to mark; nothing changed.\n")
    return EXIT_OK


def _print_details(exc: BaseException, out: TextIO) -> None:
    """Prisma prints a refused migrate's long text (P3009's failed runs, P3018's logs); so do we,
    on stdout, before the one-line error on stderr."""
    from checks.db import scrub
    from checks.errors import MigrateError

    if isinstance(exc, MigrateError) and exc.details:
        out.write(scrub(exc.details) + "\n")


def _warn(warnings: list[str], err: TextIO) -> None:
    for w in warnings:
        err.write(f"driftwatch: warning: {w}\n")


# ---------------------------------------------------------------------------------------------
# diff


def cmd_diff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import json

    from checks.replay import migrate_diff

    progress = None
    if hasattr(err, "isatty") and err.isatty():  # a long history takes a while: say where it is
        count = [0]

        def progress(event: str, name: str, detail: Any) -> None:
            if event == "applying":
                count[0] += 1
                err.write(f"\rreplaying {count[0]}: {name[:60]:<60}")
                err.flush()

    try:
        result = migrate_diff(args.migrations, args.schema, shadow_url=args.shadow_database_url,
                              on_progress=progress)
    finally:
        if progress is not None:
            err.write("\r" + " " * 80 + "\r")
    if args.format == "json":
        json.dump(result.to_json(args.strict), out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        from checks.drift_text import render_text

        out.write(f"Replayed {result.replayed} of {result.total} migration(s) from {result.directory} into "
                  f"{result.database} in {result.replay_seconds:.2f} s\n")
        if result.failed is not None:
            out.write(f"FAILED  {result.failed.name}: {result.failed.error}\n"
                      f"The comparison below is of the {result.replayed} migration(s) before it.\n")
        out.write("\n" + render_text(result.report, target=f"migrations {result.directory} vs {args.schema}",
                                     strict=args.strict, show_fix=not args.no_fix))
        steps = result.advice().texts()
        if steps:
            out.write("\nNext steps:\n" + "".join(f"  - {s}\n" for s in steps))
    if result.failed is not None:
        err.write(f"driftwatch: error: migration {result.failed.name} failed on an empty database: "
                  f"{result.failed.error}\n")
    return result.exit_code(args.strict)
