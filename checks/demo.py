"""The embedded demo: the sample app's database on a private PostgreSQL, in the incident's state.

A fresh clone should show a real drift in one command, without a database of its own:
`start_demo` starts PostgreSQL from the pgserver wheel with its data under `state_dir`
and seeds the sample app (examples/avatar-studio) as `prisma migrate deploy` would have
left it — the migration files run as written and `_prisma_migrations` rows exactly as
Prisma writes them — plus a few rows of data so it looks like a live app.

Scenarios, one database each so both can exist side by side:

    incident   avatar_studio          only the first migration applied: no avatar_projects
    healthy    avatar_studio_healthy  every migration applied: in sync with the schema

Starting again reuses the server and never re-seeds: a database is seeded under a staging
name and renamed when complete, so an existing database is always a complete one.
"""
from __future__ import annotations

import hashlib
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .db import connect
from .errors import DatabaseError, UsageError
from .localpg import LocalPostgres, start_pgserver

if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.Connection[Any]

SAMPLE_APP = Path(__file__).resolve().parent.parent / "examples" / "avatar-studio"
SCHEMA_PATH = SAMPLE_APP / "prisma" / "schema.prisma"
MIGRATIONS_PATH = SAMPLE_APP / "prisma" / "migrations"

# Serialises seeding between processes sharing one demo server (launcher and dashboard).
_SEED_LOCK = 0x64726966  # "drif"


@dataclass(frozen=True)
class Scenario:
    database: str
    migrations: int  # how many of the sample app's migrations are applied
    description: str


SCENARIOS: dict[str, Scenario] = {
    "incident": Scenario("avatar_studio", 1, "the sample app in the incident state"),
    "healthy": Scenario("avatar_studio_healthy", 2, "the sample app with every migration applied"),
}


@dataclass(frozen=True)
class DemoEnvironment:
    url: str
    schema_path: Path
    migrations_path: Path
    scenario: str
    database: str
    description: str
    applied: tuple[str, ...]  # migration names recorded in _prisma_migrations
    seeded: bool  # True when this call created the database
    server: LocalPostgres = field(repr=False, compare=False)

    def stop(self) -> None:
        """Stop the server unless another process still uses it (pgserver counts handles)."""
        self.server.stop()


def sample_migrations() -> list[Path]:
    """The sample app's migration folders, oldest first (Prisma orders them by name)."""
    return sorted(p for p in MIGRATIONS_PATH.iterdir() if p.is_dir() and (p / "migration.sql").is_file())


def start_demo(state_dir: Path, scenario: str = "incident") -> DemoEnvironment:
    """Start (or reuse) the demo PostgreSQL under state_dir and return the scenario's database."""
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown demo scenario {scenario!r}: expected {' or '.join(SCENARIOS)}")
    spec = SCENARIOS[scenario]
    migrations = sample_migrations()[: spec.migrations]
    datadir = Path(state_dir).resolve() / "demo-pg"
    try:
        server = start_pgserver(datadir)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatabaseError(f"could not start the demo PostgreSQL in {datadir}: {exc}") from None
    seeded = _ensure_database(server, spec, migrations)
    return DemoEnvironment(
        url=server.url_for(spec.database),
        schema_path=SCHEMA_PATH,
        migrations_path=MIGRATIONS_PATH,
        scenario=scenario,
        database=spec.database,
        description=spec.description,
        applied=tuple(p.name for p in migrations),
        seeded=seeded,
        server=server,
    )


def _ensure_database(server: LocalPostgres, spec: Scenario, migrations: list[Path]) -> bool:
    """Create and seed the scenario's database unless it exists; True if it was created."""
    from psycopg import sql

    staging = spec.database + "__seeding"
    with connect(server.url) as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (_SEED_LOCK,))
        try:
            if _database_exists(admin, spec.database):
                return False
            # A staging database left behind is a seed that crashed halfway: start over.
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(staging)))
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                sql.Identifier(staging)))
            with connect(server.url_for(staging)) as conn, conn.transaction():
                for migration in migrations:
                    _apply_like_prisma(conn, migration)
                _insert_sample_data(conn, with_projects=spec.migrations >= 2)
            _rename_database(admin, staging, spec.database)
            return True
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (_SEED_LOCK,))


