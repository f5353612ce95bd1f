"""The PSL parser: what it reads from a Prisma schema, and how it reports what it cannot."""
from __future__ import annotations

import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from checks.errors import SchemaError
from checks.psl.ast import Array, Call, Ident, Number, Pos, Str
from checks.psl.parser import load_schema, parse_bytes, parse_files, parse_text

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "avatar-studio" / "prisma" / "schema.prisma"
FIXTURES = REPO / "tests" / "fixtures" / "schemas"

DATASOURCE = 'datasource db {\n  provider = "postgresql"\n}\n'


def parse(source: str, file: str = "schema.prisma"):
    return parse_text(textwrap.dedent(source), file)


def error_of(source: str, file: str = "schema.prisma") -> SchemaError:
    with pytest.raises(SchemaError) as info:
        parse_text(textwrap.dedent(source), file)
    return info.value


def model(source: str):
    """The first model of a schema made of a datasource and `source`."""
    return parse(DATASOURCE + textwrap.dedent(source)).models[0]


def field_attr(source_line: str):
    """The attributes of a single field line, e.g. `id Int @id @default(1)`."""
    return model(f"model M {{\n  {source_line}\n}}\n").fields[0].attributes


def default_value(expression: str):
    (attribute,) = field_attr(f"f String @default({expression})")
    return attribute.args[0].value


# ----------------------------------------------------------------- the example project


def test_it_parses_the_avatar_studio_example_schema():
    schema = load_schema(EXAMPLE)
    assert [m.name for m in schema.models] == [
        "User", "Session", "AvatarProject", "Avatar", "PoseDataset", "AIUsageLog",
    ]
    assert [e.name for e in schema.enums] == ["Role", "GenerationStatus"]
    assert [v.name for v in schema.enums[1].values] == ["PENDING", "PROCESSING", "COMPLETED", "FAILED"]
    assert schema.datasources[0].property("provider").value.value == "postgresql"
    assert schema.generators[0].name == "client"
    assert schema.files == (str(EXAMPLE),)


def test_it_keeps_the_exact_position_of_example_nodes():
    schema = load_schema(EXAMPLE)
    user = schema.models[0]
    assert user.pos == Pos(str(EXAMPLE), 23, 1)
    email = user.fields[1]
    assert (email.name, email.pos.line, email.pos.column) == ("email", 25, 3)
    assert (email.type.pos.line, email.type.pos.column) == (25, 13)
    assert (email.attributes[0].pos.line, email.attributes[0].pos.column) == (25, 22)
    log = schema.models[-1]
    cost = log.fields[6]
    assert cost.name == "costUsd"
    assert [(a.name, [x.value.text for x in a.args]) for a in cost.attributes] == [
        ("default", ["0"]), ("db.Decimal", ["10", "4"]),
    ]
    assert cost.attributes[1].args[1].value.pos == Pos(str(EXAMPLE), 112, 50)


def test_it_reads_an_index_with_a_sorted_field_reference_as_a_call():
    avatar = load_schema(EXAMPLE).models[3]
    index = avatar.attributes[2]
    assert index.name == "index" and index.block
    columns = index.args[0].value
    assert isinstance(columns, Array)
    assert isinstance(columns.items[0], Ident) and columns.items[0].name == "userId"
    created = columns.items[1]
    assert isinstance(created, Call) and created.name == "createdAt"
    assert created.args[0].name == "sort" and created.args[0].value.name == "Desc"


# ----------------------------------------------------------------- config blocks


