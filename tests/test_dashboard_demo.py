"""`driftwatch demo`'s pieces: the sample app's git history, its configuration, --reset, --help,
and the dashboard deferring to a resident poller."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import psycopg

from checks.check import check_database
from checks.demo import reset_demo, start_demo
from checks.demo_stack import build_sample_repo, config_text, schema_before_projects

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "examples" / "avatar-studio" / "prisma" / "schema.prisma"


def test_the_first_commit_schema_has_no_avatar_projects_and_matches_the_incident_database(incident_db, tmp_path):
    before = schema_before_projects(SCHEMA.read_text())
    assert "AvatarProject" not in before and "projectId" not in before
    path = tmp_path / "schema.prisma"
    path.write_text(before)
    report = check_database(incident_db, str(path)).report
    assert report.in_sync(), [f.message for f in report.findings]


def test_the_sample_repository_has_two_commits_the_second_adding_the_model(tmp_path):
    first, second = build_sample_repo(tmp_path / "app")
    show = lambda rev: subprocess.run(["git", "-C", str(tmp_path / "app"), "show", f"{rev}:prisma/schema.prisma"],
                                      capture_output=True, text=True, check=True).stdout
    assert "model AvatarProject" not in show(first)
    assert "model AvatarProject" in show(second)
    assert build_sample_repo(tmp_path / "app") == (first, second)  # reused, not rebuilt


def test_the_demo_configuration_loads_with_every_reference_resolved(tmp_path):
    from checks.config import load_config

    build_sample_repo(tmp_path / "sample-app")
    (tmp_path / "driftwatch.toml").write_text(config_text(
        database_url="postgresql://postgres:@/avatar_studio?host=/tmp/x", data_dir=tmp_path,
        coolify_url="http://127.0.0.1:9", backend_url="http://127.0.0.1:8"))
    config = load_config(tmp_path / "driftwatch.toml", environ={
        "DRIFTWATCH_DEMO_COOLIFY_TOKEN": "t", "DRIFTWATCH_DEMO_API_AUTH": "Bearer a"})
    env = config.environments["demo"]
    assert not env.problems
    assert env.git is not None and env.coolify is not None
    assert [c.name for c in env.health] == ["api health"] and [c.name for c in env.smoke] == ["create project"]


def test_reset_brings_the_incident_back_after_a_fix():
    state = Path(tempfile.mkdtemp(prefix="driftwatch-demo-test-"))
    try:
        demo = start_demo(state)
        with psycopg.connect(demo.url, autocommit=True) as conn:
            conn.execute('CREATE TABLE "avatar_projects" ("id" TEXT PRIMARY KEY)')
        reset_demo(state)
        demo = start_demo(state)
        assert demo.seeded
        with psycopg.connect(demo.url) as conn:
            assert conn.execute("SELECT to_regclass('avatar_projects')").fetchone()[0] is None
    finally:
        if (state / "demo-pg").exists():
            start_demo(state).stop()
        shutil.rmtree(state, ignore_errors=True)


def test_demo_help_starts_nothing(tmp_path):
    done = subprocess.run([sys.executable, "-m", "checks", "demo", "--help", "--data-dir", str(tmp_path / "d")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "--reset" in done.stdout and "--data-dir" in done.stdout
    assert not (tmp_path / "d").exists()


def test_the_dashboard_reads_a_resident_pollers_results_instead_of_probing(tmp_path):
    from checks.history import HistoryStore
    from checks.history.records import CheckSpec
    from checks.monitor.results import CheckResult
    from dashboard.environments import Environment
    from dashboard.monitor import Monitor

    url = str(tmp_path / "h.sqlite3")
    with HistoryStore.open(url) as store:  # what `driftwatch poll` wrote a moment ago
        ids = store.register_checks("prod", [CheckSpec("health", "api", 30)])
        store.record_result(ids[("health", "api")], CheckResult("health", "api", "failing", "HTTP 500",
                                                                 checked_at=datetime.now(timezone.utc)))
    probed = []
    monitor = Monitor(lambda env: probed.append(env) or [], interval_s=30, store_url=url)
    env = Environment("prod", None, None, None)
    assert monitor._follow_other_poller(env)
    [shown] = monitor.latest("prod")
    assert (shown.state, shown.result.reason) == ("failing", "HTTP 500")
    assert not probed


@contextmanager
def driftwatch_dashboard(args: list[str], *, cwd: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, int]]:
    """`driftwatch dashboard ARGS --port N` as an operator runs it, healthy; SIGTERM on the way out
    (`proc.returncode` then says how it ended)."""
    import os
    import signal

    from browser_support import free_port, wait_healthy

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "checks", "dashboard", *args, "--port", str(port)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == f"dashboard: http://127.0.0.1:{port}/"
        wait_healthy(port, proc)
        yield proc, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


def operator_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DRIFTWATCH_CONFIG")}
    return {**env, **extra}


def test_driftwatch_dashboard_serves_the_configured_environments_and_stops_on_sigterm(tmp_path, incident_db):
    import signal

    (tmp_path / "driftwatch.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "h.sqlite3"}"\n\n'
        f'[environments.staging]\ndatabase_url = "{incident_db}"\nschema = "{SCHEMA}"\n')
    with driftwatch_dashboard(["--config", str(tmp_path / "driftwatch.toml")], cwd=ROOT, env=operator_env()) as (proc, _):
        pass
    assert proc.returncode in (0, -signal.SIGTERM)


def test_driftwatch_dashboard_reads_the_secrets_of_the_directory_it_was_started_from(tmp_path, incident_db):
    """`secret:NAME` answered from ./.streamlit/secrets.toml of the operator's directory (as
    `config check` reads it), not the repository's, which Streamlit alone would read."""
    from browser_support import render_page

    project = tmp_path / "project"
    (project / ".streamlit").mkdir(parents=True)
    (project / ".streamlit" / "secrets.toml").write_text(f'STAGING_DATABASE_URL = "{incident_db}"\n')
    (project / "driftwatch.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "h.sqlite3"}"\n\n'
        f'[environments.staging]\ndatabase_url = "secret:STAGING_DATABASE_URL"\nschema = "{SCHEMA}"\n')
    env = operator_env(PYTHONPATH=str(ROOT))
    with driftwatch_dashboard([], cwd=project, env=env) as (_, port):
        page = render_page(port, timeout=120)
    assert "table avatar_projects does not exist" in page
    assert "STAGING_DATABASE_URL is not set" not in page
    missing = subprocess.run([sys.executable, "-m", "checks", "dashboard", "--secrets", str(tmp_path / "nope.toml")],
                             cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and missing.stderr.strip().endswith("no such file")


def test_driftwatch_dashboard_with_a_missing_config_is_one_error_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "checks", "dashboard", "--config", str(tmp_path / "nope.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().endswith("no such file")
    assert len(done.stderr.strip().splitlines()) == 1


class HealthEndpoint:
    """A real /health on 127.0.0.1 answering `{"status": "ok"}` with status `code` (change it
    while it runs); `hits` lists the paths asked for."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        endpoint = self
        self.code, self.hits = 200, []

        class Health(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                endpoint.hits.append(self.path)
                body = b'{"status": "ok"}'
                self.send_response(endpoint.code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/health"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def watching_one_health_check(tmp_path: Path, health: HealthEndpoint, store_url: str, *, interval_s: int,
                              failure_threshold: int | None = None):
    """The dashboard's monitor watching environment `prod` with one health check, through its
    background poller (a probe of its own fails the test)."""
    import pytest

    from checks.config import load_config
    from dashboard.environments import Environment
    from dashboard.monitor import Monitor

    threshold = f"failure_threshold = {failure_threshold}\n" if failure_threshold else ""
    (tmp_path / "driftwatch.toml").write_text(
        f'[environments.prod]\n{threshold}[[environments.prod.health]]\nname = "api"\n'
        f'url = "{health.url}"\ninterval_s = {interval_s}\nconditions = ["[STATUS] == 200"]\n')
    config = load_config(tmp_path / "driftwatch.toml", environ={})
    monitor = Monitor(lambda env: pytest.fail("the dashboard probed instead of its poller"), interval_s=1,
                      store_url=store_url)
    monitor.watch([Environment("prod", None, None, None, config=config.environments["prod"])])
    return monitor


def test_the_dashboard_runs_each_configured_check_on_its_own_interval_through_the_poller(tmp_path):
    import time

    from checks.history import HistoryStore

    health = HealthEndpoint()
    url = str(tmp_path / "h.sqlite3")
    monitor = watching_one_health_check(tmp_path, health, url, interval_s=3600)
    try:
        assert monitor.wait_first_round("prod", timeout_s=30)
        time.sleep(3)  # three refreshes of the pages' states: the hourly check is not run again
        [shown] = monitor.latest("prod")
        assert (shown.result.kind, shown.state, shown.stale) == ("health", "ok", False)
        assert len(health.hits) == 1
        with HistoryStore.open(url) as store:
            assert store.next_due(["prod"]) is not None  # leased on its interval, like `driftwatch poll`'s
    finally:
        monitor.stop()
        health.close()
    assert monitor._poller_thread is None


def test_the_demo_coolify_reports_the_second_commit_deployed_minutes_before_the_demo(tmp_path):
    """The demo's incident report names the deployment (its commit and time) as the root cause
    only when the deployment finished inside the report's look-back, i.e. just before the demo."""
    import asyncio
    from datetime import timedelta

    import httpx

    from checks.demo_stack import APPLICATION, write_coolify_state
    from checks.monitor.coolify import check_deployment
    from examples.services.coolify import CoolifyServer

    first, second = build_sample_repo(tmp_path / "sample-app")
    state = tmp_path / "coolify-state.json"
    write_coolify_state(state, second)

    async def newest(url: str):
        async with httpx.AsyncClient() as client:
            return await check_deployment(client, url=url, token="t", application=APPLICATION)

    def newest_finished() -> dict:
        with CoolifyServer("t", state_file=state) as api:
            result = asyncio.run(newest(api.url))
        assert result.detail["status"] == "finished", result.detail
        return result.detail

    now = datetime.now(timezone.utc)
    seen = newest_finished()
    assert seen["commit"] == second != first
    finished = datetime.fromisoformat(seen["finished_at"].replace("Z", "+00:00"))
    assert now - timedelta(minutes=15) < finished < now
    assert datetime.fromisoformat(seen["started_at"].replace("Z", "+00:00")) < finished

    # A plain restart keeps the deployment where the history put it; --reset makes it new again.
    own = lambda d: (d["deployment_uuid"], d["commit"], d["started_at"], d["finished_at"])
    write_coolify_state(state, second)
    assert own(newest_finished()) == own(seen)
    write_coolify_state(state, second, reset=True)
    assert newest_finished()["deployment_uuid"] != seen["deployment_uuid"]


def test_with_the_history_store_down_the_pages_show_the_in_process_pollers_fresh_results(tmp_path, make_db,
                                                                                        pg_server):
    """The store (PostgreSQL) refuses connections mid-watch: the dashboard's poller keeps checking
    in memory, and the pages show those results — current, with the store's outage said —
    instead of letting every state turn stale while the checks are in fact running."""
    import time
    from urllib.parse import urlsplit

    health = HealthEndpoint()
    store_url = make_db("")
    store_db = urlsplit(store_url).path.lstrip("/")
    monitor = watching_one_health_check(tmp_path, health, store_url, interval_s=1, failure_threshold=1)
    admin = psycopg.connect(pg_server.url, autocommit=True)
    try:
        assert monitor.wait_first_round("prod", timeout_s=30)
        admin.execute(f'ALTER DATABASE "{store_db}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (store_db,))
        health.code = 500  # the API breaks during the store's outage
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            [shown] = monitor.latest("prod")
            if shown.state == "failing" and monitor.store_error:
                break
            time.sleep(0.5)
        assert (shown.state, shown.stale) == ("failing", False), (shown, monitor.store_error)
        assert "history store unavailable" in monitor.store_error
        time.sleep(4)  # longer than the 3 intervals after which a state is marked stale
        [shown] = monitor.latest("prod")
        assert not shown.stale and shown.age_s < 3, shown
    finally:
        admin.execute(f'ALTER DATABASE "{store_db}" ALLOW_CONNECTIONS true')
        admin.close()
        monitor.stop()
        health.close()
