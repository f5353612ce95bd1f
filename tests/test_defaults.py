"""normalize_default: PostgreSQL's spelling and Prisma's spelling of a default meet in one text."""
from __future__ import annotations

import pytest

from checks.defaults import normalize_default, strip_outer_parens

ROLE = '"public"."Role"'

# (as pg_get_expr prints it, as Prisma's DDL writes it, column type, canonical)
SAME_DEFAULT = [
    ("'hello'::text", "'hello'", "text", "'hello'"),
    ("'it''s'::text", "'it''s'", "text", "'it''s'"),
    ("'back\\slash'::text", "'back\\slash'", "text", "'back\\slash'"),
    ("'abc'::character varying", "'abc'", "character varying(20)", "'abc'"),
    ("'abc'::bpchar", "'abc'", "character(5)", "'abc'"),
    ("'USER'::\"Role\"", "'USER'", ROLE, "'USER'"),
    ("'USER'::public.\"Role\"", "'USER'", ROLE, "'USER'"),
    ("0", "0", "integer", "0"),
    ("'-5'::integer", "-5", "integer", "-5"),
    ("'-9007199254740993'::bigint", "-9007199254740993", "bigint", "-9007199254740993"),
    ("'-0.25'::numeric", "-0.25", "double precision", "-0.25"),
    ("'100000000000000000000'::numeric", "100000000000000000000.0", "double precision", "100000000000000000000"),
    ("1.10", "1.1", "numeric(10,2)", "1.1"),
    ("'0'::numeric", "0", "numeric(65,30)", "0"),
    ("true", "true", "boolean", "true"),
    ("'{}'::jsonb", "'{}'", "jsonb", "'{}'"),
    ("'{\"a\": 3, \"b\": [1.50, 200]}'::jsonb", "'{\"b\":[1.50,2e2],\"a\":1,\"a\":3}'", "jsonb",
     "'{\"a\": 3, \"b\": [1.50, 200]}'"),
    ("'\\x68656c6c6f'::bytea", "'\\x68656C6C6F'", "bytea", "'\\x68656c6c6f'"),
    ("'\\x616263'::bytea", "'abc'", "bytea", "'\\x616263'"),
    ("CURRENT_TIMESTAMP", "now()", "timestamp(3) without time zone", "CURRENT_TIMESTAMP"),
    ("CURRENT_DATE", "current_date", "date", "CURRENT_DATE"),
    ("'2020-01-01 00:00:00'::timestamp without time zone", "'2020-01-01 00:00:00 +00:00'",
     "timestamp(3) without time zone", "'2020-01-01 00:00:00'"),
    ("'2020-01-01 08:20:30.123+00'::timestamp with time zone", "'2020-01-01T10:20:30.123+02:00'",
     "timestamp(3) with time zone", "'2020-01-01 08:20:30.123+00'"),
    ("'2021-03-04'::date", "'2021-03-04 00:00:00 +00:00'", "date", "'2021-03-04'"),
    ("'12:34:56'::time without time zone", "'1970-01-01 12:34:56 +00:00'", "time(3) without time zone",
     "'12:34:56'"),
    ("'12:34:56+02'::time with time zone", "'1970-01-01 12:34:56 +02:00'", "time with time zone", "'12:34:56+02'"),
    ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", "'A0EEBC999C0B4EF8BB6D6BB9BD380A11'", "uuid",
     "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"),
    ("gen_random_uuid()", "gen_random_uuid()", "uuid", "gen_random_uuid()"),
    ("(now() + '1 day'::interval)", "(now() + '1 day'::interval)", "timestamp(3) without time zone",
     "now() + '1 day'::interval"),
    ("(1 + 2)", "1 + 2", "integer", "1 + 2"),
    ("ARRAY[]::text[]", "ARRAY[]::TEXT[]", "text[]", "ARRAY[]::text[]"),
    ("'{}'::text[]", "ARRAY[]::TEXT[]", "text[]", "ARRAY[]::text[]"),
    ("ARRAY['a'::text, 'b,c'::text, 'it''s'::text]", "ARRAY['a', 'b,c', 'it''s']::TEXT[]", "text[]",
     "ARRAY['a', 'b,c', 'it''s']::text[]"),
    ("'{a,\"b,c\",NULL}'::text[]", "ARRAY['a', 'b,c', NULL]::TEXT[]", "text[]", "ARRAY['a', 'b,c', NULL]::text[]"),
    ("ARRAY[1, 2, '-3'::integer]", "ARRAY[1, 2, -3]::INTEGER[]", "integer[]", "ARRAY[1, 2, -3]::integer[]"),
    ("ARRAY[(1.5)::double precision, ('-0.25'::numeric)::double precision]",
     "ARRAY[1.5, -0.25]::DOUBLE PRECISION[]", "double precision[]", "ARRAY[1.5, -0.25]::double precision[]"),
    ("ARRAY['USER'::\"Role\", 'ADMIN'::\"Role\"]", "ARRAY['USER', 'ADMIN']::\"Role\"[]", ROLE + "[]",
     "ARRAY['USER', 'ADMIN']::\"public\".\"Role\"[]"),
    ("ARRAY[]::\"Role\"[]", "ARRAY[]::\"Role\"[]", ROLE + "[]", "ARRAY[]::\"public\".\"Role\"[]"),
    ("ARRAY['x'::character varying(10)]", "ARRAY['x']::VARCHAR(10)[]", "character varying(10)[]",
     "ARRAY['x']::character varying(10)[]"),
    ("ARRAY['2020-01-01 00:00:00'::timestamp(3) without time zone]",
     "ARRAY['2020-01-01 00:00:00 +00:00']::TIMESTAMP(3)[]", "timestamp(3) without time zone[]",
     "ARRAY['2020-01-01 00:00:00']::timestamp(3) without time zone[]"),
    ("'{{1,2},{3,4}}'::integer[]", "ARRAY[[1, 2], [3, 4]]::INTEGER[]", "integer[]",
     "ARRAY[ARRAY[1, 2], ARRAY[3, 4]]::integer[]"),
]