def test_it_reads_every_kind_of_datasource_and_generator_property():
    schema = parse(
        """
        datasource db {
          provider          = "postgres"
          url               = env("DATABASE_URL")
          directUrl         = env("DIRECT_URL")
          shadowDatabaseUrl = env("SHADOW_DATABASE_URL")
          relationMode      = "prisma"
          extensions        = [pg_trgm, postgis(version: "2.1"), uuidOssp(map: "uuid-ossp", schema: "extensions")]
          schemas           = ["public", "auth"]
        }

        generator client {
          provider        = "prisma-client-js"
          previewFeatures = ["multiSchema", "views"]
          binaryTargets   = ["native", "debian-openssl-3.0.x"]
          output          = "../generated/client"
          engineType      = library
          retries         = 3
        }
        """
    )
    db = schema.datasources[0]
    assert (db.kind, db.name) == ("datasource", "db")
    assert db.property("provider").value.value == "postgres"
    url = db.property("url").value
    assert isinstance(url, Call) and url.name == "env" and url.args[0].value.value == "DATABASE_URL"
    assert db.property("directUrl").value.args[0].value.value == "DIRECT_URL"
    assert db.property("shadowDatabaseUrl").value.name == "env"
    assert db.property("relationMode").value.value == "prisma"
    trgm, postgis, ossp = db.property("extensions").value.items
    assert isinstance(trgm, Ident) and trgm.name == "pg_trgm"
    assert postgis.name == "postgis" and postgis.args[0].name == "version"
    assert postgis.args[0].value.value == "2.1"
    assert [(a.name, a.value.value) for a in ossp.args] == [("map", "uuid-ossp"), ("schema", "extensions")]
    assert [s.value for s in db.property("schemas").value.items] == ["public", "auth"]
    client = schema.generators[0]
    assert [f.value for f in client.property("previewFeatures").value.items] == ["multiSchema", "views"]
    assert client.property("binaryTargets").value.items[1].value == "debian-openssl-3.0.x"
    assert client.property("output").value.value == "../generated/client"
    assert client.property("engineType").value == Ident("library", client.property("engineType").value.pos)
    assert client.property("retries").value.text == "3"
    assert client.property("missing") is None


def test_it_allows_a_multi_line_array_with_a_trailing_comma_in_a_property():
    schema = parse(
        """
        datasource db {
          provider   = "postgresql"
          extensions = [
            pg_trgm,   // trigram search
            citext,
          ]
        }
        """
    )
    assert [e.name for e in schema.datasources[0].property("extensions").value.items] == ["pg_trgm", "citext"]


# ----------------------------------------------------------------- models, views, types, enums


def test_it_tells_models_views_and_composite_types_apart_by_kind():
    schema = parse(
        DATASOURCE
        + """
model User {
  id Int @id
}

view UserInfo {
  id    Int    @unique
  email String
}

type Address {
  street String
  zip    String?
}
"""
    )
    assert [(m.kind, m.name) for m in schema.models] == [
        ("model", "User"), ("view", "UserInfo"), ("type", "Address"),
    ]
    assert schema.models[2].fields[1].type.optional


def test_it_accepts_block_keywords_as_field_names():
    m = model(
        """
        model Car {
          model String
          type  String
          view  Int
          enum  Boolean
        }
        """
    )
    assert [(f.name, f.type.name) for f in m.fields] == [
        ("model", "String"), ("type", "String"), ("view", "Int"), ("enum", "Boolean"),
    ]


def test_it_reads_enum_values_with_map_comments_and_block_attributes():
    schema = parse(
        DATASOURCE
        + """
enum Status {
  ACTIVE              // still in use
  ARCHIVED @map("archived") // mapped
  /// Waiting for review.
  PENDING_REVIEW @map("pending-review")

  @@map("status")
  @@schema("auth")
}
"""
    )
    status = schema.enums[0]
    assert [v.name for v in status.values] == ["ACTIVE", "ARCHIVED", "PENDING_REVIEW"]
    assert status.values[1].attributes[0].name == "map"
    assert status.values[1].attributes[0].args[0].value.value == "archived"
    assert status.values[2].doc == "Waiting for review."
    assert [(a.name, a.block, a.args[0].value.value) for a in status.attributes] == [
        ("map", True, "status"), ("schema", True, "auth"),
    ]
    assert status.pos.line == 5 and status.values[0].pos.column == 3


# ----------------------------------------------------------------- comments and docs


def test_it_collects_doc_comments_for_models_enums_fields_and_enum_values():
    schema = parse(
        DATASOURCE
        + """
/// A person who signs in.
///   Indented second line.
model User {
  /// Primary key.
  id    Int    @id
  // a plain comment is not documentation
  email String
  ///no space after the slashes
  name  String /// and a trailing doc on the same line
}

/// Who may do what.
enum Role {
  /// Everyone.
  USER
}
"""
    )
    user = schema.models[0]
    assert user.doc == "A person who signs in.\n  Indented second line."
    assert [f.doc for f in user.fields] == [
        "Primary key.", None, "no space after the slashes\nand a trailing doc on the same line",
    ]
    assert schema.enums[0].doc == "Who may do what."
    assert schema.enums[0].values[0].doc == "Everyone."


