"""The live inspector against a real PostgreSQL: what it reads, what it leaves out, how it reads."""
from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from psycopg import pq

from checks.catalog import Column, ForeignKey, Index, IndexColumn, PrimaryKey
from checks.errors import DatabaseError
from checks.inspect import live
from checks.inspect.live import inspect_database
from tests.conftest import ROOT, migration_sql

GOLDENS = sorted((ROOT / "tests" / "fixtures" / "schemas").glob("*.sql"))


def sample_app_sql() -> str:
    return migration_sql(0) + "\n" + migration_sql(1)


def cols(*names: str) -> tuple[IndexColumn, ...]:
    return tuple(IndexColumn(n[:-5], descending=True) if n.endswith(" DESC") else IndexColumn(n) for n in names)


@contextlib.contextmanager
def statements_sent(conn: psycopg.Connection) -> Iterator[list[str]]:
    """Record every statement the client sends, from libpq's own protocol trace.

    A simple-protocol `Query` message and an extended-protocol `Execute` each run SQL once,
    whatever API issued them (psycopg's BEGIN/ROLLBACK included), so counting them is exact.
    """
    sent: list[str] = []
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield sent
        finally:
            conn.pgconn.untrace()
            trace.seek(0)
            for line in trace.read().splitlines():
                fields = line.split("\t")
                if len(fields) > 2 and fields[0] == "F" and fields[2] in ("Query", "Execute"):
                    sent.append(fields[2] + " " + " ".join(fields[3:])[:60])


def many_tables_ddl(n: int) -> str:
    """n tables of 10 columns, 2 secondary indexes and 1 foreign key each (to the previous table)."""
    out = ['CREATE TYPE "Status" AS ENUM (\'A\', \'B\', \'C\');']
    for i in range(n):
        out.append(
            f'CREATE TABLE "t{i}" ("id" SERIAL NOT NULL, "parentId" INTEGER, "name" TEXT NOT NULL,'
            f' "email" VARCHAR(120), "status" "Status" NOT NULL DEFAULT \'A\', "score" DOUBLE PRECISION DEFAULT 0,'
            f' "amount" DECIMAL(10,2) NOT NULL DEFAULT 0, "tags" TEXT[] DEFAULT ARRAY[]::TEXT[], "data" JSONB,'
            f' "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, CONSTRAINT "t{i}_pkey" PRIMARY KEY ("id"));'
            f' CREATE UNIQUE INDEX "t{i}_email_key" ON "t{i}"("email");'
            f' CREATE INDEX "t{i}_name_createdAt_idx" ON "t{i}"("name", "createdAt" DESC);'
        )
        if i:
            out.append(
                f'ALTER TABLE "t{i}" ADD CONSTRAINT "t{i}_parentId_fkey" FOREIGN KEY ("parentId")'
                f' REFERENCES "t{i - 1}"("id") ON DELETE SET NULL ON UPDATE CASCADE;'
            )
    return "\n".join(out)


# --------------------------------------------------------------------------- the sample app


def test_the_sample_app_has_its_six_tables_sorted_and_only_public(make_db):
    catalog = inspect_database(make_db(sample_app_sql()), ["public"])
    assert catalog.schemas == ("public",)
    assert [t.name for t in catalog.tables] == [
        "ai_usage_logs", "avatar_projects", "avatars", "pose_datasets", "sessions", "users"]


def test_the_sample_app_columns_have_canonical_types_nullability_and_defaults_in_attnum_order(make_db):
    catalog = inspect_database(make_db(sample_app_sql()), ["public"])
    assert catalog.table("public", "users").columns == (
        Column("id", "text", False),
        Column("email", "text", False),
        Column("name", "text", True),
        Column("password", "text", False),
        Column("role", '"public"."Role"', False, "'USER'"),
        Column("credits", "integer", False, "0"),
        Column("createdAt", "timestamp(3) without time zone", False, "CURRENT_TIMESTAMP"),
        Column("updatedAt", "timestamp(3) without time zone", False),
    )
    logs = catalog.table("public", "ai_usage_logs")
    assert logs.columns == (
        Column("id", "bigint", False, None, autoincrement=True),
        Column("userId", "text", False),
        Column("app", "character varying(64)", False),
        Column("action", "character varying(64)", False),
        Column("model", "text", False),
        Column("credits", "integer", False),
        Column("costUsd", "numeric(10,4)", False, "0"),
        Column("latencyMs", "integer", True),
        Column("createdAt", "timestamp(3) with time zone", False, "CURRENT_TIMESTAMP"),
    )
    avatars = catalog.table("public", "avatars")
    # projectId came with the second migration's ALTER TABLE ... ADD COLUMN: last by attnum
    assert [c.name for c in avatars.columns][-1] == "projectId"
    assert avatars.column("status") == Column("status", '"public"."GenerationStatus"', False, "'PENDING'")
    assert catalog.table("public", "pose_datasets").column("isPublic").default == "true"
    assert catalog.table("public", "pose_datasets").column("keypoints").type == "jsonb"


