"""The container files (Dockerfile, compose.yaml, .dockerignore) against the code they run.

This machine has a Docker client but no engine, so the image is never built here. What can be
proven without one is proven in two parts:

- static: the files are read as Docker and compose read them (instructions, exec-form JSON,
  `${VAR}` interpolation, YAML merge keys) and checked against the repository: every COPY source
  exists and is in the build context, no secret goes in, the user is not root, the commands
  parse with Driftwatch's own argparse parser, compose passes no literal password.
- the compose rehearsal: compose.yaml's services run as local processes the way compose would
  start them — a real PostgreSQL as `store` (its own healthcheck command, `pg_isready`, must pass
  first), then `dashboard` and both pollers with exactly the command (service `command`, else the
  Dockerfile's CMD), WORKDIR, ENV, env_file and environment of the files, as uid 10001 like the
  image's USER. Only what cannot exist outside a container is mapped, and each mapping is listed
  in `Container`: in-container paths (/app, /config, /data) to the repository and temporary
  files, the host `store:5432` to 127.0.0.1, port 8501 to a free port and the listen address
  0.0.0.0 to 127.0.0.1 (nothing here listens beyond loopback).
"""
from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import yaml

from browser_support import render_page
from checks.cli import build_parser
from tests.conftest import ROOT, SAMPLE_APP_CHECKS

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
IMAGE_UID = 10001  # the Dockerfile's `useradd --uid`; checked below
STOP_GRACE_S = 10  # compose's default stop_grace_period: SIGTERM, then SIGKILL after 10 s


# -- reading the files as Docker does ------------------------------------------------------------


def instructions(text: str | None = None) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = DOCKERFILE.read_text() if text is None else text
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, args = current.partition(" ")
        out.append((keyword.upper(), args.strip()))
        current = ""
    return out


def one(keyword: str) -> str:
    found = [args for kw, args in instructions() if kw == keyword]
    assert len(found) == 1, f"expected one {keyword} in the Dockerfile, found {len(found)}"
    return found[0]