def test_it_does_not_give_a_doc_comment_to_a_declaration_after_a_block_attribute():
    m = model(
        """
        model M {
          id Int @id
          /// belongs to nothing: a block attribute follows
          @@map("m")
          name String
        }
        """
    )
    assert [f.doc for f in m.fields] == [None, None]


def test_it_accepts_comments_anywhere():
    schema = parse(
        """
        // file header
        datasource db { // after the brace
          provider = "postgresql" // after a property
          // inside a block
        }
        // between blocks
        model M { // after the brace
          id Int @id // after a field
          tags String[] @default([ // inside brackets
            "a", // an item
          ])
          // before a block attribute
          @@map("m") // after a block attribute
        } // after the closing brace
        // at the end, without a newline"""
    )
    m = schema.models[0]
    assert [f.name for f in m.fields] == ["id", "tags"]
    assert m.fields[1].attributes[0].args[0].value.items[0].value == "a"
    assert m.attributes[0].name == "map"


def test_it_accepts_block_comments_where_prisma_does():
    # Each place checked with Prisma's own engine (tests/fixtures/schemas/42_block_comments).
    schema = parse(
        """
        /* header
           over two lines */
        datasource db {
          provider = "postgresql" /* after a property */
        }
        /**
         * doc-style, above a model
         */
        model M { /* after the brace */
          id Int @id /* after a field */
          /* own line */
          /* before */ /* twice */ name String /** doc-style, trailing */
          /*
             several lines
          */
          tags String[] /* trailing,
                           over two lines */
          @@map("m") /* after a block attribute */
        } /* after the closing brace */
        /* at the end, without a newline */"""
    )
    m = schema.models[0]
    assert [(f.name, f.pos.line) for f in m.fields] == [("id", 11), ("name", 13), ("tags", 17)]
    assert [f.doc for f in m.fields] == [None, None, None]  # only /// documents
    assert m.attributes[0].name == "map" and m.attributes[0].pos.line == 19


@pytest.mark.parametrize("line, column", [
    ("id Int @id /* a */ /* b */", 14),  # two trailing comments
    ("id /* x */ Int @id", 6),  # between name and type
    ("id Int @id /* x */ @default(1)", 14),  # between attributes
    ("id Int @id @default(/* x */ 1)", 23),  # inside brackets
    ("id Int @id /* x */ // y", 14),  # a line comment after it
    ("id Int @id /* a /* nested */ b */", 14),  # block comments do not nest
])
def test_it_refuses_a_block_comment_where_prisma_does(line, column):
    err = error_of(DATASOURCE + f"model A {{\n  {line}\n}}\n")
    assert (err.line, err.column) == (5, column)
    assert err.message.startswith("a block comment cannot stand here")
    assert_readable(err)


def test_it_reports_an_unterminated_block_comment_at_its_start():
    err = error_of(DATASOURCE + "model A {\n  id Int @id\n  /* never closed\n}\n")
    assert (err.line, err.column) == (6, 3)
    assert err.message == 'unterminated block comment — expected "*/" to close this "/*"'


def test_a_block_comment_spanning_lines_keeps_later_positions_right():
    err = error_of(DATASOURCE + "/* one\ntwo\nthree */ model A {\n  id Int @id\n  x Strin g\n}\n")
    assert (err.line, err.column) == (8, 11)


# ----------------------------------------------------------------- field types


@pytest.mark.parametrize(
    "written, name, optional, is_list, unsupported",
    [
        ("String", "String", False, False, None),
        ("String?", "String", True, False, None),
        ("Int[]", "Int", False, True, None),
        ('Unsupported("circle")', "Unsupported", False, False, "circle"),
        ('Unsupported("geometry(Point, 4326)")?', "Unsupported", True, False, "geometry(Point, 4326)"),
        ('Unsupported("tsvector")[]', "Unsupported", False, True, "tsvector"),
        ("Post[]", "Post", False, True, None),
    ],
)
def test_it_reads_field_types_with_their_modifiers(written, name, optional, is_list, unsupported):
    ftype = model(f"model M {{\n  f {written}\n}}\n").fields[0].type
    assert (ftype.name, ftype.optional, ftype.list, ftype.unsupported) == (name, optional, is_list, unsupported)


def test_it_refuses_an_argument_on_a_type_other_than_unsupported():
    err = error_of(DATASOURCE + 'model M {\n  f Circle("x")\n}\n')
    assert (err.line, err.column) == (5, 11)
    assert "only Unsupported" in err.message


