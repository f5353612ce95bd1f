"""`driftwatch report`: the incident report (postmortem first draft) of an environment.

    driftwatch report [--config FILE] --env NAME (--incident ID | --since T [--until T])
                      --format md|html|json [--out FILE]
    driftwatch report --list [--env NAME] [--format text|json]

T is ISO 8601 (`2025-10-12T08:30:00Z`) or an age (`2h`, `30m`, `7d`); without `--until` the
window is still open (up to now). The history store is `--history-url`, else the config's
`[store] url`, else $DRIFTWATCH_HISTORY_URL, else the user's SQLite file (as for `poll`). The config also
names the secrets the report must not carry (every resolved secret of every environment)
and the environment's database, whose unlabelled audit-log actions it claims.
Exit 0; 1 on error (unknown environment or incident, bad time): one line on stderr.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

FORMATS = ("md", "html", "json")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="write the incident report of an environment (md, html or json)")
    p.add_argument("--config", metavar="FILE", help="driftwatch.toml (default: $DRIFTWATCH_CONFIG, else ./driftwatch.toml if present)")
    p.add_argument("--history-url", metavar="URL",
                   help="history store (default: the config's [store] url, $DRIFTWATCH_HISTORY_URL, else the user's SQLite file)")
    p.add_argument("--env", metavar="NAME", help="the environment to report on")
    p.add_argument("--incident", type=int, metavar="ID", help="report on this incident (see --list)")
    p.add_argument("--since", metavar="T", help="start of the window: ISO 8601 or an age such as 2h")
    p.add_argument("--until", metavar="T", help="end of the window (default: now, the window stays open)")
    p.add_argument("--format", choices=FORMATS + ("text",), default=None,
                   help="md, html or json (--list: text or json)")
    p.add_argument("--out", metavar="FILE", help="write the report here instead of to standard output")
    p.add_argument("--list", action="store_true", help="list incidents: id, environment, opened, closed, title")
    p.set_defaults(func=cmd_report)


def load_settings(args: argparse.Namespace) -> Any:
    from checks.reports.settings import settings

    return settings(args.config, args.env)


def cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.cli import EXIT_OK
    from checks.errors import UsageError
    from checks.history import HistoryStore

    if args.list:
        if args.incident is not None or args.since or args.until or args.out:
            raise UsageError("--list takes only --env and --format")
        store_url = load_settings(argparse.Namespace(**{**vars(args), "env": None})).store_url
        fmt = args.format or "text"
        if fmt not in ("text", "json"):
            raise UsageError("--list prints text or json")
        return _list(args, args.history_url or store_url, fmt, out)
    if not args.env:
        raise UsageError("--env NAME is required (list incidents with: driftwatch report --list)")
    if args.incident is None and not args.since:
        raise UsageError("give --incident ID or --since T")
    if args.incident is not None and (args.since or args.until):
        raise UsageError("--incident and --since/--until exclude each other")
    if args.until and not args.since:
        raise UsageError("--until needs --since")
    fmt = args.format or "md"
    if fmt not in FORMATS:
        raise UsageError("--format must be md, html or json")
    found = load_settings(args)

    from checks.reports import Redactor, build_report, render

    with HistoryStore.open(args.history_url or found.store_url) as store:
        report = build_report(store, args.env, since=args.since, until=args.until, incident=args.incident,
                              database=found.database)
    text = render(report, fmt, Redactor(found.secrets))
    if args.out:
        target = Path(args.out)
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
        out.write(f"wrote {target} ({fmt}, {len(text.encode()) // 1024} KiB): {report.status}: {report.title}\n")
    else:
        out.write(text)
    return EXIT_OK


def _list(args: argparse.Namespace, store_url: str | None, fmt: str, out: TextIO) -> int:
    from checks.cli import EXIT_OK
    from checks.history import HistoryStore
    from checks.reports import list_incidents
    from checks.reports.model import iso

    with HistoryStore.open(store_url) as store:
        found = list_incidents(store, args.env)
        location = store.location
    if fmt == "json":
        json.dump({"store": location, "incidents": [
            {"id": i.id, "environment": i.environment, "opened_at": iso(i.opened_at), "closed_at": iso(i.closed_at),
             "title": i.title} for i in found]}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    if not found:
        out.write(f"no incidents{' in ' + args.env if args.env else ''} recorded in {location}\n")
        return EXIT_OK
    rows = [("ID", "ENVIRONMENT", "OPENED (UTC)", "CLOSED (UTC)", "TITLE")]
    for i in found:
        rows.append((str(i.id), i.environment, i.opened_at.strftime("%Y-%m-%d %H:%M:%S"),
                     i.closed_at.strftime("%Y-%m-%d %H:%M:%S") if i.closed_at else "open", i.title))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for r in rows:
        out.write("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4] + "\n")
    return EXIT_OK
