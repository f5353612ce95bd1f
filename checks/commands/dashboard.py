"""`driftwatch dashboard [--config FILE] [--secrets FILE] [--port N]`: the Streamlit dashboard
for a configuration.

Runs `python -m streamlit run dashboard/app.py` from the repository root (for the app's own
.streamlit/config.toml), with DRIFTWATCH_CONFIG set; the dashboard checks the configured
environments in the background itself. Ctrl-C or SIGTERM stop it.

Secrets (`secret:NAME` references, the operator password, `[auth]`) come from the file the
operator means: `--secrets`, else ./.streamlit/secrets.toml of the directory it was started
from — the same default as `driftwatch config check` — else the one beside the configuration;
without any, Streamlit's own default (the repository's). Streamlit alone would read the
repository's, whatever directory the command was run from.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent.parent


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dashboard", help="serve the dashboard for a driftwatch.toml")
    p.add_argument("--config", metavar="FILE", help="driftwatch.toml (default: $DRIFTWATCH_CONFIG, else ./driftwatch.toml)")
    p.add_argument("--secrets", metavar="FILE", help="Streamlit secrets (default: ./.streamlit/secrets.toml, else "
                                                    "the one beside the config file)")
    p.add_argument("--port", type=int, default=8501, metavar="N", help="port (default: 8501)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 in Docker)")
    p.set_defaults(func=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.errors import UsageError

    env = dict(os.environ)
    config = args.config or env.get("DRIFTWATCH_CONFIG") or ("driftwatch.toml" if Path("driftwatch.toml").is_file() else None)
    if config:
        path = Path(config).resolve()
        if not path.is_file():
            raise UsageError(f"--config {config}: no such file")
        env["DRIFTWATCH_CONFIG"] = str(path)
    if not (ROOT / "dashboard" / "app.py").is_file():
        raise UsageError(f"the dashboard is not installed next to this Driftwatch ({ROOT / 'dashboard'})")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
               "--server.port", str(args.port), "--server.address", args.address,
               "--browser.gatherUsageStats", "false"]
    secrets = secrets_file(args.secrets, Path.cwd(), Path(env["DRIFTWATCH_CONFIG"]) if config else None)
    if secrets is not None:
        command += ["--secrets.files", str(secrets)]
    out.write(f"dashboard: http://{args.address}:{args.port}/\n")
    out.flush()
    child = subprocess.Popen(command, cwd=ROOT, env=env)
    previous = signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # Streamlit got the Ctrl-C too: let it finish
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)


def secrets_file(given: str | None, cwd: Path, config: Path | None) -> Path | None:
    """The secrets file the dashboard reads (see the module docstring); a given one must exist."""
    from checks.errors import UsageError

    if given:
        path = Path(given).resolve()
        if not path.is_file():
            raise UsageError(f"--secrets {given}: no such file")
        return path
    for folder in (cwd, config.parent if config is not None else None):
        if folder is not None and (folder / ".streamlit" / "secrets.toml").is_file():
            return (folder / ".streamlit" / "secrets.toml").resolve()
    return None