# ----------------------------------------------------------------- attributes


def test_it_reads_every_common_field_attribute():
    m = model(
        """
        model Post {
          id        String   @id @default(uuid(7)) @db.Uuid
          slug      String   @unique(map: "post_slug_key") @db.VarChar(255)
          body      String   @db.Text
          price     Decimal  @db.Decimal(10, 4)
          createdAt DateTime @default(now()) @db.Timestamptz(6)
          updatedAt DateTime @updatedAt
          legacy    String?  @ignore @map("legacy_col")
          authorId  Int
          author    User     @relation("Posts", fields: [authorId], references: [id], onDelete: Cascade, onUpdate: NoAction)
        }
        """
    )
    got = [[(a.name, len(a.args)) for a in f.attributes] for f in m.fields]
    assert got == [
        [("id", 0), ("default", 1), ("db.Uuid", 0)],
        [("unique", 1), ("db.VarChar", 1)],
        [("db.Text", 0)],
        [("db.Decimal", 2)],
        [("default", 1), ("db.Timestamptz", 1)],
        [("updatedAt", 0)],
        [("ignore", 0), ("map", 1)],
        [],
        [("relation", 5)],
    ]
    relation = m.fields[-1].attribute("relation")
    assert relation.arg("name", 0).value.value == "Posts"
    assert [i.name for i in relation.arg("fields").value.items] == ["authorId"]
    assert relation.arg("onDelete").value.name == "Cascade"
    assert not relation.block
    assert m.fields[0].attribute("default").args[0].value.args[0].value.text == "7"


def test_it_reads_every_common_block_attribute():
    m = model(
        """
        model Post {
          a     Int
          b     Int
          title String

          @@id([a, b])
          @@unique([a, b], name: "ab", map: "post_ab_key")
          @@index([a(sort: Desc), title(ops: raw("gin_trgm_ops"))], type: Gin, map: "idx")
          @@index([title(length: 10)])
          @@fulltext([title])
          @@map("posts")
          @@schema("public")
          @@ignore
        }
        """
    )
    assert [a.name for a in m.attributes] == [
        "id", "unique", "index", "index", "fulltext", "map", "schema", "ignore",
    ]
    assert all(a.block for a in m.attributes)
    unique = m.attribute("unique")
    assert unique.arg("name").value.value == "ab" and unique.arg("map").value.value == "post_ab_key"
    gin = m.attributes[2]
    a_desc, title_ops = gin.args[0].value.items
    assert (a_desc.name, a_desc.args[0].name, a_desc.args[0].value.name) == ("a", "sort", "Desc")
    ops = title_ops.args[0].value
    assert (title_ops.args[0].name, ops.name, ops.args[0].value.value) == ("ops", "raw", "gin_trgm_ops")
    assert gin.arg("type").value.name == "Gin" and gin.arg("map").value.value == "idx"
    assert m.attributes[3].args[0].value.items[0].args[0].value.text == "10"
    assert m.attribute("ignore").args == ()


def test_it_lets_attribute_arguments_span_lines_inside_parentheses():
    m = model(
        """
        model M {
          userId Int
          user   User @relation(
            fields: [userId],
            references: [id],
          )
          @@index(
            [userId],
            map: "m_user_idx"
          )
        }
        """
    )
    assert len(m.fields[1].attributes[0].args) == 2
    assert m.attributes[0].arg("map").value.value == "m_user_idx"


def test_it_reads_a_partial_index_object_literal_as_a_call_named_braces():
    m = model(
        """
        model M {
          email String
          @@unique([email], where: { active: true, kind: { not: "user" }, deletedAt: null })
          @@index([email], where: raw("deleted_at IS NULL"))
        }
        """
    )
    where = m.attributes[0].arg("where").value
    assert isinstance(where, Call) and where.name == "{}"
    assert [a.name for a in where.args] == ["active", "kind", "deletedAt"]
    assert where.args[1].value.name == "{}" and where.args[1].value.args[0].value.value == "user"
    assert where.args[2].value.name == "null"
    assert m.attributes[1].arg("where").value.name == "raw"


# ----------------------------------------------------------------- values


