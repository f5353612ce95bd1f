"""Planted secrets never leave a report, in any format.

Distinctive secrets are planted everywhere a report gathers text from — the database URL, the
Coolify token, smoke-step headers, a response body echoing a token, an error message with a
URL, an action's SQL comment, query parameters, cookies — straight into the facts (so the
history store's own scrubbing cannot hide a gap here), and every output byte is searched.
"""
from __future__ import annotations

import dataclasses
from urllib.parse import quote

import pytest

from checks.reports import Redactor, render, secrets_in
from checks.reports.compose import compose
from checks.reports.facts import ActionInfo, DriftPoint, FlipInfo
from tests.report_scenario import SMOKE_URL, at, incident_facts

DB_PASSWORD = "Pg-PASSWORD-7f3a9c!x"
COOLIFY_TOKEN = "cfy-TOKEN-2b8d51e0aa"
API_TOKEN = "api-TOKEN-91c7e4f2dd"
ECHOED = "echoed-TOKEN-5e6f7a8b9c"
URL_PASSWORD = "url-PASSWORD-0d1e2f3a"
SQL_SECRET = "sql-PASSWORD-4b5c6d7e"
QUERY_KEY = "query-APIKEY-8f9a0b1c"
COOKIE = "sess-COOKIE-2d3e4f5a6b"
WEBHOOK = "hooks-SLACK-6c7d8e9f0a"
PLANTED = [DB_PASSWORD, COOLIFY_TOKEN, API_TOKEN, ECHOED, URL_PASSWORD, SQL_SECRET, QUERY_KEY, COOKIE, WEBHOOK]

# A resolved configuration, as the config module hands it over (secret references resolved).
CONFIG = {
    "store": {"url": f"postgresql://ops:{DB_PASSWORD}@db.internal:5432/ops"},
    "notify": {"webhook": f"https://hooks.slack.com/services/T0/B0/{WEBHOOK}"},
    "environments": {"production": {
        "database_url": f"postgresql://app:{DB_PASSWORD}@db.internal:5432/avatar",
        "coolify": {"url": "https://coolify.example.com", "token": COOLIFY_TOKEN, "application": "sos80kw4koscosckww0wc4co"},
        "health": [{"name": "api health", "url": "https://api.example.com/health",
                    "headers": {"Authorization": f"Bearer {API_TOKEN}", "Accept": "application/json"}}],
        "smoke": [{"name": "create project", "steps": [{"method": "POST", "url": SMOKE_URL,
                                                        "headers": {"Authorization": f"Bearer {API_TOKEN}",
                                                                    "Cookie": f"sid={COOKIE}"}}]}],
    }},
}


def planted_facts():  # type: ignore[no-untyped-def]
    facts = incident_facts()
    smoke_detail = {
        "name": "create project", "state": "failing",
        "reason": f"step 1 POST {SMOKE_URL}?apikey={QUERY_KEY}: [STATUS] == 201: got 400",
        "headers": {"Authorization": f"Bearer {API_TOKEN}", "Cookie": f"sid={COOKIE}"},
        "steps": [{"method": "POST", "url": f"{SMOKE_URL}?token={API_TOKEN}&x=1", "status_code": 400,
                   "state": "failing", "reason": f"[STATUS] == 201: got 400 (Authorization: Bearer {API_TOKEN})",
                   "request_headers": {"Authorization": f"Bearer {API_TOKEN}"},
                   "response_headers": {"Set-Cookie": f"sid={COOKIE}; HttpOnly"},
                   "excerpt": f'{{"error":"bad request","token":"{ECHOED}","echo":{{"password":"{ECHOED}"}}}}'}],
    }
    facts.flips[0] = dataclasses.replace(facts.flips[0], reason=smoke_detail["reason"], detail=smoke_detail)
    facts.flips.append(FlipInfo(at(8, 40), "deployment", "deployment", "ok", "error",
                                f"Coolify answered 401 for https://coolify.example.com/api/v1/deployments?token={COOLIFY_TOKEN}",
                                {"reason": f"401 with header Authorization: Bearer {COOLIFY_TOKEN}"}))
    facts.flips.append(FlipInfo(at(8, 41), "deployment", "deployment", "error", "ok", None))
    facts.drift.insert(2, DriftPoint(at(8, 50), "error", {"critical": 0, "warning": 0, "info": 0}, (), None,
                                     reason=f"cannot connect to postgresql://app:{URL_PASSWORD}@db.internal:5432/avatar"))
    facts.actions[0] = dataclasses.replace(
        facts.actions[0],
        statements=f"-- connected as postgresql://app:{DB_PASSWORD}@db/avatar, password={SQL_SECRET}\n"
                   f"-- the emergency fix, run with PGPASSWORD={SQL_SECRET}\n" + (facts.actions[0].statements or ""),
        error=f"psql: connection to postgresql://app:{URL_PASSWORD}@db.internal/avatar failed",
        actor=f"alice (token {COOLIFY_TOKEN})",
    )
    facts.actions.append(ActionInfo(9, "migrate_command", "bob", at(9, 5), at(9, 5, 3), "failed", None,
                                    f"DATABASE_URL=postgresql://app:{DB_PASSWORD}@db/avatar bunx prisma migrate deploy",
                                    f"exit 1: Authorization: Bearer {API_TOKEN}", None, None,
                                    {"cookie": COOKIE, "note": f"webhook https://hooks.slack.com/services/T0/B0/{WEBHOOK}"}))
    return facts


