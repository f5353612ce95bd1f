"""checks.ddl writes each statement exactly as Prisma's schema engine writes it.

The expected strings are copied from `oracle.mjs ddl` / `oracle.mjs drift` output
(Prisma's own engine) on small schemas, so a change in spacing or spelling shows up here
statement by statement, not only in the whole-script golden tests of test_compile.py.
"""
from __future__ import annotations

import pytest

from checks import ddl
from checks.catalog import (
    Catalog,
    Column,
    Enum,
    Extension,
    ForeignKey,
    Index,
    IndexColumn,
    PrimaryKey,
    Table,
)

T = Table("public", "T", (Column("id", "integer", False),), PrimaryKey("T_pkey", ("id",)))
AUTH_T = Table("auth", "User", (Column("id", "integer", False),), PrimaryKey("User_pkey", ("id",)))


@pytest.mark.parametrize("canonical, autoincrement, prisma", [
    ("text", False, "TEXT"),
    ("integer", False, "INTEGER"),
    ("integer", True, "SERIAL"),
    ("bigint", True, "BIGSERIAL"),
    ("smallint", True, "SMALLSERIAL"),
    ("smallint", False, "SMALLINT"),
    ("double precision", False, "DOUBLE PRECISION"),
    ("numeric(65,30)", False, "DECIMAL(65,30)"),
    ("numeric", False, "DECIMAL"),
    ("timestamp(3) without time zone", False, "TIMESTAMP(3)"),
    ("timestamp without time zone", False, "TIMESTAMP"),
    ("timestamp(6) with time zone", False, "TIMESTAMPTZ(6)"),
    ("time(3) without time zone", False, "TIME(3)"),
    ("time with time zone", False, "TIMETZ"),
    ("character varying(120)", False, "VARCHAR(120)"),
    ("character varying", False, "VARCHAR"),
    ("character(10)", False, "CHAR(10)"),
    ("bit(8)", False, "BIT(8)"),
    ("bit varying", False, "VARBIT"),
    ("bit varying(16)", False, "VARBIT(16)"),
    ("jsonb", False, "JSONB"),
    ("json[]", False, "JSON[]"),
    ("bytea", False, "BYTEA"),
    ("uuid[]", False, "UUID[]"),
    ("money", False, "MONEY"),
    ("oid", False, "OID"),
    ('"public"."Role"', False, '"Role"'),
    ('"public"."Role"[]', False, '"Role"[]'),
    ('"auth"."Role"[]', False, '"auth"."Role"[]'),
    ('"public"."citext"', False, "CITEXT"),
    ("tsvector", False, "tsvector"),
])
def test_a_canonical_type_is_written_in_prismas_spelling(canonical, autoincrement, prisma):
    assert ddl.prisma_type(canonical, autoincrement) == prisma


def test_a_column_written_by_prisma_has_type_nullability_and_default_in_that_order():
    col = Column("name", "text", False, "'it''s'")
    assert ddl.column_sql(col) == """"name" TEXT NOT NULL DEFAULT 'it''s'"""


def test_a_serial_column_has_no_default_clause():
    assert ddl.column_sql(Column("id", "integer", False, None, True)) == '"id" SERIAL NOT NULL'


def test_a_canonical_array_default_is_cast_to_prismas_type_spelling():
    col = Column("tags", "text[]", True, "ARRAY['a', 'b']::text[]")
    assert ddl.column_sql(col) == """"tags" TEXT[] DEFAULT ARRAY['a', 'b']::TEXT[]"""
    empty = Column("roles", '"public"."Role"[]', True, 'ARRAY[]::"public"."Role"[]')
    assert ddl.column_sql(empty) == '"roles" "Role"[] DEFAULT ARRAY[]::"Role"[]'


def test_the_ddl_spellings_win_over_the_canonical_forms_when_the_compiler_set_them():
    col = Column("c", "character(1)", False, "'x'", ddl_type="CHAR", ddl_default="'x'")
    assert ddl.column_sql(col) == """"c" CHAR NOT NULL DEFAULT 'x'"""
    unsupported = Column("p", "point", False, "'(0,0)'", ddl_type="point", ddl_default="'(0,0)'::point")
    assert ddl.column_sql(unsupported) == """"p" point NOT NULL DEFAULT '(0,0)'::point"""


def test_create_table_puts_the_primary_key_after_a_blank_line_with_comma_joined_columns():
    table = Table("public", "_AToB", (Column("A", "integer", False), Column("B", "text", False)),
                  PrimaryKey("_AToB_AB_pkey", ("A", "B")))
    assert ddl.create_table(table) == (
        'CREATE TABLE "_AToB" (\n'
        '    "A" INTEGER NOT NULL,\n'
        '    "B" TEXT NOT NULL,\n'
        '\n'
        '    CONSTRAINT "_AToB_AB_pkey" PRIMARY KEY ("A","B")\n'
        ');'
    )


def test_a_table_without_primary_key_ends_after_its_last_column():
    table = Table("public", "Log", (Column("line", "text", False),))
    assert ddl.create_table(table) == 'CREATE TABLE "Log" (\n    "line" TEXT NOT NULL\n);'