def test_the_sample_app_primary_keys_are_named_with_their_columns(make_db):
    catalog = inspect_database(make_db(sample_app_sql()), ["public"])
    for table in catalog.tables:
        assert table.primary_key == PrimaryKey(f"{table.name}_pkey", ("id",))


def test_the_sample_app_indexes_include_the_descending_column_and_leave_out_the_primary_key(make_db):
    catalog = inspect_database(make_db(sample_app_sql()), ["public"])
    avatars = catalog.table("public", "avatars")
    assert avatars.indexes == (
        Index("avatars_projectId_idx", cols("projectId")),
        Index("avatars_userId_createdAt_idx", cols("userId", "createdAt DESC")),
        Index("avatars_userId_idx", cols("userId")),
    )
    assert catalog.table("public", "users").indexes == (Index("users_email_key", cols("email"), unique=True),)
    assert catalog.table("public", "ai_usage_logs").indexes == (
        Index("ai_usage_logs_app_action_idx", cols("app", "action")),
        Index("ai_usage_logs_userId_createdAt_idx", cols("userId", "createdAt")),
    )


def test_the_sample_app_foreign_keys_carry_their_actions_as_sql_words(make_db):
    catalog = inspect_database(make_db(sample_app_sql()), ["public"])
    assert catalog.table("public", "avatars").foreign_keys == (
        ForeignKey("avatars_projectId_fkey", ("projectId",), "public", "avatar_projects", ("id",),
                   on_delete="SET NULL", on_update="CASCADE"),
        ForeignKey("avatars_userId_fkey", ("userId",), "public", "users", ("id",),
                   on_delete="CASCADE", on_update="CASCADE"),
    )
    assert catalog.table("public", "users").foreign_keys == ()


def test_the_sample_app_enums_list_their_values_in_declaration_order(make_db):
    catalog = inspect_database(make_db(sample_app_sql()), ["public"])
    assert [(e.name, e.values) for e in catalog.enums] == [
        ("GenerationStatus", ("PENDING", "PROCESSING", "COMPLETED", "FAILED")),
        ("Role", ("USER", "ADMIN")),
    ]


def test_enum_values_follow_sort_order_not_insertion_order(make_db):
    url = make_db("""CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
                     ALTER TYPE "Role" ADD VALUE 'GUEST' BEFORE 'USER';
                     ALTER TYPE "Role" ADD VALUE 'OWNER' AFTER 'USER';
                     CREATE TYPE "Empty" AS ENUM ();""")
    catalog = inspect_database(url, ["public"])
    assert catalog.enum("public", "Role").values == ("GUEST", "USER", "OWNER", "ADMIN")
    assert catalog.enum("public", "Empty").values == ()


def test_the_incident_database_lacks_the_second_migrations_table_and_column(incident_db):
    catalog = inspect_database(incident_db, ["public"])
    assert catalog.table("public", "avatar_projects") is None
    assert catalog.table("public", "avatars").column("projectId") is None


# --------------------------------------------------------------------------- what is a table


def test_several_schemas_are_read_and_other_schemas_ignored(make_db):
    url = make_db("""
        CREATE SCHEMA auth; CREATE SCHEMA other;
        CREATE TYPE auth."Kind" AS ENUM ('a', 'b');
        CREATE TYPE other."Hidden" AS ENUM ('x');
        CREATE TABLE auth.users (id int PRIMARY KEY, kind auth."Kind" NOT NULL DEFAULT 'a');
        CREATE TABLE public.posts (id int PRIMARY KEY, author int REFERENCES auth.users(id),
                                   kinds auth."Kind"[] DEFAULT '{b}', hidden other."Hidden");
        CREATE TABLE other.secret (id int);
    """)
    catalog = inspect_database(url, ["public", "auth"])
    assert catalog.schemas == ("public", "auth")
    assert [t.key for t in catalog.tables] == [("auth", "users"), ("public", "posts")]
    assert [e.key for e in catalog.enums] == [("auth", "Kind")]
    users, posts = catalog.tables
    assert users.column("kind") == Column("kind", '"auth"."Kind"', False, "'a'")
    assert posts.column("kinds") == Column("kinds", '"auth"."Kind"[]', True, "ARRAY['b']::\"auth\".\"Kind\"[]")
    assert posts.column("hidden").type == '"other"."Hidden"'
    assert posts.foreign_keys == (ForeignKey("posts_author_fkey", ("author",), "auth", "users", ("id",)),)
    assert inspect_database(url, ["auth"]).tables == (users,)