@pytest.mark.parametrize(
    "written, expected",
    [
        (r'"plain"', "plain"),
        (r'"say \"hi\""', 'say "hi"'),
        (r'"C:\\temp"', "C:\\temp"),
        (r'"two\nlines\ttab"', "two\nlines\ttab"),
        (r'"caf\u00e9"', "café"),
        (r'"\ud83d\ude00"', "😀"),
        ('"déjà vu ✓"', "déjà vu ✓"),
        (r'""', ""),
        (r'"it\'s \/ ok"', "it's / ok"),
    ],
)
def test_it_unescapes_strings(written, expected):
    value = default_value(written)
    assert isinstance(value, Str) and value.value == expected


@pytest.mark.parametrize("written", ["0", "42", "-1", "0.5", "-12.75"])
def test_it_keeps_numbers_as_written(written):
    value = default_value(written)
    assert isinstance(value, Number) and value.text == written


@pytest.mark.parametrize("written", ["true", "false", "Cascade", "Desc", "ADMIN"])
def test_it_reads_bare_words_as_identifiers(written):
    value = default_value(written)
    assert isinstance(value, Ident) and value.name == written


@pytest.mark.parametrize(
    "written, name, args",
    [
        ("now()", "now", []),
        ("cuid()", "cuid", []),
        ("cuid(2)", "cuid", [(None, "2")]),
        ("uuid(7)", "uuid", [(None, "7")]),
        ("autoincrement()", "autoincrement", []),
        ('dbgenerated("gen_random_uuid()")', "dbgenerated", [(None, "gen_random_uuid()")]),
        ("sequence(maxValue: 10)", "sequence", [("maxValue", "10")]),
        ("nanoid(10)", "nanoid", [(None, "10")]),
        ("ulid()", "ulid", []),
        ('env("X")', "env", [(None, "X")]),
        ("sequence(start: 5, increment: -1, cache: 20,)", "sequence", [("start", "5"), ("increment", "-1"), ("cache", "20")]),
    ],
)
def test_it_reads_function_calls_with_positional_and_named_arguments(written, name, args):
    value = default_value(written)
    assert isinstance(value, Call) and value.name == name
    got = [(a.name, getattr(a.value, "text", None) or getattr(a.value, "value", None)) for a in value.args]
    assert got == args


def test_it_reads_empty_and_nested_arrays():
    assert default_value("[]").items == ()
    nested = default_value('[[1, 2], ["a"], []]')
    assert [len(i.items) for i in nested.items] == [2, 1, 0]
    assert nested.pos.column == 21 and nested.items[1].pos.column == 30


def test_it_reads_a_dotted_path_as_one_identifier():
    assert default_value("Role.ADMIN").name == "Role.ADMIN"


# ----------------------------------------------------------------- whitespace


def test_it_accepts_crlf_tabs_blank_lines_and_a_byte_order_mark():
    text = "\ufeff" + DATASOURCE + "\r\n\r\nmodel\tM {\r\n\tid\tInt\t@id\r\n\r\n\r\n\tname String?\r\n}\r\n"
    schema = parse_text(text, "crlf.prisma")
    m = schema.models[0]
    assert [f.name for f in m.fields] == ["id", "name"]
    assert m.pos == Pos("crlf.prisma", 6, 1)
    assert m.fields[0].pos == Pos("crlf.prisma", 7, 2)
    assert m.fields[1].pos.line == 10


def test_it_counts_the_first_column_after_a_byte_order_mark_as_one():
    schema = parse_bytes(b"\xef\xbb\xbf" + DATASOURCE.encode(), "bom.prisma")
    assert schema.datasources[0].pos == Pos("bom.prisma", 1, 1)


def test_it_accepts_a_file_without_a_final_newline_and_a_one_line_block():
    schema = parse_text(DATASOURCE + "model M { id Int @id }", "x.prisma")
    assert schema.models[0].fields[0].attributes[0].name == "id"


# ----------------------------------------------------------------- syntax errors


RAW_LARK_NAMES = re.compile(r"__ANON|\b_?(RBRACE|LBRACE|LSQB|RSQB|LPAR|RPAR|NAME|STRING|COMMA|COLON|_NL|FIELD_ATTR|BLOCK_ATTR|MODEL_KW|OBJ_OPEN)\b|\$END")


def assert_readable(err: SchemaError) -> None:
    text = str(err)
    assert "\n" not in text
    assert not RAW_LARK_NAMES.search(text), text