def test_objects_outside_public_are_schema_qualified_and_public_ones_are_not():
    assert ddl.create_table(AUTH_T).startswith('CREATE TABLE "auth"."User" (')
    assert ddl.create_enum(Enum("auth", "Role", ("A",))) == """CREATE TYPE "auth"."Role" AS ENUM ('A');"""
    assert ddl.create_enum(Enum("public", "Role", ("A", "B"))) == """CREATE TYPE "Role" AS ENUM ('A', 'B');"""


def test_alter_statements_match_what_prisma_migrate_diff_prints():
    # copied from `oracle.mjs drift` output
    assert ddl.add_enum_value(Enum("public", "Role", ("A",)), "C") == """ALTER TYPE "Role" ADD VALUE 'C';"""
    f = Column("f", "character varying(3)", True)
    assert ddl.add_column(T, f) == 'ALTER TABLE "T" ADD COLUMN     "f" VARCHAR(3);'
    a = Column("a", "integer", False)
    assert ddl.add_column(T, a) == 'ALTER TABLE "T" ADD COLUMN     "a" INTEGER NOT NULL;'
    assert ddl.drop_column(T, a) == 'ALTER TABLE "T" DROP COLUMN "a";'
    assert ddl.set_not_null(T, Column("b", "integer", False)) == 'ALTER TABLE "T" ALTER COLUMN "b" SET NOT NULL;'
    assert ddl.drop_not_null(T, Column("d", "integer", True)) == 'ALTER TABLE "T" ALTER COLUMN "d" DROP NOT NULL;'
    assert ddl.drop_default(T, Column("c", "text", False)) == 'ALTER TABLE "T" ALTER COLUMN "c" DROP DEFAULT;'
    assert ddl.set_default(T, Column("e", "text", False, "'hello'")) == \
        """ALTER TABLE "T" ALTER COLUMN "e" SET DEFAULT 'hello';"""
    assert ddl.alter_column_type(T, Column("v", "character varying(10)", False)) == \
        'ALTER TABLE "T" ALTER COLUMN "v" SET DATA TYPE VARCHAR(10);'
    assert ddl.alter_column_type(T, Column("n", "bigint", False)) == \
        'ALTER TABLE "T" ALTER COLUMN "n" SET DATA TYPE BIGINT;'
    assert ddl.add_primary_key(T, PrimaryKey("NoPk_pkey", ("x",))) == \
        'ALTER TABLE "T" ADD CONSTRAINT "NoPk_pkey" PRIMARY KEY ("x");'
    assert ddl.add_primary_key(T, PrimaryKey("p", ("a", "b"))) == \
        'ALTER TABLE "T" ADD CONSTRAINT "p" PRIMARY KEY ("a", "b");'
    assert ddl.drop_primary_key(T, PrimaryKey("two", ("a",))) == 'ALTER TABLE "T" DROP CONSTRAINT "two";'
    assert ddl.drop_table(Table("public", "Dropme", ())) == 'DROP TABLE "Dropme";'
    assert ddl.drop_enum(Enum("public", "Gone", ("X",))) == 'DROP TYPE "Gone";'
    assert ddl.drop_index(T, Index("T_a_idx", (IndexColumn("a"),))) == 'DROP INDEX "T_a_idx";'
    assert ddl.drop_index(AUTH_T, Index("i", (IndexColumn("a"),))) == 'DROP INDEX "auth"."i";'
    fk = ForeignKey("T_oid_fkey", ("oid",), "public", "O", ("id",), "CASCADE", "CASCADE")
    assert ddl.drop_foreign_key(T, fk) == 'ALTER TABLE "T" DROP CONSTRAINT "T_oid_fkey";'
    assert ddl.add_foreign_key(T, fk) == (
        'ALTER TABLE "T" ADD CONSTRAINT "T_oid_fkey" FOREIGN KEY ("oid") REFERENCES "O"("id") '
        'ON DELETE CASCADE ON UPDATE CASCADE;')
    assert ddl.rename_index(AUTH_T, "old", "new") == 'ALTER INDEX "auth"."old" RENAME TO "new";'


def test_a_foreign_key_to_another_schema_names_it():
    fk = ForeignKey("Post_userId_fkey", ("userId",), "auth", "User", ("id",), "RESTRICT", "CASCADE")
    post = Table("public", "Post", (Column("userId", "integer", False),))
    assert ddl.add_foreign_key(post, fk) == (
        'ALTER TABLE "Post" ADD CONSTRAINT "Post_userId_fkey" FOREIGN KEY ("userId") '
        'REFERENCES "auth"."User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;')