def test_a_schema_that_does_not_exist_is_missing_from_the_catalog_schemas(empty_db):
    catalog = inspect_database(empty_db, ["public", "nope"])
    assert catalog.schemas == ("public",)
    assert catalog.tables == () and catalog.enums == ()


def test_prisma_migrations_is_not_an_application_table(make_db):
    url = make_db(migration_sql(0) + """
        CREATE TABLE "_prisma_migrations" (
            "id" VARCHAR(36) PRIMARY KEY, "checksum" VARCHAR(64) NOT NULL,
            "finished_at" TIMESTAMPTZ, "migration_name" VARCHAR(255) NOT NULL,
            "started_at" TIMESTAMPTZ NOT NULL DEFAULT now());""")
    catalog = inspect_database(url, ["public"])
    assert "_prisma_migrations" not in {t.name for t in catalog.tables}
    assert len(catalog.tables) == 5


def test_views_materialized_views_sequences_and_foreign_tables_are_not_tables(make_db):
    url = make_db("""
        CREATE TABLE t (id int PRIMARY KEY);
        CREATE VIEW v AS SELECT id FROM t;
        CREATE MATERIALIZED VIEW mv AS SELECT id FROM t;
        CREATE SEQUENCE s;
        CREATE TYPE composite AS (a int, b text);""")
    assert [t.name for t in inspect_database(url, ["public"]).tables] == ["t"]


def test_partitions_are_folded_into_their_partitioned_parent(make_db):
    url = make_db("""
        CREATE TABLE owners (id int PRIMARY KEY);
        CREATE TABLE events (id int NOT NULL, at date NOT NULL, owner int REFERENCES owners(id) ON DELETE CASCADE,
                             PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
        CREATE INDEX events_owner_idx ON events (owner);
        CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE notes (id int PRIMARY KEY, event int, event_at date,
                            FOREIGN KEY (event, event_at) REFERENCES events (id, at));""")
    catalog = inspect_database(url, ["public"])
    assert [t.name for t in catalog.tables] == ["events", "notes", "owners"]
    events = catalog.table("public", "events")
    assert events.primary_key == PrimaryKey("events_pkey", ("id", "at"))
    assert events.indexes == (Index("events_owner_idx", cols("owner")),)
    assert [f.name for f in events.foreign_keys] == ["events_owner_fkey"]
    # PostgreSQL adds one hidden constraint per partition on the referencing side: one FK remains
    assert catalog.table("public", "notes").foreign_keys == (
        ForeignKey("notes_event_event_at_fkey", ("event", "event_at"), "public", "events", ("id", "at")),)


def test_children_of_old_style_inheritance_are_tables_with_all_their_columns(make_db):
    url = make_db("""
        CREATE TABLE base (id int PRIMARY KEY, name text);
        CREATE TABLE child (extra int) INHERITS (base);""")
    catalog = inspect_database(url, ["public"])
    assert [t.name for t in catalog.tables] == ["base", "child"]
    assert [c.name for c in catalog.table("public", "child").columns] == ["id", "name", "extra"]
    assert catalog.table("public", "child").primary_key is None


def test_objects_owned_by_an_extension_are_left_out(make_db, pg_server):
    url = make_db()
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").fetchone() is None:
            pytest.skip("pg_trgm is not available on this server")
        conn.execute("""
            CREATE EXTENSION pg_trgm;
            CREATE TABLE ext_table (id int PRIMARY KEY);
            CREATE TYPE ext_enum AS ENUM ('x');
            ALTER EXTENSION pg_trgm ADD TABLE ext_table;
            ALTER EXTENSION pg_trgm ADD TYPE ext_enum;
            CREATE TABLE docs (id int PRIMARY KEY, body text);
            CREATE INDEX docs_body_idx ON docs USING gin (body gin_trgm_ops);""")
    catalog = inspect_database(url, ["public"])
    assert [t.name for t in catalog.tables] == ["docs"]
    assert catalog.enums == ()
    assert catalog.table("public", "docs").indexes == (
        Index("docs_body_idx", (IndexColumn("body", opclass="gin_trgm_ops"),), method="gin"),)


