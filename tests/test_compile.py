"""checks.compile produces the catalog Prisma creates, and checks.ddl Prisma's exact script.

The goldens in tests/fixtures/schemas are what Prisma's own schema engine prints for an
empty database (tools/regen_goldens.py), so the central test needs neither Node nor
Prisma. The round trip does: it applies our script to a real, empty PostgreSQL and asks
Prisma's engine (the prisma-oracle tool) whether anything is missing.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from checks import ddl
from checks.catalog import Column, enum_type_ref
from checks.compile import compile_schema, constraint_name, primary_key_name
from checks.errors import SchemaError
from checks.psl.parser import load_schema, parse_text

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "schemas"
INVALID = ROOT / "tests" / "fixtures" / "invalid"
ORACLE_DIR = Path(os.environ.get("PRISMA_ORACLE_DIR", ROOT.parent / "shared" / "tools" / "prisma-oracle"))


def _fixtures(with_golden: bool) -> list[Path]:
    if not FIXTURES.is_dir():
        return []
    found = [p for p in sorted(FIXTURES.iterdir()) if p.suffix == ".prisma" or p.is_dir()]
    if with_golden:
        found = [p for p in found if (FIXTURES / f"{p.stem}.sql").is_file()]
    return found


def _compile(text: str, file: str = "schema.prisma"):
    return compile_schema(parse_text(text, file))


DS = 'datasource db {\n  provider = "postgresql"\n}\n'


# --------------------------------------------------------------------------- the goldens


@pytest.mark.parametrize("fixture", _fixtures(with_golden=True), ids=lambda p: p.name)
def test_every_fixture_renders_exactly_the_sql_prisma_prints_for_it(fixture: Path):
    golden = (FIXTURES / f"{fixture.stem}.sql").read_text(encoding="utf-8")
    assert ddl.render_script(compile_schema(load_schema(fixture))) == golden


# --------------------------------------------------------------------------- the round trip


def _skip_missing_extension(error: Exception) -> None:
    # the pgserver wheel ships no contrib extensions (citext, pg_trgm); the system server does
    pytest.skip(f"this PostgreSQL lacks an extension the schema needs: {str(error).splitlines()[0]}")


def _oracle_unavailable() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (ORACLE_DIR / "oracle.mjs").is_file() or not (ORACLE_DIR / "node_modules").is_dir():
        return f"no prisma-oracle with node_modules at {ORACLE_DIR} (set PRISMA_ORACLE_DIR, run npm install)"
    return None


@pytest.mark.skipif(_oracle_unavailable() is not None, reason=str(_oracle_unavailable()))
@pytest.mark.parametrize("fixture", _fixtures(with_golden=False), ids=lambda p: p.name)
def test_our_script_on_an_empty_database_leaves_prisma_nothing_to_migrate(fixture: Path, make_db):
    import psycopg

    script = ddl.render_script(compile_schema(load_schema(fixture)))
    try:
        url = make_db(script)
    except (psycopg.errors.FeatureNotSupported, psycopg.errors.UndefinedFile) as e:  # pragma: no cover
        _skip_missing_extension(e)
    result = subprocess.run(["node", str(ORACLE_DIR / "oracle.mjs"), "drift", url, str(fixture)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"Prisma would still run:\n{result.stdout}{result.stderr}"


# Partial indexes written with raw("..."): PostgreSQL deparses the condition its own way
# (`code <> ''` comes back as `code <> ''::text`), which the compiler cannot predict.


@pytest.mark.parametrize("fixture", _fixtures(with_golden=False), ids=lambda p: p.name)
def test_the_inspector_reads_back_exactly_the_compiled_catalog(fixture: Path, make_db):
    """Compiler and inspector follow the same canonical forms: no finding on our own script."""
    import psycopg

    from checks.diff import diff
    from checks.inspect.live import inspect_database

    expected = compile_schema(load_schema(fixture))
    try:
        url = make_db(ddl.render_script(expected))
    except (psycopg.errors.FeatureNotSupported, psycopg.errors.UndefinedFile) as e:  # pragma: no cover
        _skip_missing_extension(e)
    findings = diff(expected, inspect_database(url, expected.schemas)).findings
    assert [(f.kind, f.table, f.column or f.name, f.expected, f.actual) for f in findings] == []


# --------------------------------------------------------------------------- semantic errors


def _invalid_fixtures() -> list[Path]:
    if not INVALID.is_dir():
        return []
    return [p for p in sorted(INVALID.glob("*.prisma"))
            if re.search(r"@ \d+:\d+\s*$", p.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0])]


@pytest.mark.parametrize("fixture", _invalid_fixtures(), ids=lambda p: p.name)
def test_an_invalid_schema_is_refused_at_the_line_and_column_prisma_points_to(fixture: Path):
    header = fixture.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
    line, column = map(int, re.search(r"@ (\d+):(\d+)\s*$", header).groups())
    with pytest.raises(SchemaError) as info:
        compile_schema(load_schema(fixture))
    assert (info.value.line, info.value.column) == (line, column)
    assert str(info.value).startswith(f"{info.value.file}:{line}:{column}: ")


@pytest.mark.parametrize("body, where, words", [
    ("model User {\n  id Int @id\n  name Strin\n}\n", (6, 8), ['model "User"', 'field "name"', '"Strin"']),
    ("model Post {\n  id Int @id\n  authorId Int\n  author Author @relation(fields: [authorId], references: [id])\n}\n",
     (7, 10), ['model "Post"', 'field "author"', '"Author"', "does not exist"]),
    ("model A {\n  id Int @id\n  bId Int\n  b B @relation(fields: [bId], references: [id, x])\n}\n"
     "model B {\n  id Int @id\n  x Int\n  as A[]\n}\n",
     (7, 7), ['model "A"', 'field "b"', "1 fields but 2 references"]),
    ("model A {\n  id Int @id\n  bId Int\n  b B @relation(fields: [bId], references: [nope])\n}\n"
     "model B {\n  id Int @id\n  as A[]\n}\n",
     (7, 45), ['model "A"', 'field "b"', '"nope"', 'model "B"']),
    ("model A {\n  id Int @id\n  bId Int\n  b B @relation(fields: [bId, missing], references: [id, id])\n}\n"
     "model B {\n  id Int @id\n  as A[]\n}\n",
     (7, 31), ['model "A"', 'field "b"', '"missing"']),
    ("model A {\n  id Int @id\n  n Int @db.Text\n}\n", (6, 9), ['model "A"', 'field "n"', "@db.Text", "Int"]),
    ("model A {\n  id Int @id\n  n String @db.VarChr(3)\n}\n", (6, 12), ['model "A"', 'field "n"', "@db.VarChr"]),
    ("model A {\n  id Int @id @default(sequence())\n}\n", (5, 23), ['model "A"', 'field "id"', "CockroachDB"]),
    ("model A {\n  id Int @id\n  @@schema(\"auth\")\n}\n", (6, 3), ['model "A"', '"auth"', "schemas"]),
    ("model A {\n  x Int\n}\n", (4, 7), ['model "A"', "unique"]),
])
def test_a_semantic_error_names_file_line_column_model_and_field(body, where, words):
    with pytest.raises(SchemaError) as info:
        _compile(DS + body, "app.prisma")
    e = info.value
    assert (e.file, e.line, e.column) == ("app.prisma", *where)
    for word in words:
        assert word in str(e)


def test_a_schema_outside_the_datasource_list_is_refused_at_its_schema_attribute():
    text = ('datasource db {\n  provider = "postgresql"\n  schemas = ["public", "auth"]\n}\n'
            'model A {\n  id Int @id\n  @@schema("billing")\n}\n')
    with pytest.raises(SchemaError, match=r'app\.prisma:7:3: model "A": @@schema\("billing"\) is not one of'):
        _compile(text, "app.prisma")


def test_a_provider_other_than_postgresql_is_refused_but_postgres_is_accepted():
    with pytest.raises(SchemaError, match=r'x\.prisma:2:14: .*provider "sqlite" is not supported'):
        _compile('datasource db {\n  provider = "sqlite"\n}\nmodel A {\n  id Int @id\n}\n', "x.prisma")
    assert _compile('datasource db {\n  provider = "postgres"\n}\nmodel A {\n  id Int @id\n}\n').tables


def test_a_composite_type_is_refused_on_postgresql():
    with pytest.raises(SchemaError, match=r'5:1: type "Address": composite types'):
        _compile(DS + "\ntype Address {\n  street String\n}\n")


# --------------------------------------------------------------------------- naming rules


def test_prisma_cuts_generated_names_to_63_bytes_keeping_the_suffix():
    table = "VeryLongModelNameThatGoesOnAndOnAndOnForeverAndEver"
    # names and cut points taken from Prisma's own output
    assert constraint_name(table, ["thirdLongColumnNameWithManyCharactersInIt", "fourth"], "_idx") == \
        "VeryLongModelNameThatGoesOnAndOnAndOnForeverAndEver_thirdLo_idx"
    assert constraint_name(table, ["anotherExtremelyLongColumnNameForTestingTruncationRules"], "_key") == \
        "VeryLongModelNameThatGoesOnAndOnAndOnForeverAndEver_another_key"
    assert constraint_name(table, ["thirdLongColumnNameWithManyCharactersInIt"], "_fkey") == \
        "VeryLongModelNameThatGoesOnAndOnAndOnForeverAndEver_thirdL_fkey"
    assert primary_key_name("ManyToManyPartnerWithAnotherVeryLongNameForTestingPurposes") == \
        "ManyToManyPartnerWithAnotherVeryLongNameForTestingPurposes_pkey"
    assert primary_key_name("x" * 80) == "x" * 58 + "_pkey"


def test_a_cut_never_splits_a_multibyte_character():
    name = constraint_name("Ünïcödé", ["ñame_with_ünicode_characters_that_are_multibyte_in_utf8_encodingxx"], "_key")
    assert name == "Ünïcödé_ñame_with_ünicode_characters_that_are_multiby_key"
    assert len(name.encode()) == 63


def test_an_implicit_many_to_many_table_is_cut_to_63_characters_with_its_own_constraint_names():
    text = DS + """
