"""Drift of the deployed commit: a git repo with the sample app's two commits, a Coolify-compatible
server saying which one is deployed, the incident database, and the sample app's backend."""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from checks.errors import UsageError
from checks.monitor import coolify
from checks.monitor.coolify import check_deployment
from checks.monitor.database import Expectations, check_database, check_database_at_commit
from checks.monitor.gitsource import source_at_commit
from examples.services.avatar_backend import AvatarBackend
from examples.services.coolify import CoolifyServer
from tests.conftest import SAMPLE_MIGRATIONS, SAMPLE_SCHEMA
from tests.coolify_spec import validate_all

pytestmark = pytest.mark.timeout(120)

SCHEMA = "prisma/schema.prisma"
MIGRATIONS = "prisma/migrations"
ADD_PROJECTS = "20251012082000_add_avatar_projects"
TOKEN = "coolify-test-token-123"
API_TOKEN = "avatar-api-token-456"


def before_avatar_projects(schema: str) -> str:
    """The sample schema as it was before AvatarProject: the model and the relation fields gone."""
    schema = re.sub(r"\nmodel AvatarProject \{.*?\n\}\n", "\n", schema, flags=re.S)
    return "".join(line for line in schema.splitlines(keepends=True)
                   if not re.search(r"avatarProjects|projectId|AvatarProject", line))


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com", "GIT_COMMITTER_NAME": "Dev",
           "GIT_COMMITTER_EMAIL": "dev@example.com", "GIT_AUTHOR_DATE": "2025-10-12T08:00:00Z",
           "GIT_COMMITTER_DATE": "2025-10-12T08:00:00Z", "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1",
           "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", "-C", str(repo), "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main",
                           *args], check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture(scope="module")
def sample_repo(tmp_path_factory) -> tuple[Path, str, str]:
    """(repo, sha of the commit before AvatarProject, sha of the commit that added it)."""
    repo = tmp_path_factory.mktemp("avatar-studio")
    git(repo, "init", "-q")
    (repo / "prisma" / "migrations").mkdir(parents=True)
    (repo / SCHEMA).write_text(before_avatar_projects(SAMPLE_SCHEMA.read_text()))
    shutil.copy(SAMPLE_MIGRATIONS / "migration_lock.toml", repo / MIGRATIONS)
    init = sorted(p for p in SAMPLE_MIGRATIONS.iterdir() if p.is_dir())[0]
    shutil.copytree(init, repo / MIGRATIONS / init.name)
    (repo / "README.md").write_text("avatar studio\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    first = git(repo, "rev-parse", "HEAD")
    (repo / SCHEMA).write_text(SAMPLE_SCHEMA.read_text())
    shutil.copytree(SAMPLE_MIGRATIONS / ADD_PROJECTS, repo / MIGRATIONS / ADD_PROJECTS)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feat: avatar projects")
    second = git(repo, "rev-parse", "HEAD")
    return repo, first, second


def at(repo: Path, commit: str | None, tmp_path: Path, **kw):
    kw.setdefault("ref", "main")
    kw.setdefault("fetch", False)
    return source_at_commit(repo, commit=commit, schema=SCHEMA, migrations=MIGRATIONS, cache_root=tmp_path / "cache",
                            **kw)


# --------------------------------------------------------------------------------------------
# Reading a commit from the clone


def test_the_schema_is_read_at_the_commit_without_touching_the_working_tree(sample_repo, tmp_path):
    repo, first, second = sample_repo
    (repo / SCHEMA).write_text("// an uncommitted edit\n")
    try:
        src = at(repo, first, tmp_path)
        assert src.commit == first and src.fallback_reason is None and src.ref is None
        assert "AvatarProject" not in src.schema.read_text() and "model Avatar " in src.schema.read_text()
        assert sorted(p.name for p in src.migrations.iterdir() if p.is_dir()) == ["20251001083000_init"]
        src2 = at(repo, second.upper(), tmp_path)
        assert src2.commit == second and "model AvatarProject" in src2.schema.read_text()
        assert (src2.migrations / ADD_PROJECTS / "migration.sql").is_file()
        assert at(repo, first, tmp_path).schema == src.schema  # the cached copy, keyed by commit
        assert git(repo, "status", "--porcelain") == "M prisma/schema.prisma"
    finally:
        git(repo, "checkout", "--", SCHEMA)


@pytest.mark.parametrize("commit,why", [
    (None, "no deployed commit is known"),
    ("HEAD", "is not a SHA"),
    ("f" * 40, "is not in the clone"),
])
def test_it_falls_back_to_the_ref_and_says_why(sample_repo, tmp_path, commit, why):
    repo, first, second = sample_repo
    src = at(repo, commit, tmp_path)
    assert src.commit == second and src.ref == "main"
    assert why in src.fallback_reason and "compared with main" in src.fallback_reason


def test_fetch_brings_a_commit_the_clone_does_not_have_yet(sample_repo, tmp_path):
    repo, first, second = sample_repo
    origin = tmp_path / "origin"
    subprocess.run(["git", "clone", "-q", str(repo), str(origin)], check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    (origin / "NEW").write_text("x\n")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "newer")
    newer = git(origin, "rev-parse", "HEAD")
    without = at(clone, newer, tmp_path)
    assert without.commit == second and "set fetch = true" in without.fallback_reason
    fetched = at(clone, newer, tmp_path, fetch=True)
    assert fetched.commit == newer and fetched.fallback_reason is None


def test_git_errors_are_one_line(sample_repo, tmp_path):
    repo, first, second = sample_repo
    (tmp_path / "plain").mkdir()
    with pytest.raises(UsageError, match="is not a git repository"):
        at(tmp_path / "plain", first, tmp_path)
    with pytest.raises(UsageError, match="does not exist$"):
        at(tmp_path / "missing", first, tmp_path)
    with pytest.raises(UsageError, match=r"prisma/nope does not exist at commit [0-9a-f]{7}") as e:
        source_at_commit(repo, commit=first, ref="main", schema="prisma/nope", migrations=None, fetch=False,
                         cache_root=tmp_path)
    assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="ref 'release' does not name a commit"):
        at(repo, None, tmp_path, ref="release")
    with pytest.raises(UsageError, match="inside the repository"):
        source_at_commit(repo, commit=first, ref="main", schema="../etc/passwd", migrations=None, fetch=False,
                         cache_root=tmp_path)


