"""Each kind of drift, produced by a real change to a real database in sync with the sample app.

Every case starts from both sample migrations applied (in sync), runs one mutation, and
expects exactly the listed findings: a check that reports too much is as wrong as one
that misses something. Then the fixes Driftwatch proposes are applied and the database
must come back in sync — the convergence test that keeps the fix SQL honest.
"""
from __future__ import annotations

import pytest
import psycopg

from checks.check import check_database
from tests.conftest import SAMPLE_SCHEMA, migration_sql

CASES = {
    "a dropped column": (
        'ALTER TABLE "users" DROP COLUMN "name"',
        {("missing_column", "critical", "users", "name")},
    ),
    "a changed type": (
        'ALTER TABLE "users" ALTER COLUMN "credits" TYPE bigint',
        {("column_type", "critical", "users", "credits")},
    ),
    "a shorter varchar": (
        'ALTER TABLE "pose_datasets" ALTER COLUMN "name" TYPE varchar(100)',
        {("column_type", "warning", "pose_datasets", "name")},
    ),
    "an optional field stored NOT NULL": (
        'UPDATE "users" SET "name" = \'x\'; ALTER TABLE "users" ALTER COLUMN "name" SET NOT NULL',
        {("column_nullable", "critical", "users", "name")},
    ),
    "a required field stored nullable": (
        'ALTER TABLE "users" ALTER COLUMN "password" DROP NOT NULL',
        {("column_nullable", "warning", "users", "password")},
    ),
    "a lost now() default": (
        'ALTER TABLE "users" ALTER COLUMN "createdAt" DROP DEFAULT',
        {("column_default", "critical", "users", "createdAt")},
    ),
    "a different literal default": (
        'ALTER TABLE "users" ALTER COLUMN "credits" SET DEFAULT 10',
        {("column_default", "warning", "users", "credits")},
    ),
    "a lost autoincrement": (
        'ALTER TABLE "ai_usage_logs" ALTER COLUMN "id" DROP DEFAULT',
        {("column_default", "critical", "ai_usage_logs", "id")},
    ),
    "a dropped primary key": (
        'ALTER TABLE "sessions" DROP CONSTRAINT "sessions_pkey"',
        {("missing_primary_key", "warning", "sessions", "sessions_pkey")},
    ),
    "a dropped unique index": (
        'DROP INDEX "users_email_key"',
        {("missing_unique", "warning", "users", "users_email_key")},
    ),
    "an index that lost its sort order": (
        'DROP INDEX "avatars_userId_createdAt_idx"; '
        'CREATE INDEX "avatars_userId_createdAt_idx" ON "avatars"("userId", "createdAt")',
        {("index", "warning", "avatars", "avatars_userId_createdAt_idx")},
    ),
    "a renamed index": (
        'ALTER INDEX "sessions_userId_idx" RENAME TO "sessions_user_idx"',
        {("index", "info", "sessions", "sessions_userId_idx")},
    ),
    "a foreign key that no longer cascades": (
        'ALTER TABLE "sessions" DROP CONSTRAINT "sessions_userId_fkey"; '
        'ALTER TABLE "sessions" ADD CONSTRAINT "sessions_userId_fkey" FOREIGN KEY ("userId") REFERENCES "users"("id")',
        {("foreign_key", "warning", "sessions", "sessions_userId_fkey")},
    ),
    "a dropped enum value": (
        'ALTER TYPE "GenerationStatus" RENAME TO "gs_old"; '
        "CREATE TYPE \"GenerationStatus\" AS ENUM ('PENDING', 'PROCESSING', 'COMPLETED'); "
        'ALTER TABLE "avatars" ALTER COLUMN "status" DROP DEFAULT; '
        'ALTER TABLE "avatars" ALTER COLUMN "status" TYPE "GenerationStatus" USING "status"::text::"GenerationStatus"; '
        "ALTER TABLE \"avatars\" ALTER COLUMN \"status\" SET DEFAULT 'PENDING'; DROP TYPE \"gs_old\"",
        {("missing_enum_value", "critical", None, "GenerationStatus")},
    ),
    "an extra enum value": (
        "ALTER TYPE \"Role\" ADD VALUE 'GUEST'",
        {("extra_enum_value", "info", None, "Role")},
    ),
    "a lost autoincrement on a table with rows": (
        'INSERT INTO "users" (id, email, password, "updatedAt") VALUES (\'u1\', \'a@b\', \'x\', now()); '
        'INSERT INTO "ai_usage_logs" ("userId", app, action, model, credits) VALUES (\'u1\', \'a\', \'b\', \'m\', 1); '
        'ALTER TABLE "ai_usage_logs" ALTER COLUMN "id" DROP DEFAULT; DROP SEQUENCE "ai_usage_logs_id_seq"',
        {("column_default", "critical", "ai_usage_logs", "id")},
    ),
    "an extra enum value in use by a column array and a default": (
        "ALTER TYPE \"Role\" ADD VALUE 'GUEST'; ALTER TABLE \"users\" ADD COLUMN \"roles\" \"Role\"[]",
        {("extra_enum_value", "info", None, "Role"), ("extra_column", "info", "users", "roles")},
    ),
    "an extra nullable column": (
        'ALTER TABLE "users" ADD COLUMN "nickname" text',
        {("extra_column", "info", "users", "nickname")},
    ),
    "an extra NOT NULL column without default": (
        'ALTER TABLE "users" ADD COLUMN "tenant" text NOT NULL DEFAULT \'x\'; '
        'ALTER TABLE "users" ALTER COLUMN "tenant" DROP DEFAULT',
        {("extra_column", "critical", "users", "tenant")},
    ),
    "an extra index": (
        'CREATE INDEX "users_name_idx" ON "users"("name")',
        {("extra_index", "info", "users", "users_name_idx")},
    ),
    "an extra unique index": (
        'CREATE UNIQUE INDEX "users_name_key" ON "users"("name")',
        {("extra_index", "warning", "users", "users_name_key")},
    ),
    "an extra foreign key": (
        'ALTER TABLE "pose_datasets" ADD COLUMN "ownerId" text; '
        'ALTER TABLE "pose_datasets" ADD CONSTRAINT "pose_owner_fkey" FOREIGN KEY ("ownerId") REFERENCES "users"("id")',
        {("extra_column", "info", "pose_datasets", "ownerId"),
         ("extra_foreign_key", "warning", "pose_datasets", "pose_owner_fkey")},
    ),
    "an extra table and enum": (
        'CREATE TABLE "scratch" (id int); CREATE TYPE "Mood" AS ENUM (\'OK\')',
        {("extra_table", "info", "scratch", None), ("extra_enum", "info", None, "Mood")},
    ),
    "a dropped enum": (
        'ALTER TABLE "users" DROP COLUMN "role"; DROP TYPE "Role"',
        {("missing_enum", "critical", None, "Role"), ("missing_column", "critical", "users", "role")},
    ),
}


@pytest.fixture(scope="module")
def in_sync_template(pg_server):
    from urllib.parse import urlsplit

    url = pg_server.create_database(migration_sql(0) + migration_sql(1))
    return urlsplit(url).path.lstrip("/")


def findings_of(url: str) -> set[tuple]:
    report = check_database(url, SAMPLE_SCHEMA).report
    return {(f.kind, f.severity, f.table, f.column or f.name) for f in report.findings}


def test_the_template_is_in_sync(make_db, in_sync_template):
    assert findings_of(make_db(template=in_sync_template)) == set()


@pytest.mark.parametrize("case", list(CASES))
def test_drift_is_reported_exactly_and_its_fixes_converge(case, make_db, in_sync_template):
    mutation, expected = CASES[case]
    url = make_db(template=in_sync_template)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(mutation)
    assert findings_of(url) == expected
    fixes = list(dict.fromkeys(f.fix for f in check_database(url, SAMPLE_SCHEMA).report.findings if f.fix))
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in fixes:
            conn.execute(sql)
    assert findings_of(url) == set(), f"fix for {case!r} did not converge"