model ManyToManyPartnerWithAnotherVeryLongNameForTestingPurposes {
  id Int @id
  os OtherModelWithAQuiteLongNameAsWell[]
}
model OtherModelWithAQuiteLongNameAsWell {
  id String @id @db.Uuid
  ms ManyToManyPartnerWithAnotherVeryLongNameForTestingPurposes[]
}
"""
    join = _compile(text).tables[-1]
    assert join.name == "_ManyToManyPartnerWithAnotherVeryLongNameForTestingPurposesToOt"
    assert join.primary_key.name == "_ManyToManyPartnerWithAnotherVeryLongNameForTestingPurp_AB_pkey"
    assert join.indexes[0].name == "_ManyToManyPartnerWithAnotherVeryLongNameForTestingPurp_B_index"
    assert [fk.name for fk in join.foreign_keys] == [
        "_ManyToManyPartnerWithAnotherVeryLongNameForTestingPurpo_A_fkey",
        "_ManyToManyPartnerWithAnotherVeryLongNameForTestingPurpo_B_fkey"]
    assert [(c.name, c.type) for c in join.columns] == [("A", "integer"), ("B", "uuid")]
    assert [(fk.on_delete, fk.on_update) for fk in join.foreign_keys] == [("CASCADE", "CASCADE")] * 2


def test_maps_name_tables_columns_enums_and_values_and_generated_names_use_them():
    catalog = _compile(DS + """
