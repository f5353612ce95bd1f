"""`driftwatch demo`: the incident, live — database, backend, Coolify, git, config, dashboard.

    driftwatch demo [--port N] [--data-dir DIR] [--reset]

Prints one line per URL (`dashboard: http://…`, `database: postgresql://…` usable as is in the
CLI, `backend: …`, `coolify: …`), then runs until Ctrl-C or SIGTERM, which stop everything it
started. `--reset` brings the database back to the incident state first.
"""
from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from typing import TextIO

DEFAULT_DATA_DIR = ".driftwatch"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run the sample app's incident on this machine: database, backend, Coolify, dashboard",
        description="Start the sample app's incident locally: an embedded PostgreSQL where the migration that "
                    "creates avatar_projects never ran, the app's backend, a Coolify-compatible API reporting "
                    "the deployment, a git repository of the app, and the dashboard (signed in as a demo "
                    "operator). Stops everything on Ctrl-C or SIGTERM. Nothing is fetched from the internet.")
    p.add_argument("--port", type=int, default=8501, metavar="N", help="the dashboard's port (default: 8501)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help=f"where everything lives (default: $DRIFTWATCH_STATE_DIR, else ./{DEFAULT_DATA_DIR})")
    p.add_argument("--reset", action="store_true", help="bring the database back to the incident state first")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import time

    from checks.demo_stack import check_data_dir, start_stack

    data_dir = check_data_dir(Path(args.data_dir or os.environ.get("DRIFTWATCH_STATE_DIR") or DEFAULT_DATA_DIR))
    err.write(f"driftwatch demo: starting under {data_dir.resolve()}{' (reset to the incident state)' if args.reset else ''} …\n")
    err.flush()
    started = time.monotonic()
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stack = start_stack(data_dir, port=args.port, reset=args.reset)
    try:
        for key in ("dashboard", "database", "backend", "coolify"):
            if key in stack.urls:
                out.write(f"{key}: {stack.urls[key]}\n")
        out.flush()
        for note in stack.notes:
            err.write(f"driftwatch demo: {note}\n")
        err.write(f"driftwatch demo: config {stack.urls['config']}; commits {stack.urls['commits']}\n"
                  f"driftwatch demo: ready in {time.monotonic() - started:.1f} s; Ctrl-C stops everything\n")
        err.flush()
        while not stop.is_set():
            for child in stack.children:
                if child.proc.poll() is not None:
                    err.write(f"driftwatch demo: the {child.name} exited ({child.proc.returncode}); "
                              f"its log: {child.log.name}\n")
                    return 1
            stop.wait(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        err.write("driftwatch demo: stopping …\n")
        stack.stop()
        signal.signal(signal.SIGTERM, previous)