def exec_form(args: str) -> list[str]:
    """An exec-form (JSON) argument list; shell form is refused: it would run under /bin/sh as
    PID 1, which does not pass SIGTERM on to Driftwatch."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(a, str) for a in value), args
    return value


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for kw, args in instructions():
        if kw == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def healthcheck_command() -> list[str]:
    args = one("HEALTHCHECK")
    assert " CMD " in f" {args} ", args
    return exec_form(args.split("CMD", 1)[1].strip())


def copies() -> list[tuple[list[str], str]]:
    out = []
    for kw, args in instructions():
        if kw == "COPY":
            parts = shlex.split(args)
            assert not any(p.startswith("--from") for p in parts), "multi-stage COPY: extend this test"
            parts = [p for p in parts if not p.startswith("--")]
            out.append((parts[:-1], parts[-1]))
    return out


def ignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _match(pattern: str, path: str) -> bool:
    """Docker's .dockerignore matching (Go's filepath.Match plus `**`); a pattern that matches a
    folder excludes everything under it."""
    pattern = pattern.strip("/")
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        else:
            regex += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    parts = path.split("/")
    return any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1))


def ignored(path: str) -> bool:
    """Whether `path` (relative to the build context) is left out of it by .dockerignore."""
    verdict = False
    for pattern in ignore_patterns():
        if pattern.startswith("!"):
            if _match(pattern[1:], path):
                verdict = False
        elif _match(pattern, path):
            verdict = True
    return verdict


def context_files(source: str) -> list[str]:
    """The files a `COPY source` takes from the build context (relative paths)."""
    path = ROOT / source
    if path.is_file():
        return [source.strip("/")] if not ignored(source.strip("/")) else []
    found = []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(ROOT).as_posix()
        if p.is_file() and not ignored(rel):
            found.append(rel)
    return found


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # PyYAML resolves the `<<: *driftwatch` merge keys


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


_INTERPOLATION = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `${VAR-…}`, `${VAR?…}`, `$$`."""

    def one_(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        have = variables.get(name)
        empty = not have if op and op.startswith(":") else have is None
        if op in (":?", "?") and empty:
            raise ValueError(f"required variable {name} is missing a value: {arg}")
        if op in (":-", "-") and empty:
            return arg
        if op in (":+", "+"):
            return "" if empty else arg
        return have or ""

    return _INTERPOLATION.sub(one_, value)


def service_command(service: dict[str, Any]) -> list[str]:
    """What compose runs: the service's `command`, else the image's CMD."""
    command = service.get("command")
    if command is None:
        return exec_form(one("CMD"))
    assert isinstance(command, list), "write compose commands as lists (exec form), as the Dockerfile does"
    return command


def driftwatch_args(argv: list[str]) -> list[str]:
    """The arguments after `python -m checks` (or the `driftwatch` entry point)."""
    if argv[:3] == ["python", "-m", "checks"]:
        return argv[3:]
    if argv[:1] == ["driftwatch"]:
        return argv[1:]
    raise AssertionError(f"not a Driftwatch command: {argv}")


def parse(argv: list[str]) -> Any:
    """Parse with the CLI's own parser; a flag it does not accept raises UsageError."""
    return build_parser().parse_args(driftwatch_args(argv))


def volumes(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read_only) of a service's short-syntax bind mounts."""
    out = {}
    for spec in service.get("volumes", []):
        source, target, *mode = spec.split(":")
        out[target] = (source, "ro" in (mode[0].split(",") if mode else []))
    return out


# -- static: the Dockerfile ----------------------------------------------------------------------


def test_the_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context():
    for path in (".venv/bin/python", ".git/HEAD", ".env", "examples/.env", ".streamlit/secrets.toml",
                 ".driftwatch/demo-pg/PG_VERSION", ".cache/prisma-oracle/oracle.mjs", "artefacts/run.log",
                 "data/history.sqlite3", "bench/out/x.json", "checks/__pycache__/cli.cpython-311.pyc",
                 ".pytest_cache/v", ".mypy_cache/x", ".ruff_cache/x", "driftwatch.toml", "history.sqlite3"):
        assert ignored(path), f"{path} would be sent to the engine with the build context"
    for path in ("requirements.txt", "checks/cli.py", "dashboard/app.py", ".streamlit/config.toml",
                 "examples/avatar-studio/driftwatch.toml", "checks/inspect/columns.sql"):
        assert not ignored(path), f"{path} is needed in the image but .dockerignore leaves it out"


def test_every_copy_source_exists_and_is_in_the_build_context():
    for sources, _dest in copies():
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert not ignored(source.strip("/")), f"COPY {source}: excluded by .dockerignore"
            assert context_files(source), f"COPY {source}: nothing of it is in the build context"


def test_no_secret_file_is_copied_into_the_image():
    copied = [f for sources, _ in copies() for s in sources for f in context_files(s)]
    assert copied
    for path in copied:
        name = Path(path).name
        assert name not in ("secrets.toml", ".env") and not name.endswith((".pem", ".key")), path
        assert not name.endswith((".sqlite3", ".sqlite")), path
    assert all(kw != "ARG" or "PASSWORD" not in args.upper() for kw, args in instructions())


def test_the_user_is_not_root_and_is_set_before_the_command():
    kinds = [kw for kw, _ in instructions()]
    users = [args for kw, args in instructions() if kw == "USER"]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith(("root:", "0:"))
    assert kinds.index("USER") < kinds.index("CMD")
    assert max(i for i, k in enumerate(kinds) if k == "USER") < kinds.index("CMD")
    useradd = next(args for kw, args in instructions() if kw == "RUN" and "useradd" in args)
    assert f"--uid {IMAGE_UID}" in useradd and users[-1] in useradd.split()
    # the state folder is the user's to write: the demo's PostgreSQL lives there
    assert dockerfile_env()["DRIFTWATCH_STATE_DIR"] == "/data" and "chown" in useradd and "/data" in useradd
    assert dockerfile_env()["XDG_DATA_HOME"] == "/data"  # the default history store, in the volume


def test_requirements_txt_is_what_is_installed_and_every_pin_is_exact():
    installs = [args for kw, args in instructions() if kw == "RUN" and "pip install" in args]
    assert installs == ["pip install -r requirements.txt"]
    assert (["requirements.txt"], ".") in copies()
    kinds = [kw for kw, _ in instructions()]
    # dependencies before the code, so a code change does not reinstall them
    first_code = min(i for i, (kw, a) in enumerate(instructions()) if kw == "COPY" and "checks/" in a)
    assert kinds.index("RUN") < first_code
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.]*", line), line
    names = {re.split(r"[\[=]", line)[0].lower() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    assert {"streamlit", "psycopg", "pgserver", "sqlalchemy"} <= names


def test_the_image_holds_what_the_dashboard_and_the_poller_need_at_run_time():
    copied = {f for sources, _ in copies() for s in sources for f in context_files(s)}
    for needed in ("dashboard/app.py", ".streamlit/config.toml", "checks/__main__.py",
                   "examples/avatar-studio/prisma/schema.prisma", "examples/services/avatar_backend.py"):
        assert needed in copied, needed
    # every packaged data file of the engine (catalog SQL, the Prisma grammar)
    for data in [*ROOT.glob("checks/**/*.sql"), *ROOT.glob("checks/**/*.lark")]:
        assert data.relative_to(ROOT).as_posix() in copied, data
    # `[environments.NAME.git]` reads the schema at the deployed commit with the git binary
    # (checks/monitor/gitsource.py), which python:*-slim does not have; and git refuses a clone
    # owned by another uid (a mounted host folder, read by uid 10001) as "dubious ownership".
    assert 'subprocess.run(["git"' in (ROOT / "checks" / "monitor" / "gitsource.py").read_text()
    runs = " ".join(args for kw, args in instructions() if kw == "RUN")
    assert re.search(r"apt-get install [^&]*\bgit\b", runs), "the image has no git"
    assert "safe.directory" in runs


def test_the_command_is_a_driftwatch_subcommand_its_parser_accepts():
    argv = exec_form(one("CMD"))
    args = parse(argv)
    assert args.command == "dashboard"
    exposed = int(one("EXPOSE"))
    assert args.port == exposed and args.address == "0.0.0.0"  # reachable through the published port
    probe = healthcheck_command()
    assert probe[:2] == ["python", "-c"] and f"http://127.0.0.1:{exposed}/_stcore/health" in probe[2]
    assert "--start-period" in one("HEALTHCHECK")


# -- static: compose.yaml ------------------------------------------------------------------------


def test_every_compose_service_command_parses_with_the_cli():
    found = {}
    for name, service in services().items():
        if name == "store":
            continue
        assert service.get("build") == "." and service.get("image") == "driftwatch", name
        args = parse(service_command(service))
        found[name] = args.command
        if args.command == "poll":
            assert not args.once, "a compose poller must keep running"
            assert args.config == "/config/driftwatch.toml"
    assert found == {"dashboard": "dashboard", "poller-1": "poll", "poller-2": "poll"}


def test_compose_sets_the_required_environment_and_no_literal_password():
    for name, service in services().items():
        if name == "store":
            continue
        env = service["environment"]
        assert env["DRIFTWATCH_CONFIG"] == "/config/driftwatch.toml"
        raw = env["DRIFTWATCH_HISTORY_URL"]
        password = re.fullmatch(r"postgresql://driftwatch:(.*)@store:5432/driftwatch", raw)
        assert password, raw
        assert re.fullmatch(r"\$\{STORE_PASSWORD[^}]*\}", password.group(1)), "a literal password in compose.yaml"
        url = urlsplit(interpolate(raw, {"STORE_PASSWORD": "0123abcd"}))
        assert (url.scheme, url.hostname, url.port, url.path, url.password) == (
            "postgresql", "store", 5432, "/driftwatch", "0123abcd")
        assert service["env_file"] == [".env"]
    store = services()["store"]["environment"]
    assert re.fullmatch(r"\$\{STORE_PASSWORD[^}]*\}", store["POSTGRES_PASSWORD"])
    # anything that looks like a password anywhere in the file is an interpolation
    lines = [line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#")]
    bare = re.sub(r"\$\{STORE_PASSWORD[^}]*\}", "", "\n".join(lines))  # interpolations out
    assert not re.search(r"(?i)password\w*\s*[:=][ \t]*[^\s#]", bare), "a literal password in compose.yaml"
    assert not re.search(r"://[^:/@\s]+:[^@\s]+@", bare), "a literal password in a URL of compose.yaml"
    with pytest.raises(ValueError, match="set STORE_PASSWORD"):  # compose refuses to start without it
        interpolate(store["POSTGRES_PASSWORD"], {})


def test_compose_mounts_the_config_read_only_and_waits_for_a_healthy_store():
    for name, service in services().items():
        if name == "store":
            assert service["healthcheck"]["test"][0] == "CMD-SHELL" and "pg_isready" in service["healthcheck"]["test"][1]
            continue
        assert volumes(service)["/config/driftwatch.toml"] == ("./driftwatch.toml", True), name
        assert service["depends_on"] == {"store": {"condition": "service_healthy"}}, name
    dashboard = services()["dashboard"]
    assert volumes(dashboard)["/app/.streamlit/secrets.toml"] == ("./.streamlit/secrets.toml", True)
    assert "command" not in dashboard  # the image's CMD, checked above
    for name in ("poller-1", "poller-2"):  # the image's HEALTHCHECK probes the dashboard's port
        assert services()[name]["healthcheck"] == {"disable": True}
    # the Dockerfile's WORKDIR is where Streamlit reads .streamlit/ (config and mounted secrets)
    assert one("WORKDIR") == "/app"


# -- the compose rehearsal -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class UnixToTcp:
    """127.0.0.1:port forwarded to a PostgreSQL that listens on a Unix socket only (the pgserver
    wheel): what `store:5432` is on compose's network. The tests run as root; the services as
    uid 10001, which cannot enter pgserver's private socket folder, as no other container could."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            try:
                upstream.connect(self.socket_path)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


def store_address(server: Any) -> tuple[str, int, Any]:
    """Where `store:5432` is on this machine: (host, port, what to close afterwards)."""
    parts = urlsplit(server.url)
    if parts.hostname:
        return parts.hostname, parts.port or 5432, None
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    proxy = UnixToTcp(os.path.join(query["host"], f".s.PGSQL.{parts.port or 5432}"))
    return "127.0.0.1", proxy.port, proxy


def as_image_user() -> list[str]:
    """Run as the image's USER (uid 10001) when this machine lets us; [] otherwise.

    PostgreSQL's initdb looks its user up by uid, so the uid needs a passwd entry, as the
    image's `useradd` gives it: as root it is made the same way (as checks/localpg.py makes
    the `postgres` user for the system PostgreSQL)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return []
    import pwd

    try:
        pwd.getpwuid(IMAGE_UID)
    except KeyError:
        subprocess.run(["useradd", "--uid", str(IMAGE_UID), "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", "driftwatch"], capture_output=True)
        pwd.getpwuid(IMAGE_UID)  # made now (or by a concurrent run)
    return ["setpriv", f"--reuid={IMAGE_UID}", f"--regid={IMAGE_UID}", "--clear-groups"]


def read_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value
    return out


@functools.cache
def own_namespaces() -> bool:
    """Whether services can run as containers do: PID 1 of their own PID namespace (the kernel
    delivers SIGTERM to a PID 1 only through a handler it installed: the image has no init) and
    with their own hostname (a lease's owner is `hostname:pid`)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    done = subprocess.run(["unshare", "--pid", "--uts", "--fork", "sh", "-c", "hostname probe && echo $$"],
                          capture_output=True, text=True, timeout=30)
    return done.returncode == 0 and done.stdout.strip() == "1"


@dataclass
class Container:
    """One compose service as a local process: the image's WORKDIR, ENV and USER, the service's
    env_file, environment and command, with the mappings of `Project`. When this machine allows
    it, the command is PID 1 of its own PID namespace with the service's name as its hostname,
    as in a container; `pid` is that process (what `docker stop` signals)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None  # the process started here (unshare, or the service)

    def start(self) -> Container:
        wrapper = (["unshare", "--pid", "--uts", "--fork", "--kill-child", "sh", "-c", 'hostname "$0" && exec "$@"',
                    self.name] if own_namespaces() else [])
        out = open(self.log, "wb")
        self.proc = subprocess.Popen([*wrapper, *as_image_user(), *self.argv], cwd=ROOT, env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        return self

    @property
    def pid(self) -> int:
        """The service's PID 1 (its pid on this machine)."""
        assert self.proc is not None
        if not own_namespaces():
            return self.proc.pid
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        found = wait_for(f"{self.name}'s PID 1", lambda: children.read_text().split(), timeout=10, every=0.05)
        return int(found[0])

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def session_alive(self) -> list[int]:
        """Processes still in this service's session (the dashboard's Streamlit child included)."""
        assert self.proc is not None
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.proc.pid and fields[0] != "Z":  # session id, not a zombie
                alive.append(int(stat.parent.name))
        return alive

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)


@dataclass
class Project:
    """compose.yaml's project folder and what the services see of it."""

    root: Path
    store_host: str
    store_port: int
    paths: dict[str, Path] = field(default_factory=dict)  # in-container path -> host path

    def host_path(self, value: str) -> str:
        for inside in sorted(self.paths, key=len, reverse=True):
            if value == inside or value.startswith(inside.rstrip("/") + "/"):
                return str(self.paths[inside]) + value[len(inside):]
        return value

    def map_value(self, value: str) -> str:
        value = value.replace("@store:5432/", f"@{self.store_host}:{self.store_port}/")
        return self.host_path(value)

    def container(self, name: str, service: dict[str, Any], port: int) -> Container:
        variables = read_env_file(self.root / ".env") if (self.root / ".env").is_file() else {}
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "HOME": str(self.paths["/home/driftwatch"])}
        env.update({k: self.map_value(v) for k, v in dockerfile_env().items()})
        for env_file in service.get("env_file", []):
            env.update(read_env_file(self.root / env_file))
        env.update({k: self.map_value(interpolate(str(v), variables)) for k, v in service["environment"].items()})
        for target, (source, _ro) in volumes(service).items():
            if target not in self.paths:
                assert target == "/app/.streamlit/secrets.toml", f"{name}: a mount the rehearsal does not map: {target}"
        argv = []
        for arg in service_command(service):
            if arg == "python":
                arg = sys.executable
            elif arg == "0.0.0.0":
                arg = "127.0.0.1"
            elif arg == "8501":
                arg = str(port)
            argv.append(self.host_path(arg))
        return Container(name, argv, env, self.root / f"{name}.log")