enum Role {
  USER
  ADMIN @map("admin")
  @@map("roles")
}
model User {
  id    Int    @id @map("user_id")
  email String @unique @map("e_mail")
  role  Role   @default(ADMIN)
  @@map("users")
}
""")
    (table,) = catalog.tables
    assert (table.name, table.model) == ("users", "User")
    assert [(c.name, c.model_field) for c in table.columns] == [("user_id", "id"), ("e_mail", "email"),
                                                                 ("role", "role")]
    assert table.primary_key.name == "users_pkey"
    assert table.indexes[0].name == "users_e_mail_key"
    (enum,) = catalog.enums
    assert (enum.name, enum.values, enum.prisma_name) == ("roles", ("USER", "admin"), "Role")
    assert table.columns[2].type == enum_type_ref("public", "roles")
    assert table.columns[2].default == "'admin'"


# --------------------------------------------------------------------------- what Prisma creates


def test_client_side_generators_and_updated_at_leave_no_database_default():
    (table,) = _compile(DS + """
model A {
  id  String   @id @default(cuid())
  u   String   @default(uuid(7))
  n   String   @default(nanoid(10))
  l   String   @default(ulid())
  at  DateTime @updatedAt
  now DateTime @default(now())
}
""").tables
    assert [c.default for c in table.columns] == [None] * 5 + ["CURRENT_TIMESTAMP"]


def test_autoincrement_is_a_serial_column_not_a_default():
    (table,) = _compile(DS + """
