"""`driftwatch.toml`: which environments to watch and how, in one validated place.

The CLI, the poller and the dashboard all load the file here (the dashboard passes its
`st.secrets` as a plain mapping; this module never imports streamlit). Loading happens in
three steps, so that each failure is reported where it belongs:

1. the TOML is parsed (a syntax error names `file:line:column`) and validated as written,
   with references left as they are: a wrong key, type or condition is a `ConfigError` for
   the whole file, one line per problem, naming the key path
   (`driftwatch.toml: environments.production.health[1].url: not a URL`);
2. each environment's secret references (`env:NAME`, `secret:NAME`, `file:PATH`, or
   `${env:NAME}` inside a longer string) are resolved. An unset one is a problem of that
   environment only, kept on the resolved models (`EnvironmentConfig.problems`, and each
   check's own `problems`): the other environments, and that environment's other checks,
   still run; a probe given a check with problems reports `error`;
3. the resolved values are validated again (a variable holding "not a URL" is named).

Relative paths (schema, migrations, git.repo, migrate.cwd, file: references, a SQLite store) are
relative to the configuration file's folder, so the file means the same from any directory.
A literal password in a database URL or a secret-looking header is accepted with a
warning (`Config.warnings`); `masked()` gives what may be shown.
"""
from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer,
                      ValidationError, field_validator, model_validator)

from .errors import UsageError
from .monitor.conditions import Condition, ConditionError
from .monitor.conditions import parse as parse_condition

CONFIG_ENV = "DRIFTWATCH_CONFIG"
DEFAULT_FILE = "driftwatch.toml"

# Defaults users can change in [defaults]; documented in the README's configuration section.
DEFAULT_INTERVAL_S = 60
DEFAULT_FAILURE_THRESHOLD = 2
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_CONCURRENCY = 64