def run_as_image_user(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*as_image_user(), *argv], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def healthcheck(port: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The Dockerfile's HEALTHCHECK command, exactly, with the published port swapped."""
    argv = [sys.executable if a == "python" else a.replace(":8501/", f":{port}/") for a in healthcheck_command()]
    return run_as_image_user(argv, env, timeout=5)


def wait_for(what: str, condition: Any, timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


INTERVAL_S = 3
CHECKS = {("health", "api health"), ("smoke", "create project"), ("drift", "drift"), ("migrations", "migrations")}

# The operator's driftwatch.toml, written for the container: /app is the image's copy of the
# repository (examples/ is in it), env: references come from .env through env_file, and the
# [store] reads the URL compose builds, as compose.yaml's comment says.
CONFIG = f"""\
[store]
url = "env:DRIFTWATCH_HISTORY_URL"

[environments.production]
database_url = "env:DATABASE_URL"
schema = "/app/examples/avatar-studio/prisma/schema.prisma"
migrations = "/app/examples/avatar-studio/prisma/migrations"
interval_s = {INTERVAL_S}
failure_threshold = 1

""" + SAMPLE_APP_CHECKS


def owned_by_image_user(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if as_image_user():
        os.chown(path, IMAGE_UID, IMAGE_UID)
    os.chmod(path, mode)
    return path


@pytest.fixture
def backend(incident_db: str) -> Iterator[tuple[str, str]]:
    """The sample app's backend (not part of compose: the application Driftwatch watches)."""
    token = secrets.token_hex(8)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "examples.services.avatar_backend", "--host", "127.0.0.1",
                             "--port", str(port), "--database-url", incident_db, "--token-env", "AVATAR_API_TOKEN"],
                            cwd=ROOT, env={**os.environ, "AVATAR_API_TOKEN": token}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith(b"backend:")
        yield f"http://127.0.0.1:{port}", token
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def project(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """compose's project folder, with `store` up: the role and database of its environment."""
    if pg_server.kind == "external":
        pytest.skip("the rehearsal creates the store's role; not on an external server")
    store_env = services()["store"]["environment"]
    user, database = store_env["POSTGRES_USER"], store_env["POSTGRES_DB"]
    password = secrets.token_hex(16)  # as the README says: openssl rand -hex 16
    pg_server.execute(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
    pg_server.execute(f'CREATE DATABASE "{database}" OWNER "{user}"')
    # The fixture's server trusts every connection; the store's role must give its password
    # (as postgres:16 does for TCP), so the rehearsal proves the interpolated one is right.
    hba = next(p for p in (pg_server.local.datadir / "pg_hba.conf", pg_server.local.datadir / "data" / "pg_hba.conf")
               if p.is_file())
    original = hba.read_text()
    hba.write_text(f"local all {user} scram-sha-256\nhost all {user} 127.0.0.1/32 scram-sha-256\n" + original)
    pg_server.execute("SELECT pg_reload_conf()")
    host, port, proxy = store_address(pg_server)
    # Not under pytest's basetemp (owner-only folders): uid 10001 must reach its files.
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="driftwatch-compose-"))
    os.chmod(root, 0o755)
    try:
        (root / ".env").write_text(f"STORE_PASSWORD={password}\n")
        yield Project(root, host, port)
    finally:
        hba.write_text(original)
        pg_server.execute("SELECT pg_reload_conf()")
        if proxy is not None:
            proxy.close()
        pg_server.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        pg_server.execute(f'DROP ROLE IF EXISTS "{user}"')
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(420)
def test_compose_rehearsal_store_dashboard_and_two_pollers_as_local_processes(project, backend, incident_db):
    from checks.history import HistoryStore

    api_url, api_token = backend
    # The store's own healthcheck, as compose runs it (inside the store container the socket is
    # local; here the host and port are said).
    test = services()["store"]["healthcheck"]["test"][1]
    if shutil.which("pg_isready"):
        done = subprocess.run(f"{test} -h {project.store_host} -p {project.store_port}", shell=True,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stdout + done.stderr

    import psycopg

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"postgresql://driftwatch:wrong@{project.store_host}:{project.store_port}/driftwatch",
                        connect_timeout=10).close()

    # .env: the store's password (already there) and every env: reference of driftwatch.toml
    with open(project.root / ".env", "a") as env_file:
        env_file.write(f"DATABASE_URL={incident_db}\nAVATAR_API_URL={api_url}\nAVATAR_API_TOKEN={api_token}\n")
    # The one change to the file as an operator writes it: its /app paths, which only exist in
    # the image, point at this repository (the image's COPY of the same folders).
    (project.root / "driftwatch.toml").write_text(CONFIG.replace('"/app/', f'"{ROOT}/'))
    os.chmod(project.root / ".env", 0o644)  # compose reads it as the operator; the services get its values
    source, read_only = volumes(services()["poller-1"])["/config/driftwatch.toml"]
    assert read_only
    project.paths = {
        "/app": ROOT,
        "/config/driftwatch.toml": project.root / source,
        "/data": owned_by_image_user(project.root / "data"),
        "/home/driftwatch": owned_by_image_user(project.root / "home"),
    }
    os.chmod(project.root / "driftwatch.toml", 0o444)  # mounted :ro
    # The dashboard's ./.streamlit/secrets.toml mount lands in /app/.streamlit/, i.e. this
    # repository, which a test must not write to: Streamlit's other secrets file,
    # ~/.streamlit/secrets.toml, carries the same file instead.
    (project.paths["/home/driftwatch"] / ".streamlit").mkdir()
    (project.paths["/home/driftwatch"] / ".streamlit" / "secrets.toml").write_text(
        f'DRIFTWATCH_OPERATOR_PASSWORD = "{secrets.token_hex(8)}"\n')
    os.chmod(project.paths["/home/driftwatch"] / ".streamlit", 0o755)
    port = free_port()
    ordered = ["dashboard", "poller-1", "poller-2"]
    containers = [project.container(name, services()[name], port) for name in ordered]
    store_url = containers[0].env["DRIFTWATCH_HISTORY_URL"]
    assert project.map_value(str(interpolate(services()["dashboard"]["environment"]["DRIFTWATCH_HISTORY_URL"],
                                             read_env_file(project.root / ".env")))) == store_url
    for c in containers:  # nothing of the test run leaks in: exactly what compose would pass
        assert c.env["DRIFTWATCH_CONFIG"] == str(project.root / "driftwatch.toml")
        assert c.env["PYTHONPATH"] == str(ROOT) and c.env["DRIFTWATCH_STATE_DIR"] == str(project.paths["/data"])
        assert "XDG_CACHE_HOME" not in c.env and "DRIFTWATCH_STRICT_FAST_PATH" not in c.env
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        for c in containers:
            c.start()
        dashboard, pollers = containers[0], containers[1:]

        # 1. the Dockerfile's HEALTHCHECK passes within its start period (30 s, plus retries)
        def healthy() -> bool:
            for c in containers:
                assert c.proc.poll() is None, f"{c.name} exited with {c.proc.returncode}:\n{c.tail()}"
            return healthcheck(port, dashboard.env).returncode == 0

        wait_for("the HEALTHCHECK to pass", healthy, timeout=30 + 3 * 30)
        timings["healthy"] = time.monotonic() - started
        if as_image_user():  # every service runs as the image's USER, Streamlit's child included
            for c in containers:
                for pid in c.session_alive():
                    if pid != c.proc.pid or not own_namespaces():  # unshare stands for the engine
                        assert uid_of(pid) == IMAGE_UID, (c.name, pid)

        # 2. both pollers record into the PostgreSQL store; watch who holds the leases
        owners = {(f"{c.name}:1" if own_namespaces() else f"{socket.gethostname()}:{c.pid}"): c.name
                  for c in pollers}
        seen: set[str] = set()

        with HistoryStore.open(store_url) as store:
            def both_pollers_recorded() -> bool:
                for c in pollers:
                    assert c.proc.poll() is None, f"{c.name} exited with {c.proc.returncode}:\n{c.tail()}"
                for state in _lease_rows(store):
                    seen.add(state)
                latest = store.latest("production")
                return (set(owners) <= seen and len(latest) == len(CHECKS)
                        and all(s.checked_at is not None for s in latest))

            try:
                wait_for("both pollers to record every check", both_pollers_recorded, timeout=120, every=0.3)
            except AssertionError as exc:
                latest = [(s.kind, s.name, s.state, s.checked_at) for s in store.latest("production")]
                raise AssertionError(f"{exc}; leases by {seen}, pollers {owners}; states {latest}\n"
                                     + "\n".join(f"{c.name}: {c.tail()}" for c in containers)) from None
            timings["recorded"] = time.monotonic() - started

            # 3. the dashboard shows what the pollers wrote
            latest = {(s.kind, s.name): s for s in store.latest("production")}
            page = render_page(port)
            timings["page"] = time.monotonic() - started
            assert "Overview" in page and "production" in page
            for (kind, name), state in latest.items():
                if name != kind:
                    assert name in page, (name, page[-2000:])
            smoke = latest[("smoke", "create project")]
            assert smoke.state == "failing" and "201" in (smoke.reason or "")  # avatar_projects is missing
            assert smoke.reason.split(":")[0] in page, (smoke.reason, page[-2000:])
            assert "history store unavailable" not in page
            assert "nobody can sign in as an operator" not in page  # the mounted secrets were read

            # a few more intervals, with the dashboard's own poller in the game too
            deadline = time.monotonic() + 4 * INTERVAL_S
            while time.monotonic() < deadline:
                for state in _lease_rows(store):
                    seen.add(state)
                time.sleep(0.3)

            # 4. no check ran twice in one interval: the gaps between a check's results
            from datetime import timedelta

            from checks.monitor.results import utcnow

            runs = 0
            for target in store.targets("production"):
                times = sorted(o.observed_at for o in store.observations(target.id, since=utcnow() - timedelta(hours=1)))
                runs += len(times)
                gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
                assert not gaps or min(gaps) >= INTERVAL_S / 2, (target.kind, target.name, gaps)
            assert runs >= 2 * len(CHECKS)
        assert set(owners) <= seen, (owners, seen)
        # The dashboard runs the configured checks too (dashboard/monitor.py: its own Poller,
        # through the same leases) once a page is open: a third sharer, not a second run.
        dashboard_owner = (lambda o: o.startswith("dashboard:")) if own_namespaces() else (
            lambda o: int(o.rsplit(":", 1)[1]) in dashboard.session_alive())
        print(f"leases taken by: pollers {sorted(owners.values())}, dashboard {any(map(dashboard_owner, seen))}; "
              f"each service PID 1 of its own namespace: {own_namespaces()}")

        # 5. `docker stop`: SIGTERM to each service's PID 1, SIGKILL after 10 s
        for c in containers:
            t0 = time.monotonic()
            os.kill(c.pid, signal.SIGTERM)
            try:
                c.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{c.name} did not stop within {STOP_GRACE_S} s of SIGTERM:\n{c.tail()}") from None
            timings[f"stop {c.name}"] = time.monotonic() - t0
            wait_for(f"{c.name}'s children to exit", lambda: not c.session_alive(), timeout=2, every=0.1)
        for c in pollers:
            assert c.proc.returncode == 0, c.tail()
            assert "driftwatch poll: stopped" in c.tail()
        assert dashboard.proc.returncode in (0, -signal.SIGTERM, 128 + signal.SIGTERM), dashboard.tail()
        for c in containers:
            log = c.tail()
            assert "Traceback" not in log, (c.name, log)
            assert read_env_file(project.root / ".env")["STORE_PASSWORD"] not in log
    finally:
        for c in containers:
            c.kill()
        print("rehearsal timings (s):", {k: round(v, 1) for k, v in timings.items()})


@pytest.mark.timeout(300)
def test_docker_run_without_configuration_serves_the_demo_from_data_as_uid_10001():
    """The README's plain `docker run -p 8501:8501 driftwatch`: no config, no store, no secret.
    The dashboard starts the embedded demo PostgreSQL (pgserver refuses root) in the /data
    volume, keeps its history store there too, and stops on SIGTERM."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="driftwatch-docker-run-"))
    os.chmod(root, 0o755)
    project = Project(root, "", 0)
    data = root / "data"
    dashboard = None
    try:
        project.paths = {"/app": ROOT, "/data": owned_by_image_user(data),
                         "/home/driftwatch": owned_by_image_user(root / "home")}
        port = free_port()
        service = {"environment": {}}  # what `docker run` adds: nothing
        dashboard = project.container("dashboard", service, port)
        assert set(dashboard.env) == {"PATH", "LANG", "HOME", *dockerfile_env()}
        dashboard.start()

        def healthy() -> bool:
            assert dashboard.proc.poll() is None, dashboard.tail()
            return healthcheck(port, dashboard.env).returncode == 0

        wait_for("the HEALTHCHECK to pass", healthy, timeout=30 + 3 * 30)
        page = render_page(port, timeout=180)  # the first page starts the demo PostgreSQL
        assert "demo" in page and "could not start the demo PostgreSQL" not in page, page[-2000:]
        pgdata = data / "demo-pg"
        assert (pgdata / "PG_VERSION").is_file()
        if as_image_user():
            assert pgdata.stat().st_uid == IMAGE_UID
        # the history store (results, the audit log) is in the volume, not in the container's layer
        wait_for("the history store in /data", lambda: list(data.rglob("history.sqlite3")), timeout=60)
        assert not list(project.paths["/home/driftwatch"].rglob("history.sqlite3"))
        t0 = time.monotonic()
        os.kill(dashboard.pid, signal.SIGTERM)
        try:
            dashboard.proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the dashboard did not stop within {STOP_GRACE_S} s:\n{dashboard.tail()}") from None
        took = time.monotonic() - t0
        # the demo's PostgreSQL is stopped by the dashboard itself (pgserver's cleanup at exit)
        wait_for("the demo PostgreSQL to stop with the dashboard",
                 lambda: not (data / "demo-pg" / "postmaster.pid").exists(), timeout=STOP_GRACE_S - took, every=0.1)
        print(f"docker run rehearsal: healthy, demo served from /data as uid {IMAGE_UID}; stopped in {took:.1f} s")
        assert not dashboard.session_alive()
        assert "Traceback" not in dashboard.tail(), dashboard.tail()
    finally:
        if dashboard is not None:
            dashboard.kill()
        _stop_postgres(data / "demo-pg")
        shutil.rmtree(root, ignore_errors=True)


def _stop_postgres(datadir: Path) -> None:
    """A demo PostgreSQL left running (in a container `docker stop` ends it with the rest)."""
    pidfile = datadir / "postmaster.pid"
    if pidfile.is_file():
        try:
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGQUIT)
        except (ProcessLookupError, ValueError):
            pass
        wait_for("the demo PostgreSQL to stop", lambda: not pidfile.exists(), timeout=30, every=0.2)


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(pid)


def _lease_rows(store: Any) -> list[str]:
    """Who holds each check's lease now (`host:pid`)."""
    from sqlalchemy import select

    from checks.history.tables import target_state

    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(target_state.c.leased_by)
                                           .where(target_state.c.leased_by.is_not(None))).all()]


