"""Test fixtures: a real PostgreSQL per test session and a fresh database per test.

Which server: DRIFTWATCH_TEST_DATABASE_URL (an existing server; databases are
created and dropped on it), else DRIFTWATCH_TEST_PG=system (the system's pg_ctl,
PostgreSQL 15 on Debian) or pgserver (the wheel, PostgreSQL 16; the default).
A database per test is cheap: `CREATE DATABASE ... TEMPLATE` copies files.
"""
from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import sys
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checks.localpg import LocalPostgres, start  # noqa: E402

# The tests must not write into the user's own cache (~/.cache/driftwatch).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="driftwatch-test-cache-")
# A parser fast-path failure on a valid schema is a bug that would only make parsing slower:
# in tests it fails (checks.psl.parser._fast_path_missed), subprocesses included.
os.environ["DRIFTWATCH_STRICT_FAST_PATH"] = "1"

SAMPLE_APP = ROOT / "examples" / "avatar-studio"
SAMPLE_SCHEMA = SAMPLE_APP / "prisma" / "schema.prisma"
SAMPLE_MIGRATIONS = SAMPLE_APP / "prisma" / "migrations"


class Server:
    """A PostgreSQL server the tests may create and drop databases on."""

    def __init__(self, url: str, kind: str, local: LocalPostgres | None = None) -> None:
        self.url = url
        self.kind = kind
        self.local = local
        self._counter = itertools.count()
        self.prefix = f"dwt_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    def url_for(self, database: str) -> str:
        from urllib.parse import urlsplit, urlunsplit

        return urlunsplit(urlsplit(self.url)._replace(path="/" + database))

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url_for(database), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, sql: str | None = None, template: str = "template0") -> str:
        """Create an empty (or templated) database, optionally run SQL in it; return its URL."""
        name = f"{self.prefix}_{next(self._counter)}"
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        if sql:
            self.execute(sql, name)
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        from urllib.parse import urlsplit

        name = urlsplit(url).path.lstrip("/")
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @property
    def version(self) -> int:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    external = os.environ.get("DRIFTWATCH_TEST_DATABASE_URL")
    if external:
        yield Server(external, "external")
        return
    kind = os.environ.get("DRIFTWATCH_TEST_PG", "pgserver")
    # Not under pytest's basetemp: a concurrent pytest session resets its permissions
    # to owner-only, and the server runs as another user when the tests run as root.
    datadir = Path(tempfile.mkdtemp(prefix=f"driftwatch-{kind}-"))
    local = start(kind, datadir)
    try:
        yield Server(local.url, kind, local)
    finally:
        local.stop()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
def make_db(pg_server: Server) -> Iterator[Callable[..., str]]:
    """Factory: make_db(sql=None, template="template0") -> URL of a fresh database."""
    made: list[str] = []

    def factory(sql: str | None = None, template: str = "template0") -> str:
        url = pg_server.create_database(sql, template)
        made.append(url)
        return url

    yield factory
    for url in made:
        try:
            pg_server.drop_database(url)
        except Exception:  # a test that killed its own connection must not fail teardown
            pass


@pytest.fixture
def empty_db(make_db: Callable[..., str]) -> str:
    return make_db()


SAMPLE_APP_CHECKS = """\
[[environments.production.health]]
name = "api health"
url = "${env:AVATAR_API_URL}/health"
conditions = ["[STATUS] == 200", "[BODY].status == ok"]

[[environments.production.smoke]]
name = "create project"
headers = { Authorization = "Bearer ${env:AVATAR_API_TOKEN}" }

[[environments.production.smoke.steps]]
method = "POST"
url = "${env:AVATAR_API_URL}/api/apps/avatar-creator/projects"
json = { name = "driftwatch smoke {run_id}" }
conditions = ["[STATUS] == 201"]
capture = { project_id = "[BODY].id" }

[[environments.production.smoke.steps]]
method = "DELETE"
url = "${env:AVATAR_API_URL}/api/apps/avatar-creator/projects/{project_id}"
conditions = ["[STATUS] < 300"]
always = true
"""
"""The sample backend's health and smoke checks for environment `production`, as driftwatch.toml
tables (its URL and token from env:AVATAR_API_URL and env:AVATAR_API_TOKEN): what the
poll and container tests append to their own environment table."""


def migration_sql(index: int) -> str:
    """The sample app's N-th migration (0-based), as Prisma generated it."""
    dirs = sorted(p for p in SAMPLE_MIGRATIONS.iterdir() if p.is_dir())
    return (dirs[index] / "migration.sql").read_text()


@pytest.fixture(scope="session")
def incident_template(pg_server: Server) -> str:
    """A template database in the incident's state: only the first migration applied, and
    recorded in _prisma_migrations as Prisma would have (so the history shows one pending)."""
    from checks.migrations import resolve_applied

    url = pg_server.create_database(migration_sql(0))
    resolve_applied(url, SAMPLE_MIGRATIONS, sorted(p.name for p in SAMPLE_MIGRATIONS.iterdir() if p.is_dir())[0])
    from urllib.parse import urlsplit

    return urlsplit(url).path.lstrip("/")


@pytest.fixture
def incident_db(make_db: Callable[..., str], incident_template: str) -> str:
    return make_db(template=incident_template)


@pytest.fixture(scope="session")
def unmanaged_incident_template(pg_server: Server) -> str:
    """The incident's tables with no _prisma_migrations at all (schema applied by hand)."""
    from urllib.parse import urlsplit

    return urlsplit(pg_server.create_database(migration_sql(0))).path.lstrip("/")


@pytest.fixture
def unmanaged_incident_db(make_db: Callable[..., str], unmanaged_incident_template: str) -> str:
    return make_db(template=unmanaged_incident_template)
