"""driftwatch.toml: one-line errors with key paths, references resolved per environment,
relative paths, masking, and `driftwatch config check`."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from checks.cli import run
from checks.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "avatar-studio" / "driftwatch.toml"

FULL = '''
[store]
url = "history.sqlite3"

[notify]
webhook = "env:SLACK_WEBHOOK_URL"
dashboard_url = "https://driftwatch.internal"

[environments.production]
database_url = "env:DATABASE_URL"
schema = "prisma/schema.prisma"
migrations = "prisma/migrations"
interval_s = 60
failure_threshold = 2

[environments.production.coolify]
url = "https://coolify.example.com"
token = "env:COOLIFY_TOKEN"
application = "sos80kw4koscosckww0wc4co"

[[environments.production.health]]
name = "api health"
url = "https://api.example.com/health"
headers = { Authorization = "env:API_TOKEN" }
timeout_s = 5
interval_s = 30
conditions = ["[STATUS] == 200", "[BODY].status == ok", "[RESPONSE_TIME] < 800"]

[[environments.production.smoke]]
name = "create project"
interval_s = 300
[[environments.production.smoke.steps]]
method = "POST"
url = "https://api.example.com/api/apps/avatar-creator/projects"
headers = { Authorization = "env:API_TOKEN" }
json = { name = "driftwatch smoke {run_id}" }
conditions = ["[STATUS] == 201"]
capture = { project_id = "[BODY].id" }
[[environments.production.smoke.steps]]
method = "DELETE"
url = "https://api.example.com/api/apps/avatar-creator/projects/{project_id}"
conditions = ["[STATUS] < 300"]
always = true

[environments.staging]
database_url = "env:STAGING_DATABASE_URL"
[environments.staging.git]
repo = "../app"
ref = "develop"
'''

ENV = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/WEBHOOKSECRET",
       "DATABASE_URL": "postgresql://app:DBPASSWORD-prod@db.internal:5432/app",
       "STAGING_DATABASE_URL": "postgresql://app:DBPASSWORD-staging@db.staging:5432/app",
       "COOLIFY_TOKEN": "1|COOLIFYTOKENSECRET", "API_TOKEN": "Bearer APITOKENSECRET"}
SECRETS = ("WEBHOOKSECRET", "DBPASSWORD", "COOLIFYTOKENSECRET", "APITOKENSECRET")


def write(tmp_path: Path, text: str, name: str = "driftwatch.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, **kwargs)  # type: ignore[arg-type]
    assert all("\n" not in p for p in caught.value.problems)
    return caught.value.problems


def test_the_issue_example_loads_with_every_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL), environ=ENV)
    prod = config.environments["production"]
    assert prod.database_url == ENV["DATABASE_URL"]
    assert prod.schema_path == tmp_path / "prisma" / "schema.prisma"
    assert prod.migrations == tmp_path / "prisma" / "migrations"
    assert (prod.interval_s, prod.failure_threshold) == (60, 2)
    assert prod.coolify is not None and prod.coolify.token == ENV["COOLIFY_TOKEN"]
    health = prod.health[0]
    assert (health.name, health.method, health.timeout_s, health.interval_s) == ("api health", "GET", 5, 30)
    assert health.headers == {"Authorization": "Bearer APITOKENSECRET"}
    assert [str(c) for c in health.conditions] == ["[STATUS] == 200", "[BODY].status == ok", "[RESPONSE_TIME] < 800"]
    smoke = prod.smoke[0]
    assert [s.method for s in smoke.steps] == ["POST", "DELETE"] and smoke.steps[1].always
    assert smoke.steps[0].json_body == {"name": "driftwatch smoke {run_id}"}
    assert list(smoke.steps[0].capture) == ["project_id"]
    assert config.store.url == str(tmp_path / "history.sqlite3")
    assert config.notify is not None and config.notify.webhook == ENV["SLACK_WEBHOOK_URL"]
    staging = config.environments["staging"]
    assert staging.git is not None and staging.git.repo == (tmp_path / ".." / "app").resolve()
    assert (staging.git.schema_path, staging.git.ref, staging.git.fetch) == ("prisma/schema.prisma", "develop", False)
    assert not prod.problems and not staging.problems and not config.problems


def test_the_lookup_order_is_flag_then_environment_variable_then_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = '[environments.{}]\n'
    write(tmp_path, text.format("from_cwd"))
    other = write(tmp_path, text.format("from_env"), "other.toml")
    flag = write(tmp_path, text.format("from_flag"), "flag.toml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DRIFTWATCH_CONFIG", raising=False)
    assert list(load_config().environments) == ["from_cwd"]
    monkeypatch.setenv("DRIFTWATCH_CONFIG", str(other))
    assert list(load_config().environments) == ["from_env"]
    assert list(load_config(flag).environments) == ["from_flag"]


def test_a_missing_file_says_how_to_name_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert str(caught.value) == f"{tmp_path / 'nope.toml'}: no such file (from --config; pass --config FILE or set DRIFTWATCH_CONFIG)"


@pytest.mark.parametrize("text, problem", [
    ("[environments.production\nx = 1", "driftwatch.toml:1:25: Expected ']' at the end of a table declaration"),
    ("[environments.p]\nschema = \n", "driftwatch.toml:2:10: Invalid value"),
    ('[environments.production]\n[[environments.production.health]]\nname = "a"\nurl = "https://x/h"\n'
     '[[environments.production.health]]\nname = "b"\nurl = "api.example.com/health"\n',
     "driftwatch.toml: environments.production.health[1].url: not a URL (expected http:// or https://)"),
    ('[environments.p]\nbogus = 1\n', "driftwatch.toml: environments.p.bogus: unknown key"),
    ('[environments.p]\n[[environments.p.health]]\nname = "a"\nurl = "https://x/h"\n'
     'conditions = ["[STATUS] == 200", "[STATUSCODE] == 200"]\n',
     "driftwatch.toml: environments.p.health[0].conditions[1]: unknown placeholder [STATUSCODE] (expected one of "
     "[STATUS], [BODY], [RESPONSE_TIME], [CERTIFICATE_EXPIRATION], [CONNECTED])"),
    ('[environments.p]\ninterval_s = "often"\n', "driftwatch.toml: environments.p.interval_s: expected a number, got 'often'"),
    ('[environments.p]\nfailure_threshold = 0\n', "driftwatch.toml: environments.p.failure_threshold: must be at least 1"),
    ('[environments.p]\n[[environments.p.health]]\nurl = "https://x/h"\n', "driftwatch.toml: environments.p.health[0].name: required"),
    ('[environments.p]\n[[environments.p.health]]\nname = "a"\nurl = "https://x/h"\n[[environments.p.health]]\n'
     'name = "a"\nurl = "https://x/i"\n', "driftwatch.toml: environments.p.health[1].name: 'a' is already the name of health[0]"),
    ('[environments.p]\n[[environments.p.smoke]]\nname = "s"\n[[environments.p.smoke.steps]]\nurl = "https://x/{project_id}"\n',
     "driftwatch.toml: environments.p.smoke[0].steps[0]: {project_id} is not captured by an earlier step (captures: run_id)"),
    ('[environments.p]\n[[environments.p.smoke]]\nname = "s"\n[[environments.p.smoke.steps]]\nurl = "https://x/"\n'
     'capture = { id = "id" }\n', "driftwatch.toml: environments.p.smoke[0].steps[0].capture.id: a capture is a [BODY] path such as [BODY].id"),
    ('[environments.p]\n[[environments.p.health]]\nname = "a"\nurl = "https://x/h"\nmethod = "FETCH"\n',
     "driftwatch.toml: environments.p.health[0].method: not an HTTP method (expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)"),
    ('[environments.p]\ndatabase_url = "mysql://x/y"\nschema = "s"\n',
     "driftwatch.toml: environments.p.database_url: not a PostgreSQL URL (expected postgresql://…)"),
    ('[environments.p]\ndatabase_url = "postgresql://x/y"\n',
     "driftwatch.toml: environments.p.schema: required when database_url is set (or a [git] table)"),
    ('[environments.p]\nschema = "s"\n[environments.p.git]\nrepo = "."\n',
     "driftwatch.toml: environments.p.git: set either schema (a local file) or [git] (the schema at the deployed commit), not both"),
    ('[environments."my env"]\ninterval_s = -1\n', 'driftwatch.toml: environments."my env".interval_s: must be greater than 0'),
    ("concurrency = 3\n", "driftwatch.toml: environments: required"),
    ('[environments.p]\n[[environments.p.health]]\nname = "a"\nurl = "https://x/h"\nsecrets = ["x"]\n',
     "driftwatch.toml: environments.p.health[0].secrets: unknown key"),
    ('[environments.p]\nproblems = []\n', "driftwatch.toml: environments.p.problems: unknown key"),
])
def test_an_error_is_one_line_naming_the_file_and_key_path(text: str, problem: str) -> None:
    assert problems_of(text) == [problem]


def test_every_problem_is_listed_not_just_the_first() -> None:
    problems = problems_of('[environments.a]\ninterval_s = 0\n[environments.b]\nbogus = 1\n')
    assert problems == ["driftwatch.toml: environments.a.interval_s: must be greater than 0",
                        "driftwatch.toml: environments.b.bogus: unknown key"]
    with pytest.raises(ConfigError) as caught:
        parse_config('[environments.a]\ninterval_s = 0\n[environments.b]\nbogus = 1\n')
    assert str(caught.value).endswith("(and 1 more problem)")


def test_an_unset_reference_is_a_problem_of_its_environment_only(tmp_path: Path) -> None:
    env = dict(ENV)
    del env["API_TOKEN"], env["STAGING_DATABASE_URL"]
    config = load_config(write(tmp_path, FULL), environ=env)
    prod, staging = config.environments["production"], config.environments["staging"]
    assert [p.message for p in prod.problems] == [
        "environments.production.health[0].headers.Authorization: env:API_TOKEN is not set",
        "environments.production.smoke[0].steps[0].headers.Authorization: env:API_TOKEN is not set"]
    # the check that needs it carries it; the rest of the environment is whole
    assert prod.health[0].problems and prod.smoke[0].problems
    assert prod.coolify is not None and not prod.coolify.problems and not prod.database_problems
    assert [p.message for p in staging.database_problems] == [
        "environments.staging.database_url: env:STAGING_DATABASE_URL is not set"]
    assert not staging.problems_under("git")


def test_references_env_secret_file_and_embedded(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("FILETOKEN\n")
    text = '''
[environments.p]
[[environments.p.health]]
name = "a"
url = "${env:API_URL}/health"
headers = { Authorization = "Bearer ${file:token.txt}", X-Api-Key = "secret:api.key" }
'''
    config = load_config(write(tmp_path, text), environ={"API_URL": "https://api.test"},
                         secrets={"api": {"key": "STREAMLITKEY"}})
    check = config.environments["p"].health[0]
    assert check.url == "https://api.test/health"
    assert check.headers == {"Authorization": "Bearer FILETOKEN", "X-Api-Key": "STREAMLITKEY"}
    assert "FILETOKEN" in check.secrets and "STREAMLITKEY" in check.secrets
    assert "https://api.test" not in " ".join(check.secrets)  # a place, not a secret
    # without the dashboard's secrets, secret: is unavailable (for this check only)
    config = load_config(tmp_path / "driftwatch.toml", environ={"API_URL": "https://api.test"})
    assert [p.message for p in config.environments["p"].health[0].problems] == [
        "environments.p.health[0].headers.X-Api-Key: secret:api.key is not available "
        "(secret: references are read by the dashboard from st.secrets)"]


def test_a_resolved_value_that_is_invalid_is_named_with_its_reference() -> None:
    config = parse_config('[environments.p]\n[[environments.p.health]]\nname = "a"\nurl = "env:U"\n',
                          environ={"U": "not a url"})
    assert [p.message for p in config.environments["p"].health[0].problems] == [
        "environments.p.health[0].url: env:U: not a URL (expected http:// or https://)"]


def test_defaults_flow_into_environments_and_checks() -> None:
    config = parse_config('''
concurrency = 8
[defaults]
interval_s = 20
failure_threshold = 3
timeout_s = 4
[environments.a]
[[environments.a.health]]
name = "h"
url = "http://x/h"
[environments.b]
interval_s = 90
[[environments.b.health]]
name = "h"
url = "http://x/h"
interval_s = 15
''')
    a, b = config.environments["a"], config.environments["b"]
    assert config.concurrency == 8
    assert (a.interval_s, a.failure_threshold, a.health[0].interval_s, a.health[0].timeout_s) == (20, 3, 20, 4)
    assert (b.interval_s, b.health[0].interval_s) == (90, 15)
    assert [str(c) for c in a.health[0].conditions] == ["[STATUS] < 400"]


def test_literal_passwords_are_accepted_with_a_warning() -> None:
    config = parse_config('''
[environments.p]
database_url = "postgresql://app:hunter2@db/app"
schema = "s.prisma"
[[environments.p.health]]
name = "h"
url = "https://x/h"
headers = { Authorization = "Bearer abcdef123456", Accept = "application/json" }
''')
    assert config.warnings == (
        'driftwatch.toml: environments.p.database_url: a literal password in the URL; use a reference such as "env:DATABASE_URL"',
        'driftwatch.toml: environments.p.health[0].headers.Authorization: a literal credential in a header; '
        'use a reference such as "env:API_TOKEN"')
    assert "hunter2" not in json.dumps(config.masked())
    assert "abcdef123456" not in json.dumps(config.masked())


def test_masked_shows_where_but_never_a_secret(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL), environ=ENV)
    shown = json.dumps(config.masked())
    for secret in SECRETS:
        assert secret not in shown
    assert "postgresql://app@db.internal:5432/app" in shown
    assert "https://api.example.com/health" in shown
    for secret in SECRETS:
        assert secret not in repr(config)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_config_check_prints_the_resolved_environments_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    path = write(tmp_path, FULL)
    code, out, err = run_cli("config", "check", "--config", str(path))
    assert code == 0, err
    assert "[environments.production]" in out and "[environments.staging]" in out
    assert 'url = "https://api.example.com/health"' in out
    assert 'headers = {"Authorization": "***"}' in out
    code, out_json, _ = run_cli("config", "check", "--config", str(path), "--format", "json")
    payload = json.loads(out_json)
    assert payload["valid"] and payload["environments"]["production"]["coolify"]["token"] == "***"
    for secret in SECRETS:
        assert secret not in out + err + out_json


def test_config_check_exits_1_on_an_unset_reference_and_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("COOLIFY_TOKEN")
    code, out, err = run_cli("config", "check", "--config", str(write(tmp_path, FULL)))
    assert code == 1
    assert f"driftwatch: error: {tmp_path / 'driftwatch.toml'}: environments.production.coolify.token: " \
           "env:COOLIFY_TOKEN is not set" in err


def test_config_check_exits_1_on_an_invalid_file_with_one_line_per_problem(tmp_path: Path) -> None:
    path = write(tmp_path, '[environments.p]\n[[environments.p.health]]\nname = "a"\nurl = "nope"\n')
    code, out, err = run_cli("config", "check", "--config", str(path))
    assert code == 1 and out == ""
    assert err == f"driftwatch: error: {path}: environments.p.health[0].url: not a URL (expected http:// or https://)\n"


def test_config_check_warns_about_literal_passwords(tmp_path: Path) -> None:
    path = write(tmp_path, '[environments.p]\ndatabase_url = "postgresql://a:LITERALPW@h/d"\nschema = "s"\n')
    code, out, err = run_cli("config", "check", "--config", str(path))
    assert code == 0
    assert "driftwatch: warning:" in err and "a literal password in the URL" in err
    assert "LITERALPW" not in out + err


def test_the_shipped_example_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"DATABASE_URL": "postgresql://app@127.0.0.1:5432/avatar_studio", "COOLIFY_URL": "http://127.0.0.1:8000",
           "COOLIFY_TOKEN": "1|EXAMPLETOKEN", "AVATAR_API_URL": "http://127.0.0.1:8080",
           "AVATAR_API_TOKEN": "EXAMPLEAPITOKEN"}
    config = load_config(EXAMPLE, environ=env)
    prod = config.environments["production"]
    assert not prod.problems
    assert prod.git is not None and prod.git.repo == EXAMPLE.parent
    assert prod.health[0].url == "http://127.0.0.1:8080/health"
    assert prod.smoke[0].headers == {"Authorization": "Bearer EXAMPLEAPITOKEN"}
    assert "EXAMPLEAPITOKEN" in prod.smoke[0].secrets
    code, out, err = run_cli("config", "check", "--config", str(EXAMPLE))  # unset here: exit 1, named
    assert code == 1 and "env:AVATAR_API_TOKEN is not set" in err


def test_the_readme_documents_every_key() -> None:
    """Every key the models accept appears in the README's configuration section."""
    from checks.config import (Config, CoolifyConfig, Defaults, EnvironmentConfig, GitSource, HealthCheck,
                               MigrateCommand, NotifyConfig, SmokeCheck, SmokeStep, StoreConfig)

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration (driftwatch.toml)", 1)[1].split("\n## ", 1)[0]
    for model in (Config, Defaults, StoreConfig, NotifyConfig, EnvironmentConfig, GitSource, CoolifyConfig,
                  MigrateCommand, HealthCheck, SmokeCheck, SmokeStep):
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            key = field.alias or name
            assert re.search(rf"[`.\[]{re.escape(key)}[`\].]", section), f"{model.__name__}.{key} is not documented"
