"""`driftwatch poll --once` end to end, with the real probes: the incident as issue 6's
"done when" tells it — a local Coolify reporting the deployment of the commit that added
AvatarProject, the sample backend on the incident database, the app's git history — and
after `migrate deploy`, the same command all ok."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from checks.cli import run
from checks.history import HistoryStore
from examples.services.avatar_backend import AvatarBackend
from examples.services.coolify import CoolifyServer
from tests.conftest import SAMPLE_APP_CHECKS, SAMPLE_MIGRATIONS, SAMPLE_SCHEMA
from tests.test_monitor_database import ADD_PROJECTS, before_avatar_projects, git

pytestmark = pytest.mark.timeout(180)

TOKEN = "coolify-poll-token-789"
API_TOKEN = "avatar-poll-token-012"
APP = "sos80kw4koscosckww0wc4co"


@pytest.fixture(autouse=True)
def no_real_store(tmp_path, monkeypatch):
    monkeypatch.delenv("DRIFTWATCH_HISTORY_URL", raising=False)
    monkeypatch.delenv("DRIFTWATCH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def app_repo(tmp_path) -> tuple[Path, str, str]:
    repo = tmp_path / "avatar-studio"
    repo.mkdir()
    git(repo, "init", "-q")
    migrations = repo / "prisma" / "migrations"
    migrations.mkdir(parents=True)
    (repo / "prisma" / "schema.prisma").write_text(before_avatar_projects(SAMPLE_SCHEMA.read_text()))
    shutil.copy(SAMPLE_MIGRATIONS / "migration_lock.toml", migrations)
    init = sorted(p for p in SAMPLE_MIGRATIONS.iterdir() if p.is_dir())[0]
    shutil.copytree(init, migrations / init.name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "prisma" / "schema.prisma").write_text(SAMPLE_SCHEMA.read_text())
    shutil.copytree(SAMPLE_MIGRATIONS / ADD_PROJECTS, migrations / ADD_PROJECTS)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feat: avatar projects")
    return repo, first, git(repo, "rev-parse", "HEAD")


CONFIG = """
[environments.production]
database_url = "env:DATABASE_URL"
failure_threshold = 1

[environments.production.git]
repo = "{repo}"
schema = "prisma/schema.prisma"
migrations = "prisma/migrations"
ref = "main"

[environments.production.coolify]
url = "env:COOLIFY_URL"
token = "env:COOLIFY_TOKEN"
application = "{app}"

"""


def call(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_poll_once_tells_the_incident_then_all_ok_after_migrate_deploy(app_repo, incident_db, tmp_path,
                                                                         monkeypatch):
    from checks.migrations import deploy

    repo, first, second = app_repo
    config = tmp_path / "driftwatch.toml"
    config.write_text(CONFIG.format(repo=repo, app=APP) + SAMPLE_APP_CHECKS)
    store = tmp_path / "history.sqlite3"
    with CoolifyServer(TOKEN) as coolify, AvatarBackend(incident_db, API_TOKEN) as backend:
        coolify.add_application(uuid=APP, name="avatar-studio")
        coolify.add_deployment(APP, commit=first, status="finished")
        coolify.add_deployment(APP, commit=second, status="finished")
        for name, value in {"DATABASE_URL": incident_db, "COOLIFY_URL": coolify.url, "COOLIFY_TOKEN": TOKEN,
                            "AVATAR_API_URL": backend.url, "AVATAR_API_TOKEN": API_TOKEN}.items():
            monkeypatch.setenv(name, value)

        code, out, err = call("poll", "--config", str(config), "--once", "--format", "json",
                              "--history-url", str(store))
        assert code == 2, err
        env = json.loads(out)["environments"][0]
        assert (env["name"], env["state"]) == ("production", "failing")
        assert env["deployment"]["state"] == "ok" and env["deployment"]["commit"] == second
        assert [(h["name"], h["state"], h["status_code"]) for h in env["health"]] == [("api health", "ok", 200)]
        [smoke] = env["smoke"]
        assert smoke["state"] == "failing" and "got 400" in smoke["reason"]
        assert env["drift"]["state"] == "failing" and env["drift"]["schema_commit"] == second
        assert any(f["table"] == "avatar_projects" for f in env["drift"]["findings"])
        assert env["migrations"]["state"] == "failing" and env["migrations"]["pending"] == [ADD_PROJECTS]
        for secret in (TOKEN, API_TOKEN):
            assert secret not in out and secret not in err

        code, text, _ = call("poll", "--config", str(config), "--once", "--history-url", str(store))
        assert code == 2
        assert text.startswith("production: FAILING")
        assert "smoke create project" in text and "got 400" in text

        deploy(incident_db, repo / "prisma" / "migrations")

        code, out, err = call("poll", "--config", str(config), "--once", "--format", "json",
                              "--history-url", str(store))
        assert code == 0, out + err
        env = json.loads(out)["environments"][0]
        assert env["state"] == "ok"
        assert [env[k]["state"] for k in ("deployment", "drift", "migrations")] == ["ok", "ok", "ok"]
        assert env["smoke"][0]["state"] == "ok"

    with HistoryStore.open(str(store)) as history:
        [incident] = history.incidents("production")
        assert incident.closed_at is not None and "production failing" in incident.title
        changed = {(f.kind, f.from_state, f.to_state) for f in history.flips("production")}
        assert ("smoke", "failing", "ok") in changed and ("drift", "failing", "ok") in changed


def test_poll_with_an_unknown_environment_or_a_bad_config_cannot_run(tmp_path):
    config = tmp_path / "driftwatch.toml"
    config.write_text('[environments.production]\ninterval_s = 60\n')
    code, _, err = call("poll", "--config", str(config), "--once", "--env", "staging")
    assert code == 1 and "no environment 'staging'" in err and err.count("\n") == 1
    config.write_text("[environments.production\n")
    code, _, err = call("poll", "--config", str(config), "--once")
    assert code == 1 and str(config) in err


def test_an_environment_without_checks_is_unknown_and_not_ok(tmp_path):
    config = tmp_path / "driftwatch.toml"
    config.write_text('[environments.production]\ninterval_s = 60\n')
    code, out, _ = call("poll", "--config", str(config), "--once", "--format", "json",
                        "--history-url", str(tmp_path / "h.sqlite3"))
    env = json.loads(out)["environments"][0]
    assert env["state"] == "unknown" and env["health"] == [] and env["drift"] is None
    assert code == 0  # nothing is not ok: no check failed


class Endpoint:
    """A health endpoint whose status the test sets."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                body = b'{"status": "ok"}'
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


