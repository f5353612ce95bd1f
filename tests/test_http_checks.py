"""Health and smoke checks against real misbehaving servers on 127.0.0.1.

Each test says which misbehaviour and which reason it must produce; none asserts a time
(pytest-timeout fails a test that hangs instead).
"""
from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from checks.config import HealthCheck, SmokeCheck, parse_config
from checks.monitor.http_checks import make_client, run_health, run_http_checks, run_smoke
from checks.monitor.results import CheckResult
from tests.servers.misbehaving import Server, start

pytestmark = pytest.mark.timeout(60)

TOKEN = "Bearer sk-DRIFTWATCH-PLANTED-0123456789"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start()
    yield s
    s.stop()


def health(url: str, *conditions: str, timeout_s: float = 5, **extra: Any) -> HealthCheck:
    data: dict[str, Any] = {"name": "h", "url": url, "timeout_s": timeout_s, **extra}
    if conditions:
        data["conditions"] = list(conditions)
    return HealthCheck.model_validate(data)


def check_one(check: HealthCheck, verify: bool | ssl.SSLContext = True) -> CheckResult:
    async def go() -> CheckResult:
        async with make_client(concurrency=4, verify=verify) as client:
            return await run_health(client, check)
    return asyncio.run(go())


def smoke_result(check: SmokeCheck, run_id: str = "r1") -> CheckResult:
    async def go() -> CheckResult:
        async with make_client(concurrency=4) as client:
            return await run_smoke(client, check, run_id=run_id)
    return asyncio.run(go())


def test_a_healthy_endpoint_is_ok(server: Server) -> None:
    result = check_one(health(server.url("/ok"), "[STATUS] == 200", "[BODY].status == ok"))
    assert (result.kind, result.state, result.reason) == ("health", "ok", None)
    assert result.detail == {"status_code": 200}
    assert result.latency_ms is not None and result.latency_ms > 0
    assert set(result.to_json()) == {"name", "state", "reason", "status_code", "latency_ms", "checked_at"}


def test_a_200_with_an_error_body_fails_on_the_value_seen(server: Server) -> None:
    result = check_one(health(server.url("/degraded"), "[STATUS] == 200", "[BODY].status == ok"))
    assert result.state == "failing"
    assert result.reason == '[BODY].status == ok: got "degraded"'
    assert result.detail == {"status_code": 200}


def test_an_html_body_is_not_json(server: Server) -> None:
    result = check_one(health(server.url("/html"), "[STATUS] == 200", "[BODY].status == ok"))
    assert result.state == "failing"
    assert result.reason == ('body not JSON (text/html, starts "<!doctype html><html><head><title>502 Ba"): '
                             '[BODY].status == ok')


def test_a_wrong_status_names_the_status(server: Server) -> None:
    result = check_one(health(server.url("/status/503"), "[STATUS] == 200"))
    assert (result.state, result.reason, result.detail) == ("failing", "[STATUS] == 200: got 503", {"status_code": 503})
    # the default condition is [STATUS] < 400
    assert check_one(health(server.url("/status/404"))).reason == "[STATUS] < 400: got 404"


def test_a_server_that_never_answers_times_out(server: Server) -> None:
    result = check_one(health(server.url("/hang"), timeout_s=0.5))
    assert (result.state, result.reason) == ("failing", "timeout: no response within 0.5 s")


def test_a_trickling_server_cannot_outlast_the_deadline(server: Server) -> None:
    # each byte arrives well within httpx's read timeout: only the overall deadline stops it
    result = check_one(health(server.url("/trickle"), timeout_s=0.6))
    assert (result.state, result.reason) == ("failing", "timeout: the body did not arrive within 0.6 s")
    assert result.detail == {"status_code": 200}


def test_a_50_mb_body_is_not_read_past_the_cap(server: Server) -> None:
    result = check_one(health(server.url("/big"), "[STATUS] == 200", "[BODY].status == ok"))
    assert result.state == "failing"
    assert result.reason == "body larger than 1024 KiB (not read further); [BODY] conditions not checked"
    # a check that does not look at the body passes on the status alone
    assert check_one(health(server.url("/big"), "[STATUS] == 200")).state == "ok"


