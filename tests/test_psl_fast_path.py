"""The parser's fast path builds exactly the AST of the reference (lark-driven) parse.

`checks.psl.parser._fast_parse` drives lark's LALR table for grammar.lark itself, and
gives up on anything unusual so that the reference parse words every error. These
tests hold it to the reference on every schema at hand and on many generated ones.
"""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from checks.errors import SchemaError
from checks.psl import _tables, parser
from checks.psl.parser import _fast_parse, _Parse, parse_text

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = sorted(
    p for pattern in ("examples/**/*.prisma", "tests/fixtures/**/*.prisma") for p in REPO.glob(pattern)
)


def reference(text: str, file: str):
    try:
        return _Parse(text, file).run(), None
    except SchemaError as e:
        return None, e


def fast(text: str, file: str):
    try:
        return _fast_parse(text, file), None
    except Exception as e:  # noqa: BLE001 - giving up is how the fast path says "not mine"
        return None, e


def assert_same(text: str, file: str = "s.prisma") -> None:
    want, want_error = reference(text, file)
    got, got_error = fast(text, file)
    if want_error is not None:
        assert got is None, f"the fast path accepted what the reference refuses: {want_error}"
    else:
        assert got_error is None, f"the fast path gave up on a valid schema: {got_error!r}"
        assert got == want
        # == ignores nothing here (the AST compares every field), docs included
        assert [[f.doc for f in m.fields] for m in got.models] == [[f.doc for f in m.fields] for m in want.models]


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_schema_at_hand_parses_to_the_reference_ast(path):
    text = path.read_bytes().decode("utf-8", "replace").removeprefix("\ufeff")
    assert_same(text, str(path))


def _generated_schema(rng: random.Random) -> str:
    """A random schema with every construct the grammar has, valid or not."""
    ws = [" ", "  ", "\t", " \u00a0"]
    nl = ["\n", "\r\n", "\r", "\n\n", "\n  \n"]
    names = ["id", "name", "model", "type", "enum", "view", "User", "Post", "é_x", "a-b"]

    def value(depth=0):
        choice = rng.randrange(9 if depth < 3 else 5)
        if choice == 0:
            return '"s\\"t\\u00e9"'
        if choice == 1:
            return rng.choice(["0", "-1", "2.5"])
        if choice == 2:
            return rng.choice(names)
        if choice == 3:
            return "Role.ADMIN"
        if choice == 4:
            return "true"
        if choice == 5:
            return "[" + ", ".join(value(depth + 1) for _ in range(rng.randrange(3))) + rng.choice(["", ","]) + "]"
        if choice == 6:
            return rng.choice(names) + "(" + args(depth + 1) + ")"
        if choice == 7:
            return "{ " + ", ".join(f"{rng.choice(names)}: {value(depth + 1)}" for _ in range(rng.randrange(3))) + " }"
        return "a.b(" + args(depth + 1) + ")"

    def args(depth):
        parts = []
        for _ in range(rng.randrange(3)):
            parts.append((rng.choice(names) + ": " if rng.random() < 0.5 else "") + value(depth))
        sep = rng.choice([", ", ",\n    ", " ,"])
        return sep.join(parts) + rng.choice(["", ","]) if parts else ""

    def attr(prefix):
        name = prefix + rng.choice(["id", "default", "db.VarChar", "map", "unique", "index", "relation"])
        return name + (f"({args(0)})" if rng.random() < 0.6 else "")

    out = []
    for _ in range(rng.randrange(1, 6)):
        kind = rng.choice(["model", "view", "type", "enum", "datasource", "generator"])
        if rng.random() < 0.3:
            out.append("/// doc of the block" + rng.choice(nl))
        out.append(f"{kind}{rng.choice(ws)}{rng.choice(names)} {{{rng.choice(nl)}")
        for _ in range(rng.randrange(5)):
            if rng.random() < 0.2:
                out.append("  // a comment" + rng.choice(nl))
            if rng.random() < 0.2:
                out.append("  /// doc" + rng.choice(nl))
            if kind in ("datasource", "generator"):
                line = f"  {rng.choice(names)} = {value()}"
            elif kind == "enum":
                line = f"  {rng.choice(names)}" + "".join(" " + attr("@") for _ in range(rng.randrange(2)))
            elif rng.random() < 0.2:
                line = "  " + attr("@@")
            else:
                ftype = rng.choice(["String", "Int?", "Post[]", 'Unsupported("circle")', "Json"])
                line = f"  {rng.choice(names)}{rng.choice(ws)}{ftype}" + "".join(
                    rng.choice(ws) + attr("@") for _ in range(rng.randrange(3)))
            if rng.random() < 0.2:
                line += " /// trailing doc"
            elif rng.random() < 0.15:
                line += rng.choice([" /* trailing */", " /** a\n  b */", "/**/"])
            if rng.random() < 0.1:
                line = rng.choice(["  /* before */", "  /*\n */\n"]) + line
            out.append(line + rng.choice(nl))
        out.append("}" + rng.choice(nl + [""]) + rng.choice(["", "\n"]))
    return "".join(out)