def _database_exists(admin: Connection, name: str) -> bool:
    row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def _rename_database(admin: Connection, old: str, new: str) -> None:
    """Rename once the seeding connection's backend has gone (it exits just after close)."""
    import psycopg
    from psycopg import sql

    statement = sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
    for attempt in range(50):
        try:
            admin.execute(statement)
            return
        except psycopg.errors.ObjectInUse:
            if attempt == 49:
                raise
            time.sleep(0.1)


# What Prisma's schema engine creates on PostgreSQL before the first migration
# (sql-schema-connector, flavour/postgres.rs).
_PRISMA_MIGRATIONS_DDL = """\
CREATE TABLE "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
);
"""


def _apply_like_prisma(conn: Connection, migration: Path) -> None:
    """Run one migration as `prisma migrate deploy` does and record it the same way.

    Prisma inserts the row (id, checksum, started_at, name) before the script, sends the
    whole file as one query, then sets finished_at and applied_steps_count = 1; logs and
    rolled_back_at stay NULL on success.
    """
    script = (migration / "migration.sql").read_bytes()
    execute = conn.execute
    if execute("SELECT to_regclass('\"_prisma_migrations\"')").fetchone()[0] is None:
        execute(_PRISMA_MIGRATIONS_DDL)
    row_id = str(uuid.uuid4())
    execute(
        'INSERT INTO "_prisma_migrations" (id, checksum, started_at, migration_name) '
        "VALUES (%s, %s, clock_timestamp(), %s)",
        (row_id, hashlib.sha256(script).hexdigest(), migration.name),
    )
    execute(script)  # the bytes Prisma sends, as one query
    execute(
        'UPDATE "_prisma_migrations" SET finished_at = clock_timestamp(), '
        "applied_steps_count = applied_steps_count + 1 WHERE id = %s",
        (row_id,),
    )


# Enough rows that the tables look lived in; ids are cuid-shaped like Prisma's @default(cuid()).
_USERS = [
    ("cmgb1u0ad0000a1b2c3d4e5f6", "ada@avatar.studio", "Ada Lovelace", "ADMIN", 480, "40 days"),
    ("cmgb1u0gr0001a1b2c3d4e5f6", "grace@avatar.studio", "Grace Hopper", "USER", 120, "21 days"),
    ("cmgb1u0ln0002a1b2c3d4e5f6", "linus@example.com", None, "USER", 0, "3 days"),
]
_AVATARS = [
    ("cmgb2a0001000a1b2c3d4e5f6", 0, "Analytical engine portrait", "COMPLETED", 1843, 12, "30 days"),
    ("cmgb2a0002000a1b2c3d4e5f6", 0, "Victorian study, warm light", "COMPLETED", 99120, 4, "12 days"),
    ("cmgb2a0003000a1b2c3d4e5f6", 1, "Navy dress uniform, 1950s", "COMPLETED", 5521, 7, "9 days"),
    ("cmgb2a0004000a1b2c3d4e5f6", 1, "Harvard Mark I in the background", "PROCESSING", 77, 0, "1 hour"),
    ("cmgb2a0005000a1b2c3d4e5f6", 2, "Penguin mascot, pixel art", "FAILED", None, 0, "2 days"),
]
_POSES = [
    ("cmgb3p0001000a1b2c3d4e5f6", "Standing, arms crossed", "standing",
     '{"nose": [0.50, 0.12], "left_wrist": [0.41, 0.52], "right_wrist": [0.59, 0.52]}'),
    ("cmgb3p0002000a1b2c3d4e5f6", "Seated, three-quarter view", "seated",
     '{"nose": [0.46, 0.20], "left_knee": [0.38, 0.71], "right_knee": [0.55, 0.70]}'),
]
_USAGE = [
    (0, "studio", "generate_avatar", "sdxl-turbo", 8, "0.0240", 2310, "30 days"),
    (0, "studio", "generate_avatar", "sdxl-turbo", 8, "0.0240", 1984, "12 days"),
    (1, "studio", "generate_avatar", "sdxl-1.0", 12, "0.0410", 5120, "9 days"),
    (1, "studio", "upscale", "real-esrgan-x4", 2, "0.0030", 840, "9 days"),
    (2, "studio", "generate_avatar", "sdxl-turbo", 8, "0.0000", None, "2 days"),
]
_PROJECTS = [
    ("cmgb4j0001000a1b2c3d4e5f6", 0, "Historical portraits", "Scientists in period costume"),
    ("cmgb4j0002000a1b2c3d4e5f6", 1, "Conference speakers", None),
]