model A {
  id Int    @id @default(autoincrement())
  b  BigInt @default(autoincrement())
  s  Int    @default(autoincrement()) @db.SmallInt
  @@unique([b, s])
}
""").tables
    assert [(c.type, c.autoincrement, c.default) for c in table.columns] == [
        ("integer", True, None), ("bigint", True, None), ("smallint", True, None)]
    assert [ddl.column_type_sql(c) for c in table.columns] == ["SERIAL", "BIGSERIAL", "SMALLSERIAL"]


def test_defaults_are_canonical_like_the_inspectors_and_rendered_like_prismas():
    (table,) = _compile(DS + """
model A {
  id   Int      @id
  neg  Int      @default(-1)
  f    Float    @default(1.50)
  t    DateTime @default("2021-06-15T12:30:45.123+02:00")
  tz   DateTime @default("2021-06-15T12:30:45.123+02:00") @db.Timestamptz(3)
  j    Json     @default("{\\"b\\":1,\\"a\\":2}")
  tags String[] @default(["a", "it's"])
  none Int[]    @default([])
  db   String   @default(dbgenerated("(lower('ABC'::text))"))
}
""").tables
    got = {c.name: (c.default, ddl.column_default_sql(c)) for c in table.columns}
    assert got["neg"] == ("-1", "-1")
    assert got["f"] == ("1.5", "1.50")
    assert got["t"] == ("'2021-06-15 12:30:45.123'", "'2021-06-15 12:30:45.123 +02:00'")
    assert got["tz"] == ("'2021-06-15 10:30:45.123+00'", "'2021-06-15 12:30:45.123 +02:00'")
    assert got["j"] == ("""'{"a": 2, "b": 1}'""", """'{"b":1,"a":2}'""")
    assert got["tags"] == ("ARRAY['a', 'it''s']::text[]", "ARRAY['a', 'it''s']::TEXT[]")
    assert got["none"] == ("ARRAY[]::integer[]", "ARRAY[]::INTEGER[]")
    assert got["db"] == ("lower('ABC'::text)", "(lower('ABC'::text))")


def test_default_referential_actions_follow_the_referential_arity():
    catalog = _compile(DS + """