def test_a_redirect_loop_is_cut(server: Server) -> None:
    result = check_one(health(server.url("/loop")))
    assert result.state == "failing"
    assert result.reason == "too many redirects (a loop): more than 5, last to /loop"


def test_redirects_are_not_followed_when_told(server: Server) -> None:
    result = check_one(health(server.url("/loop"), "[STATUS] == 302", follow_redirects=False))
    assert result.state == "ok"


def test_latency_over_budget(server: Server) -> None:
    result = check_one(health(server.url("/slow?ms=300"), "[STATUS] == 200", "[RESPONSE_TIME] < 50"))
    assert result.state == "failing"
    assert result.reason.startswith("latency over budget: [RESPONSE_TIME] < 50: got ")
    assert result.reason.endswith(" ms")


def test_a_refused_port() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    result = check_one(health(f"http://127.0.0.1:{port}/health"))
    assert (result.state, result.reason, result.detail) == ("failing", "connection refused", {"status_code": None})


def test_a_name_that_does_not_resolve() -> None:
    result = check_one(health("http://driftwatch-test.invalid/health"))
    assert result.state == "failing"
    assert result.reason.startswith("DNS: cannot resolve the host")


def test_an_unresolved_secret_is_an_error_and_sends_nothing(server: Server) -> None:
    config = parse_config(f'''
[environments.p]
[[environments.p.health]]
name = "h"
url = "{server.url('/ok')}"
headers = {{ Authorization = "env:DRIFTWATCH_TEST_UNSET" }}
''', environ={})
    before = len(server.state.calls)
    result = check_one(config.environments["p"].health[0])
    assert result.state == "error"
    assert result.reason == ("not checked: environments.p.health[0].headers.Authorization: "
                             "env:DRIFTWATCH_TEST_UNSET is not set")
    assert len(server.state.calls) == before


# --- TLS ------------------------------------------------------------------------------------

