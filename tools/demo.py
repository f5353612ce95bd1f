#!/usr/bin/env python3
"""Start the dashboard on the embedded demo database: `python tools/demo.py [--scenario healthy]`.

Starts (or reuses) the sample app's PostgreSQL under .driftwatch/ in the repository, then
runs `python -m streamlit run dashboard/app.py` from the repository root with
DRIFTWATCH_DEMO set, so the dashboard checks the demo even if a DATABASE_URL is configured.
Needs only `pip install -r requirements.txt`. Extra arguments go to `streamlit run`
(e.g. `--server.port 8600`).

Streamlit runs as a child rather than replacing this process, so that when the dashboard
ends — Ctrl-C, or SIGTERM to this process — the demo PostgreSQL is stopped too instead of
being left running in the background.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Start the Driftwatch dashboard on the embedded demo database.",
        epilog="Other arguments are passed to `streamlit run` (e.g. --server.port 8600).",
    )
    parser.add_argument("--scenario", choices=("incident", "healthy"), default="incident",
                        help="incident: the second migration never ran (default); healthy: all applied")
    args, streamlit_args = parser.parse_known_args(argv)

    sys.path.insert(0, str(ROOT))
    from checks.demo import start_demo
    from checks.errors import DriftwatchError

    state_dir = Path(os.environ.get("DRIFTWATCH_STATE_DIR") or ROOT / ".driftwatch")
    print(f"driftwatch demo: starting PostgreSQL in {state_dir / 'demo-pg'} …", file=sys.stderr)
    try:
        demo = start_demo(state_dir, args.scenario)
    except DriftwatchError as exc:
        print(f"driftwatch demo: {exc}", file=sys.stderr)
        return 1
    print(f"driftwatch demo: database {demo.database} ({demo.description})"
          f"{', seeded' if demo.seeded else ', reused'}", file=sys.stderr)

    env = dict(os.environ)
    env["DRIFTWATCH_DEMO"] = args.scenario
    env["DRIFTWATCH_STATE_DIR"] = str(state_dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", *streamlit_args]
    try:
        child = subprocess.Popen(command, cwd=ROOT, env=env)
        # SIGTERM to the launcher ends the dashboard, then the finally below stops PostgreSQL.
        signal.signal(signal.SIGTERM, lambda signum, frame: child.terminate())
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # Ctrl-C reached Streamlit too: wait for it to finish
                continue
    finally:
        demo.stop()


if __name__ == "__main__":
    sys.exit(main())