# --------------------------------------------------------------------------------------------
# Drift and migrations against the deployed commit


def test_the_second_commit_names_avatar_projects_and_the_first_is_in_sync(sample_repo, incident_db, tmp_path):
    repo, first, second = sample_repo
    drift, migrations = check_database(incident_db, at(repo, second, tmp_path))
    assert drift.kind == "drift" and drift.state == "failing"
    assert drift.detail["schema_commit"] == second and drift.detail["schema_source"] == "git"
    assert drift.detail["fallback_reason"] is None and drift.detail["schema"] == SCHEMA
    assert migrations.detail["directory"] == MIGRATIONS and migrations.detail["schema_commit"] == second
    assert drift.detail["summary"] == {"critical": 2, "warning": 4, "info": 0}
    missing = [f for f in drift.detail["findings"] if f["kind"] == "missing_table"]
    assert [f["table"] for f in missing] == ["avatar_projects"]
    assert "avatar_projects" in drift.reason and second[:7] in drift.reason
    assert migrations.state == "failing" and migrations.detail["pending"] == [ADD_PROJECTS]
    assert migrations.detail["failed"] == [] and ADD_PROJECTS in migrations.reason

    drift, migrations = check_database(incident_db, at(repo, first, tmp_path))
    assert (drift.state, drift.reason, drift.detail["schema_commit"]) == ("ok", None, first)
    assert drift.detail["in_sync"] is True and drift.detail["findings"] == []
    assert (migrations.state, migrations.detail["pending"], migrations.detail["applied_count"]) == ("ok", [], 1)