def test_generated_schemas_parse_to_the_reference_ast_or_are_refused_by_both():
    rng = random.Random(20260611)
    accepted = 0
    for _ in range(400):
        text = _generated_schema(rng)
        if rng.random() < 0.3:  # damage some
            i = rng.randrange(len(text) + 1)
            text = text[:i] + rng.choice(["{", "}", "(", ")", "[", "]", "@", '"', ",", "\n", "", "/*", "*/"]) + text[i:]
        assert_same(text)
        accepted += reference(text, "s.prisma")[1] is None
    assert accepted > 100  # most are valid, so the comparison is not vacuous


def test_errors_are_the_reference_errors():
    broken = 'datasource db {\n  provider = "postgresql"\n}\nmodel A {\n  id Int @id @default(\n}\n'
    with pytest.raises(SchemaError) as via_parse_text:
        parse_text(broken, "b.prisma")
    assert str(via_parse_text.value) == str(reference(broken, "b.prisma")[1])


def test_the_shipped_tables_match_the_grammar_and_the_installed_lark():
    import hashlib

    import lark

    digest = hashlib.sha256((REPO / "checks" / "psl" / "grammar.lark").read_bytes()).hexdigest()
    assert _tables.GRAMMAR_SHA256 == digest, "run: python -m checks.psl.parser --write-tables"
    assert _tables.LARK_VERSION == lark.__version__, "run: python -m checks.psl.parser --write-tables"


def test_stale_tables_are_derived_from_lark_at_run_time(monkeypatch):
    monkeypatch.setattr(_tables, "GRAMMAR_SHA256", "stale")
    monkeypatch.setattr(parser, "_fast", None)
    text = (REPO / "examples" / "avatar-studio" / "prisma" / "schema.prisma").read_text(encoding="utf-8")
    try:
        assert _fast_parse(text, "x.prisma") == reference(text, "x.prisma")[0]
    finally:
        parser._fast = None


def test_write_tables_reproduces_a_working_table(tmp_path):
    target = tmp_path / "_tables.py"
    parser.write_tables(target)
    namespace: dict = {}
    exec(compile(target.read_text(encoding="utf-8"), str(target), "exec"), namespace)
    assert namespace["GRAMMAR_SHA256"] == _tables.GRAMMAR_SHA256
    assert len(namespace["STATES"]) == len(_tables.STATES)
    assert [r[:4] for r in namespace["RULES"]] == [r[:4] for r in _tables.RULES]


def test_the_table_generator_refuses_unknown_arguments():
    done = subprocess.run([sys.executable, "-m", "checks.psl.parser", "--bogus"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "--write-tables" in done.stderr


def test_stale_tables_in_a_fresh_process_do_not_hang_the_first_parse():
    code = (
        "import checks.psl._tables as t\n"
        "t.GRAMMAR_SHA256 = 'stale'\n"
        "import checks.psl.parser as p\n"
        "s = p.parse_text('datasource db {\\n  provider = \"postgresql\"\\n}\\nmodel A {\\n  id Int @id\\n}\\n', 'x')\n"
        "assert len(s.models) == 1 and p._fast is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_a_fast_path_failure_on_a_valid_schema_is_counted_logged_and_fails_under_test(monkeypatch, caplog):
    from checks.psl import parser

    def broken(text, file):
        raise IndexError("a bug in the fast path")

    monkeypatch.setattr(parser, "_fast_parse", broken)
    text = "model User {\n  id Int @id\n}\n"
    with pytest.raises(AssertionError, match="fast path failed on a valid schema .*IndexError"):
        parse_text(text, "x.prisma")
    monkeypatch.delenv("DRIFTWATCH_STRICT_FAST_PATH")
    before = parser.FAST_PATH_MISSES["IndexError"]
    assert parse_text(text, "x.prisma") == reference(text, "x.prisma")[0]  # still parsed, the slow way
    assert parser.FAST_PATH_MISSES["IndexError"] == before + 1
    assert "fast path failed on x.prisma" in caplog.text


def test_a_fast_path_stop_on_an_invalid_schema_is_not_a_miss(monkeypatch):
    from checks.errors import SchemaError
    from checks.psl import parser

    before = sum(parser.FAST_PATH_MISSES.values())
    with pytest.raises(SchemaError):
        parse_text("model User {\n  id Int @id\n", "x.prisma")
    assert sum(parser.FAST_PATH_MISSES.values()) == before