def test_a_table_without_columns_is_still_a_table(make_db):
    catalog = inspect_database(make_db("CREATE TABLE nothing ();"), ["public"])
    assert [(t.name, t.columns) for t in catalog.tables] == [("nothing", ())]


# --------------------------------------------------------------------------- names, keys, columns


def test_identifiers_with_quotes_spaces_unicode_and_reserved_words_come_back_verbatim(make_db):
    url = make_db('''
        CREATE SCHEMA "my ""odd"" schema";
        CREATE TYPE "my ""odd"" schema"."État du ""lot""" AS ENUM ('à faire', 'it''s done', 'with "quotes"');
        CREATE TABLE "my ""odd"" schema"."select" (
            "order" int NOT NULL, "naïve column ✓" text, "group" "my ""odd"" schema"."État du ""lot""",
            CONSTRAINT "pk of ""select""" PRIMARY KEY ("order"));
        CREATE UNIQUE INDEX "idx with space" ON "my ""odd"" schema"."select" ("naïve column ✓", "group" DESC);
        CREATE TABLE "my ""odd"" schema"."Ünïcode" ("from" int REFERENCES "my ""odd"" schema"."select" ("order"));''')
    schema = 'my "odd" schema'
    catalog = inspect_database(url, [schema])
    assert catalog.schemas == (schema,)
    assert [t.name for t in catalog.tables] == ["select", "Ünïcode"]
    select = catalog.table(schema, "select")
    assert select.columns == (
        Column("order", "integer", False),
        Column("naïve column ✓", "text", True),
        Column("group", '"my ""odd"" schema"."État du ""lot"""', True),
    )
    assert select.primary_key == PrimaryKey('pk of "select"', ("order",))
    assert select.indexes == (Index("idx with space", cols("naïve column ✓", "group DESC"), unique=True),)
    assert catalog.enums[0].name == 'État du "lot"'
    assert catalog.enums[0].values == ("à faire", "it's done", 'with "quotes"')
    fk = catalog.table(schema, "Ünïcode").foreign_keys[0]
    assert (fk.referenced_schema, fk.referenced_table, fk.referenced_columns) == (schema, "select", ("order",))


def test_identity_and_serial_columns_are_autoincrement_without_a_default(make_db):
    url = make_db("""
        CREATE TABLE ids (
            a int GENERATED ALWAYS AS IDENTITY, b bigint GENERATED BY DEFAULT AS IDENTITY,
            c serial, d smallserial, e int DEFAULT nextval('ids_c_seq'),
            f int, g int GENERATED ALWAYS AS (f * 2) STORED);""")
    columns = {c.name: c for c in inspect_database(url, ["public"]).table("public", "ids").columns}
    for name in "abcde":
        assert (columns[name].default, columns[name].autoincrement) == (None, True), name
    assert columns["a"].type == "integer" and columns["d"].type == "smallint"
    # a generated column's expression is not a default
    assert (columns["g"].default, columns["g"].autoincrement) == (None, False)


def test_a_unique_constraint_is_reported_as_a_unique_index(make_db):
    url = make_db("""
        CREATE TABLE u (id int PRIMARY KEY, a int, b int, c int,
                        CONSTRAINT u_a_b_key UNIQUE (b, a));
        ALTER TABLE u ADD CONSTRAINT u_c_excl EXCLUDE USING btree (c WITH =);""")
    table = inspect_database(url, ["public"]).table("public", "u")
    # the exclusion constraint's index is a constraint Prisma cannot declare, not an index
    assert table.indexes == (Index("u_a_b_key", cols("b", "a"), unique=True),)