def test_the_next_step_names_the_repository_paths_and_the_commit_never_the_cache_copy(sample_repo, incident_db,
                                                                                     tmp_path):
    """An on-call engineer cannot use the materialized copy's path under the cache: the commands
    name <repo>/<configured path>, and each step naming one says which commit's version it is."""
    repo, _, second = sample_repo
    source = at(repo, second, tmp_path)
    _, migrations = check_database(incident_db, source)
    advice = migrations.detail["next_step"]
    steps = advice["steps"] + advice["alternative"]
    commands = [s["command"] for s in steps if s["command"]]
    assert commands and advice["state"] == "pending"
    everything = json.dumps(advice) + (migrations.reason or "")
    assert str(tmp_path / "cache") not in everything and ".cache" not in everything
    assert str(source.migrations) not in everything and str(source.schema) not in everything
    deploy = next(s for s in steps if s["action"] == "deploy")
    assert deploy["command"] == f"driftwatch migrate deploy --migrations {repo}/{MIGRATIONS}"
    assert f"(as of commit {second[:7]})" in deploy["say"]
    for step in steps:
        if "--schema" in (step["command"] or ""):
            assert f"--schema {repo}/{SCHEMA}" in step["command"] and f"(as of commit {second[:7]})" in step["say"]
    # A plain schema path is named as given, with no commit.
    _, plain = check_database(incident_db, str(source.schema), str(source.migrations))
    said = plain.detail["next_step"]["steps"][0]
    assert said["command"] == f"driftwatch migrate deploy --migrations {source.migrations}"
    assert "as of commit" not in said["say"]


def test_a_fallback_is_said_in_the_result(sample_repo, incident_db, tmp_path):
    repo, first, second = sample_repo
    drift, migrations = check_database(incident_db, at(repo, "f" * 40, tmp_path))
    assert drift.state == "failing" and drift.detail["schema_commit"] == second and drift.detail["schema_ref"] == "main"
    assert "not in the clone" in drift.detail["fallback_reason"]
    assert "the schema of main (" in drift.reason and "not of the deployed commit" in drift.reason
    assert drift.detail["requested_commit"] == "f" * 40


def test_old_copies_are_pruned(sample_repo, tmp_path, monkeypatch):
    from checks.monitor import gitsource

    repo, first, second = sample_repo
    monkeypatch.setattr(gitsource, "KEEP_COPIES", 1)
    a = at(repo, first, tmp_path)
    b = at(repo, second, tmp_path)
    assert b.schema.is_file() and not a.schema.exists()
    assert at(repo, first, tmp_path).schema.is_file()


def test_the_poller_entry_point_turns_git_problems_into_errors(sample_repo, incident_db, tmp_path, monkeypatch):
    repo, first, second = sample_repo
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    drift, migrations = check_database_at_commit(incident_db, repo=repo, commit=second, ref="main", schema=SCHEMA,
                                                 migrations=MIGRATIONS)
    assert drift.state == "failing" and drift.detail["schema_commit"] == second
    assert str(tmp_path / "xdg") in str(next((tmp_path / "xdg").rglob("schema.prisma")))
    drift, migrations = check_database_at_commit(incident_db, repo=repo, commit=None, ref="main", schema=SCHEMA,
                                                 migrations=MIGRATIONS,
                                                 no_commit_reason="the deployment check failed: 401")
    assert drift.detail["fallback_reason"].startswith("the deployment check failed: 401; compared with main")
    drift, migrations = check_database_at_commit(incident_db, repo=tmp_path, commit=second, ref="main",
                                                 schema=SCHEMA, migrations=MIGRATIONS)
    assert drift.state == migrations.state == "error" and "is not a git repository" in drift.reason


def test_a_plain_schema_path_works_too(incident_db):
    drift, migrations = check_database(incident_db, SAMPLE_SCHEMA, SAMPLE_MIGRATIONS)
    assert drift.state == "failing" and drift.detail["schema_commit"] is None
    assert drift.detail["schema_source"] == "file" and migrations.detail["pending"] == [ADD_PROJECTS]
    drift, migrations = check_database(incident_db, SAMPLE_SCHEMA)
    assert migrations.state == "unknown" and "no migrations folder" in migrations.reason


def test_an_unchanged_schema_is_compiled_once(sample_repo, incident_db, tmp_path):
    repo, first, second = sample_repo
    cache = Expectations()
    for _ in range(3):
        drift, _ = check_database(incident_db, at(repo, second, tmp_path), expectations=cache)
        assert drift.state == "failing"
    assert (cache.misses, cache.hits) == (1, 2)
    check_database(incident_db, at(repo, first, tmp_path), expectations=cache)
    assert cache.misses == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_database_is_an_error_never_a_stale_ok(sample_repo, make_db, tmp_path):
    repo, first, second = sample_repo
    src = at(repo, first, tmp_path)
    url = make_db()
    cache = Expectations()
    check_database(url, src, expectations=cache)  # compiled and cached
    dead = f"postgresql://postgres:hunter2@127.0.0.1:{_free_port()}/nowhere"
    drift, migrations = check_database(dead, src, expectations=cache)
    assert drift.state == "error" and migrations.state == "error"
    for r in (drift, migrations):
        assert "hunter2" not in r.reason and "\n" not in r.reason and "127.0.0.1" in r.reason