def make_certificate(folder: Path, days: int) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1; days=-1 gives one that expired yesterday."""
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not installed")
    key, csr, cert = folder / f"key{days}.pem", folder / f"req{days}.csr", folder / f"cert{days}.pem"
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:TRUE\n")
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
        "-out", str(csr), "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-signkey", str(key), "-days", str(days), "-out", str(cert),
        "-extfile", str(ext))
    return cert, key


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def test_an_expired_certificate_is_a_tls_failure(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, -1)
    tls = start(tls=(str(cert), str(key)))
    try:
        result = check_one(health(tls.url("/ok")), verify=trusting(cert))
        assert (result.state, result.reason) == ("failing", "TLS: certificate has expired")
        untrusted = check_one(health(tls.url("/ok")))
        assert untrusted.state == "failing" and untrusted.reason.startswith("TLS: ")
        assert "self" in untrusted.reason or "expired" in untrusted.reason
    finally:
        tls.stop()


def test_verify_tls_false_accepts_a_self_signed_certificate_in_the_same_round(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, 2)
    tls = start(tls=(str(cert), str(key)))
    try:
        strict = health(tls.url("/ok"))
        lenient = health(tls.url("/ok"), verify_tls=False).model_copy(update={"name": "lenient"})
        results = asyncio.run(run_http_checks([strict, lenient], concurrency=2))
        assert results[0].state == "failing" and results[0].reason.startswith("TLS: ")
        assert (results[1].state, results[1].reason) == ("ok", None)
    finally:
        tls.stop()


def test_many_connections_are_spread_over_small_pools_and_reused() -> None:
    s = start()
    try:
        checks = [health(s.url(f"/slow?ms=20&i={i}")).model_copy(update={"name": f"h{i}"}) for i in range(60)]
        results = asyncio.run(run_http_checks(checks, concurrency=20))  # 3 pools of 7
        assert all(r.state == "ok" for r in results)
        assert s.state.max_inflight <= 20
        assert len(s.state.connections) <= 21
    finally:
        s.stop()


def test_certificate_expiration_is_measured_on_a_valid_certificate(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, 2)
    tls = start(tls=(str(cert), str(key)))
    try:
        ok = check_one(health(tls.url("/ok"), "[CERTIFICATE_EXPIRATION] > 24h"), verify=trusting(cert))
        assert ok.state == "ok", ok.reason
        short = check_one(health(tls.url("/ok"), "[CERTIFICATE_EXPIRATION] > 168h"), verify=trusting(cert))
        assert short.state == "failing"
        assert short.reason.startswith("[CERTIFICATE_EXPIRATION] > 168h: got 1d23h")
    finally:
        tls.stop()


# --- smoke ----------------------------------------------------------------------------------

def smoke_config(server: Server, *, middle: str | None = None, token: str = TOKEN) -> SmokeCheck:
    middle_step = f'''
[[environments.p.smoke.steps]]
url = "{server.url(middle)}"
conditions = ["[STATUS] == 200"]
''' if middle else ""
    config = parse_config(f'''
[environments.p]
[[environments.p.smoke]]
name = "create project"
headers = {{ Authorization = "env:API_TOKEN" }}
[[environments.p.smoke.steps]]
method = "POST"
url = "{server.url('/api/projects')}"
json = {{ name = "driftwatch smoke {{run_id}}" }}
conditions = ["[STATUS] == 201"]
capture = {{ project_id = "[BODY].id" }}
{middle_step}
[[environments.p.smoke.steps]]
method = "DELETE"
url = "{server.url('/api/projects/{project_id}')}"
conditions = ["[STATUS] < 300"]
always = true
''', environ={"API_TOKEN": token})
    return config.environments["p"].smoke[0]


def test_a_smoke_run_creates_then_deletes_with_the_captured_id(server: Server) -> None:
    server.state.projects_fail = False
    result = smoke_result(smoke_config(server), run_id="abc123")
    assert (result.kind, result.state, result.reason) == ("smoke", "ok", None)
    steps = result.detail["steps"]
    assert [(s["method"], s["status_code"], s["state"]) for s in steps] == [("POST", 201, "ok"), ("DELETE", 204, "ok")]
    created = int(steps[1]["url"].rsplit("/", 1)[1])
    assert created in server.state.deleted
    assert ("POST", "/api/projects") in [(m, p) for m, p, _ in server.state.calls]
    assert set(steps[0]) == {"method", "url", "status_code", "latency_ms", "state", "reason", "excerpt"}


def test_a_failing_create_keeps_status_and_excerpt_and_skips_the_cleanup_it_cannot_do(server: Server) -> None:
    server.state.projects_fail = True
    try:
        result = smoke_result(smoke_config(server))
    finally:
        server.state.projects_fail = False
    assert result.state == "failing"
    assert result.reason == "step 1 POST …/projects: [STATUS] == 201: got 400"
    first, cleanup = result.detail["steps"]
    assert (first["status_code"], first["state"]) == (400, "failing")
    assert 'relation \\"avatar_projects\\" does not exist' in first["excerpt"]
    assert (cleanup["state"], cleanup["reason"]) == ("skipped", "skipped: {project_id} was not captured")


def test_cleanup_runs_after_a_later_step_fails(server: Server) -> None:
    deleted_before = len(server.state.deleted)
    result = smoke_result(smoke_config(server, middle="/status/500"))
    assert result.state == "failing"
    assert result.reason == "step 2 GET …/500: [STATUS] == 200: got 500"
    assert [s["state"] for s in result.detail["steps"]] == ["ok", "failing", "ok"]
    assert len(server.state.deleted) == deleted_before + 1


def test_secrets_never_appear_in_reasons_excerpts_or_urls(server: Server) -> None:
    """A leaky endpoint echoes the bearer token; a URL carries one; the outputs must not."""
    secret = TOKEN.split()[1]
    checks: list[Any] = [
        health(server.url("/echo?token=" + secret), "[BODY].headers.Authorization == nope",
               headers={"Authorization": TOKEN}).model_copy(update={"secrets": (TOKEN,)}),
        health(server.url("/echo"), "[BODY] == pat(nothing*)",
               headers={"Authorization": TOKEN}).model_copy(update={"name": "h2", "secrets": (TOKEN,)}),
    ]
    server.state.projects_fail = True
    try:
        smoke = smoke_config(server, token=TOKEN)
        checks.append(smoke)
        results = asyncio.run(run_http_checks(checks, concurrency=3))
    finally:
        server.state.projects_fail = False
    assert [r.state for r in results] == ["failing", "failing", "failing"]
    dumped = json.dumps([r.to_json() for r in results]) + "".join(str(r.reason) for r in results)
    assert secret not in dumped
    assert "***" in dumped
    # the secret did reach the server: it is the outputs that were scrubbed
    assert any(h.get("Authorization") == TOKEN for _, _, h in server.state.calls)


# --- a round ----------------------------------------------------------------------------------

def test_a_round_keeps_order_bounds_concurrency_and_reuses_connections() -> None:
    s = start()
    try:
        checks = [health(s.url(f"/slow?ms=30&i={i}")).model_copy(update={"name": f"h{i}"}) for i in range(40)]
        results = asyncio.run(run_http_checks(checks, concurrency=4))
        assert [r.name for r in results] == [f"h{i}" for i in range(40)]
        assert all(r.state == "ok" for r in results)
        assert s.state.max_inflight <= 4
        assert len(s.state.connections) <= 4  # 40 requests over at most 4 kept-alive connections
    finally:
        s.stop()


def test_one_bad_endpoint_does_not_hold_the_others(server: Server) -> None:
    checks = [health(server.url("/hang"), timeout_s=0.5).model_copy(update={"name": "hang"}),
              health(server.url("/trickle"), timeout_s=0.5).model_copy(update={"name": "trickle"}),
              health(server.url("/ok")).model_copy(update={"name": "ok"})]
    results = asyncio.run(run_http_checks(checks, concurrency=2))
    assert [(r.name, r.state) for r in results] == [("hang", "failing"), ("trickle", "failing"), ("ok", "ok")]


def test_a_resident_checker_keeps_its_connections_between_rounds() -> None:
    from checks.monitor.http_checks import HttpChecker

    s = start()
    try:
        checks = [health(s.url(f"/ok?i={i}")).model_copy(update={"name": f"h{i}"}) for i in range(12)]

        async def two_rounds() -> list[list[CheckResult]]:
            async with HttpChecker(concurrency=3) as checker:
                return [await checker.run(checks), await checker.run(checks)]
        first, second = asyncio.run(two_rounds())
        assert all(r.state == "ok" for r in first + second)
        assert len(s.state.connections) <= 3  # 24 requests, the second round on the first's connections
    finally:
        s.stop()


def test_connections_stay_within_the_concurrency_across_many_origins() -> None:
    """At its limit the client closes the least recently used idle connection of another
    origin before opening one: 3 servers, concurrency 2, never more than 2 connections open."""
    import httpx

    from checks.monitor.http_transport import CheckTransport

    servers = [start() for _ in range(3)]
    try:
        checks = [health(servers[i % 3].url(f"/ok?i={i}")).model_copy(update={"name": f"h{i}"}) for i in range(12)]
        transport = CheckTransport(concurrency=2, verify=True)
        most = 0

        async def watch(check: HealthCheck, gate: asyncio.Semaphore, client: httpx.AsyncClient) -> CheckResult:
            nonlocal most
            async with gate:
                result = await run_health(client, check)
                most = max(most, transport.open)
                return result

        async def rounds() -> list[CheckResult]:
            gate = asyncio.Semaphore(2)
            async with httpx.AsyncClient(transport=transport) as client:
                first = await asyncio.gather(*(watch(c, gate, client) for c in checks))
                second = await asyncio.gather(*(watch(c, gate, client) for c in checks))
                return [*first, *second]
        results = asyncio.run(rounds())
        assert all(r.state == "ok" for r in results)
        assert 1 <= most <= 2
        assert transport.open == 0  # closing the client closed every kept connection
    finally:
        for s in servers:
            s.stop()


def test_checks_never_share_cookies(server: Server) -> None:
    async def go() -> list[dict[str, str]]:
        async with make_client(concurrency=2) as client:
            first = await client.get(server.url("/echo"), headers={"X-Set": "1"})
            client.cookies.set("session", "leaked")  # even one set by hand is not sent
            second = await client.get(server.url("/echo"))
            return [first.json()["headers"], second.json()["headers"]]
    for headers in asyncio.run(go()):
        assert "Cookie" not in headers


def test_a_smoke_check_stops_at_its_deadline_but_still_cleans_up(server: Server) -> None:
    config = parse_config(f'''
[environments.p]
[[environments.p.smoke]]
name = "slow flow"
timeout_s = 0.5
[[environments.p.smoke.steps]]
method = "POST"
url = "{server.url('/api/projects')}"
conditions = ["[STATUS] == 201"]
capture = {{ project_id = "[BODY].id" }}
[[environments.p.smoke.steps]]
url = "{server.url('/hang')}"
[[environments.p.smoke.steps]]
url = "{server.url('/ok')}"
[[environments.p.smoke.steps]]
method = "DELETE"
url = "{server.url('/api/projects/{project_id}')}"
always = true
''')
    deleted_before = len(server.state.deleted)
    result = smoke_result(config.environments["p"].smoke[0])
    assert result.state == "failing"
    assert result.reason.startswith("step 2 GET …/hang: timeout: no response within 0.")
    assert [s["state"] for s in result.detail["steps"]] == ["ok", "failing", "skipped", "ok"]
    assert len(server.state.deleted) == deleted_before + 1


# --- the shipped example against the sample app's backend ----------------------------------

def test_the_example_config_sees_the_incident_and_its_end(incident_db: str) -> None:
    """examples/avatar-studio/driftwatch.toml against the sample backend on the incident's
    database: /health is ok while creating a project fails with 400; once the pending
    migration is applied, the smoke check creates and deletes a project."""
    import psycopg

    from checks.config import load_config
    from examples.services.avatar_backend import AvatarBackend

    root = Path(__file__).resolve().parent.parent
    token = "sk-EXAMPLE-PLANTED-TOKEN-42"
    with AvatarBackend(incident_db, token) as backend:
        environ = {"DATABASE_URL": incident_db, "COOLIFY_URL": "http://127.0.0.1:9", "COOLIFY_TOKEN": "unused",
                   "AVATAR_API_URL": backend.url, "AVATAR_API_TOKEN": token}
        env = load_config(root / "examples" / "avatar-studio" / "driftwatch.toml", environ=environ).environments[
            "production"]
        health, smoke = asyncio.run(run_http_checks([*env.health, *env.smoke], concurrency=4))
        assert (health.state, health.detail) == ("ok", {"status_code": 200})
        assert smoke.state == "failing"
        assert smoke.reason == "step 1 POST …/projects: [STATUS] == 201: got 400"
        assert "avatar_projects" in smoke.detail["steps"][0]["excerpt"]
        assert smoke.detail["steps"][1]["state"] == "skipped"
        assert token not in json.dumps(smoke.to_json())

        migrations = sorted(p for p in (root / "examples" / "avatar-studio" / "prisma" / "migrations").iterdir()
                            if p.is_dir())
        with psycopg.connect(incident_db, autocommit=True) as conn:
            conn.execute((migrations[1] / "migration.sql").read_text())
        (smoke,) = asyncio.run(run_http_checks(env.smoke, concurrency=4))
        assert (smoke.state, smoke.reason) == ("ok", None)
        assert [s["status_code"] for s in smoke.detail["steps"]] == [201, 200]
        with psycopg.connect(incident_db) as conn:
            assert conn.execute("SELECT count(*) FROM avatar_projects").fetchone() == (0,)