@pytest.mark.timeout(180)
def test_a_mounted_clone_owned_by_another_uid_is_read_with_the_image_s_git_config(pg_server, incident_db):
    """`[environments.NAME.git]` in a container: the clone is a host folder mounted into it and
    owned by another uid than 10001, which git refuses ("dubious ownership") unless the image's
    system config trusts it. The Dockerfile's own `git config --system …` commands are applied
    to a file GIT_CONFIG_SYSTEM points at (this machine's /etc/gitconfig is left alone)."""
    if not as_image_user():
        pytest.skip("needs root to run as uid 10001 on a clone owned by root")
    import tempfile

    from checks.demo_stack import build_sample_repo

    root = Path(tempfile.mkdtemp(prefix="driftwatch-git-mount-"))
    os.chmod(root, 0o755)
    parts = urlsplit(incident_db)
    proxy = None
    try:
        build_sample_repo(root / "app")  # owned by root, like a host clone of uid 1000 would be
        subprocess.run(["chmod", "-R", "a+rX", str(root / "app")], check=True)
        gitconfig = root / "gitconfig"
        gitconfig.touch()
        runs = " && ".join(args for kw, args in instructions() if kw == "RUN")
        commands = [c.strip() for c in runs.split("&&") if c.strip().startswith("git config --system")]
        assert commands
        for command in commands:
            subprocess.run(shlex.split(command), check=True, env={**os.environ, "GIT_CONFIG_SYSTEM": str(gitconfig)})
        os.chmod(gitconfig, 0o644)
        host, port, proxy = store_address(pg_server)
        database_url = f"postgresql://{parts.username or 'postgres'}@{host}:{port}{parts.path}"
        (root / "driftwatch.toml").write_text(
            '[environments.production]\ndatabase_url = "env:DATABASE_URL"\n\n'
            f'[environments.production.git]\nrepo = "{root / "app"}"\nschema = "prisma/schema.prisma"\n'
            'migrations = "prisma/migrations"\nref = "main"\n')
        home = owned_by_image_user(root / "home")
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "HOME": str(home), **{k: v for k, v in dockerfile_env().items() if k != "DRIFTWATCH_STATE_DIR"},
               "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(home), "DATABASE_URL": database_url}
        argv = [sys.executable, "-m", "checks", "poll", "--once", "--format", "json",
                "--config", str(root / "driftwatch.toml")]

        def drift(extra: dict[str, str]) -> dict[str, Any]:
            done = run_as_image_user(argv, {**env, **extra}, timeout=120)
            assert done.returncode in (0, 2), done.stderr
            return json.loads(done.stdout)["environments"][0]["drift"]

        refused = drift({"GIT_CONFIG_SYSTEM": "/dev/null"})  # what git does without the image's config
        assert refused["state"] == "error" and "dubious ownership" in refused["reason"], refused
        read = drift({"GIT_CONFIG_SYSTEM": str(gitconfig)})
        assert read["state"] in ("ok", "failing") and read.get("schema_commit"), read
    finally:
        if proxy is not None:
            proxy.close()
        shutil.rmtree(root, ignore_errors=True)
