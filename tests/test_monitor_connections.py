"""The resident poller's kept connections: the same catalog as a fresh inspection, one
connection reused across checks, and a connection lost while idle replaced without an error."""
from __future__ import annotations

import psycopg
import pytest

from checks.errors import DatabaseError
from checks.inspect.live import inspect_database
from checks.monitor.connections import ResidentConnections

SQL = """
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
CREATE TABLE "User" (id serial PRIMARY KEY, email text NOT NULL, role "Role" NOT NULL DEFAULT 'USER',
                     "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE UNIQUE INDEX "User_email_key" ON "User" (email);
CREATE TABLE "Post" (id integer PRIMARY KEY, "authorId" integer REFERENCES "User"(id) ON DELETE CASCADE);
"""


def test_a_kept_connection_gives_the_fresh_catalog_and_is_reused(make_db):
    url = make_db(SQL)
    pool = ResidentConnections()
    try:
        fresh = inspect_database(url, ["public"])
        for _ in range(7):  # past psycopg's own prepare threshold
            assert pool.inspect(url, ["public"]) == fresh
        assert (pool.opened, pool.reused) == (1, 6)
    finally:
        pool.close()


def test_a_connection_lost_while_idle_is_replaced(make_db):
    url = make_db(SQL)
    pool = ResidentConnections()
    try:
        first = pool.inspect(url, ["public"])
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        assert pool.inspect(url, ["public"]) == first
        assert pool.opened == 2
    finally:
        pool.close()


def test_a_database_that_cannot_be_reached_is_a_database_error(make_db):
    pool = ResidentConnections()
    with pytest.raises(DatabaseError):
        pool.inspect("postgresql://nobody@127.0.0.1:1/none", ["public"])
    assert pool.opened == 0


def test_unchanged_rows_give_the_same_catalog_object_and_a_change_a_new_one(make_db):
    url = make_db(SQL)
    pool = ResidentConnections()
    try:
        first = pool.inspect(url, ["public"])
        assert pool.inspect(url, ["public"]) is first
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute('ALTER TABLE "Post" ADD COLUMN title text')
        changed = pool.inspect(url, ["public"])
        assert changed is not first and changed == inspect_database(url, ["public"])
        assert changed.table("public", "Post").column("title") is not None
        assert pool.inspect(url, ["public", "other"]) == inspect_database(url, ["public", "other"])
    finally:
        pool.close()
