"""`driftwatch demo`: the whole incident, live, on one machine, under one data folder.

    data/
      demo-pg/           the embedded PostgreSQL (checks/demo.py), avatar_studio in the incident state
      sample-app/        a git repository of the sample app with its two commits: before and
                         after model AvatarProject (the deployed one is the second)
      driftwatch.toml    the environment tying it together (database, git, Coolify, health, smoke)
      history.sqlite3    the history store and audit log
      logs/              one log file per service

and, as child processes: the sample app's backend (examples/services/avatar_backend.py), a
Coolify-compatible API reporting the second commit as deployed minutes before the demo started
(examples/services/coolify.py), and the dashboard with its monitor. Everything binds to 127.0.0.1; nothing is fetched from the
internet. `stop()` ends every child (its whole process group) and the PostgreSQL.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib.util import find_spec
from pathlib import Path
from typing import IO, Callable

from .demo import SAMPLE_APP, DemoEnvironment, sample_migrations, start_demo
from .errors import DriftwatchError, UsageError
from .shell import stop_group

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENT = "demo"
COOLIFY_TOKEN = "demo-coolify-token"  # a local fake's token: not a secret, never a real one
BACKEND_TOKEN = "demo-api-token"
APPLICATION = "sos80kw4koscosckww0wc4co"  # the incident's application UUID
# The demo's deployment: started this long before the demo, and as long as the incident's took;
# well inside the 30 minutes an incident's report looks back (checks/reports LEAD_IN).
DEPLOYED_BEFORE_START = timedelta(minutes=6)
DEPLOYMENT_TOOK = timedelta(minutes=2, seconds=43)
_GIT_ENV = {"GIT_AUTHOR_NAME": "Avatar Studio", "GIT_AUTHOR_EMAIL": "dev@avatar.studio",
            "GIT_COMMITTER_NAME": "Avatar Studio", "GIT_COMMITTER_EMAIL": "dev@avatar.studio"}


def has_module(name: str) -> bool:
    """Whether this checkout has `name` (a missing parent package counts as missing)."""
    try:
        return find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the sample app's repository -------------------------------------------------------------

def schema_before_projects(schema: str) -> str:
    """The sample schema as it was before commit 2 added model AvatarProject."""
    out, skipping = [], False
    for line in schema.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("model AvatarProject "):
            skipping = True
            continue
        if skipping:
            if stripped == "}":
                skipping = False
            continue
        if "AvatarProject" in stripped or stripped.startswith("projectId") or stripped == "@@index([projectId])":
            continue
        out.append(line)
    text = "".join(out)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def _git(repo: Path, *args: str, date: str | None = None) -> str:
    env = {**os.environ, **_GIT_ENV}
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=60)
    if done.returncode != 0:
        raise DriftwatchError(f"git {args[0]} in {repo}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return done.stdout.strip()


def build_sample_repo(repo: Path) -> tuple[str, str]:
    """The sample app's git history: commit 1 without AvatarProject, commit 2 adding it with its
    migration. Reused when it exists; returns (first, second) commit hashes."""
    if (repo / ".git").is_dir():
        commits = _git(repo, "rev-list", "--reverse", "HEAD").split()
        if len(commits) >= 2:
            return commits[0], commits[-1]
    repo.mkdir(parents=True, exist_ok=True)
    _git(repo, "init", "-q", "-b", "main")
    prisma = repo / "prisma"
    (prisma / "migrations").mkdir(parents=True, exist_ok=True)
    schema = (SAMPLE_APP / "prisma" / "schema.prisma").read_text()
    first, second = sample_migrations()[:2]
    (prisma / "schema.prisma").write_text(schema_before_projects(schema))
    _copy(first, prisma / "migrations" / first.name)
    lock = SAMPLE_APP / "prisma" / "migrations" / "migration_lock.toml"
    if lock.is_file():
        (prisma / "migrations" / lock.name).write_text(lock.read_text())
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "Avatars, users, sessions, poses, usage logs", date="2025-10-01T09:00:00Z")
    (prisma / "schema.prisma").write_text(schema)
    _copy(second, prisma / "migrations" / second.name)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "Add avatar projects", date="2025-10-12T08:20:00Z")
    commits = _git(repo, "rev-list", "--reverse", "HEAD").split()
    return commits[0], commits[-1]


def _copy(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())


def coolify_state(commit: str, *, now: datetime | None = None, deployment_uuid: str | None = None) -> dict[str, object]:
    """What the local Coolify reports: the deployment of `commit` finished a few minutes before
    `now` (the demo's start), taking as long as the incident's did (08:33:57 to 08:36:40), and no
    post-deployment command that would have run the migration. A deployment dated on the day of
    the original incident would fall outside the demo's incident window, so its report could not
    name the deployment, its commit or its time."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    created = now - DEPLOYED_BEFORE_START
    finished = created + DEPLOYMENT_TOOK
    return {
        "applications": [{"uuid": APPLICATION, "name": "avatar-studio", "post_deployment_command": None}],
        "deployments": [{"application": APPLICATION, "commit": commit, "status": "finished",
                         "deployment_uuid": deployment_uuid or _deployment_uuid(),
                         "created_at": _coolify_time(created), "finished_at": _coolify_time(finished)}],
    }


def write_coolify_state(path: Path, commit: str, *, reset: bool = False) -> dict[str, object]:
    """The local Coolify's state file for the demo: written fresh on the first start and on
    `--reset` (the incident starts again, so its deployment has just finished again); kept on a
    plain restart, so the deployment stays where the history and its incident already put it."""
    if not reset and path.is_file():
        try:
            kept = json.loads(path.read_text())
            if [d.get("commit") for d in kept.get("deployments", [])] == [commit]:
                return kept
        except (OSError, ValueError, AttributeError):
            pass  # unreadable: write it again
    state = coolify_state(commit)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)
    return state