_REFERENCE = re.compile(r"^(env|secret|file):(.+)$", re.DOTALL)
_EMBEDDED = re.compile(r"\$\{(env|secret|file):([^}]+)\}")
# Header names whose values are credentials whatever they look like.
SECRET_HEADER = re.compile(r"authorization|cookie|token|secret|api[-_]?key|password|credential",
                           re.IGNORECASE)
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class ConfigError(UsageError):
    """The configuration cannot be used. `problems` holds one line per problem; str() is
    the first, with a count of the others, so the generic CLI handler still prints one line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        more = len(self.problems) - 1
        super().__init__(self.problems[0] + (f" (and {more} more problem{'s' * (more > 1)})" if more else ""))


@dataclass(frozen=True)
class ConfigProblem:
    """A key that could not be resolved: `path` is the full key path, `message` one line
    (`environments.production.database_url: env:DATABASE_URL is not set`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return self.message


def is_reference(value: Any) -> bool:
    return isinstance(value, str) and (_REFERENCE.match(value) is not None or _EMBEDDED.search(value) is not None)


# --- field types -------------------------------------------------------------------------

def _url(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("expected a URL string")
    if is_reference(value):
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("not a URL (expected http:// or https://)")
    return value


def _database_url(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("expected a PostgreSQL URL string")
    if is_reference(value):
        return value
    scheme = urlsplit(value).scheme.split("+")[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError("not a PostgreSQL URL (expected postgresql://…)")
    return value


def _condition(value: Any) -> Condition:
    if isinstance(value, Condition):
        return value
    try:
        return parse_condition(value)
    except ConditionError as exc:
        raise ValueError(str(exc)) from None


def _capture(value: Any) -> Condition:
    """A capture is a placeholder expression such as `[BODY].id` (no operator)."""
    if isinstance(value, Condition):
        return value
    if not isinstance(value, str) or not value.strip().startswith("[BODY]"):
        raise ValueError("a capture is a [BODY] path such as [BODY].id")
    try:
        return parse_condition(value.strip() + " == x")
    except ConditionError as exc:
        raise ValueError(str(exc)) from None


def _method(value: Any) -> Any:
    if not isinstance(value, str) or value.upper() not in _METHODS:
        raise ValueError(f"not an HTTP method (expected one of {', '.join(_METHODS)})")
    return value.upper()


Url = Annotated[str, BeforeValidator(_url)]
DatabaseUrl = Annotated[str, BeforeValidator(_database_url)]
Method = Annotated[str, BeforeValidator(_method)]
ConditionField = Annotated[Condition, BeforeValidator(_condition), PlainSerializer(str)]
CaptureField = Annotated[Condition, BeforeValidator(_capture),
                         PlainSerializer(lambda c: c.source.removesuffix(" == x"))]
Seconds = Annotated[float, Field(gt=0)]
Name = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _no_internal_keys(cls, data: Any) -> Any:
        """Fields filled in after loading (problems, secrets, path…) are not keys of the file."""
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                if info.exclude and (info.alias or name) in data:
                    raise _KeyedError(info.alias or name, "unknown key")
        return data


class _Check(_Model):
    # Filled in after validation, never from the file (`exclude` keeps them out of dumps):
    environment: str = Field("", exclude=True)
    path: str = Field("", exclude=True)                    # key path, for messages
    problems: tuple[ConfigProblem, ...] = Field((), exclude=True)
    secrets: tuple[str, ...] = Field((), exclude=True, repr=False)  # resolved values to scrub


class HealthCheck(_Check):
    """One endpoint, checked on its interval. Secrets already resolved."""

    name: Name
    url: Url
    method: Method = "GET"
    headers: dict[str, str] = Field({}, repr=False)
    json_body: Any = Field(None, alias="json", repr=False)
    body: str | None = Field(None, repr=False)
    timeout_s: Seconds = DEFAULT_TIMEOUT_S
    interval_s: Seconds = DEFAULT_INTERVAL_S
    conditions: tuple[ConditionField, ...] = Field(("[STATUS] < 400",), validate_default=True)
    verify_tls: bool = True
    follow_redirects: bool = True

    @field_validator("conditions", mode="before")
    @classmethod
    def _default_conditions(cls, value: Any) -> Any:
        return value if value else ("[STATUS] < 400",)


class SmokeStep(_Model):
    """One request of a smoke check. `url`, `headers` and `json`/`body` may hold `{run_id}`
    and `{capture_name}` placeholders, filled in when the step runs."""

    name: str | None = None
    method: Method = "GET"
    url: Url
    headers: dict[str, str] = Field({}, repr=False)
    json_body: Any = Field(None, alias="json", repr=False)
    body: str | None = Field(None, repr=False)
    conditions: tuple[ConditionField, ...] = Field(("[STATUS] < 400",), validate_default=True)
    capture: dict[str, CaptureField] = {}
    always: bool = False
    timeout_s: Seconds | None = None

    @field_validator("conditions", mode="before")
    @classmethod
    def _default_conditions(cls, value: Any) -> Any:
        return value if value else ("[STATUS] < 400",)


class SmokeCheck(_Check):
    """A sequence of requests (create, then delete what was created). `headers` apply to
    every step (a step's own headers win); `timeout_s` bounds the whole sequence."""

    name: Name
    interval_s: Seconds = DEFAULT_INTERVAL_S
    timeout_s: Seconds = 30
    headers: dict[str, str] = Field({}, repr=False)
    verify_tls: bool = True
    steps: tuple[SmokeStep, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _captures_defined_before_use(self) -> SmokeCheck:
        known: set[str] = {"run_id"}
        for i, step in enumerate(self.steps):
            for used in _template_names(step):
                if used not in known:
                    raise _KeyedError(f"steps[{i}]", f"{{{used}}} is not captured by an earlier step "
                                                     "(captures: " + ", ".join(sorted(known)) + ")")
            known.update(step.capture)
        return self


class GitSource(_Model):
    """Read the schema and migrations from a local clone at the deployed commit."""

    repo: Path = Path(".")
    schema_path: str = Field("prisma/schema.prisma", alias="schema")  # inside the repository
    migrations: str | None = "prisma/migrations"  # inside the repository
    ref: str = "main"
    fetch: bool = False


class CoolifyConfig(_Check):
    url: Url
    token: str = Field(repr=False)
    application: Name
    timeout_s: Seconds = DEFAULT_TIMEOUT_S


class MigrateCommand(_Model):
    """The application's own deploy command (`npx prisma migrate deploy`…), offered on the
    dashboard's Actions page beside Driftwatch's deploy. Only a command written here runs:
    nobody types a shell command into a browser."""

    command: str = Field(min_length=1)
    cwd: Path = Path(".")
    timeout_s: Seconds = 600


class EnvironmentConfig(_Model):
    """One watched environment, secrets resolved. `problems` lists the references that
    could not be resolved (each check also carries its own); `database_problems` those
    under database_url, which make the drift and migration checks `error`."""

    name: str = Field("", exclude=True)
    database_url: DatabaseUrl | None = Field(None, repr=False)
    schema_path: Path | None = Field(None, alias="schema")
    migrations: Path | None = None
    interval_s: Seconds = DEFAULT_INTERVAL_S
    failure_threshold: Annotated[int, Field(ge=1)] = DEFAULT_FAILURE_THRESHOLD
    git: GitSource | None = None
    coolify: CoolifyConfig | None = None
    migrate: MigrateCommand | None = None
    health: tuple[HealthCheck, ...] = ()
    smoke: tuple[SmokeCheck, ...] = ()
    problems: tuple[ConfigProblem, ...] = Field((), exclude=True)
    secrets: tuple[str, ...] = Field((), exclude=True, repr=False)

    @model_validator(mode="after")
    def _one_schema_source(self) -> EnvironmentConfig:
        if self.schema_path is not None and self.git is not None:
            raise _KeyedError("git", "set either schema (a local file) or [git] (the schema at the "
                                     "deployed commit), not both")
        if self.database_url is not None and self.schema_path is None and self.git is None:
            raise _KeyedError("schema", "required when database_url is set (or a [git] table)")
        for kind, checks in (("health", self.health), ("smoke", self.smoke)):
            seen: dict[str, int] = {}
            for i, check in enumerate(checks):
                if check.name in seen:
                    raise _KeyedError(f"{kind}[{i}].name",
                                      f"{check.name!r} is already the name of {kind}[{seen[check.name]}]")
                seen[check.name] = i
        return self

    @property
    def database_problems(self) -> tuple[ConfigProblem, ...]:
        return tuple(p for p in self.problems if p.path.endswith(".database_url"))

    def problems_under(self, key: str) -> tuple[ConfigProblem, ...]:
        """The problems under one key of this environment (`coolify`, `database_url`, `git`)."""
        prefix = f"environments.{_key(self.name)}.{key}"
        return tuple(p for p in self.problems if p.path == prefix or p.path.startswith((prefix + ".", prefix + "[")))

    def http_checks(self) -> list[HealthCheck | SmokeCheck]:
        return [*self.health, *self.smoke]


class StoreConfig(_Model):
    url: str | None = Field(None, repr=False)


class NotifyConfig(_Model):
    webhook: Url | None = Field(None, repr=False)
    dashboard_url: Url | None = None
    timeout_s: Seconds = 5


class Defaults(_Model):
    """Values every environment inherits unless it sets its own."""

    interval_s: Seconds = DEFAULT_INTERVAL_S
    failure_threshold: Annotated[int, Field(ge=1)] = DEFAULT_FAILURE_THRESHOLD
    timeout_s: Seconds = DEFAULT_TIMEOUT_S


class Config(_Model):
    """The whole file. `environments` keeps the file's order."""

    path: Path | None = Field(None, exclude=True)
    concurrency: Annotated[int, Field(ge=1, le=10_000)] = DEFAULT_CONCURRENCY
    defaults: Defaults = Defaults()
    store: StoreConfig = StoreConfig()
    notify: NotifyConfig | None = None
    environments: dict[str, EnvironmentConfig] = Field(min_length=1)
    warnings: tuple[str, ...] = Field((), exclude=True)
    problems: tuple[ConfigProblem, ...] = Field((), exclude=True)  # outside environments (notify)

    def environment(self, name: str) -> EnvironmentConfig:
        try:
            return self.environments[name]
        except KeyError:
            raise UsageError(f"no environment {name!r} in {self.path or DEFAULT_FILE} (have: "
                             + ", ".join(self.environments) + ")") from None

    def masked(self) -> dict[str, Any]:
        """The resolved configuration as JSON, every secret masked: what `config check` prints."""
        return _mask_config(self)


class _KeyedError(ValueError):
    """A model-level error that belongs to one key below the model (made into a key path)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


# --- loading -----------------------------------------------------------------------------

def config_path(path: Path | str | None = None) -> Path:
    """`--config`, else $DRIFTWATCH_CONFIG, else ./driftwatch.toml."""
    if path:
        return Path(path)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return Path(DEFAULT_FILE)


def load_config(path: Path | str | None = None, *, secrets: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Read, validate and resolve the configuration; raise ConfigError on a bad file.

    `secrets` answers `secret:NAME` references (the dashboard passes `st.secrets`; a dotted
    NAME reads a nested table); `environ` defaults to os.environ.
    """
    file = config_path(path)
    label = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        how = ("--config" if path else f"${CONFIG_ENV}" if os.environ.get(CONFIG_ENV) else "the default")
        raise ConfigError([f"{label}: no such file (from {how}; pass --config FILE or set {CONFIG_ENV})"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{label}: cannot read: {getattr(exc, 'strerror', None) or exc}"]) from None
    return parse_config(text, label=label, base=file.resolve().parent, secrets=secrets, environ=environ,
                        path=file)


def parse_config(text: str, *, label: str = DEFAULT_FILE, base: Path | None = None,
                 secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
                 path: Path | None = None) -> Config:
    """`load_config` on text already read (tests, the dashboard's editor)."""
    base = base or Path.cwd()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_toml_error(label, str(exc))]) from None
    raw = _inherit_defaults(raw)
    # 1. as written: structure, types, conditions; references stand in for their values
    try:
        written = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_messages(label, exc)) from None
    except _KeyedError as exc:  # pragma: no cover - pydantic wraps these
        raise ConfigError([f"{label}: {exc}"]) from None
    resolver = _Resolver(base=base, secrets=secrets, environ=os.environ if environ is None else environ)
    warnings: list[str] = []
    problems: list[str] = []
    top: dict[str, Any] = {}
    top_problems: list[ConfigProblem] = []
    for key in ("store", "notify"):
        if key in raw:
            value, found, _ = resolver.resolve(raw[key], key)
            if key == "store":  # without its store the poller cannot record anything: fatal
                problems.extend(f"{label}: {p.message}" for p in found)
            else:  # an unset webhook only silences notifications
                top_problems.extend(found)
                for p in found:
                    value[p.path.split(".", 1)[1]] = None
            top[key] = value
    if problems:
        raise ConfigError(problems)
    store = StoreConfig.model_validate(top.get("store", {}))
    if store.url and "://" not in store.url:  # a SQLite file path, relative to the config
        store = store.model_copy(update={"url": str(_relative(base, store.url))})
    notify = None
    if "notify" in top:
        try:
            notify = NotifyConfig.model_validate(top["notify"])
        except ValidationError as exc:
            raise ConfigError(_messages(label, exc, prefix=("notify",))) from None
    environments = {}
    for name, env_raw in raw["environments"].items():
        environments[name] = _resolve_environment(name, env_raw, written.environments[name], resolver,
                                                  base, label, warnings)
    warnings.extend(_literal_secret_warnings(raw, label))
    config = Config(concurrency=written.concurrency, defaults=written.defaults, store=store, notify=notify,
                    environments=environments)
    return config.model_copy(update={"path": path, "warnings": tuple(warnings), "problems": tuple(top_problems)})


def _inherit_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """Fill each environment's and check's interval/threshold/timeout from [defaults] and
    the environment, so the resolved models say exactly what will run."""
    defaults = raw.get("defaults") if isinstance(raw.get("defaults"), dict) else {}
    envs = raw.get("environments")
    if not isinstance(envs, dict):
        return raw
    out = dict(raw)
    out["environments"] = {}
    for name, env in envs.items():
        if not isinstance(env, dict):
            out["environments"][name] = env
            continue
        env = dict(env)
        for key in ("interval_s", "failure_threshold"):
            if key not in env and key in defaults:
                env[key] = defaults[key]
        for kind in ("health", "smoke"):
            if isinstance(env.get(kind), list):
                checks = []
                for check in env[kind]:
                    if isinstance(check, dict):
                        check = dict(check)
                        check.setdefault("interval_s", env.get("interval_s", DEFAULT_INTERVAL_S))
                        if kind == "health":
                            if "timeout_s" in defaults:
                                check.setdefault("timeout_s", defaults["timeout_s"])
                    checks.append(check)
                env[kind] = checks
        if isinstance(env.get("coolify"), dict) and "timeout_s" in defaults:
            env["coolify"] = {"timeout_s": defaults["timeout_s"], **env["coolify"]}
        out["environments"][name] = env
    return out


def _resolve_environment(name: str, raw: dict[str, Any], written: EnvironmentConfig, resolver: _Resolver,
                         base: Path, label: str, warnings: list[str]) -> EnvironmentConfig:
    prefix = f"environments.{_key(name)}"
    resolved, problems, secret_at = resolver.resolve(raw, prefix, skip=("conditions", "capture"))
    # 3. a resolved value may itself be invalid (a variable holding "not a URL"): that is a
    # problem of this environment; the reference stands in for it so the rest still loads
    for _ in range(20):
        try:
            env = EnvironmentConfig.model_validate(resolved)
            break
        except ValidationError as exc:
            errors = exc.errors()
            fixed = False
            for err in errors:
                loc = (("environments", name) + tuple(err["loc"]))
                path = _path(loc)
                if path in secret_at:
                    problems.append(ConfigProblem(path, f"{path}: {secret_at[path][0]}: {_message(err)}"))
                    _put(resolved, tuple(err["loc"]), secret_at.pop(path)[0])
                    fixed = True
            if not fixed:  # cannot happen for values the first pass accepted, but say it plainly
                raise ConfigError(_messages(label, exc, prefix=("environments", name))) from None
    else:  # pragma: no cover
        raise ConfigError([f"{label}: {prefix}: cannot be resolved"])
    secrets = tuple(dict.fromkeys(x for p, (_, v) in secret_at.items() for x in _secret_parts(p, v)))
    env = _fill_paths(env, base)

    def own(check_path: str) -> tuple[ConfigProblem, ...]:
        return tuple(p for p in problems if p.path == check_path or p.path.startswith((check_path + ".", check_path + "[")))

    def secrets_under(check_path: str, check: Any) -> tuple[str, ...]:
        values = [x for p, (_, v) in secret_at.items() if p.startswith((check_path + ".", check_path + "["))
                  for x in _secret_parts(p, v)]
        for headers in _all_headers(check):
            values += [v for k, v in headers.items() if SECRET_HEADER.search(k) and not is_reference(v)]
        return tuple(dict.fromkeys(v for v in values if len(v) >= 4))

    health = tuple(c.model_copy(update={"environment": name, "path": f"{prefix}.health[{i}]",
                                        "problems": own(f"{prefix}.health[{i}]"),
                                        "secrets": secrets_under(f"{prefix}.health[{i}]", c)})
                   for i, c in enumerate(env.health))
    smoke = tuple(c.model_copy(update={"environment": name, "path": f"{prefix}.smoke[{i}]",
                                       "problems": own(f"{prefix}.smoke[{i}]"),
                                       "secrets": secrets_under(f"{prefix}.smoke[{i}]", c)})
                  for i, c in enumerate(env.smoke))
    coolify = env.coolify
    if coolify is not None:
        coolify = coolify.model_copy(update={"environment": name, "path": f"{prefix}.coolify",
                                             "problems": own(f"{prefix}.coolify"),
                                             "secrets": tuple(v for v in [coolify.token] if v and not is_reference(v))})
    return env.model_copy(update={"name": name, "health": health, "smoke": smoke, "coolify": coolify,
                                  "problems": tuple(problems), "secrets": secrets})


def _fill_paths(env: EnvironmentConfig, base: Path) -> EnvironmentConfig:
    update: dict[str, Any] = {}
    if env.schema_path is not None:
        update["schema_path"] = _relative(base, env.schema_path)
    if env.migrations is not None:
        update["migrations"] = _relative(base, env.migrations)
    elif env.schema_path is not None:
        sibling = _relative(base, env.schema_path)
        sibling = (sibling if sibling.is_dir() else sibling.parent) / "migrations"
        update["migrations"] = sibling if sibling.is_dir() else None
    if env.git is not None:
        update["git"] = env.git.model_copy(update={"repo": _relative(base, env.git.repo)})
    if env.migrate is not None:
        update["migrate"] = env.migrate.model_copy(update={"cwd": _relative(base, env.migrate.cwd)})
    return env.model_copy(update=update)


def _relative(base: Path, value: Path | str) -> Path:
    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else (base / path).resolve()


class _Resolver:
    """Turns references into values; remembers which key paths held secrets."""

    def __init__(self, *, base: Path, secrets: Mapping[str, Any] | None, environ: Mapping[str, str]) -> None:
        self.base = base
        self.secrets = secrets
        self.environ = environ

    def resolve(self, value: Any, path: str, skip: tuple[str, ...] = ()
                ) -> tuple[Any, list[ConfigProblem], dict[str, tuple[str, str | None]]]:
        problems: list[ConfigProblem] = []
        secret_at: dict[str, tuple[str, str | None]] = {}

        def walk(v: Any, where: str) -> Any:
            if isinstance(v, dict):
                return {k: (v2 if k in skip else walk(v2, f"{where}.{_key(k)}")) for k, v2 in v.items()}
            if isinstance(v, list):
                return [walk(v2, f"{where}[{i}]") for i, v2 in enumerate(v)]
            if not isinstance(v, str):
                return v
            whole = _REFERENCE.match(v)
            if whole:
                got, why = self.lookup(whole.group(1), whole.group(2).strip())
                if why:
                    problems.append(ConfigProblem(where, f"{where}: {v} {why}"))
                    return v
                secret_at[where] = (v, got)
                return got
            if _EMBEDDED.search(v):
                missing: list[str] = []

                inner: list[str] = []

                def one(m: re.Match[str]) -> str:
                    got, why = self.lookup(m.group(1), m.group(2).strip())
                    if why:
                        missing.append(f"{m.group(1)}:{m.group(2)} {why}")
                        return m.group(0)
                    inner.append(got or "")
                    return got or ""
                out = _EMBEDDED.sub(one, v)
                if missing:
                    problems.append(ConfigProblem(where, f"{where}: " + "; ".join(missing)))
                    return v
                secret_at[where] = (v, out)
                for i, part in enumerate(inner):
                    secret_at[f"{where}#{i}"] = (v, part)  # the bare secret (not "Bearer …"), scrubbed too
                return out
            return v

        return walk(value, path), problems, secret_at

    def lookup(self, kind: str, name: str) -> tuple[str | None, str | None]:
        """(value, None) or (None, why it is unset)."""
        if kind == "env":
            value = self.environ.get(name)
            return (value, None) if value else (None, "is not set")
        if kind == "secret":
            if self.secrets is None:
                return None, "is not available (secret: references are read by the dashboard from st.secrets)"
            node: Any = self.secrets
            for part in name.split("."):
                try:
                    node = node[part]
                except (KeyError, TypeError, IndexError):
                    return None, "is not set in the dashboard's secrets"
            if isinstance(node, (str, int, float)) and str(node):
                return str(node), None
            return None, "is not a string in the dashboard's secrets"
        file = _relative(self.base, name)
        try:
            text = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror or type(exc).__name__})"
        return (text, None) if text else (None, "is an empty file")


# --- messages ----------------------------------------------------------------------------

def _toml_error(label: str, message: str) -> str:
    m = re.search(r"\(at line (\d+), column (\d+)\)", message)
    text = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    if m:
        return f"{label}:{m.group(1)}:{m.group(2)}: {text}"
    return f"{label}: {text}" + (" (at the end of the file)" if "end of document" in message else "")


def _key(k: Any) -> str:
    if isinstance(k, int):
        return f"[{k}]"
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", str(k)) else '"' + str(k).replace('"', '\\"') + '"'


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _key(_FIELD_NAMES.get(part, part))
    return out


_FIELD_NAMES = {"json_body": "json", "schema_path": "schema"}


def _message(err: Mapping[str, Any]) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("value_error", "assertion_error"):
        inner = ctx.get("error")
        return getattr(inner, "message", None) or str(inner) if inner else err["msg"]
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {_show(err.get('input'))}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, got {_show(err.get('input'))}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_show(err.get('input'))}"
    if kind == "string_type":
        return f"expected a string, got {_show(err.get('input'))}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a table, got {_show(err.get('input'))}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {_show(err.get('input'))}"
    if kind == "greater_than":
        return f"must be greater than {ctx.get('gt'):g}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "path_type":
        return "expected a path string"
    return err["msg"]


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a table" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _messages(label: str, exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[str]:
    out = []
    errors = exc.errors()
    for err in errors:
        if err["type"] == "too_short" and any(len(e["loc"]) > len(err["loc"]) and e["loc"][:len(err["loc"])] == err["loc"]
                                              for e in errors):
            continue  # "steps: must not be empty" only because its one step was invalid
        loc = prefix + tuple(err["loc"])
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, _KeyedError):
            loc = loc + tuple(_split_key(inner.key))
        # pydantic names union members and function validators in the location; drop them
        loc = tuple(p for p in loc if isinstance(p, int) or not str(p).startswith(("function-", "list[", "dict[")))
        path = _path(loc)
        out.append(f"{label}: {path}: {_message(err)}" if path else f"{label}: {_message(err)}")
    return list(dict.fromkeys(out))


