"""The poller: one round (`poll_once`), the resident loop, leases shared by several pollers,
SIGTERM, the webhook, /metrics, and a history store that goes away and comes back.

Probes are stand-ins (tests/poller_standin.py) passed through the poller's Probes seam; the
store, the HTTP servers (webhook, /metrics) and the processes are real.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from checks.history import HistoryStore
from checks.monitor.notify import Notifier
from checks.monitor.poller import Change, Poller
from checks.monitor.results import utcnow
from checks.monitor.round import Unit, poll_once
from tests.conftest import ROOT
from tests.poller_standin import health_units, scripted

STANDIN = ROOT / "tests" / "poller_standin.py"


def psycopg_url(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@pytest.fixture(autouse=True)
def no_real_store(tmp_path, monkeypatch):
    monkeypatch.delenv("DRIFTWATCH_HISTORY_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def env_units(env: str = "production", threshold: int = 1) -> list[Unit]:
    envcfg = SimpleNamespace(name=env)
    return [
        Unit(env, "deployment", "deployment", 60, threshold, envcfg, 10),
        Unit(env, "health", "api health", 30, threshold, SimpleNamespace(name="api health"), 10),
        Unit(env, "smoke", "create project", 300, threshold, SimpleNamespace(name="create project"), 10),
        Unit(env, "drift", "drift", 60, threshold, envcfg, 10),
    ]


CONFIG = SimpleNamespace(concurrency=8, environments={"production": None})


# -- one round ---------------------------------------------------------------------------------


def test_poll_once_prints_every_check_of_an_environment_in_the_issue_s_shape():
    seen: list[str | None] = []
    probes = scripted({"create project": ["failing"], "drift": ["failing"], "migrations": ["failing"]},
                      seen_commits=seen, commit="cbf49b4")
    report = poll_once(CONFIG, probes=probes, units=env_units())
    data = report.to_json()
    assert set(data) == {"checked_at", "environments"}
    [env] = data["environments"]
    assert list(env) == ["name", "state", "deployment", "health", "smoke", "drift", "migrations"]
    assert (env["name"], env["state"]) == ("production", "failing")
    assert env["deployment"]["state"] == "ok" and env["deployment"]["commit"] == "cbf49b4"
    assert env["deployment"]["reason"] is None and "name" not in env["deployment"]
    assert [(h["name"], h["state"], h["status_code"]) for h in env["health"]] == [("api health", "ok", 200)]
    assert env["smoke"][0]["state"] == "failing" and env["smoke"][0]["reason"] == "create project scripted failing"
    # the database was read after the deployment, at the deployed commit
    assert seen == ["cbf49b4"] and env["drift"]["schema_commit"] == "cbf49b4"
    assert env["migrations"]["state"] == "failing" and env["migrations"]["pending"] == []
    assert report.exit_code == 2
    assert poll_once(CONFIG, probes=scripted(), units=env_units()).exit_code == 0


def test_a_hanging_or_crashing_probe_is_an_error_and_holds_nothing_up():
    probes = scripted()

    async def hang(client, check):
        if check.name == "hangs":
            await asyncio.sleep(3600)
        raise RuntimeError("boom in the probe\nsecond line")

    probes.health = hang
    units = [Unit("production", "health", "hangs", 30, 1, SimpleNamespace(name="hangs"), 0.3),
             Unit("production", "health", "crashes", 30, 1, SimpleNamespace(name="crashes"), 5),
             Unit("production", "smoke", "fine", 30, 1, SimpleNamespace(name="fine"), 5)]
    started = time.monotonic()
    report = poll_once(CONFIG, probes=probes, units=units)
    assert time.monotonic() - started < 30  # bounded by the deadline, not the hour
    results = {r.name: r for r in report.environments[0].results}
    assert results["hangs"].state == "error"
    assert "did not finish within 0.3 s" in results["hangs"].reason
    assert results["crashes"].state == "error"
    assert results["crashes"].reason == "probe failed: RuntimeError: boom in the probe"
    assert results["fine"].state == "ok"


def test_a_config_problem_makes_its_checks_error_without_running_them():
    units = [Unit("production", "drift", "drift", 60, 1, None, 5,
                  problem="environments.production.database_url: env:DATABASE_URL is not set")]
    report = poll_once(CONFIG, probes=scripted(), units=units)
    env = report.to_json()["environments"][0]
    assert env["drift"]["state"] == env["migrations"]["state"] == "error"
    assert env["drift"]["reason"] == "environments.production.database_url: env:DATABASE_URL is not set"


def test_poll_once_records_results_and_applies_the_threshold_across_runs(tmp_path):
    with HistoryStore.open(str(tmp_path / "h.sqlite3")) as store:
        units = env_units(threshold=2)
        probes = scripted({"create project": ["ok", "failing", "failing", "ok"]})
        states = []
        for _ in range(4):
            report = poll_once(CONFIG, store=store, probes=probes, units=units)
            assert report.recorded_in == store.location
            smoke = report.to_json()["environments"][0]["smoke"][0]
            states.append(smoke["state"])
        assert states == ["ok", "warning", "failing", "ok"]
        assert [(f.from_state, f.to_state) for f in store.flips("production") if f.kind == "smoke"] == [
            (None, "ok"), ("ok", "warning"), ("warning", "failing"), ("failing", "ok")]
        [incident] = store.incidents("production")
        assert incident.closed_at is not None
        assert "create project" in incident.title
        assert {c.kind for c in store.latest("production")} == {"deployment", "health", "smoke", "drift",
                                                                 "migrations"}


# -- the resident poller -----------------------------------------------------------------------


def test_the_poller_runs_due_checks_records_them_and_notifies_changes(tmp_path):
    url = str(tmp_path / "h.sqlite3")
    sent = []

    class Recorder:
        def notify_change(self, change):
            sent.append(change)

        def notify_incident(self, change):
            sent.append(change)

        async def drain(self):
            pass

    poller = Poller(env_units(), store_url=url, probes=scripted({"api health": ["ok", "failing"]}),
                    notifier=Recorder(), log=open(os.devnull, "w"))
    asyncio.run(poller.run(rounds=1))
    assert poller.states[("production", "health", "api health")].state == "ok"
    # a second round: only what is due again (nothing yet: the shortest interval is 30 s)
    with HistoryStore.open(url) as store:
        assert store.claim_due("someone-else") == []
        [api] = [c for c in store.latest() if c.name == "api health"]
        assert api.state == "ok" and store.next_due() is not None
        store.register_checks("production", [])  # nothing changes
    assert sent == []  # first results are not news


@pytest.mark.timeout(60)
def test_a_slow_check_does_not_hold_up_the_checks_due_meanwhile(tmp_path):
    runs: list[tuple[str, float]] = []
    units = [Unit("production", "health", "slow", 60, 1, SimpleNamespace(name="slow"), 30),
             Unit("production", "health", "fast", 1, 1, SimpleNamespace(name="fast"), 30)]
    probes = scripted(sleeps={"slow": 3.0}, on_run=lambda name, start, end: runs.append((name, end)))

    async def main():
        poller = Poller(units, store_url=str(tmp_path / "h.sqlite3"), probes=probes, log=open(os.devnull, "w"))
        task = asyncio.create_task(poller.run())
        while not any(name == "slow" for name, _ in runs):
            await asyncio.sleep(0.05)
        poller.stop()
        await task

    asyncio.run(main())
    slow_done = next(end for name, end in runs if name == "slow")
    assert sum(1 for name, end in runs if name == "fast" and end < slow_done) >= 2


class WebhookServer:
    """A local webhook that answers with the scripted statuses, then 200."""

    def __init__(self, statuses: list[int], retry_after: str | None = None) -> None:
        self.statuses = list(statuses)
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                outer.bodies.append(json.loads(self.rfile.read(length)))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                if retry_after and status == 429:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T000/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def change(to_state="failing", reason="step 1 POST /projects: [STATUS] == 201: got 400"):
    from datetime import datetime, timezone

    return Change("production", "smoke", "create project", "ok", to_state, reason,
                  datetime(2026, 3, 1, tzinfo=timezone.utc), "failing")


@pytest.mark.timeout(60)
def test_the_webhook_is_retried_with_backoff_until_it_answers(tmp_path):
    hook = WebhookServer([500, 429, 503], retry_after="0")
    log = tmp_path / "log"
    try:
        async def main():
            notifier = Notifier(hook.url, dashboard_url="https://driftwatch.internal", first_backoff_s=0.05,
                                log=log.open("w"))
            started = time.monotonic()
            notifier.notify_change(change())
            assert time.monotonic() - started < 0.5  # queued, not sent inline
            await notifier.drain(timeout_s=20)
            return notifier

        notifier = asyncio.run(main())
    finally:
        hook.close()
    assert len(hook.bodies) == 4 and notifier.sent == 1 and notifier.failed == 0
    text = hook.bodies[-1]["text"]
    assert "*production*: smoke 'create project' ok → *failing*" in text
    assert "got 400" in text and "<https://driftwatch.internal|open the dashboard>" in text


@pytest.mark.timeout(60)
def test_a_webhook_that_refuses_is_given_up_without_leaking_its_url(tmp_path):
    hook = WebhookServer([500] * 10 + [404])
    log = tmp_path / "log"
    try:
        async def main():
            with log.open("w") as out:
                notifier = Notifier(hook.url, first_backoff_s=0.01, attempts=3, log=out)
                notifier.notify_change(change())
                notifier.notify_change(change("ok", None))
                await notifier.drain(timeout_s=20)
            return notifier

        notifier = asyncio.run(main())
    finally:
        hook.close()
    assert notifier.failed == 2 and len(hook.bodies) == 6
    said = log.read_text()
    assert "gave up on a message after 3 attempt(s): HTTP 500" in said
    assert "secret-token" not in said and "127.0.0.1" not in said


@pytest.mark.timeout(60)
def test_metrics_are_served_as_prometheus_text():
    from checks.monitor.metrics import serve

    detail = {"drift": {"summary": {"critical": 2, "warning": 4, "info": 0}},
              "migrations": {"pending": ["20251012082000_add_avatar_projects"], "failed": []}}
    probes = scripted({"drift": ["failing"], "migrations": ["failing"]}, detail=detail)
    poller = Poller(env_units(), store_url=None, probes=probes, open_store=_no_store,
                    log=open(os.devnull, "w"))
    asyncio.run(poller.run(rounds=1))
    server, port = serve(poller, 0, "127.0.0.1")
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        server.shutdown()
    lines = set(text.splitlines())
    assert 'driftwatch_check_up{environment="production",kind="health",name="api health"} 1.0' in lines
    assert 'driftwatch_check_up{environment="production",kind="drift",name="drift"} 0.0' in lines
    assert 'driftwatch_check_state{environment="production",kind="drift",name="drift",state="failing"} 1.0' in lines
    assert 'driftwatch_drift_findings{environment="production",severity="critical"} 2.0' in lines
    assert 'driftwatch_migrations_pending{environment="production"} 1.0' in lines
    assert 'driftwatch_deployment_status{environment="production",status="finished"} 1.0' in lines
    assert 'driftwatch_environment_up{environment="production"} 0.0' in lines
    assert "driftwatch_store_up 0.0" in lines
    assert any(line.startswith('driftwatch_check_latency_seconds{environment="production"') for line in lines)


def _no_store(url):
    from checks.errors import HistoryError

    raise HistoryError("cannot open history store x: connection refused")


@pytest.mark.timeout(120)
def test_a_store_that_goes_down_is_retried_while_states_stay_in_memory(pg_server, make_db, tmp_path):
    url = make_db()
    store_url = psycopg_url(url)
    log = tmp_path / "poller.log"
    from urllib.parse import urlsplit

    name = urlsplit(url).path.lstrip("/")

    async def main():
        poller = Poller(health_units("production", 2, 1), store_url=store_url,
                        probes=scripted({"h0": ["ok", "ok", "failing"]}), log=log.open("w"),
                        store_retry_s=(0.2, 0.5))
        task = asyncio.create_task(poller.run())

        async def until(cond, what):
            for _ in range(300):
                if cond():
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(what)

        await until(lambda: poller.rounds >= 1 and poller.store_up, "first round with the store")
        await asyncio.to_thread(pg_server.drop_database, url)
        await until(lambda: not poller.store_up, "store noticed down")
        rounds_down = poller.rounds
        await until(lambda: poller.rounds >= rounds_down + 2, "rounds while the store is down")
        assert poller.states[("production", "health", "h0")].state == "failing"  # kept in memory
        await asyncio.to_thread(pg_server.execute, f'CREATE DATABASE "{name}" TEMPLATE template0')
        await until(lambda: poller.store_up and poller.rounds >= rounds_down + 4, "store back")
        poller.stop()
        await task

    asyncio.run(main())
    said = log.read_text()
    assert "history store unavailable, retrying in 0.2 s (states kept in memory)" in said
    assert "history store is back" in said
    with HistoryStore.open(store_url) as store:  # the new database got the schema and new results
        assert {c.name for c in store.latest() if c.checked_at is not None} == {"h0", "h1"}


@pytest.mark.timeout(120)
def test_results_seen_while_the_store_was_down_are_written_with_their_own_times_once_it_is_back(
        pg_server, make_db, tmp_path):
    """An outage of the store must not leave a hole in the postmortem: the failure that began
    during it is a flip and an incident dated when it happened, not when the store came back."""
    import psycopg
    from urllib.parse import urlsplit

    url = make_db()
    store_url = psycopg_url(url)
    name = urlsplit(url).path.lstrip("/")
    log = tmp_path / "poller.log"
    admin = psycopg.connect(pg_server.url, autocommit=True)
    marks: dict[str, object] = {}

    async def main():
        poller = Poller(health_units("production", 1, 1), store_url=store_url,
                        probes=scripted({"h0": ["ok", "ok"] + ["failing"] * 200}), log=log.open("w"),
                        store_retry_s=(0.2, 0.5))
        task = asyncio.create_task(poller.run())

        async def until(cond, what):
            for _ in range(400):
                if cond():
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(what)

        await until(lambda: poller.rounds >= 1 and poller.store_up, "first round with the store")
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        await until(lambda: not poller.store_up, "store noticed down")
        await until(lambda: poller.states[("production", "health", "h0")].state == "failing", "h0 failing")
        marks["failed_at"] = poller.results[("production", "health", "h0")].checked_at
        rounds_down = poller.rounds
        await until(lambda: poller.rounds >= rounds_down + 3, "rounds while the store is down")
        marks["back_at"] = utcnow()
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await until(lambda: poller.store_up, "store back")
        poller.stop()
        await task

    try:
        asyncio.run(main())
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
    said = log.read_text()
    assert "result(s) seen while the history store was down" in said and "history store is back" in said, said
    with HistoryStore.open(store_url) as store:
        [flip] = [f for f in store.flips("production") if f.name == "h0" and f.to_state == "failing"]
        assert flip.at < marks["back_at"]  # dated when it happened
        assert abs((flip.at - marks["failed_at"]).total_seconds()) < 1.5
        [incident] = store.incidents("production")
        assert incident.opened_at < marks["back_at"] and incident.closed_at is None
        [h0] = [t for t in store.targets("production") if t.name == "h0"]
        during = store.observations(h0.id, since=marks["failed_at"], until=marks["back_at"])
        assert len(during) >= 3 and all(o.state == "failing" for o in during)


# -- processes: SIGTERM and three pollers sharing one store -----------------------------------


def start_poller(store_url: str, owner: str, runs, *, checks=6, interval=2, sleep=0.0) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, str(STANDIN), "--store", store_url, "--owner", owner, "--checks", str(checks),
         "--interval", str(interval), "--runs", str(runs), "--sleep", str(sleep)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def read_runs(path) -> list[tuple[str, str, float, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        owner, name, start, end = line.split()
        out.append((owner, name, float(start), float(end)))
    return out


@pytest.mark.timeout(120)
def test_sigterm_finishes_the_round_in_flight_then_exits(tmp_path):
    store_url = str(tmp_path / "h.sqlite3")
    runs = tmp_path / "runs"
    proc = start_poller(store_url, "solo", runs, checks=2, interval=60, sleep=1.5)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the round is in flight
            with HistoryStore.open(store_url) as store:
                claimed = [c for c in store.latest() if c.due_at and c.due_at > utcnow()]
                if claimed and all(c.checked_at is None for c in claimed):
                    break
            time.sleep(0.1)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.strip() == "stopped"
    assert len(read_runs(runs)) == 2  # both probes of the round finished
    with HistoryStore.open(store_url) as store:
        assert all(c.state == "ok" for c in store.latest())  # and were recorded before it exited


@pytest.mark.timeout(240)
def test_three_pollers_share_the_checks_and_pick_up_a_killed_one_s(make_db, tmp_path):
    store_url = psycopg_url(make_db())
    HistoryStore.open(store_url).close()  # migrate once, before the race
    runs = tmp_path / "runs"
    interval, checks = 2, 9
    procs = {owner: start_poller(store_url, owner, runs, checks=checks, interval=interval)
             for owner in ("a", "b", "c")}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the victim has run some checks
            if sum(1 for r in read_runs(runs) if r[0] == "b") >= 3:
                break
            time.sleep(0.1)
        time.sleep(1.0)
        procs["b"].kill()
        procs["b"].wait(timeout=30)
        killed_at = time.time()
        time.sleep(4 * interval + 2)
        for owner in ("a", "c"):
            procs[owner].send_signal(signal.SIGTERM)
        for owner in ("a", "c"):
            procs[owner].communicate(timeout=60)
            assert procs[owner].returncode == 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    done = read_runs(runs)
    by_check: dict[str, list[tuple[str, float]]] = {}
    for owner, name, start, _end in done:
        by_check.setdefault(name, []).append((owner, start))
    assert set(by_check) == {f"h{i}" for i in range(checks)}
    assert {owner for owner, *_ in done} == {"a", "b", "c"}  # they shared the work
    # Probe start times stand for claim times; on a loaded machine a probe may start late.
    # Half an interval of slack still catches a check run twice for one due-time (gap ~ 0).
    slack = interval / 2
    for name, starts in by_check.items():
        times = sorted(t for _o, t in starts)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) >= interval - slack, (name, gaps)  # never twice within an interval
        after = [t for t in times if t > killed_at]
        assert after and after[0] - killed_at <= 2 * interval + slack, (name, after[:1])
    victims = {name for owner, name, start, _ in done if owner == "b"}
    assert victims and all(any(o != "b" and t > killed_at for o, t in by_check[v]) for v in victims)
