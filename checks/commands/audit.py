"""`driftwatch audit`: read the audit log of what Driftwatch did to which database.

    driftwatch audit [--history-url URL] [--limit N] [--kind K] [--format text|json]
    driftwatch audit show ID [--history-url URL] [--format text|json]

The list is newest first; `show` prints one action in full, with its SQL and the drift
before and after. The store is `--history-url`, else $DRIFTWATCH_HISTORY_URL, else the
user's SQLite file (see checks/history/store.py). Times are UTC.
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from checks.history import ActionRecord


def _add_history_option(p: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    # On `show`, SUPPRESS keeps `audit --history-url X show 1` from being reset to None.
    p.add_argument("--history-url", metavar="URL", default=argparse.SUPPRESS if suppress else None,
                   help="history store: a SQLite path, sqlite:///path or postgresql://… "
                        "(default: $DRIFTWATCH_HISTORY_URL, else ~/.local/share/driftwatch/history.sqlite3)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("audit", help="list what Driftwatch did (fixes, deploys, runbooks…), newest first")
    _add_history_option(p)
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N actions (default: 50)")
    p.add_argument("--kind", metavar="K", help="only actions of this kind (fix, rehearsal, deploy, …)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_audit)
    sub = p.add_subparsers(dest="audit_command", metavar="show", parser_class=type(p))
    s = sub.add_parser("show", help="print one action in full: its SQL, drift before and after")
    s.add_argument("id", type=int, metavar="ID")
    _add_history_option(s, suppress=True)
    s.add_argument("--format", choices=("text", "json"), default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_show)


def cmd_audit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.cli import EXIT_OK
    from checks.errors import UsageError
    from checks.history import HistoryStore

    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    with HistoryStore.open(args.history_url) as store:
        records = store.list_actions(limit=args.limit, kind=args.kind)
        location = store.location
    if args.format == "json":
        json.dump({"store": location, "actions": [r.to_json() for r in records]}, out, indent=2)
        out.write("\n")
    elif not records:
        which = f" of kind {args.kind}" if args.kind else ""
        out.write(f"no actions{which} recorded in {location}\n")
    else:
        out.write(render_table(records))
    return EXIT_OK


def cmd_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.cli import EXIT_OK
    from checks.errors import UsageError
    from checks.history import HistoryStore

    with HistoryStore.open(args.history_url) as store:
        record = store.get_action(args.id)
        location = store.location
    if record is None:
        raise UsageError(f"no action {args.id} in history store {location}")
    if args.format == "json":
        json.dump(record.to_json(), out, indent=2)
        out.write("\n")
    else:
        out.write(render_action(record))
    return EXIT_OK


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    return f"{ms // 60_000}m{ms % 60_000 // 1000:02d}s"


def render_table(records: list[ActionRecord]) -> str:
    """A compact table: id, when (UTC), who, kind, database, outcome, duration."""
    header = ("ID", "WHEN (UTC)", "WHO", "KIND", "DATABASE", "OUTCOME", "DURATION")
    rows = [
        (str(r.id), _when(r.started_at), r.actor, r.kind, r.database or "-", r.outcome, _duration(r.duration_ms))
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines) + "\n"


def _drift(title: str, drift: dict[str, Any] | None) -> list[str]:
    if drift is None:
        return [f"{title}: not recorded"]
    summary = drift.get("summary") or {}
    counts = ", ".join(f"{summary.get(k, 0)} {k}" for k in ("critical", "warning", "info"))
    in_sync = drift.get("in_sync")
    state = "in sync" if in_sync is True else "drift" if in_sync is False else "summary"
    lines = [f"{title}: {state} ({counts})"]
    for f in drift.get("findings") or []:
        if not isinstance(f, dict):
            lines.append(f"  {f}")
            continue
        lines.append(f"  {str(f.get('severity', '')).upper():<8} {f.get('kind', ''):<20} {f.get('message', '')}".rstrip())
    return lines


def render_action(r: ActionRecord) -> str:
    """One action in full, as `driftwatch audit show ID` prints it."""
    fields = [
        ("kind", r.kind),
        ("outcome", r.outcome),
        ("who", r.actor),
        ("started", f"{_when(r.started_at)} UTC"),
        ("finished", f"{_when(r.finished_at)} UTC" if r.finished_at else "-"),
        ("duration", _duration(r.duration_ms)),
        ("environment", r.environment or "-"),
        ("database", r.database or "-"),
        ("target", r.target or "-"),
        ("error", r.error or "-"),
    ]
    lines = [f"action {r.id}"]
    lines += [f"  {name:<12} {value}" for name, value in fields]
    lines.append("")
    lines.append("statements:" if r.statements else "statements: none")
    if r.statements:
        lines += [f"  {line}" for line in r.statements.rstrip().splitlines()]
    lines.append("")
    lines += _drift("drift before", r.drift_before)
    lines += _drift("drift after", r.drift_after)
    if r.details:
        lines.append("")
        lines.append("details:")
        lines += [f"  {line}" for line in json.dumps(r.details, indent=2, sort_keys=True, default=str).splitlines()]
    return "\n".join(lines) + "\n"