def test_partial_expression_opclass_and_method_indexes(make_db):
    url = make_db("""
        CREATE TABLE p (id int PRIMARY KEY, email text, "deletedAt" timestamp(3), a int, b int,
                        code varchar(20), doc jsonb, tags text[]);
        CREATE UNIQUE INDEX p_email_live ON p (email) WHERE "deletedAt" IS NULL;
        CREATE INDEX p_lower_email ON p (lower(email));
        CREATE INDEX p_sum ON p ((a + b) DESC, code varchar_pattern_ops);
        CREATE INDEX p_doc ON p USING gin (doc jsonb_path_ops);
        CREATE INDEX p_doc_default ON p USING gin (doc);
        CREATE INDEX p_tags ON p USING gin (tags);
        CREATE INDEX p_hash ON p USING hash (code);
        CREATE INDEX p_covering ON p (a) INCLUDE (b);
        CREATE INDEX p_nulls ON p (a NULLS FIRST, b DESC NULLS LAST);""")
    indexes = {i.name: i for i in inspect_database(url, ["public"]).table("public", "p").indexes}
    assert indexes["p_email_live"] == Index("p_email_live", cols("email"), unique=True, where='"deletedAt" IS NULL')
    assert indexes["p_lower_email"].columns == (IndexColumn("lower(email)", expression=True),)
    assert indexes["p_sum"].columns == (IndexColumn("(a + b)", descending=True, expression=True),
                                        IndexColumn("code", opclass="varchar_pattern_ops"))
    assert indexes["p_doc"] == Index("p_doc", (IndexColumn("doc", opclass="jsonb_path_ops"),), method="gin")
    assert indexes["p_doc_default"] == Index("p_doc_default", cols("doc"), method="gin")
    assert indexes["p_tags"] == Index("p_tags", cols("tags"), method="gin")
    assert indexes["p_hash"].method == "hash"
    assert indexes["p_covering"] == Index("p_covering", cols("a"), include=("b",))
    assert indexes["p_nulls"].columns == cols("a", "b DESC")


def test_include_columns_are_read_in_their_order_apart_from_the_key(make_db):
    url = make_db("""
        CREATE TABLE q (id int PRIMARY KEY, a int, "B" text, c int);
        CREATE UNIQUE INDEX q_a_key ON q (a) INCLUDE (c, "B", id);
        CREATE INDEX q_live ON q (a DESC) INCLUDE ("B") WHERE c > 0;""")
    indexes = {i.name: i for i in inspect_database(url, ["public"]).table("public", "q").indexes}
    assert indexes["q_a_key"] == Index("q_a_key", cols("a"), unique=True, include=("c", "B", "id"))
    assert indexes["q_live"] == Index("q_live", cols("a DESC"), include=("B",), where="c > 0")


def test_foreign_key_columns_keep_constraint_order_and_every_action_is_spelled_out(make_db):
    url = make_db("""
        CREATE TABLE parent (x int, y int, PRIMARY KEY (y, x), UNIQUE (x, y));
        CREATE TABLE child (
            a int, b int, c int DEFAULT 0, d int, e int,
            CONSTRAINT fk_na FOREIGN KEY (b, a) REFERENCES parent (x, y),
            CONSTRAINT fk_r FOREIGN KEY (a, b) REFERENCES parent (y, x) ON DELETE RESTRICT ON UPDATE CASCADE,
            CONSTRAINT fk_n FOREIGN KEY (c, d) REFERENCES parent (y, x) ON DELETE SET NULL ON UPDATE SET DEFAULT,
            CONSTRAINT fk_d FOREIGN KEY (c, e) REFERENCES parent (y, x) ON DELETE SET DEFAULT ON UPDATE NO ACTION);""")
    catalog = inspect_database(url, ["public"])
    assert catalog.table("public", "parent").primary_key == PrimaryKey("parent_pkey", ("y", "x"))
    fks = {f.name: f for f in catalog.table("public", "child").foreign_keys}
    assert (fks["fk_na"].columns, fks["fk_na"].referenced_columns) == (("b", "a"), ("x", "y"))
    assert (fks["fk_na"].on_delete, fks["fk_na"].on_update) == ("NO ACTION", "NO ACTION")
    assert (fks["fk_r"].on_delete, fks["fk_r"].on_update) == ("RESTRICT", "CASCADE")
    assert (fks["fk_n"].on_delete, fks["fk_n"].on_update) == ("SET NULL", "SET DEFAULT")
    assert (fks["fk_d"].on_delete, fks["fk_d"].on_update) == ("SET DEFAULT", "NO ACTION")


# --------------------------------------------------------------------------- defaults as Prisma writes them