def _coolify_time(when: datetime) -> str:
    """Laravel's timestamp format, as Coolify sends it: UTC with microseconds."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _deployment_uuid() -> str:
    """24 lowercase letters and digits, as current Coolify releases make them; kept in the state
    file so every poll sees the same deployment."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(24))


# -- the configuration -----------------------------------------------------------------------

def config_text(*, database_url: str, data_dir: Path, coolify_url: str | None, backend_url: str | None,
                interval_s: int = 5) -> str:
    """driftwatch.toml for the demo (keys of issue 6 §1; paths relative to this file's folder).
    Its checks run every `interval_s` (the dashboard's poller keeps each check's interval), short
    so the demo shows a change within seconds, as the dashboard's default 5 s refresh does."""
    lines = [
        "# Written by `driftwatch demo`: the sample app's environment on this machine.",
        "[store]",
        f'url = "sqlite:///{data_dir / "history.sqlite3"}"',
        "",
        f"[environments.{ENVIRONMENT}]",
        f'database_url = "{database_url}"',
        f"interval_s = {interval_s}",
        "failure_threshold = 1",
        "",
        f"[environments.{ENVIRONMENT}.git]",
        'repo = "sample-app"',
        'schema = "prisma/schema.prisma"',
        'migrations = "prisma/migrations"',
        'ref = "main"',
        "fetch = false",
    ]
    if coolify_url:
        lines += ["", f"[environments.{ENVIRONMENT}.coolify]", f'url = "{coolify_url}"',
                  'token = "env:DRIFTWATCH_DEMO_COOLIFY_TOKEN"', f'application = "{APPLICATION}"']
    if backend_url:
        lines += [
            "", f"[[environments.{ENVIRONMENT}.health]]", 'name = "api health"', f'url = "{backend_url}/health"',
            f"interval_s = {interval_s}", 'conditions = ["[STATUS] == 200", "[BODY].status == ok"]',
            "", f"[[environments.{ENVIRONMENT}.smoke]]", 'name = "create project"', f"interval_s = {interval_s}",
            f"[[environments.{ENVIRONMENT}.smoke.steps]]", 'method = "POST"',
            f'url = "{backend_url}/api/apps/avatar-creator/projects"',
            'headers = { Authorization = "env:DRIFTWATCH_DEMO_API_AUTH" }',
            'json = { name = "driftwatch smoke {run_id}" }', 'conditions = ["[STATUS] == 201"]',
            'capture = { project_id = "[BODY].id" }',
            f"[[environments.{ENVIRONMENT}.smoke.steps]]", 'method = "DELETE"',
            f'url = "{backend_url}/api/apps/avatar-creator/projects/{{project_id}}"',
            'headers = { Authorization = "env:DRIFTWATCH_DEMO_API_AUTH" }',
            'conditions = ["[STATUS] < 300"]', "always = true",
        ]
    return "\n".join(lines) + "\n"


# -- the processes ---------------------------------------------------------------------------

@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes]

    def stop(self) -> None:
        stop_group(self.proc)
        self.log.close()


@dataclass
class DemoStack:
    data_dir: Path
    database: DemoEnvironment
    urls: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def stop(self) -> None:
        """Stop every child, newest first, then the PostgreSQL."""
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        self.database.stop()