def _insert_sample_data(conn: Connection, *, with_projects: bool) -> None:
    execute = conn.execute
    for uid, email, name, role, credits, age in _USERS:
        execute(
            'INSERT INTO "users" ("id", "email", "name", "password", "role", "credits", "createdAt", "updatedAt") '
            "VALUES (%s, %s, %s, %s, %s::\"Role\", %s, now() - %s::interval, now() - %s::interval)",
            (uid, email, name, "$2b$10$demo.password.hash.not.a.real.one.xxxxxxxxxxxxxxxxx", role, credits, age, age),
        )
    execute(
        'INSERT INTO "sessions" ("id", "userId", "token", "expiresAt") VALUES '
        "(%s, %s, %s, now() + interval '7 days')",
        ("cmgb5s0001000a1b2c3d4e5f6", _USERS[0][0], "demo-session-" + "0" * 32),
    )
    for aid, owner, name, status, seed, uses, age in _AVATARS:
        slug = aid[-12:]
        execute(
            'INSERT INTO "avatars" ("id", "userId", "name", "imageUrl", "thumbnailUrl", "prompt", "status", '
            '"seed", "usageCount", "createdAt", "updatedAt") VALUES '
            "(%s, %s, %s, %s, %s, %s, %s::\"GenerationStatus\", %s, %s, now() - %s::interval, now() - %s::interval)",
            (aid, _USERS[owner][0], name, f"https://cdn.avatar.studio/demo/{slug}.png",
             f"https://cdn.avatar.studio/demo/{slug}_thumb.png" if status == "COMPLETED" else None,
             f"portrait of a person, {name.lower()}", status, seed, uses, age, age),
        )
    for pid, name, category, keypoints in _POSES:
        execute(
            'INSERT INTO "pose_datasets" ("id", "name", "category", "keypoints") VALUES (%s, %s, %s, %s::jsonb)',
            (pid, name, category, keypoints),
        )
    for owner, app, action, model, credits, cost, latency, age in _USAGE:
        execute(
            'INSERT INTO "ai_usage_logs" ("userId", "app", "action", "model", "credits", "costUsd", "latencyMs", '
            '"createdAt") VALUES (%s, %s, %s, %s, %s, %s::numeric, %s, now() - %s::interval)',
            (_USERS[owner][0], app, action, model, credits, cost, latency, age),
        )
    if with_projects:
        for pid, owner, name, description in _PROJECTS:
            execute(
                'INSERT INTO "avatar_projects" ("id", "userId", "name", "description", "updatedAt") '
                "VALUES (%s, %s, %s, %s, now())",
                (pid, _USERS[owner][0], name, description),
            )
        execute('UPDATE "avatars" SET "projectId" = %s WHERE "userId" = %s', (_PROJECTS[0][0], _USERS[0][0]))
        execute('UPDATE "avatars" SET "projectId" = %s WHERE "userId" = %s', (_PROJECTS[1][0], _USERS[1][0]))


def reset_demo(state_dir: Path, scenario: str = "incident") -> None:
    """Bring the scenario's database back to its seeded state: drop it (closing its sessions);
    the next `start_demo` seeds it again. The server keeps running for that next call."""
    from psycopg import sql

    if scenario not in SCENARIOS:
        raise UsageError(f"unknown demo scenario {scenario!r}: expected {' or '.join(SCENARIOS)}")
    datadir = Path(state_dir).resolve() / "demo-pg"
    if not datadir.exists():
        return  # nothing to reset: the first start seeds it
    try:
        server = start_pgserver(datadir)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatabaseError(f"could not start the demo PostgreSQL in {datadir}: {exc}") from None
    with connect(server.url) as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (_SEED_LOCK,))
        try:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(SCENARIOS[scenario].database)))
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (_SEED_LOCK,))
