"""Which environments the dashboard shows, and the picker every page shares.

From the configuration (`checks.config.load_config`: DRIFTWATCH_CONFIG, else ./driftwatch.toml)
when there is one, with `secret:NAME` references fed from st.secrets; otherwise one
environment from DATABASE_URL/DRIFTWATCH_SCHEMA, or the embedded demo when that is unset
too (dashboard/data.py's `target()`). An environment whose secrets cannot be resolved is
still listed, with its one-line error, so the others stay usable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from checks.errors import DriftwatchError
from dashboard import data

PICKED = "environment"  # session key and query parameter


@dataclass(frozen=True)
class Environment:
    name: str
    database_url: str | None
    schema: str | None
    migrations: str | None
    demo: str | None = None  # what the demo database holds, when this is the demo
    error: str | None = None  # why this environment cannot be checked (unset secret…)
    config: Any = field(default=None, compare=False, repr=False)  # checks.config's EnvironmentConfig

    @property
    def shown_url(self) -> str:
        return data.redact(self.database_url) if self.database_url else "(none)"


def config_path() -> Path | None:
    """DRIFTWATCH_CONFIG, else ./driftwatch.toml when it exists."""
    configured = data.setting("DRIFTWATCH_CONFIG")
    if configured:
        return Path(configured)
    default = Path.cwd() / "driftwatch.toml"
    return default if default.is_file() else None


def secrets_mapping() -> dict[str, Any]:
    """st.secrets as a plain mapping for `secret:NAME` references (empty without a secrets file)."""
    try:
        return {k: v for k, v in st.secrets.items()}
    except FileNotFoundError:
        return {}


def load() -> list[Environment]:
    """Every environment, in the configuration's order; errors are one line, never a traceback."""
    path = config_path()
    if path is not None:
        return _from_config(path)
    try:
        t = data.target()
    except DriftwatchError as exc:
        return [Environment("default", None, None, None, error=data.one_line(exc))]
    return [Environment("demo" if t.demo else "default", t.url, t.schema_path,
                        _sibling_migrations(t.schema_path), demo=t.demo)]


def _sibling_migrations(schema: str) -> str | None:
    folder = Path(schema).parent / "migrations"
    return str(folder) if folder.is_dir() else None


def _load_config(path: Path) -> Any:
    from checks.config import load_config

    return load_config(path, secrets=secrets_mapping())


def _from_config(path: Path) -> list[Environment]:
    try:
        config = _load_config(path)
    except DriftwatchError as exc:
        return [Environment("default", None, None, None, error=data.one_line(exc))]
    demo = "the sample app, deployed by the local Coolify" if data.setting("DRIFTWATCH_DEMO_OPERATOR") else None
    found = []
    for name, env in config.environments.items():
        schema, migrations = _text(env.schema_path), _text(env.migrations)
        if env.git is not None:  # the clone's working tree, for actions; checks read the deployed commit
            schema = str(Path(env.git.repo) / env.git.schema_path)
            migrations = str(Path(env.git.repo) / env.git.migrations) if env.git.migrations else None
        problems = env.database_problems
        found.append(Environment(name=name, database_url=_text(env.database_url), schema=schema,
                                 migrations=migrations, demo=demo,
                                 error=str(problems[0]) if problems else None, config=env))
    return found


def store_url() -> str | None:
    """The history store: the configuration's [store] url, else DRIFTWATCH_HISTORY_URL, else the default."""
    path = config_path()
    if path is not None:
        try:
            url = _load_config(path).store.url
        except DriftwatchError:
            url = None
        if url:
            return str(url)
    return data.setting("DRIFTWATCH_HISTORY_URL")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):  # pydantic SecretStr
        value = value.get_secret_value()
    return str(value)


@st.cache_data(ttl=30, show_spinner=False)
def _cached() -> list[Environment]:
    return load()


def all_environments() -> list[Environment]:
    return _cached()


def picker() -> Environment:
    """The sidebar's environment picker; the choice survives page changes and sits in the URL."""
    envs = all_environments()
    names = [e.name for e in envs]
    wanted = st.query_params.get(PICKED) or st.session_state.get(PICKED)
    index = names.index(wanted) if wanted in names else 0
    choice = st.sidebar.selectbox("Environment", names, index=index, key="environment_picker",
                                  disabled=len(names) == 1)
    st.session_state[PICKED] = choice
    if len(names) > 1:
        st.query_params[PICKED] = choice
    return envs[names.index(choice)]


def current() -> Environment:
    """The environment picked in this session (the first one before any choice)."""
    envs = all_environments()
    wanted = st.session_state.get(PICKED)
    return next((e for e in envs if e.name == wanted), envs[0])
