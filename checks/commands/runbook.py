"""`driftwatch runbook`: list, show and run the team's reviewed emergency SQL (`checks.runbooks`).

    driftwatch runbook list [--runbooks DIR] [--schema PATH]
    driftwatch runbook show NAME [--runbooks DIR] [--schema PATH]
    driftwatch runbook run NAME --database-url URL --schema PATH [--apply] [--runbooks DIR]
        [--lock-timeout S] [--statement-timeout S] [--advisory-wait S] [--history-url URL]

`--runbooks` defaults to `runbooks/`, else the `runbooks/` folder beside the schema's `prisma/`.
NAME is the file stem. `run` previews the statements and rehearses them in a rolled-back
transaction; with --apply it runs them under the same guards as `driftwatch fix` (Prisma's
advisory lock, lock_timeout, statement_timeout, one all-or-nothing transaction). Then it runs
the drift check and shows what is still missing — after a rehearsal, what would still be
missing after it, seen inside the rehearsal's transaction: a runbook written in a hurry rarely
covers everything, and `driftwatch fix` plans the rest. Before anything runs it warns when a
pending migration creates what the runbook creates (the next deploy would fail on it).
The workflow is `checks.operations.runbook.run_runbook`; this module parses and prints.

Exit codes: `run` without --apply 0 when the rehearsal is clean, 1 otherwise; with --apply
0 when the database is in sync afterwards, 2 when drift remains, 1 on failure (nothing
changed). Every run is recorded in the audit log, kind "runbook" (outcome "rehearsed" for
a rehearsal).
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from checks.runbooks import Runbook

APPLICATION_NAME = "driftwatch runbook"


def register(subparsers: argparse._SubParsersAction) -> None:
    from checks.cli import add_database_option, add_guard_options, add_schema_option

    p = subparsers.add_parser("runbook", help="list, show and run reviewed emergency SQL runbooks under the write "
                                              "guard, then show what drift remains")
    p.set_defaults(func=_help(p))
    sub = p.add_subparsers(dest="runbook_command", metavar="SUBCOMMAND", parser_class=type(p))

    ls = sub.add_parser("list", help="the runbooks of the folder: name, title, when to run it")
    _add_folder_options(ls, add_schema_option)
    ls.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="one runbook: its header, warnings about missing fields, its SQL")
    show.add_argument("name", metavar="NAME", help="the file name without .sql")
    _add_folder_options(show, add_schema_option)
    show.set_defaults(func=cmd_show)

    run = sub.add_parser("run", help="preview and rehearse a runbook; --apply runs it under the write guard; then "
                                     "the drift check (exit 0 in sync, 2 drift remains, 1 failure)")
    run.add_argument("name", metavar="NAME", help="the file name without .sql")
    add_database_option(run)
    _add_folder_options(run, add_schema_option)
    run.add_argument("--apply", action="store_true", help="run it (default: rehearse it and roll back)")
    add_guard_options(run)
    run.set_defaults(func=cmd_run)


def _help(p: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
        from checks.cli import EXIT_ERROR

        p.print_help(out)
        return EXIT_ERROR

    return show


def _add_folder_options(p: argparse.ArgumentParser, add_schema_option: Any) -> None:
    p.add_argument("--runbooks", metavar="DIR",
                   help="the runbooks folder (default: runbooks/, else prisma/../runbooks beside --schema)")
    add_schema_option(p)


def _folder(args: argparse.Namespace) -> Any:
    from checks.runbooks import find_runbooks_dir

    return find_runbooks_dir(args.runbooks, args.schema)


# ---------------------------------------------------------------------------------------------
# list, show


def cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.cli import EXIT_OK
    from checks.runbooks import list_runbooks

    folder = _folder(args)
    books = list_runbooks(folder)
    if not books:
        out.write(f"no runbooks (*.sql) in {folder}\n")
        return EXIT_OK
    width = max(len(b.name) for b in books)
    out.write(f"{len(books)} runbook(s) in {folder}\n\n")
    for b in books:
        flag = f"  ({len(b.warnings)} warning{'s' if len(b.warnings) != 1 else ''})" if b.warnings else ""
        out.write(f"  {b.name:<{width}}  {b.title}{flag}\n")
        if b.when:
            out.write(f"  {'':<{width}}  when: {b.when}\n")
    out.write("\nShow one: driftwatch runbook show NAME\n")
    return EXIT_OK


def cmd_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.cli import EXIT_OK
    from checks.runbooks import load_runbook

    book = load_runbook(_folder(args), args.name)
    out.write(_header(book))
    out.write("\n" + book.sql.rstrip("\n") + "\n")
    return EXIT_OK


def _header(book: "Runbook") -> str:
    lines = [f"{book.name}: {book.title}", f"  file:   {book.path}"]
    lines.append(f"  when:   {book.when or '(not given)'}")
    lines.append(f"  author: {book.author or '(not given)'}")
    for key, value in book.fields.items():
        if key not in ("title", "when", "author"):
            lines.append(f"  {key}: {value}")
    if book.description:
        lines.append(f"  about:  {book.description}")
    for w in book.warnings:
        lines.append(f"  warning: {w}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# run


def cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.cli import EXIT_DRIFT, EXIT_OK, caller_from, database_url_from, limits_from
    from checks.operations import describe_failure, run_runbook
    from checks.drift_text import render_text, verdict_line
    from checks.runbooks import load_runbook

    url = database_url_from(args)
    book = load_runbook(_folder(args), args.name)
    statements = book.statements()
    out.write(_header(book))
    out.write(f"\n{len(statements)} statement{'s' if len(statements) != 1 else ''}:\n")
    for i, sql in enumerate(statements, 1):
        for k, line in enumerate(sql.splitlines()):
            out.write(f"  {str(i) + '.' if k == 0 else '':>4} {line}\n")
    result = run_runbook(url, args.schema, book, apply=args.apply, limits=limits_from(args),
                         caller=caller_from(args))
    if result.collisions:
        folder = result.history.directory  # type: ignore[union-attr]
        out.write(f"\nNote: {len(result.collisions)} migration(s) in {folder} are not applied and create what "
                  f"this runbook creates: "
                  + "; ".join(f"{n} ({', '.join(objs)})" for n, objs in result.collisions.items())
                  + f".\n  After the runbook, `driftwatch migrate deploy` would fail on them (P3018). Prefer "
                    f"`driftwatch migrate deploy --migrations {folder}`; if you run the runbook instead, finish "
                    f"with `driftwatch fix --apply`, then `driftwatch migrate resolve --applied NAME`.\n")
    for w in result.warnings:
        err.write(f"driftwatch: warning: {w}\n")
    target = result.database
    if result.before is not None:
        out.write("\nBefore: " + verdict_line(result.before, target) + "\n")
    if result.error is not None:
        what = "Nothing was run" if not result.started else \
            ("Rehearsal" if not args.apply else "Run") + " failed; nothing was changed"
        out.write(f"\n{what}:\n")
        for line in describe_failure(result.error):
            out.write(f"  {line}\n")
        raise result.error

    guarded = result.guarded
    results = guarded.status_of()
    out.write("\n" + ("Ran" if args.apply else "Rehearsed (rolled back: nothing was changed)") + ":\n")
    for i, sql in enumerate(statements):
        r = results.get(i)
        took = f"{r.seconds:.3f} s" if r and r.seconds is not None else ""
        status = "not_rehearsed" if i in guarded.not_rehearsed else (r.status if r else "not_run")
        out.write(f"  {status:<13} {took:>9}  {i + 1:>2}. {sql.splitlines()[0][:90]}\n")
    if not args.apply:
        out.write("It applies cleanly. Run it: driftwatch runbook run " + book.name + " --apply "
                  "(same --database-url and --schema)\n")
        out.write("\nMissing now (the runbook was only rehearsed):\n")
        out.write(render_text(result.before, target=target, show_fix=False))  # type: ignore[arg-type]
        if result.after is not None:
            out.write("\nStill missing after it (seen inside the rehearsal, before the rollback):\n")
            out.write(render_text(result.after, target=target, show_fix=False))
        return EXIT_OK
    out.write("\nDrift check after the runbook:\n")
    out.write(render_text(result.after, target=target, show_fix=False))  # type: ignore[arg-type]
    if result.after.in_sync():  # type: ignore[union-attr]
        return EXIT_OK
    out.write("\nStill missing after the runbook: see above. Plan the rest: driftwatch fix "
              "(same --database-url and --schema)\n")
    return EXIT_DRIFT