model Parent {
  id  Int     @id
  a   Int
  b   Int
  req Child[] @relation("req")
  opt Child[] @relation("opt")
  mix Child[] @relation("mix")
  set Child[] @relation("set")
  @@unique([a, b])
}
model Child {
  id    Int     @id
  r     Int
  o     Int?
  m1    Int
  m2    Int?
  req   Parent  @relation("req", fields: [r], references: [id])
  opt   Parent? @relation("opt", fields: [o], references: [id])
  mix   Parent? @relation("mix", fields: [m1, m2], references: [a, b])
  set   Parent? @relation("set", fields: [o], references: [id], onDelete: Cascade, onUpdate: NoAction, map: "custom")
}
""")
    fks = {fk.name: (fk.on_delete, fk.on_update) for fk in catalog.tables[1].foreign_keys}
    assert fks == {"Child_r_fkey": ("RESTRICT", "CASCADE"), "Child_o_fkey": ("SET NULL", "CASCADE"),
                   "Child_m1_m2_fkey": ("RESTRICT", "CASCADE"), "custom": ("CASCADE", "NO ACTION")}


def test_relation_mode_prisma_creates_no_foreign_keys_even_for_join_tables():
    catalog = _compile('datasource db {\n  provider = "postgresql"\n  relationMode = "prisma"\n}\n' + """
model A {
  id Int @id
  bs B[]
  cs C[]
}
model B {
  id  Int @id
  aId Int
  a   A   @relation(fields: [aId], references: [id])
}
model C {
  id Int @id
  as A[]
}
""")
    assert [t.name for t in catalog.tables] == ["A", "B", "C", "_AToC"]
    assert all(t.foreign_keys == () for t in catalog.tables)


def test_ignored_models_and_fields_still_get_their_tables_and_columns_but_views_do_not():
    catalog = _compile('datasource db {\n  provider = "postgresql"\n}\n'
                       'generator c {\n  provider = "prisma-client-js"\n  previewFeatures = ["views"]\n}\n' + """
model User {
  id     Int    @id
  legacy String @ignore
}
model RawLog {
  line String
  @@ignore
}
view UserInfo {
  id Int @unique
}
""")
    assert [t.name for t in catalog.tables] == ["User", "RawLog"]
    assert [c.name for c in catalog.tables[0].columns] == ["id", "legacy"]
    assert catalog.tables[1].primary_key is None


def test_multischema_places_tables_and_enums_and_keeps_the_datasource_schema_list():
    catalog = _compile('datasource db {\n  provider = "postgresql"\n  schemas = ["public", "auth"]\n}\n' + """
enum Role {
  A
  @@schema("auth")
}
model User {
  id    Int    @id
  roles Role[]
  posts Post[]
  @@schema("auth")
}
model Post {
  id     Int  @id
  userId Int
  user   User @relation(fields: [userId], references: [id])
  @@schema("public")
}
""")
    assert catalog.schemas == ("public", "auth")
    assert [(t.schema, t.name) for t in catalog.tables] == [("auth", "User"), ("public", "Post")]
    assert catalog.tables[0].columns[1].type == '"auth"."Role"[]'
    assert catalog.tables[1].foreign_keys[0].referenced_schema == "auth"
    script = ddl.render_script(catalog)
    assert 'CREATE TABLE "auth"."User"' in script and 'REFERENCES "auth"."User"("id")' in script


def test_a_schema_without_schemas_list_is_in_public():
    assert _compile(DS + "model A {\n  id Int @id\n}\n").schemas == ("public",)


def test_declaration_order_of_models_and_fields_is_kept():
    catalog = _compile(DS + "model Z {\n  z Int @id\n  a Int\n}\nmodel A {\n  m Int @id\n  b Int\n}\n")
    assert [(t.name, [c.name for c in t.columns]) for t in catalog.tables] == [("Z", ["z", "a"]), ("A", ["m", "b"])]


def test_index_columns_keep_descending_order_and_only_non_default_opclasses():
    (table,) = _compile(DS + """
