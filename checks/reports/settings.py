"""What a report needs from the configuration: where the store is, which secrets to remove,
and the environment's database. One function, for the CLI and the dashboard page alike.

Config file: the given path, else $DRIFTWATCH_CONFIG, else ./driftwatch.toml when present;
none at all is fine (the store then comes from --history-url or $DRIFTWATCH_HISTORY_URL, and
redaction works from its patterns alone).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .redact import secrets_in


@dataclass(frozen=True)
class Settings:
    store_url: str | None = None
    secrets: tuple[str, ...] = ()
    database: str | None = None  # the environment's database URL, redacted
    environments: tuple[str, ...] = ()
    config_path: Path | None = None

    def __repr__(self) -> str:  # never print the secrets
        return f"Settings(store_url=…, secrets=<{len(self.secrets)}>, database={self.database!r}, config={self.config_path})"


def config_path(given: str | os.PathLike[str] | None = None) -> Path | None:
    if given:
        return Path(given)
    env = os.environ.get("DRIFTWATCH_CONFIG", "").strip()
    if env:
        return Path(env)
    default = Path("driftwatch.toml")
    return default if default.is_file() else None


def settings(path: str | os.PathLike[str] | None = None, environment: str | None = None, *,
             secrets: Mapping[str, Any] | None = None) -> Settings:
    """Read the config (if any). Raise UsageError for an unknown environment or a config error.
    `secrets` are the dashboard's st.secrets, for `secret:NAME` references."""
    found = config_path(path)
    if found is None:
        return Settings()
    try:
        from ..config import load_config
    except ImportError:
        raise UsageError(f"{found}: this Driftwatch cannot read configuration files yet") from None
    config = load_config(found, secrets=secrets) if secrets is not None else load_config(found)
    values = secrets_in(config)
    if secrets:
        values += [v for v in secrets.values() if isinstance(v, str)]
    store = _get(config, "store", "url")
    envs = _get(config, "environments") or {}
    database = None
    if environment is not None:
        if environment not in envs:
            raise UsageError(f"{found}: no environment {environment!r} (known: {', '.join(sorted(envs)) or 'none'})")
        url = _get(envs[environment], "database_url")
        if isinstance(url, str) and url:
            from ..history.records import redact_database

            database = redact_database(url)
    return Settings(store if isinstance(store, str) and store else None, tuple(values), database,
                    tuple(sorted(envs)), found)


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if obj is None:
            return None
        if hasattr(obj, "get_secret_value"):
            obj = obj.get_secret_value()
        obj = obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)
    return obj.get_secret_value() if hasattr(obj, "get_secret_value") else obj