def test_it_reports_line_and_column_of_a_stray_closing_brace():
    err = error_of(DATASOURCE + "model User {\n  id Int @id\n  }\n}\n")
    assert (err.file, err.line, err.column) == ("schema.prisma", 7, 1)
    assert 'unexpected "}"' in err.message and "expected a block (model" in err.message
    assert_readable(err)


def test_it_reports_line_and_column_of_a_missing_brace():
    err = error_of(DATASOURCE + "model A {\n  id Int @id\n\nmodel B {\n  id Int @id\n}\n")
    assert (err.line, err.column) == (7, 9)
    assert 'unexpected "{"' in err.message
    assert "`model A` (opened at 4:1) missing" in err.message
    assert_readable(err)


def test_it_says_what_a_model_body_expects_when_it_finds_something_else():
    err = error_of(DATASOURCE + "model A {\n  id Int @id\n  = 3\n}\n")
    assert str(err) == (
        'schema.prisma:6:3: unexpected "=" — expected a field name, a block attribute (@@...) or "}"'
    )


def test_it_reports_a_field_without_a_type():
    err = error_of(DATASOURCE + "model A {\n  id\n}\n")
    assert str(err) == "schema.prisma:5:5: unexpected end of line — expected a field type"


def test_it_refuses_an_attribute_on_the_line_after_its_field():
    err = error_of(DATASOURCE + "model A {\n  id Int\n    @id\n}\n")
    assert (err.line, err.column) == (6, 5)
    assert "attributes must be on the same line as their field" in err.message
    assert_readable(err)


def test_it_refuses_two_fields_on_one_line():
    err = error_of(DATASOURCE + "model A {\n  id Int name String\n}\n")
    assert (err.line, err.column) == (5, 10)
    assert 'unexpected "name" — expected "?", "[]", an attribute (@...), end of line or "}"' in err.message


def test_it_reports_an_unknown_block_keyword():
    err = error_of(DATASOURCE + "modle User {\n}\n")
    assert (err.line, err.column) == (4, 1)
    assert err.message.startswith('unexpected "modle" — expected a block (model, view, type, enum, datasource or generator)')


def test_it_reports_a_property_without_an_equals_sign():
    err = error_of('datasource db {\n  provider "postgresql"\n}\n')
    assert str(err) == 'schema.prisma:2:12: unexpected string "postgresql" — expected "="'


def test_it_reports_an_unclosed_parenthesis_where_the_next_line_breaks():
    err = error_of(DATASOURCE + "model A {\n  id Int @default(now(\n  name String\n}\n")
    assert (err.line, err.column) == (6, 8)
    assert 'the "(" opened at 5:18 is not closed' in err.message
    assert_readable(err)


def test_it_reports_an_unterminated_string():
    err = error_of(DATASOURCE + 'model A {\n  id String @default("abc)\n}\n')
    assert (err.line, err.column) == (5, 22)
    assert err.message.startswith("unterminated string")


def test_it_reports_a_block_that_is_never_closed():
    err = error_of(DATASOURCE + "model User {\n  id Int @id\n")
    assert err.message == (
        'unexpected end of file — block `model User` opened at 4:1 is never closed (expected "}")'
    )
    assert (err.line, err.column) == (6, 1)


def test_it_reports_a_bracket_that_is_never_closed():
    err = error_of(DATASOURCE + "model User {\n  @@index([a,\n")
    assert err.message == 'unexpected end of file — "(" opened at 5:10 is never closed (expected ")")'


def test_it_reports_an_unexpected_character_and_what_would_fit():
    err = error_of(DATASOURCE + "model A {\n  id Int # note\n}\n")
    assert (err.line, err.column) == (5, 10)
    assert err.message.startswith('unexpected character "#" — expected')
    assert_readable(err)


def test_it_reports_a_lone_at_sign_and_a_lone_slash():
    assert "attribute name" in error_of(DATASOURCE + "model A {\n  id Int @ id\n}\n").message
    assert "comments start with //" in error_of(DATASOURCE + "model A {\n  id Int / x\n}\n").message


def test_it_reports_an_unknown_escape_at_the_backslash():
    err = error_of(DATASOURCE + 'model A {\n  p String @default("C:\\temp\\x")\n}\n')
    assert (err.line, err.column) == (5, 29)
    assert 'unknown escape sequence "\\x"' in err.message