def _spawn(stack: DemoStack, name: str, argv: list[str], env: dict[str, str]) -> Child:
    logs = stack.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / f"{name}.log", "wb")
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    child = Child(name, proc, log)
    stack.children.append(child)
    return child


def _wait_http(child: Child, url: str, deadline: float) -> None:
    import httpx

    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            tail = (child.log.name and Path(child.log.name).read_text(errors="replace")[-600:]) or ""
            raise DriftwatchError(f"the demo's {child.name} exited with {child.proc.returncode}: {tail.strip()}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.15)
    raise DriftwatchError(f"the demo's {child.name} did not answer on {url} in time")


def _python_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DRIFTWATCH_SCHEMA", "DRIFTWATCH_CONFIG")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def start_stack(data_dir: Path, *, port: int = 8501, reset: bool = False, say: Callable[[str], None] = print,
                timeout_s: float = 60) -> DemoStack:
    """Start everything; on any failure stop what was started and raise."""
    deadline = time.monotonic() + timeout_s
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if reset:
        from .demo import reset_demo

        reset_demo(data_dir)
    database = start_demo(data_dir, "incident")
    stack = DemoStack(data_dir, database)
    try:
        first, second = build_sample_repo(data_dir / "sample-app")
        stack.urls["database"] = database.url
        base = _python_env({})
        coolify_url = backend_url = None
        if has_module("examples.services.avatar_backend"):
            bport = free_port()
            backend_url = f"http://127.0.0.1:{bport}"
            child = _spawn(stack, "backend", [sys.executable, "-m", "examples.services.avatar_backend",
                                              "--host", "127.0.0.1", "--port", str(bport),
                                              "--database-url", database.url, "--token-env", "AVATAR_API_TOKEN"],
                           {**base, "AVATAR_API_TOKEN": BACKEND_TOKEN})
            _wait_http(child, backend_url + "/health", deadline)
            stack.urls["backend"] = backend_url
        else:
            stack.notes.append("backend: not in this checkout (examples/services/avatar_backend.py)")
        if has_module("examples.services.coolify"):
            cport = free_port()
            coolify_url = f"http://127.0.0.1:{cport}"
            state = data_dir / "coolify-state.json"
            write_coolify_state(state, second, reset=reset)
            child = _spawn(stack, "coolify", [sys.executable, "-m", "examples.services.coolify",
                                              "--host", "127.0.0.1", "--port", str(cport), "--state", str(state),
                                              "--token-env", "COOLIFY_TOKEN"], {**base, "COOLIFY_TOKEN": COOLIFY_TOKEN})
            _wait_http(child, coolify_url + "/api/health", deadline)
            stack.urls["coolify"] = coolify_url
        else:
            stack.notes.append("coolify: not in this checkout (examples/services/coolify.py)")
        config = data_dir / "driftwatch.toml"
        config.write_text(config_text(database_url=database.url, data_dir=data_dir, coolify_url=coolify_url,
                                      backend_url=backend_url))
        dash_env = {
            "DRIFTWATCH_DEMO_OPERATOR": "1",
            "DRIFTWATCH_HISTORY_URL": str(data_dir / "history.sqlite3"),
            "DRIFTWATCH_STATE_DIR": str(data_dir),
            "DRIFTWATCH_REFRESH_S": os.environ.get("DRIFTWATCH_REFRESH_S", "5"),
            "DRIFTWATCH_DEMO_COOLIFY_TOKEN": COOLIFY_TOKEN,
            "DRIFTWATCH_DEMO_API_AUTH": f"Bearer {BACKEND_TOKEN}",
        }
        if has_module("checks.config"):
            dash_env["DRIFTWATCH_CONFIG"] = str(config)
        else:  # no configuration support yet: the dashboard checks the demo database itself
            dash_env["DRIFTWATCH_DEMO"] = "incident"
        dash = _spawn(stack, "dashboard", [sys.executable, "-m", "streamlit", "run", "dashboard/app.py",
                                           "--server.headless", "true", "--server.port", str(port),
                                           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
                      _python_env(dash_env))
        stack.urls["dashboard"] = f"http://127.0.0.1:{port}/"
        _wait_http(dash, f"http://127.0.0.1:{port}/_stcore/health", deadline)
        stack.urls["config"] = str(config)
        stack.urls["commits"] = f"{first[:7]} (before AvatarProject), {second[:7]} (deployed: adds it)"
    except BaseException:
        stack.stop()
        raise
    return stack


def check_data_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise UsageError(f"--data-dir {path}: not a folder")
    return path