def _split_key(key: str) -> list[Any]:
    parts: list[Any] = []
    for m in re.finditer(r"([^.\[\]]+)|\[(\d+)\]", key):
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
    return parts


def _put(tree: Any, loc: tuple[Any, ...], value: Any) -> None:
    names = {"json_body": "json", "schema_path": "schema"}
    for part in loc[:-1]:
        tree = tree[names.get(part, part)]
    last = loc[-1]
    tree[names.get(last, last)] = value


# --- secrets: warnings and masking ---------------------------------------------------------

# Keys whose resolved values say where, not who: shown (URLs without their credentials).
_PUBLIC_KEYS = frozenset({"url", "database_url", "dashboard_url", "repo", "schema", "migrations", "name",
                          "application", "ref", "method"})


def _secret_parts(path: str, value: str | None) -> list[str]:
    """The parts of a resolved value that must never be shown: all of it, except for keys
    that name a place (a URL from env:API_URL), where only a password or token inside counts."""
    if not value:
        return []
    key = re.sub(r"(\[\d+\]|#\d+)+$", "", path).rsplit(".", 1)[-1]
    if key not in _PUBLIC_KEYS:
        return [value] if len(value) >= 4 else []
    parts: list[str] = []
    try:
        split = urlsplit(value)
        if split.password:
            parts.append(split.password)
        parts += [v for k, v in parse_qsl(split.query) if SECRET_HEADER.search(k) or k.lower() in ("key", "sig")]
    except ValueError:
        pass
    return [p for p in parts if len(p) >= 4]