def spellings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), secret.replace("!", "&#33;"), secret.replace("!", "\\u0021")}


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_no_planted_secret_appears_in_any_byte_of_any_format(fmt: str):
    redactor = Redactor(secrets_in(CONFIG))
    output = render(compose(planted_facts()), fmt, redactor).encode()
    leaks = [s for secret in PLANTED for s in spellings(secret) if s.encode() in output]
    assert leaks == []
    # and the report still tells the story around the removed values
    assert b"***" in output and b"avatar_projects" in output


def test_patterns_alone_remove_credentials_the_config_did_not_name():
    """Without any config, URLs, headers, parameters and JSON members still lose their secrets."""
    output = render(compose(planted_facts()), "md", Redactor())
    for secret in (API_TOKEN, ECHOED, URL_PASSWORD, SQL_SECRET, QUERY_KEY, COOKIE, COOLIFY_TOKEN, DB_PASSWORD):
        assert secret not in output, secret


def test_secrets_in_finds_tokens_headers_url_passwords_and_keeps_plain_headers():
    found = secrets_in(CONFIG)
    for secret in (DB_PASSWORD, COOLIFY_TOKEN, API_TOKEN, f"Bearer {API_TOKEN}", f"sid={COOKIE}"):
        assert secret in found
    assert "application/json" not in found and "sos80kw4koscosckww0wc4co" not in found


def test_redactor_text_examples():
    r = Redactor(["s3cr3t-value"])
    assert r.text("x s3cr3t-value y") == "x *** y"
    assert r.text("GET /a?token=abc123&page=2") == "GET /a?token=***&page=2"
    assert r.text("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert r.text("Authorization: Bearer abcdef123456") == "Authorization: ***"
    assert r.text('{"api_key": "zzz", "name": "ok"}') == '{"api_key": "***", "name": "ok"}'
    assert r.tree({"headers": {"Cookie": "a=b", "Accept": "text/html"}}) == {"headers": {"Cookie": "***", "Accept": "text/html"}}


def test_the_cli_with_a_config_removes_every_resolved_secret_from_every_format(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """End to end: secrets resolved from driftwatch.toml (env references), planted in the store
    where its own scrubbing does not reach (free text naming no key), reported in all formats."""
    import io

    from checks.cli import run
    from checks.history import ActionRecord, HistoryStore
    from checks.monitor.results import CheckResult
    from tests.conftest import SAMPLE_SCHEMA
    from tests.report_scenario import record_incident

    store_path = tmp_path / "history.sqlite3"
    with HistoryStore.open(str(store_path)) as store:
        record_incident(store)
        ids = {(t.kind, t.name): t.id for t in store.targets("production")}
        store.record_result(ids[("deployment", "deployment")], CheckResult(
            "deployment", "deployment", "error", f"Coolify refused token {COOLIFY_TOKEN} (401)", at(9, 30, 10), 5.0,
            {"status": None, "note": f"sent {COOLIFY_TOKEN}"}))
        store.record_result(ids[("smoke", "create project")], CheckResult(
            "smoke", "create project", "failing", f"step 1: got 400, body echoed {API_TOKEN}", at(9, 30, 10), 5.0,
            {"steps": [{"method": "POST", "url": SMOKE_URL, "status_code": 400, "state": "failing",
                        "reason": "got 400", "excerpt": f"you sent {API_TOKEN} and {COOKIE}"}]}))
        store.record_action(ActionRecord(kind="runbook", actor="alice@oncall", started_at=at(9, 30, 20),
                                         environment="production", statements=f"-- run as app / {DB_PASSWORD}\nSELECT 1;",
                                         database=f"postgresql://app:{DB_PASSWORD}@db.internal:5432/avatar",
                                         error=f"psql: {COOKIE}", outcome="failed"))
    config = tmp_path / "driftwatch.toml"
    config.write_text(f"""
[store]
url = "{store_path}"

[environments.production]
database_url = "env:DATABASE_URL"
schema = "{SAMPLE_SCHEMA}"

[environments.production.coolify]
url = "https://coolify.example.com"
token = "env:COOLIFY_TOKEN"
application = "sos80kw4koscosckww0wc4co"

[[environments.production.smoke]]
name = "create project"
headers = {{ Authorization = "Bearer ${{env:API_TOKEN}}", Cookie = "env:COOKIE" }}
[[environments.production.smoke.steps]]
method = "POST"
url = "{SMOKE_URL}"
conditions = ["[STATUS] == 201"]
""")
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{DB_PASSWORD}@db.internal:5432/avatar")
    monkeypatch.setenv("COOLIFY_TOKEN", COOLIFY_TOKEN)
    monkeypatch.setenv("API_TOKEN", API_TOKEN)
    monkeypatch.setenv("COOKIE", COOKIE)
    for fmt in ("md", "html", "json"):
        target = tmp_path / f"report.{fmt}"
        err = io.StringIO()
        code = run(["report", "--config", str(config), "--env", "production", "--since", "2025-10-12T08:30:00Z",
                    "--until", "2025-10-12T09:31:00Z", "--format", fmt, "--out", str(target)], io.StringIO(), err)
        assert (code, err.getvalue()) == (0, "")
        output = target.read_bytes()
        assert [s for s in (DB_PASSWORD, COOLIFY_TOKEN, API_TOKEN, COOKIE) for v in spellings(s) if v.encode() in output] == []
        assert b"Coolify refused token ***" in output or fmt == "html" and b"Coolify refused token ***" in output
