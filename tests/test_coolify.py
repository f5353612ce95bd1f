"""The deployment probe against the Coolify-compatible server, every answer checked against the spec."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from checks.monitor import coolify
from checks.monitor.coolify import check_deployment
from examples.services.coolify import CoolifyServer, Fault
from tests.coolify_spec import validate_all

pytestmark = pytest.mark.timeout(60)

TOKEN = "3|s3cr3t-coolify-token-xyz"
SHA1 = "a" * 40
SHA2 = "cbf49b45c815f9a1250331a0c77e00304a3e4021"
T0 = datetime(2025, 10, 12, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def server():
    coolify._not_before.clear()
    srv = CoolifyServer(TOKEN).start()
    try:
        yield srv
        validate_all(srv)
    finally:
        srv.stop()


def probe(server: CoolifyServer, app: str, *, token: str = TOKEN, url: str | None = None, **kw):
    async def go():
        async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
            return await check_deployment(client, url=url or server.url, token=token, application=app, **kw)

    return asyncio.run(go())


def assert_no_token(result) -> None:
    text = json.dumps(result.to_json()) + repr(result)
    assert TOKEN not in text and "s3cr3t" not in text


def incident_app(server: CoolifyServer, **fields) -> str:
    fields.setdefault("name", "dev-superlumiku")
    app = server.add_application(**fields)
    server.add_deployment(app, commit=SHA1, status="finished", created_at=T0, finished_at=T0 + timedelta(minutes=3))
    server.add_deployment(app, commit=SHA2, status="finished", created_at=T0 + timedelta(minutes=33),
                          finished_at=T0 + timedelta(minutes=36), commit_message="feat: avatar projects",
                          uuid="sos80kw4koscosckww0wc4co")
    return app


def test_a_finished_deployment_is_ok_with_its_commit_and_times(server):
    app = incident_app(server)
    r = probe(server, app)
    assert (r.kind, r.name, r.state, r.reason) == ("deployment", "deployment", "ok", None)
    d = r.detail
    assert d["status"] == "finished" and d["commit"] == SHA2
    assert d["deployment_uuid"] == "sos80kw4koscosckww0wc4co"
    assert d["started_at"] == "2025-10-12T08:33:00.000000Z" and d["finished_at"] == "2025-10-12T08:36:00.000000Z"
    assert d["application_status"] == "running:healthy" and d["application_name"] == "dev-superlumiku"
    assert d["post_deployment_command"] is None and d["migrates_on_deploy"] is False
    assert d["deployment_url"].startswith(server.url + "/project/") and d["deployment_url"].endswith("sos80kw4koscosckww0wc4co")
    assert d["in_progress"] is None and d["commit_message"] == "feat: avatar projects"
    assert d["deployment_commit"] == SHA2 and d["deployed_at"] == d["finished_at"]
    json.dumps(r.to_json())
    assert_no_token(r)
    assert validate_all(server) == 2


def test_it_sends_the_bearer_token_and_accepts_json_only(server):
    app = incident_app(server)
    seen = []
    orig = server.answer

    def spy(method, target, headers):
        seen.append(headers)
        return orig(method, target, headers)

    server.answer = spy
    probe(server, app)
    assert all(h["accept"] == "application/json" and h["authorization"] == f"Bearer {TOKEN}" for h in seen)


def test_a_post_deployment_migrate_command_is_reported(server):
    app = incident_app(server, post_deployment_command="npx prisma migrate deploy",
                       pre_deployment_command="echo hi")
    r = probe(server, app)
    assert r.detail["migrates_on_deploy"] is True
    assert r.detail["post_deployment_command"] == "npx prisma migrate deploy"
    assert r.detail["pre_deployment_command"] == "echo hi"
    validate_all(server)


def test_a_deployment_moves_from_in_progress_to_finished_and_to_failed(server):
    app = incident_app(server)
    dep = server.add_deployment(app, commit="HEAD", status="in_progress", created_at=T0 + timedelta(hours=1))
    r = probe(server, app)
    # The running code is still the last finished deployment's; the new one is shown beside it.
    assert r.state == "ok" and r.detail["commit"] == SHA2 and r.detail["status"] == "finished"
    assert r.detail["in_progress"]["deployment_uuid"] == dep and r.detail["in_progress"]["commit"] is None
    new_sha = "b" * 40
    server.set_deployment_status(dep, "in_progress", commit=new_sha)
    assert probe(server, app).detail["in_progress"]["commit"] == new_sha
    server.set_deployment_status(dep, "finished")
    r = probe(server, app)
    assert r.state == "ok" and r.detail["commit"] == new_sha and r.detail["deployment_uuid"] == dep
    assert r.detail["in_progress"] is None and r.detail["finished_at"]

    dep3 = server.add_deployment(app, commit="c" * 40, status="in_progress", created_at=T0 + timedelta(hours=2))
    server.set_deployment_status(dep3, "failed")
    r = probe(server, app)
    assert r.state == "failing" and r.detail["status"] == "failed" and r.detail["deployment_uuid"] == dep3
    assert "failed" in r.reason and dep3 in r.reason and "ccccccc" in r.reason
    assert r.detail["commit"] == new_sha  # still what runs
    assert r.detail["deployment_commit"] == "c" * 40 and r.detail["deployed_at"]
    validate_all(server)


def test_head_restart_only_and_preview_deployments_are_not_the_deployed_commit(server):
    app = incident_app(server)
    server.add_deployment(app, commit="HEAD", status="finished", restart_only=True, created_at=T0 + timedelta(hours=1))
    server.add_deployment(app, commit="d" * 40, status="finished", pull_request_id=7, created_at=T0 + timedelta(hours=2))
    r = probe(server, app)
    assert r.state == "ok" and r.detail["commit"] == SHA2
    validate_all(server)


def test_the_deployed_commit_is_found_behind_a_page_of_previews_and_failures(server):
    app = incident_app(server)
    for i in range(25):
        server.add_deployment(app, commit="e" * 40, status="finished" if i % 2 else "failed",
                              pull_request_id=i % 2 * 3, created_at=T0 + timedelta(hours=1, minutes=i))
    r = probe(server, app, take=10)
    assert r.detail["commit"] == SHA2 and r.state == "failing"  # the newest main deployment failed
    assert [e.path for e in server.exchanges].count(f"/api/v1/deployments/applications/{app}") == 3
    validate_all(server)


def test_finished_at_missing_after_a_restart_falls_back_to_updated_at(server):
    app = server.add_application()
    dep = server.add_deployment(app, commit=SHA1, status="in_progress", created_at=T0)
    server.set_deployment_status(dep, "failed")
    server.deployments[-1]["finished_at"] = None  # Coolify's startup cleanup does not set it
    r = probe(server, app)
    assert r.state == "failing" and r.detail["finished_at"] == server.deployments[-1]["updated_at"]
    assert r.detail["commit"] is None
    validate_all(server)


@pytest.mark.parametrize("shape", ["count_deployments", "bare_array", "object_keyed"])
def test_every_shape_of_the_deployment_list_is_read(server, shape):
    app = incident_app(server)
    server.add_deployment(app, commit="HEAD", status="queued", created_at=T0 + timedelta(hours=1))
    server.list_shape = shape
    r = probe(server, app)
    assert r.state == "ok" and r.detail["commit"] == SHA2 and r.detail["in_progress"]["status"] == "queued"
    validate_all(server)


def test_the_global_deployment_list_may_be_an_object_keyed_by_position(server):
    app = incident_app(server)
    server.add_deployment(app, status="queued")
    server.add_deployment(app, status="in_progress")
    server.list_shape = "object_keyed"
    with httpx.Client() as c:
        body = c.get(server.url + "/api/v1/deployments", headers={"Authorization": f"Bearer {TOKEN}",
                                                                   "Accept": "application/json"}).json()
    assert isinstance(body, dict) and set(body) == {"0", "1"}
    assert validate_all(server) == 1


def test_nulls_where_the_spec_says_string_are_tolerated(server):
    app = incident_app(server, install_command=None, build_command=None, start_command=None)
    for d in server.deployments:
        d.update(commit_message=None, git_type=None, current_process_id=None)
    r = probe(server, app)
    assert r.state == "ok" and r.detail["commit_message"] is None and r.detail["commit"] == SHA2
    validate_all(server)


def test_an_unknown_status_is_unknown_not_failed(server):
    app = server.add_application()
    server.add_deployment(app, commit=SHA1, status="finished", created_at=T0)
    server.add_deployment(app, commit=SHA2, status="exploded-gracefully", created_at=T0 + timedelta(hours=1))
    r = probe(server, app)
    assert r.state == "unknown" and "exploded-gracefully" in r.reason
    assert r.detail["commit"] == SHA1
    validate_all(server)


def test_cancelled_is_a_warning_and_no_deployments_is_unknown(server):
    app = server.add_application()
    r = probe(server, app)
    assert r.state == "unknown" and "no deployments" in r.reason
    server.add_deployment(app, commit=SHA1, status="cancelled-by-user")
    r = probe(server, app)
    assert r.state == "warning" and "cancelled" in r.reason
    validate_all(server)


@pytest.mark.parametrize("status,state", [("running:healthy", "ok"), ("running:unknown", "ok"),
                                          ("running:unhealthy", "warning"), ("restarting:unknown", "warning"),
                                          ("degraded:unhealthy", "warning"), ("exited", "failing"),
                                          ("exited:unhealthy", "failing")])
def test_the_application_container_state_counts(server, status, state):
    app = incident_app(server, status=status)
    r = probe(server, app)
    assert r.state == state and r.detail["application_status"] == status
    if state != "ok":
        assert status in r.reason
    validate_all(server)


@pytest.mark.parametrize("fault,words", [
    ("unauthorized", ["rejected the API token", "401", "Unauthenticated."]),
    ("invalid_token", ["rejected the API token", "400", "Invalid token."]),
    ("missing_ability", ["403", "lacks an ability"]),
    ("api_disabled", ["403", "API is disabled"]),
    ("ip_not_allowed", ["403", "allow-list"]),
    ("not_found", ["404", "check the application UUID"]),
    ("html_500", ["500", "HTML page"]),
    ("html_502", ["502", "HTML page", "restarting or upgrading"]),
    ("json_500", ["500", "Server Error"]),
])
def test_faults_are_errors_with_reasons(server, fault, words):
    app = incident_app(server)
    server.fault = Fault(fault)
    r = probe(server, app)
    assert r.state == "error", r
    for w in words:
        assert w in r.reason, r.reason
    assert "\n" not in r.reason
    assert_no_token(r)
    assert r.detail["http_status"] is not None
    assert validate_all(server) == 2


def test_a_wrong_token_is_an_error_and_never_shown(server):
    app = incident_app(server)
    r = probe(server, app, token="wrong-" + TOKEN)
    assert r.state == "error" and "401" in r.reason
    assert_no_token(r)
    assert "wrong-" not in json.dumps(r.to_json())
    validate_all(server)


def test_an_unknown_application_is_an_error(server):
    incident_app(server)
    r = probe(server, "doesnotexist000000000000")
    assert r.state == "error" and "404" in r.reason and "doesnotexist000000000000" in r.reason
    validate_all(server)


def test_429_honours_retry_after(server):
    app = incident_app(server)
    server.fault = Fault("rate_limited", retry_after="1")
    r = probe(server, app)
    assert r.state == "error" and "429" in r.reason and r.detail["retry_after_s"] == 1.0
    server.fault = None
    before = server.requests
    r = probe(server, app)  # within Retry-After: Coolify is not asked again
    assert r.state == "error" and "Retry-After" in r.reason and server.requests == before
    time.sleep(1.1)
    assert probe(server, app).state == "ok"
    validate_all(server)


def test_a_hanging_server_is_bounded_by_the_deadline(server):
    app = incident_app(server)
    server.fault = Fault("hang", hang_s=20)
    started = time.monotonic()
    r = probe(server, app, deadline_s=0.5)
    assert r.state == "error" and "did not answer within 0.5 s" in r.reason
    assert time.monotonic() - started < 5
    server.fault = None


def test_a_refused_connection_and_a_non_coolify_url_are_errors(server):
    port = server.port
    server.stop()
    r = probe(server, "x", url=f"http://127.0.0.1:{port}")
    assert r.state == "error" and "cannot connect" in r.reason and "refused" in r.reason


def test_a_url_that_is_not_http_is_an_error(server):
    r = probe(server, "x", url="coolify.example.com")
    assert r.state == "error" and "not an http(s) URL" in r.reason


def test_the_api_v1_suffix_and_userinfo_in_the_url_are_handled(server):
    app = incident_app(server)
    r = probe(server, app, url=server.url + "/api/v1/")
    assert r.state == "ok"
    r = probe(server, "nope", url=server.url.replace("http://", "http://admin:pw@"))
    assert r.state == "error" and "admin" not in r.reason and "pw@" not in r.reason
    validate_all(server)


def test_other_endpoints_of_the_server_match_the_spec(server):
    app = incident_app(server)
    dep = server.deployments[-1]["deployment_uuid"]
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/api/health").text == "OK"
        assert c.get("/api/v1/health").text == "OK"
        assert c.get("/api/v1/version", headers=headers).text == "4.3.11"
        assert len(c.get("/api/v1/applications", headers=headers).json()) == 1
        assert c.get(f"/api/v1/deployments/{dep}", headers=headers).json()["commit"] == SHA2
        assert c.get("/api/v1/deployments/nope", headers=headers).status_code == 404
        assert c.get("/api/v1/deployments", headers=headers).json() == []
        assert c.get("/api/v1/deploy", headers=headers).status_code == 405
        assert c.get(f"/api/v1/deployments/applications/{app}?take=0", headers=headers).status_code == 422
        assert c.get("/api/v1/applications").status_code == 401
        server.fault = Fault("rate_limited")
        assert c.get("/api/v1/applications").headers["content-type"].startswith("text/html")  # no Accept: HTML
    assert validate_all(server) == 11


def test_the_state_file_is_read_and_reread(tmp_path):
    seed = CoolifyServer(TOKEN)
    app = seed.add_application(uuid="sos80kw4koscosckww0wc4co")
    dep = seed.add_deployment(app, commit=SHA2, status="in_progress")
    state = tmp_path / "coolify.json"
    seed.save_state(state)
    with CoolifyServer(state_file=state) as srv:
        assert probe(srv, app).detail["in_progress"]["commit"] == SHA2
        seed.set_deployment_status(dep, "finished")
        time.sleep(0.01)
        seed.save_state(state)
        import os

        os.utime(state, (time.time() + 1, time.time() + 1))
        r = probe(srv, app)
        assert r.state == "ok" and r.detail["commit"] == SHA2
        validate_all(srv)


def test_a_hand_written_state_file_is_completed_and_can_inject_a_fault(tmp_path):
    state = tmp_path / "coolify.json"
    app = "sos80kw4koscosckww0wc4co"
    state.write_text(json.dumps({
        "token": TOKEN,
        "applications": [{"uuid": app, "name": "avatar-studio", "post_deployment_command": "bunx prisma migrate deploy"}],
        "deployments": [{"application": app, "commit": SHA2, "status": "finished",
                         "created_at": "2025-10-12T08:33:57.000000Z", "finished_at": "2025-10-12T08:36:40.000000Z"}],
    }))
    with CoolifyServer(state_file=state) as srv:
        r = probe(srv, app)
        assert r.state == "ok" and r.detail["commit"] == SHA2 and r.detail["migrates_on_deploy"] is True
        assert r.detail["finished_at"] == "2025-10-12T08:36:40.000000Z"
        data = json.loads(state.read_text())
        data["fault"] = {"kind": "api_disabled"}
        state.write_text(json.dumps(data))
        import os

        os.utime(state, (time.time() + 2, time.time() + 2))
        r = probe(srv, app)
        assert r.state == "error" and "API is disabled" in r.reason
        validate_all(srv)