# What Prisma's schema engine emits for a model with every kind of default (generated with
# the oracle), with the normalized default each column must come back with.
PRISMA_DEFAULTS_DDL = r"""
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
CREATE TABLE "D" (
    "id" SERIAL NOT NULL,
    "s2" TEXT NOT NULL DEFAULT 'it''s',
    "s3" TEXT NOT NULL DEFAULT 'back\slash',
    "s4" TEXT NOT NULL DEFAULT 'quote"d',
    "v1" VARCHAR(20) NOT NULL DEFAULT 'abc',
    "c1" CHAR(5) NOT NULL DEFAULT 'abc',
    "i2" INTEGER NOT NULL DEFAULT -5,
    "si" SMALLINT NOT NULL DEFAULT -3,
    "b1" BIGINT NOT NULL DEFAULT -9007199254740993,
    "f2" DOUBLE PRECISION NOT NULL DEFAULT -0.25,
    "f4" DOUBLE PRECISION NOT NULL DEFAULT 100000000000000000000.0,
    "r1" REAL NOT NULL DEFAULT 2.5,
    "d1" DECIMAL(65,30) NOT NULL DEFAULT 0,
    "d3" DECIMAL(10,2) NOT NULL DEFAULT 1.10,
    "bo1" BOOLEAN NOT NULL DEFAULT true,
    "e1" "Role" NOT NULL DEFAULT 'USER',
    "j2" JSONB NOT NULL DEFAULT '{"b":1, "a": [1, "it''s"]}',
    "j3" JSON NOT NULL DEFAULT '{"b":1}',
    "by1" BYTEA NOT NULL DEFAULT '\x68656c6c6f',
    "dt1" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "dt2" TIMESTAMP(3) NOT NULL DEFAULT '2020-01-01 00:00:00 +00:00',
    "dt3" TIMESTAMPTZ(3) NOT NULL DEFAULT '2020-01-01 10:20:30.123 +02:00',
    "dt4" DATE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "dt5" DATE NOT NULL DEFAULT '2021-03-04 00:00:00 +00:00',
    "dt6" TIME(3) NOT NULL DEFAULT '1970-01-01 12:34:56 +00:00',
    "dt7" TIMETZ NOT NULL DEFAULT '1970-01-01 12:34:56 +02:00',
    "u1" UUID NOT NULL DEFAULT gen_random_uuid(),
    "g1" TIMESTAMP(3) NOT NULL DEFAULT (now() + '1 day'::interval),
    "g3" INTEGER NOT NULL DEFAULT (1 + 2),
    "a1" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "a2" TEXT[] DEFAULT ARRAY['a', 'b,c', 'it''s']::TEXT[],
    "a3" INTEGER[] DEFAULT ARRAY[1, 2, -3]::INTEGER[],
    "a4" DOUBLE PRECISION[] DEFAULT ARRAY[1.5, -0.25]::DOUBLE PRECISION[],
    "a6" "Role"[] DEFAULT ARRAY['USER', 'ADMIN']::"Role"[],
    "a7" "Role"[] DEFAULT ARRAY[]::"Role"[],
    "a9" DECIMAL(65,30)[] DEFAULT ARRAY[1.5, 0]::DECIMAL(65,30)[],
    "a11" TIMESTAMP(3)[] DEFAULT ARRAY['2020-01-01 00:00:00 +00:00']::TIMESTAMP(3)[],
    "a12" JSONB[] DEFAULT ARRAY['{}']::JSONB[],
    CONSTRAINT "D_pkey" PRIMARY KEY ("id")
);
"""