def _literal_password(url: str) -> bool:
    try:
        parts = urlsplit(url)
        if parts.password:
            return True
    except ValueError:
        return False
    return any(k.lower() in ("password", "token", "apikey", "api_key") for k, _ in parse_qsl(parts.query))


def _literal_secret_warnings(raw: dict[str, Any], label: str) -> list[str]:
    found: list[str] = []

    def walk(v: Any, where: str, key: str, in_headers: bool) -> None:
        if isinstance(v, dict):
            for k, v2 in v.items():
                if k in ("conditions", "capture"):
                    continue
                walk(v2, f"{where}.{_key(k)}" if where else _key(k), str(k), key == "headers")
        elif isinstance(v, list):
            for i, v2 in enumerate(v):
                walk(v2, f"{where}[{i}]", key, False)
        elif isinstance(v, str) and not is_reference(v):
            if key in ("database_url", "url") and "://" in v and _literal_password(v):
                found.append(f"{label}: {where}: a literal password in the URL; use a reference "
                             "such as \"env:DATABASE_URL\"")
            elif in_headers and SECRET_HEADER.search(key):
                found.append(f"{label}: {where}: a literal credential in a header; use a reference "
                             "such as \"env:API_TOKEN\"")
            elif key == "token":
                found.append(f"{label}: {where}: a literal token; use a reference such as \"env:COOLIFY_TOKEN\"")
            elif key == "webhook":
                found.append(f"{label}: {where}: a literal webhook URL (it is a credential); use a "
                             "reference such as \"env:SLACK_WEBHOOK_URL\"")

    walk(raw, "", "", False)
    return found