@pytest.mark.parametrize("index, sql", [
    (Index("A_x_y_idx", (IndexColumn("x", True, ddl_sort="DESC"), IndexColumn("y", ddl_sort="ASC"))),
     'CREATE INDEX "A_x_y_idx" ON "T"("x" DESC, "y" ASC);'),
    (Index("I_s_key", (IndexColumn("s", True),), unique=True),
     'CREATE UNIQUE INDEX "I_s_key" ON "T"("s" DESC);'),
    (Index("d", (IndexColumn("data", opclass="jsonb_path_ops"),), method="gin"),
     'CREATE INDEX "d" ON "T" USING GIN ("data" jsonb_path_ops);'),
    (Index("d2", (IndexColumn("data", ddl_opclass="jsonb_ops"),), method="gin"),
     'CREATE INDEX "d2" ON "T" USING GIN ("data" jsonb_ops);'),
    (Index("h", (IndexColumn("y"),), method="hash"), 'CREATE INDEX "h" ON "T" USING HASH ("y");'),
    (Index("t", (IndexColumn("t", True, "text_pattern_ops", "DESC"),)),
     'CREATE INDEX "t" ON "T"("t" text_pattern_ops DESC);'),
    (Index("p", (IndexColumn("n"),), where="n > 0"), 'CREATE INDEX "p" ON "T"("n") WHERE (n > 0);'),
    (Index("k", (IndexColumn("kind"),), where="kind = 'admin'::text", ddl_where="\"kind\" = 'admin'"),
     """CREATE INDEX "k" ON "T"("kind") WHERE ("kind" = 'admin');"""),
])
def test_create_index_writes_method_opclass_sort_and_predicate_like_prisma(index, sql):
    assert ddl.create_index(T, index) == sql


def test_extensions_take_their_schema_and_version_as_quoted_identifiers():
    assert ddl.create_extension(Extension("citext")) == 'CREATE EXTENSION IF NOT EXISTS "citext";'
    assert ddl.create_extension(Extension("uuid-ossp", "public")) == \
        'CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA "public";'
    assert ddl.create_extension(Extension("x", "s", "1.0")) == \
        'CREATE EXTENSION IF NOT EXISTS "x" WITH SCHEMA "s" VERSION "1.0";'


def test_a_double_quote_in_a_name_and_a_single_quote_in_a_value_cannot_break_out():
    # Prisma writes these unescaped (invalid SQL); we stay valid and injection-safe.
    enum = Enum("public", 'we"ird', ("it's",))
    assert ddl.create_enum(enum) == """CREATE TYPE "we""ird" AS ENUM ('it''s');"""
    table = Table("public", 'x"; DROP TABLE y; --', (Column('c"', "text", True),))
    assert ddl.create_table(table) == 'CREATE TABLE "x""; DROP TABLE y; --" (\n    "c""" TEXT\n);'
    assert ddl.add_enum_value(enum, "a'b") == """ALTER TYPE "we""ird" ADD VALUE 'a''b';"""


def test_unicode_names_are_quoted_as_they_are():
    t = Table("public", "People Table", (Column("Zürich-Straße", "text", False),))
    assert '"Zürich-Straße" TEXT NOT NULL' in ddl.create_table(t)


def test_the_script_orders_steps_like_prisma_and_sorts_schemas_by_name():
    catalog = Catalog(
        schemas=("zeta", "auth", "public"),
        tables=(
            Table("zeta", "B", (Column("id", "integer", False),), PrimaryKey("B_pkey", ("id",)),
                  foreign_keys=(ForeignKey("B_id_fkey", ("id",), "auth", "A", ("id",), "RESTRICT", "CASCADE"),)),
            Table("auth", "A", (Column("id", "integer", False),), PrimaryKey("A_pkey", ("id",)),
                  indexes=(Index("A_id_key", (IndexColumn("id"),), unique=True),)),
        ),
        enums=(Enum("auth", "E", ("X",)),),
        extensions=(Extension("citext"),),
    )
    script = ddl.render_script(catalog)
    headers = [line for line in script.splitlines() if line.startswith("-- ")]
    assert headers == ["-- CreateSchema", "-- CreateSchema", "-- CreateExtension", "-- CreateEnum",
                       "-- CreateTable", "-- CreateTable", "-- CreateIndex", "-- AddForeignKey"]
    assert script.index('"auth";') < script.index('"zeta";')
    assert 'CREATE SCHEMA IF NOT EXISTS "public"' not in script  # holds nothing
    assert script.endswith("ON UPDATE CASCADE;\n")
    assert "\n\n-- CreateTable\n" in script


def test_an_empty_catalog_is_prismas_empty_migration():
    assert ddl.render_script(Catalog()) == "-- This is an empty migration.\n"


def test_restoring_autoincrement_creates_and_attaches_a_sequence_like_prisma():
    table = Table("public", "ai_usage_logs", (Column("id", "integer", False, None, True),))
    assert ddl.set_default(table, table.columns[0]) == (
        "CREATE SEQUENCE IF NOT EXISTS ai_usage_logs_id_seq;\n"
        """ALTER TABLE "ai_usage_logs" ALTER COLUMN "id" SET DEFAULT nextval('ai_usage_logs_id_seq');\n"""
        'ALTER SEQUENCE ai_usage_logs_id_seq OWNED BY "ai_usage_logs"."id";\n'
        "SELECT setval('ai_usage_logs_id_seq', COALESCE((SELECT MAX(\"id\") FROM \"ai_usage_logs\"), 0) + 1, false);")