EXPECTED_DEFAULTS = {
    "id": (None, True),
    "s2": ("'it''s'", False),
    "s3": ("'back\\slash'", False),
    "s4": ("'quote\"d'", False),
    "v1": ("'abc'", False),
    "c1": ("'abc'", False),
    "i2": ("-5", False),
    "si": ("-3", False),
    "b1": ("-9007199254740993", False),
    "f2": ("-0.25", False),
    "f4": ("100000000000000000000", False),
    "r1": ("2.5", False),
    "d1": ("0", False),
    "d3": ("1.1", False),
    "bo1": ("true", False),
    "e1": ("'USER'", False),
    "j2": ("'{\"a\": [1, \"it''s\"], \"b\": 1}'", False),
    "j3": ("'{\"b\":1}'", False),
    "by1": ("'\\x68656c6c6f'", False),
    "dt1": ("CURRENT_TIMESTAMP", False),
    "dt2": ("'2020-01-01 00:00:00'", False),
    "dt3": ("'2020-01-01 08:20:30.123+00'", False),
    "dt4": ("CURRENT_TIMESTAMP", False),
    "dt5": ("'2021-03-04'", False),
    "dt6": ("'12:34:56'", False),
    "dt7": ("'12:34:56+02'", False),
    "u1": ("gen_random_uuid()", False),
    "g1": ("now() + '1 day'::interval", False),
    "g3": ("1 + 2", False),
    "a1": ("ARRAY[]::text[]", False),
    "a2": ("ARRAY['a', 'b,c', 'it''s']::text[]", False),
    "a3": ("ARRAY[1, 2, -3]::integer[]", False),
    "a4": ("ARRAY[1.5, -0.25]::double precision[]", False),
    "a6": ("ARRAY['USER', 'ADMIN']::\"public\".\"Role\"[]", False),
    "a7": ("ARRAY[]::\"public\".\"Role\"[]", False),
    "a9": ("ARRAY[1.5, 0]::numeric(65,30)[]", False),
    "a11": ("ARRAY['2020-01-01 00:00:00']::timestamp(3) without time zone[]", False),
    "a12": ("ARRAY['{}']::jsonb[]", False),
}


def test_defaults_as_postgresql_stores_them_normalize_like_prismas_ddl_spelling(make_db):
    from checks.defaults import normalize_default

    url = make_db()
    with psycopg.connect(url, autocommit=True) as conn:  # a session time zone must not leak in
        conn.execute("SET TimeZone = 'America/New_York'; SET DateStyle = 'German'")
        conn.execute(PRISMA_DEFAULTS_DDL)
    table = inspect_database(url, ["public"]).table("public", "D")
    got = {c.name: (c.default, c.autoincrement) for c in table.columns}
    assert got == EXPECTED_DEFAULTS
    # and the compiler's side, Prisma's own text run through the same function, agrees
    for line in PRISMA_DEFAULTS_DDL.splitlines():
        m = re.match(r'\s*"(\w+)" .*? DEFAULT (.*),$', line)
        if m:
            column = table.column(m.group(1))
            assert normalize_default(m.group(2), column.type) == got[column.name], line


# --------------------------------------------------------------------------- how it reads


def test_the_number_of_statements_is_fixed_whatever_the_number_of_tables(make_db):
    counts = {}
    for n in (5, 200):
        url = make_db(many_tables_ddl(n))
        with psycopg.connect(url, autocommit=True) as conn:
            with statements_sent(conn) as sent:
                catalog = inspect_database(conn, ["public"])
        assert len(catalog.tables) == n
        assert sum(len(t.indexes) for t in catalog.tables) == 2 * n
        assert sum(len(t.foreign_keys) for t in catalog.tables) == n - 1
        counts[n] = sent
    # BEGIN, one batch of SET LOCAL, schemas, columns, constraints, indexes, enums, ROLLBACK
    assert len(counts[5]) == len(counts[200]) == 8, counts[200]
    assert counts[5][0].startswith("Query") and "BEGIN" in counts[5][0]
    assert "ROLLBACK" in counts[5][-1]
    assert sum(s.startswith("Execute") for s in counts[200]) == len(live.QUERY_FILES) <= 6


def test_a_callers_connection_keeps_its_transaction_and_session_settings(make_db):
    url = make_db("CREATE TABLE t (id int PRIMARY KEY, at timestamptz DEFAULT '2020-01-01 00:00:00+00');")
    with psycopg.connect(url) as conn:  # not autocommit: the caller is inside a transaction
        conn.execute("SET TimeZone = 'Asia/Tokyo'")
        conn.execute("INSERT INTO t (id) VALUES (1)")
        catalog = inspect_database(conn, ["public"])
        assert catalog.table("public", "t").column("at").default == "'2020-01-01 00:00:00+00'"
        assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
        conn.execute("INSERT INTO t (id) VALUES (2)")  # still writable
        assert conn.execute("SHOW TimeZone").fetchone()[0] == "Asia/Tokyo"
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "0"
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    with psycopg.connect(url, autocommit=True) as conn:
        inspect_database(conn, ["public"])
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        assert conn.execute("SHOW transaction_read_only").fetchone()[0] == "off"