def mask_url(url: str) -> str:
    """A URL a human may see: no password, no credential-looking query value."""
    from .history.records import redact_database, scrub_text

    scheme = url.split("://", 1)[0].split("+")[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        return redact_database(url) or ""
    text = scrub_text(url)
    return re.sub(r"([?&](?:password|token|apikey|api_key|key|secret|sig|signature)=)[^&#]*", r"\1***",
                  text, flags=re.IGNORECASE)


def _mask_config(config: Config) -> dict[str, Any]:
    out: dict[str, Any] = {"file": str(config.path) if config.path else None, "concurrency": config.concurrency,
                           "defaults": config.defaults.model_dump(mode="json")}
    out["store"] = {"url": mask_url(config.store.url) if config.store.url else None}
    if config.notify is not None:
        out["notify"] = {"webhook": "***" if config.notify.webhook else None,
                         "dashboard_url": config.notify.dashboard_url, "timeout_s": config.notify.timeout_s}
    envs: dict[str, Any] = {}
    for name, env in config.environments.items():
        data = env.model_dump(mode="json", by_alias=True, exclude_none=True)
        if env.database_url:
            data["database_url"] = env.database_url if is_reference(env.database_url) else mask_url(env.database_url)
        if env.coolify is not None:
            data["coolify"]["url"] = mask_url(env.coolify.url)
            data["coolify"]["token"] = "***" if not is_reference(env.coolify.token) else env.coolify.token
        for kind in ("health", "smoke"):
            for check in data.get(kind, []):
                _mask_check(check)
                for step in check.get("steps", []):
                    _mask_check(step)
        data = _scrub_values(data, env.secrets)
        if env.problems:
            data["problems"] = [p.message for p in env.problems]
        envs[name] = data
    out["environments"] = envs
    return out


def _mask_check(check: dict[str, Any]) -> None:
    if "url" in check and not is_reference(check["url"]):
        check["url"] = mask_url(check["url"])
    headers = check.get("headers") or {}
    for k, v in headers.items():
        if SECRET_HEADER.search(k) and not is_reference(v):
            headers[k] = "***"


def _scrub_values(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for s in sorted(secrets, key=len, reverse=True):
            if len(s) >= 4:
                value = value.replace(s, "***")
        return value
    if isinstance(value, dict):
        return {k: _scrub_values(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_values(v, secrets) for v in value]
    return value


# --- helpers for the probes ----------------------------------------------------------------

_TEMPLATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _template_names(step: SmokeStep) -> list[str]:
    names: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            names.extend(_TEMPLATE.findall(v))
        elif isinstance(v, dict):
            for v2 in v.values():
                walk(v2)
        elif isinstance(v, list):
            for v2 in v:
                walk(v2)
    walk([step.url, step.headers, step.json_body, step.body])
    return names


def _all_headers(check: Any) -> list[dict[str, str]]:
    found = [getattr(check, "headers", {}) or {}]
    for step in getattr(check, "steps", ()):
        found.append(step.headers)
    return found
