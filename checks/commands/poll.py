"""`driftwatch poll`: watch the environments of driftwatch.toml.

    driftwatch poll [--config FILE] --once [--format text|json] [--env NAME]…
    driftwatch poll [--config FILE] [--env NAME]… [--metrics-port N] [--metrics-host ADDR]

`--once` runs every check once, prints one object, records the results and state changes in
the history store (so a cron job can drive it) and exits 0 when everything is ok, 2 when
anything is not, 1 when it cannot run (a bad config). Without `--once` it runs until
SIGTERM/SIGINT (the round in flight finishes first): each check on its interval, results,
flips and incidents into the store, state changes to `[notify] webhook`, Prometheus text on
`--metrics-port`. The store is `--history-url`, else `[store] url`, else
$DRIFTWATCH_HISTORY_URL, else the user's SQLite file.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, TextIO


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "poll", help="check deployments, endpoints and databases of driftwatch.toml (--once: one round)")
    p.add_argument("--config", metavar="FILE", help="the config (default: $DRIFTWATCH_CONFIG, else ./driftwatch.toml)")
    p.add_argument("--once", action="store_true", help="run every check once, print, record, exit 0 ok / 2 not ok")
    p.add_argument("--format", choices=("text", "json"), default="text", help="--once output (default: text)")
    p.add_argument("--env", action="append", metavar="NAME", help="only this environment (repeatable)")
    p.add_argument("--history-url", metavar="URL", help="history store (default: [store] url, "
                   "$DRIFTWATCH_HISTORY_URL, else ~/.local/share/driftwatch/history.sqlite3)")
    p.add_argument("--metrics-port", type=int, metavar="N", help="serve Prometheus text on this port")
    p.add_argument("--metrics-host", default="127.0.0.1", metavar="ADDR",
                   help="address for --metrics-port (default: 127.0.0.1; 0.0.0.0 in a container)")
    p.set_defaults(func=cmd_poll)


def cmd_poll(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.config import load_config

    config = load_config(args.config)
    for warning in getattr(config, "warnings", ()):
        err.write(f"driftwatch: warning: {warning}\n")
    envs = args.env
    if envs:
        for name in envs:
            config.environment(name)  # an unknown name is a UsageError naming the ones there are
    store_url = args.history_url or getattr(config.store, "url", None)
    if args.once:
        return _once(config, envs, store_url, args.format, out, err)
    return _forever(config, envs, store_url, args, err)


def _once(config: Any, envs: list[str] | None, store_url: str | None, fmt: str, out: TextIO, err: TextIO) -> int:
    from checks.errors import HistoryError
    from checks.history import HistoryStore
    from checks.monitor.round import poll_once

    store = None
    try:
        store = HistoryStore.open(store_url)
    except HistoryError as exc:
        err.write(f"driftwatch: warning: results not recorded: {exc}\n")
    try:
        report = poll_once(config, envs, store)
    finally:
        if store is not None:
            store.close()
    if report.store_error:
        err.write(f"driftwatch: warning: results not recorded: {report.store_error}\n")
    if fmt == "json":
        out.write(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(render_text(report))
    return report.exit_code


def _forever(config: Any, envs: list[str] | None, store_url: str | None, args: argparse.Namespace,
             err: TextIO) -> int:
    import asyncio
    import signal

    from checks.monitor.poller import Poller
    from checks.monitor.round import units_of

    notifier = None
    notify = getattr(config, "notify", None)
    if notify is not None and getattr(notify, "webhook", None):
        from checks.monitor.notify import Notifier

        notifier = Notifier(str(notify.webhook), dashboard_url=str(notify.dashboard_url) if notify.dashboard_url else None,
                            timeout_s=float(getattr(notify, "timeout_s", 5)), log=err)
    poller = Poller(units_of(config, envs), store_url=store_url, concurrency=int(config.concurrency),
                    notifier=notifier, environments=envs or list(config.environments), log=err)
    server = None
    if args.metrics_port is not None:
        from checks.monitor.metrics import serve

        server, port = serve(poller, args.metrics_port, args.metrics_host)
        err.write(f"driftwatch poll: metrics on http://{args.metrics_host}:{port}/metrics\n")
        err.flush()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, poller.stop)
        await poller.run()

    err.write(f"driftwatch poll: watching {', '.join(poller.environments)} as {poller.owner}\n")
    err.flush()
    try:
        asyncio.run(main())
    finally:
        if server is not None:
            server.shutdown()
    err.write("driftwatch poll: stopped\n")
    return 0


# -- text output -------------------------------------------------------------------------------


def render_text(report: Any) -> str:
    """One block per environment: its state, then one line per check with state and reason."""
    lines = []
    when = report.checked_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    for env in report.environments:
        lines.append(f"{env.name}: {env.state.upper()}  (checked {when})")
        if not env.results:
            lines.append("  no checks configured")
        for r in env.results:
            label = r.kind if r.name == r.kind else f"{r.kind} {r.name}"
            lines.append(f"  {label:<28} {r.state:<8} {_what(r)}")
        lines.append("")
    if report.recorded_in:
        lines.append(f"recorded in {report.recorded_in}")
    return "\n".join(lines).rstrip("\n") + "\n"


def _what(result: Any) -> str:
    d = result.detail or {}
    if result.state != "ok" and result.reason:
        return result.reason
    if result.kind == "deployment":
        commit = (d.get("commit") or "")[:7]
        return " ".join(x for x in (str(d.get("status") or ""), commit) if x)
    if result.kind in ("health", "smoke"):
        parts = [str(d["status_code"])] if d.get("status_code") is not None else []
        if result.latency_ms is not None:
            parts.append(f"{result.latency_ms:.0f} ms")
        return ", ".join(parts)
    if result.kind == "drift":
        commit = d.get("schema_commit")
        return "in sync" + (f" (schema of {str(commit)[:7]})" if commit else "")
    if result.kind == "migrations":
        return "up to date"
    return ""