model A {
  id   Int  @id
  data Json
  t    String
  @@index([data(ops: JsonbPathOps)], type: Gin)
  @@index([data(ops: JsonbOps)], type: Gin, map: "d2")
  @@index([t(sort: Desc, ops: raw("text_pattern_ops"))])
  @@index([t(sort: Asc)], map: "asc")
}
""").tables
    cols = {i.name: i.columns[0] for i in table.indexes}
    assert (cols["A_data_idx"].opclass, cols["d2"].opclass) == ("jsonb_path_ops", None)
    assert (cols["A_t_idx"].descending, cols["A_t_idx"].opclass) == (True, "text_pattern_ops")
    assert cols["asc"] == type(cols["asc"])("t")  # ASC is the default: nothing to compare
    assert [i.method for i in table.indexes] == ["gin", "gin", "btree", "btree"]


def test_unsupported_types_keep_prismas_spelling_and_dbgenerated_its_text():
    (table,) = _compile(DS + """
model A {
  id Int                     @id
  p  Unsupported("point")    @default(dbgenerated("'(0,0)'::point"))
  b  Unsupported("box")?     @default(dbgenerated())
  r  Unsupported("int4")?
}
""").tables
    p, b, r = table.columns[1:]
    assert (p.type, p.default, ddl.column_sql(p)) == ("point", "'(0,0)'", """"p" point NOT NULL DEFAULT '(0,0)'::point""")
    assert (b.default, ddl.column_sql(b)) == (None, '"b" box')
    assert (r.type, ddl.column_sql(r)) == ("integer", '"r" int4')


def test_the_catalog_canonical_type_of_every_native_type():
    (table,) = _compile(DS + """
model A {
  id  Int      @id
  a   String   @db.Char
  b   String   @db.VarChar(3)
  c   String   @db.Bit
  d   DateTime @db.Timestamptz(6)
  e   DateTime @db.Time
  f   Decimal  @db.Decimal(10, 2)
  g   String   @db.Citext
  h   Float    @db.Real
  i   Int      @db.Oid
  j   DateTime
  k   Decimal
}
""").tables
    assert [c.type for c in table.columns[1:]] == [
        "character(1)", "character varying(3)", "bit(1)", "timestamp(6) with time zone",
        "time without time zone", "numeric(10,2)", '"public"."citext"', "real", "oid",
        "timestamp(3) without time zone", "numeric(65,30)"]
    assert [ddl.column_type_sql(c) for c in table.columns[1:4]] == ["CHAR", "VARCHAR(3)", "BIT"]


def test_a_column_type_written_by_prisma_round_trips_through_the_mapping():
    for canonical in ("text", "integer", "character varying(5)", "numeric(65,30)", "jsonb",
                      "timestamp(3) without time zone", '"public"."Role"', "uuid[]"):
        col = Column("c", canonical, True)
        assert ddl.column_type_sql(col) == ddl.prisma_type(canonical)


def test_names_longer_than_63_bytes_are_held_as_postgresql_stores_them():
    long_column = "ñame_with_ünicode_characters_that_are_multibyte_in_utf8_encodingxx"
    (table,) = _compile(DS + f"model Ünïcödé {{\n  id Int @id\n  {long_column} Int @unique\n}}\n").tables
    column = table.columns[1]
    assert column.name == "ñame_with_ünicode_characters_that_are_multibyte_in_utf8_encod"
    assert len(column.name.encode()) <= 63 and long_column.startswith(column.name)
    assert table.indexes[0].columns[0].name == column.name
    # the generated index name is Prisma's, computed from the full column name
    assert table.indexes[0].name == "Ünïcödé_ñame_with_ünicode_characters_that_are_multiby_key"


def test_a_nanosecond_default_is_canonical_at_microseconds_as_postgresql_rounds_it():
    (table,) = _compile(DS + 'model A {\n  id Int @id\n'
                        '  t DateTime @default("2020-01-01T23:59:59.9999996Z") @db.Timestamp(6)\n}\n').tables
    t = table.columns[1]
    assert t.default == "'2020-01-02 00:00:00'"
    assert ddl.column_default_sql(t) == "'2020-01-01 23:59:59.999999600 +00:00'"