def test_an_unreadable_schema_is_an_error(incident_db, tmp_path):
    bad = tmp_path / "schema.prisma"
    bad.write_text("model {\n")
    drift, _ = check_database(incident_db, bad)
    assert drift.state == "error" and "schema.prisma:" in drift.reason
    drift, _ = check_database(incident_db, tmp_path / "missing.prisma")
    assert drift.state == "error" and "no such file" in drift.reason


# --------------------------------------------------------------------------------------------
# The whole chain: Coolify says which commit runs; its schema is compared; the backend agrees


def deployment(server: CoolifyServer, app: str):
    async def go():
        async with httpx.AsyncClient(timeout=5) as client:
            return await check_deployment(client, url=server.url, token=TOKEN, application=app)

    return asyncio.run(go())


def test_coolify_reports_the_commit_whose_schema_is_compared(sample_repo, incident_db, tmp_path):
    repo, first, second = sample_repo
    coolify._not_before.clear()
    with CoolifyServer(TOKEN) as server:
        app = server.add_application(name="avatar-studio")
        server.add_deployment(app, commit=first, status="finished")
        dep = server.add_deployment(app, commit=second, status="in_progress")

        d = deployment(server, app)
        assert d.state == "ok" and d.detail["commit"] == first
        drift, migrations = check_database(incident_db, at(repo, d.detail["commit"], tmp_path))
        assert drift.state == "ok" and drift.detail["schema_commit"] == first

        server.set_deployment_status(dep, "finished")
        d = deployment(server, app)
        assert d.state == "ok" and d.detail["commit"] == second
        drift, migrations = check_database(incident_db, at(repo, d.detail["commit"], tmp_path))
        assert drift.state == "failing" and drift.detail["schema_commit"] == second
        assert any(f["table"] == "avatar_projects" for f in drift.detail["findings"])
        assert migrations.detail["pending"] == [ADD_PROJECTS]
        validate_all(server)


def test_the_backend_answers_400_until_migrate_deploy_then_201(sample_repo, incident_db, tmp_path):
    from checks.migrations import deploy

    repo, first, second = sample_repo
    src = at(repo, second, tmp_path)
    with AvatarBackend(incident_db, API_TOKEN) as backend, httpx.Client(base_url=backend.url, timeout=10) as http:
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        assert http.get("/health").json() == {"status": "ok"}
        assert http.post("/api/apps/avatar-creator/projects", json={"name": "x"}).status_code == 401
        assert http.post("/api/apps/avatar-creator/projects", json={"name": "x"},
                         headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = http.post("/api/apps/avatar-creator/projects", json={"name": "Test Project", "description": "Testing"},
                      headers=auth)
        assert r.status_code == 400
        assert r.json()["success"] is False and "avatar_projects" in r.json()["message"]
        assert http.get("/health").json() == {"status": "ok"}  # health stays green, as in the incident

        deploy(incident_db, src.migrations)

        r = http.post("/api/apps/avatar-creator/projects", json={"name": "Test Project", "description": "Testing"},
                      headers=auth)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["success"] is True and body["project"]["name"] == "Test Project" and body["id"] == body["project"]["id"]
        import psycopg

        with psycopg.connect(incident_db) as conn:
            assert conn.execute("SELECT name FROM avatar_projects WHERE id = %s", (body["id"],)).fetchone() == ("Test Project",)
        assert [p["id"] for p in http.get("/api/apps/avatar-creator/projects", headers=auth).json()["projects"]] == [body["id"]]
        assert http.delete(f"/api/apps/avatar-creator/projects/{body['id']}", headers=auth).status_code == 200
        assert http.delete(f"/api/apps/avatar-creator/projects/{body['id']}", headers=auth).status_code == 404

    drift, migrations = check_database(incident_db, src)
    assert (drift.state, migrations.state) == ("ok", "ok") and drift.detail["schema_commit"] == second