RESIDENT = """
[notify]
webhook = "env:SLACK_WEBHOOK_URL"
dashboard_url = "https://driftwatch.internal"

[environments.staging]
failure_threshold = 1

[[environments.staging.health]]
name = "api"
url = "{endpoint}/health"
interval_s = 1
timeout_s = 2
conditions = ["[STATUS] == 200"]
"""


@pytest.mark.timeout(120)
def test_the_resident_poller_records_notifies_serves_metrics_and_stops_on_sigterm(tmp_path):
    import re
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.conftest import ROOT
    from tests.test_poller import WebhookServer

    endpoint, hook = Endpoint(), WebhookServer([])
    config = tmp_path / "driftwatch.toml"
    config.write_text(RESIDENT.format(endpoint=endpoint.url))
    store = tmp_path / "history.sqlite3"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("DRIFTWATCH_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env["SLACK_WEBHOOK_URL"] = hook.url
    proc = subprocess.Popen([sys.executable, "-m", "checks", "poll", "--config", str(config), "--history-url",
                             str(store), "--metrics-port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        found = None
        while found is None:
            line = proc.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
            found = re.search(r"127\.0\.0\.1:(\d+)/metrics", line)
        port = int(found.group(1))

        def metric(name_and_labels: str) -> str | None:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            for row in text.splitlines():
                if row.startswith(name_and_labels + " "):
                    return row.split()[-1]
            return None

        up = 'driftwatch_check_up{environment="staging",kind="health",name="api"}'
        deadline = time.monotonic() + 30
        while metric(up) != "1.0" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert metric(up) == "1.0"
        endpoint.status = 500
        deadline = time.monotonic() + 30
        while not hook.bodies and time.monotonic() < deadline:
            time.sleep(0.2)
        assert metric(up) == "0.0"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        lines.append(err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        endpoint.close()
        hook.close()
    assert proc.returncode == 0, "".join(lines)
    texts = [b["text"] for b in hook.bodies]
    assert any("*staging*: health 'api' ok → *failing*" in t and "driftwatch.internal" in t for t in texts), texts
    assert any("incident" in t and "opened" in t for t in texts), texts
    said = "".join(lines)
    assert "staging health api: ok -> failing" in said and "stopped" in said
    assert "secret-token" not in said
    with HistoryStore.open(str(store)) as history:
        assert [(f.from_state, f.to_state) for f in history.flips("staging")][:2] == [(None, "ok"), ("ok", "failing")]
        assert history.incidents("staging", open_only=True)