def test_it_reports_an_unpaired_surrogate_escape():
    err = error_of(DATASOURCE + 'model A {\n  p String @default("\\ud800")\n}\n')
    assert "invalid unicode escape" in err.message


@pytest.mark.parametrize(
    "source",
    [
        "model",
        "model A",
        "model A {",
        "model A {\n  id",
        "model A {\n  id Int @default(",
        "model A {\n  @@index([a, b)\n}",
        "model A {\n  id Int @default(1 2)\n}",
        "enum E {\n  A B\n}",
        "datasource db {\n  url = \n}",
        "datasource db {\n  provider = \"x\" output = \"y\"\n}",
        "model A {\n  id Int?[]\n}",
        "{\n}",
        "model A {\n  @@unique([a], where: { 1: 2 })\n}",
    ],
)
def test_it_never_leaks_lark_terminal_names_in_syntax_errors(source):
    err = error_of(source)
    assert err.file == "schema.prisma" and err.line and err.column
    assert " — " in err.message and "expected" in err.message
    assert_readable(err)


# ----------------------------------------------------------------- whole-schema errors


def test_it_refuses_an_empty_file():
    err = error_of("")
    assert str(err) == (
        "schema.prisma: the file contains no datasource and no model — expected at least a "
        "`datasource` block or a `model` block"
    )


def test_it_refuses_a_file_with_only_comments():
    assert "contains no datasource and no model" in error_of("// nothing\n/// here\n").message


def test_it_accepts_a_file_with_a_datasource_and_no_model():
    assert parse(DATASOURCE).models == ()


def test_it_accepts_a_file_with_a_model_and_no_datasource():
    assert parse("model A {\n  id Int @id\n}\n").datasources == ()


def test_it_names_both_positions_of_a_duplicate_model():
    err = error_of(DATASOURCE + "model User {\n  id Int @id\n}\n\nmodel User {\n  id Int @id\n}\n")
    assert (err.line, err.column) == (8, 1)
    assert err.message == "model `User` is defined twice: first at schema.prisma:4:1, again here"


def test_it_refuses_an_enum_and_a_model_with_the_same_name():
    err = error_of("enum Role {\n  A\n}\nmodel Role {\n  id Int @id\n}\n")
    assert (err.line, err.column) == (4, 1)
    assert "same name as enum `Role` at schema.prisma:1:1" in err.message


def test_it_names_both_files_of_a_duplicate_across_files():
    with pytest.raises(SchemaError) as info:
        parse_files([
            ("b.prisma", "model User {\n  id Int @id\n}\n"),
            ("a.prisma", DATASOURCE + "model User {\n  id Int @id\n}\n"),
        ])
    err = info.value
    assert (err.file, err.line) == ("b.prisma", 1)
    assert "first at a.prisma:4:1" in err.message


@pytest.mark.parametrize(
    "data, line, column, what",
    [
        (DATASOURCE.encode() + b"model A {\n  id Int\x00\n}\n", 5, 9, "NUL"),
        (DATASOURCE.encode() + b"model A {\n  na\xc3\xafve \xff\n}\n", 5, 9, "0xFF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, 1, "0x89"),
        ("model A {}".encode("utf-16"), 1, 1, "UTF-16"),
    ],
)
def test_it_reports_binary_garbage_as_not_a_text_schema(tmp_path, data, line, column, what):
    path = tmp_path / "bin.prisma"
    path.write_bytes(data)
    with pytest.raises(SchemaError) as info:
        load_schema(path)
    err = info.value
    assert (err.file, err.line, err.column) == (str(path), line, column)
    assert err.message.startswith("not a text Prisma schema")
    assert what in err.message


# ----------------------------------------------------------------- files and folders


def test_it_reports_a_missing_path(tmp_path):
    missing = tmp_path / "nope.prisma"
    with pytest.raises(SchemaError) as info:
        load_schema(missing)
    assert str(info.value) == f"{missing}: no such file or directory"


def test_it_reports_a_folder_without_prisma_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SchemaError) as info:
        load_schema(tmp_path)
    assert info.value.file == str(tmp_path)
    assert "folder contains no .prisma file" in info.value.message