def test_the_inspection_transaction_cannot_write(make_db, monkeypatch):
    url = make_db()
    real = live._query
    monkeypatch.setattr(live, "_query", lambda name: "CREATE TABLE sneaky (id int)" if name == "enums.sql" else real(name))
    with pytest.raises(DatabaseError, match="read-only transaction"):
        inspect_database(url, ["public"])
    monkeypatch.setattr(live, "_query", real)
    assert inspect_database(url, ["public"]).tables == ()


def test_a_slow_inspection_is_cancelled_by_its_statement_timeout(make_db, monkeypatch):
    url = make_db()
    real = live._query
    monkeypatch.setattr(live, "_query", lambda name: "SELECT pg_sleep(5)" if name == "enums.sql" else real(name))
    with pytest.raises(DatabaseError, match="took longer than 0.2 s"):
        inspect_database(url, ["public"], statement_timeout=0.2)


def test_an_unreachable_database_is_a_database_error_without_the_password():
    with pytest.raises(DatabaseError) as err:
        inspect_database("postgresql://someone:s3cret-pw@127.0.0.1:1/db", ["public"])
    assert "s3cret-pw" not in str(err.value)


# --------------------------------------------------------------------------- Prisma's goldens


def golden_schemas(sql: str) -> list[str]:
    found = [s.replace('""', '"') for s in re.findall(r'CREATE SCHEMA IF NOT EXISTS "((?:[^"]|"")+)"', sql)]
    return list(dict.fromkeys(found + ["public"]))


def golden_defaults(sql: str) -> Iterator[tuple[str, str, str, str]]:
    """(schema, table, column, default as Prisma wrote it) for each DEFAULT in a golden's CREATE TABLEs."""
    ident = r'"((?:[^"]|"")+)"'
    for block in re.finditer(rf'^CREATE TABLE (?:{ident}\.)?{ident} \((.*?)\n\);', sql, re.M | re.S):
        schema, table = (block.group(1) or "public").replace('""', '"'), block.group(2).replace('""', '"')
        for line in re.split(r",\n", block.group(3)):
            m = re.match(rf"\s*{ident} .*? DEFAULT (.*)$", line, re.S)
            if m:
                yield schema, table, m.group(1).replace('""', '"'), m.group(2)


@pytest.mark.parametrize("golden", GOLDENS, ids=[p.stem for p in GOLDENS])
def test_every_prisma_golden_applies_and_inspects_with_one_table_per_create_table(make_db, golden: Path):
    from checks.defaults import normalize_default

    sql = golden.read_text()
    url = make_db()
    with psycopg.connect(url, autocommit=True) as conn:
        for ext in re.findall(r'CREATE EXTENSION IF NOT EXISTS "([^"]+)"', sql):
            if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = %s", (ext,)).fetchone() is None:
                pytest.skip(f"extension {ext} is not available on this server")
        try:
            conn.execute(sql)
        except psycopg.errors.FeatureNotSupported as exc:  # e.g. xml on a server built without libxml
            pytest.skip(f"this server cannot run the golden: {str(exc).splitlines()[0]}")
    catalog = inspect_database(url, golden_schemas(sql))
    assert len(catalog.tables) == len(re.findall(r"^CREATE TABLE ", sql, re.M))
    assert len(catalog.enums) == len(re.findall(r"^CREATE TYPE .* AS ENUM", sql, re.M))
    # Prisma's spelling of each default, normalized, is what the database gives back normalized:
    # the property the compiler and the inspector rely on to compare defaults with ==.
    for schema, table, column, written in golden_defaults(sql):
        live_column = catalog.table(schema, table).column(column)
        got = (live_column.default, live_column.autoincrement)
        assert normalize_default(written, live_column.type) == got, (table, column, written)


def test_a_table_locked_by_a_stuck_migration_names_the_holder_instead_of_hanging(incident_db, monkeypatch):
    import checks.inspect.live as live
    from checks.errors import DatabaseError

    monkeypatch.setattr(live, "LOCK_TIMEOUT", 0.5)
    holder = psycopg.connect(incident_db, application_name="stuck-migration")
    try:
        holder.execute('LOCK TABLE "users" IN ACCESS EXCLUSIVE MODE')  # open transaction keeps it
        with pytest.raises(DatabaseError) as caught:
            inspect_database(incident_db, ["public"])
    finally:
        holder.rollback()
        holder.close()
    message = str(caught.value)
    assert "waited 0.5 s" in message and "nothing was changed" in message
    assert 'table "users"' in message and "stuck-migration" in message
    assert "\n" not in message
    assert inspect_database(incident_db, ["public"]).table("public", "users") is not None
