"""`driftwatch config check`: validate driftwatch.toml and show what the poller would watch.

    driftwatch config check [--config FILE] [--secrets FILE] [--format text|json]

Prints the resolved environments with every secret masked (a reference is shown with what
it resolved to only when that is safe: a database URL without its password), the warnings
(a literal password in a URL or header) and the problems (an unset reference). Exit 0 when
every environment resolved, 1 when the file is invalid or a reference is unset.
`secret:NAME` references are answered from Streamlit's secrets file, as the dashboard would
(`--secrets`, default ./.streamlit/secrets.toml when it exists).
"""
from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any, TextIO


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("config", help="validate driftwatch.toml (config check)")
    sub = p.add_subparsers(dest="config_command", metavar="check", parser_class=type(p))
    c = sub.add_parser("check", help="validate the configuration and print the resolved environments, "
                                     "secrets masked (exit 0 valid, 1 not)")
    c.add_argument("--config", metavar="FILE",
                   help="the configuration (default: $DRIFTWATCH_CONFIG, else ./driftwatch.toml)")
    c.add_argument("--secrets", metavar="FILE",
                   help="answer secret:NAME from this TOML file (default: ./.streamlit/secrets.toml if present)")
    c.add_argument("--format", choices=("text", "json"), default="text")
    c.set_defaults(func=cmd_check)
    p.set_defaults(func=lambda args, out, err: (p.print_help(out), 1)[1])


def _secrets(path: str | None) -> dict[str, Any] | None:
    from checks.config import ConfigError

    file = Path(path) if path else Path(".streamlit") / "secrets.toml"
    if not path and not file.is_file():
        return None
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        # never echo the file's text: it holds secrets
        raise ConfigError([f"{file}: not valid TOML ({str(exc).split('(')[-1].rstrip(')')})"]) from None


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checks.cli import EXIT_ERROR, EXIT_OK
    from checks.config import ConfigError, config_path, load_config

    try:
        config = load_config(args.config, secrets=_secrets(args.secrets))
    except ConfigError as exc:
        for line in exc.problems:
            err.write(f"driftwatch: error: {line}\n")
        return EXIT_ERROR
    label = str(config_path(args.config))
    problems = [f"{label}: {p.message}" for p in config.problems]
    problems += [f"{label}: {p.message}" for env in config.environments.values() for p in env.problems]
    if args.format == "json":
        payload = config.masked()
        payload.update(valid=not problems, warnings=list(config.warnings), problems=problems)
        out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        masked = config.masked()
        n = len(config.environments)
        out.write(f"{label}: {n} environment{'s' * (n != 1)}"
                  f"{', every reference resolved' if not problems else ''}\n")
        for key in ("store", "notify"):
            if masked.get(key):
                out.write(f"\n[{key}]\n")
                _write(out, masked[key], 1)
        for name, env in masked["environments"].items():
            out.write(f"\n[environments.{name}]\n")
            env.pop("problems", None)
            _write(out, env, 1)
        if config.warnings:
            out.write("\n")
        for line in config.warnings:
            err.write(f"driftwatch: warning: {line}\n")
        for line in problems:
            err.write(f"driftwatch: error: {line}\n")
    return EXIT_ERROR if problems else EXIT_OK


def _write(out: TextIO, value: Any, depth: int) -> None:
    pad = "  " * depth
    for key, item in value.items():
        if item in (None, {}, [], ()):
            continue
        if isinstance(item, dict) and key not in ("headers", "capture", "json"):
            out.write(f"{pad}{key}:\n")
            _write(out, item, depth + 1)
        elif isinstance(item, list) and item and isinstance(item[0], dict):
            for i, element in enumerate(item):
                out.write(f"{pad}{key}[{i}]:\n")
                _write(out, element, depth + 1)
        else:
            out.write(f"{pad}{key} = {json.dumps(item, ensure_ascii=False)}\n")