def test_it_loads_every_prisma_file_of_a_folder_recursively_in_path_order(tmp_path):
    (tmp_path / "models" / "deep").mkdir(parents=True)
    (tmp_path / "schema.prisma").write_text(DATASOURCE)
    (tmp_path / "models" / "user.prisma").write_text("model User {\n  id Int @id\n  role Role\n}\n")
    (tmp_path / "models" / "deep" / "post.prisma").write_text("model Post {\n  id Int @id\n}\n")
    (tmp_path / "models" / "enums.prisma").write_text("enum Role {\n  USER\n}\n")
    (tmp_path / "README.md").write_text("not a schema")
    schema = load_schema(str(tmp_path))
    files = [str(tmp_path / p) for p in (
        "models/deep/post.prisma", "models/enums.prisma", "models/user.prisma", "schema.prisma",
    )]
    assert list(schema.files) == files
    assert [m.name for m in schema.models] == ["Post", "User"]
    assert schema.models[1].pos == Pos(files[2], 1, 1)
    assert schema.enums[0].name == "Role" and len(schema.datasources) == 1


def test_it_reports_a_folder_whose_files_hold_no_datasource_and_no_model(tmp_path):
    (tmp_path / "a.prisma").write_text("// empty\n")
    (tmp_path / "b.prisma").write_text("enum E {\n  A\n}\n")
    with pytest.raises(SchemaError) as info:
        load_schema(tmp_path)
    assert info.value.file == str(tmp_path)
    assert info.value.message.startswith("the 2 schema files contain no datasource and no model")


def test_it_merges_files_given_as_text_in_path_order():
    schema = parse_files([("z.prisma", "model Z {\n  id Int @id\n}\n"), ("a.prisma", DATASOURCE)])
    assert schema.files == ("a.prisma", "z.prisma")
    assert schema.models[0].pos.file == "z.prisma"


def test_it_does_not_import_lark_until_the_first_parse():
    code = (
        "import sys, checks.psl.parser as p\n"
        "assert 'lark' not in sys.modules\n"
        f"p.parse_text({DATASOURCE!r}, 'x')\n"
        "assert 'lark' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# ----------------------------------------------------------------- robustness


def test_it_raises_only_schema_errors_for_random_and_damaged_input():
    rng = random.Random(20251012)
    source = EXAMPLE.read_bytes()
    alphabet = b'{}()[]@@"\\,:=?./\n\r\t abcXYZ019-_\x00\xff\xc3'
    cases: list[bytes] = []
    for _ in range(100):  # truncations
        cases.append(source[: rng.randrange(len(source))])
    for _ in range(120):  # small mutations
        data = bytearray(source)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            op = rng.random()
            if op < 0.4:
                data[i] = rng.choice(alphabet)
            elif op < 0.7:
                del data[i]
            else:
                data.insert(i, rng.choice(alphabet))
        cases.append(bytes(data))
    for _ in range(80):  # noise, from PSL characters or any byte
        size = rng.randint(0, 200)
        pool = alphabet if rng.random() < 0.5 else bytes(range(256))
        cases.append(bytes(rng.choice(pool) for _ in range(size)))
    for data in cases:
        try:
            parse_bytes(data, "fuzz.prisma")
        except SchemaError as err:
            assert err.file == "fuzz.prisma"
            assert "\n" not in str(err)


def test_it_refuses_absurdly_deep_nesting_without_a_recursion_error():
    err = error_of(DATASOURCE + "model A {\n  id Int @default(" + "[" * 5000 + "\n}\n")
    assert err.message.startswith("brackets nested too deeply")
    assert (err.line, err.column) == (5, 18 + 63)


def test_it_treats_a_lone_carriage_return_as_a_line_break():
    schema = parse_text(DATASOURCE + "model M {\r  id Int @id\r  name String\r}\r", "cr.prisma")
    assert [(f.name, f.pos.line) for f in schema.models[0].fields] == [("id", 5), ("name", 6)]


# ----------------------------------------------------------------- a colleague's fixtures


def _fixture_schemas() -> list[Path]:
    if not FIXTURES.is_dir():
        return []
    return sorted(
        p for p in FIXTURES.iterdir()
        if p.suffix == ".prisma" or (p.is_dir() and any(p.rglob("*.prisma")))
    )


@pytest.mark.skipif(not _fixture_schemas(), reason="tests/fixtures/schemas is absent")
@pytest.mark.parametrize("path", _fixture_schemas(), ids=lambda p: p.name)
def test_it_parses_every_conformance_fixture_without_error(path):
    schema = load_schema(path)
    assert schema.models or schema.datasources