@pytest.mark.parametrize("stored, written, column_type, canonical", SAME_DEFAULT)
def test_postgresql_and_prisma_spellings_normalize_to_the_same_canonical_text(stored, written, column_type, canonical):
    assert normalize_default(stored, column_type) == (canonical, False)
    assert normalize_default(written, column_type) == (canonical, False)


@pytest.mark.parametrize("expr", [
    "nextval('\"D_id_seq\"'::regclass)", "nextval('users_id_seq'::regclass)",
    "nextval('app.\"odd\"\"seq\"'::regclass)", "NEXTVAL('s')",
])
def test_a_sequence_default_is_autoincrement_not_a_default(expr):
    assert normalize_default(expr, "integer") == (None, True)


@pytest.mark.parametrize("expr", [None, "", "  ", "NULL", "NULL::text", "(NULL)::character varying"])
def test_no_default_and_null_are_both_none(expr):
    assert normalize_default(expr, "text") == (None, False)


@pytest.mark.parametrize("expr, column_type, canonical", [
    ("'NaN'::double precision", "double precision", "'NaN'"),
    ("'5'::text", "text", "'5'"),
    ("E'a\\\\b\\'c\\n'", "text", "'a\\b''c\n'"),
    ("'t'::boolean", "boolean", "true"),
    ("'{\"b\":1, \"a\":2}'::json", "json", "'{\"b\":1, \"a\":2}'"),
    ("('x'::text || 'y'::text)", "text", "'x'::text || 'y'::text"),
    ("lower('ABC'::text)", "text", "lower('ABC'::text)"),
    ("'1 day 02:00:00'::interval", "interval", "'1 day 02:00:00'"),
    ("'not a date'::date", "date", "'not a date'"),
    ("'{1,2'::integer[]", "integer[]", "'{1,2'"),
    ("CURRENT_TIMESTAMP(3)", "timestamp(3) without time zone", "CURRENT_TIMESTAMP(3)"),
])
def test_edge_cases_keep_what_cannot_be_simplified(expr, column_type, canonical):
    assert normalize_default(expr, column_type) == (canonical, False)


def test_strip_outer_parens_only_removes_parentheses_around_the_whole_expression():
    assert strip_outer_parens('(("deletedAt" IS NULL))') == '"deletedAt" IS NULL'
    assert strip_outer_parens("(a) + (b)") == "(a) + (b)"
    assert strip_outer_parens("('(')") == "'('"


def test_a_hand_written_partial_index_condition_matches_postgresqls_reprint():
    from checks.defaults import normalize_predicate

    assert normalize_predicate("code <> ''") == normalize_predicate("(code <> ''::text)")
    assert normalize_predicate('("kind" != \'user\')') == normalize_predicate("(kind <> 'user'::text)")
    assert normalize_predicate("deleted_at IS NULL") == "deleted_at IS NULL"
    # a different condition stays different
    assert normalize_predicate("score > 100") != normalize_predicate("score > 10")
    assert normalize_predicate('"deletedAt" IS NULL') == '"deletedAt" IS NULL'
