"""The compiled-catalog cache (checks/cache.py) and the overlapped check (checks/check.py).

A cache hit must give the very catalog a compile would; an edit, a damaged entry or
DRIFTWATCH_NO_CACHE=1 must lead to a compile. The overlapped check must give the same
report as inspecting after compiling, and a schema error still wins over the database.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from checks import cache, check
from checks.check import _schemas_hint, check_database, expected_catalog
from checks.cli import run
from checks.compile import compile_schema
from checks.errors import DatabaseError, SchemaError
from checks.psl.parser import load_schema
from tests.conftest import SAMPLE_SCHEMA

SCHEMA = SAMPLE_SCHEMA.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own cache directory, enabled."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(cache.ENV_DISABLE, raising=False)
    return tmp_path / "xdg" / "driftwatch"


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "schema.prisma"
    path.write_text(SCHEMA, encoding="utf-8")
    return path


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the compiles `expected_catalog` does (a hit does none)."""
    import checks.compile

    done: list[str] = []
    real = checks.compile.compile_schema

    def counting(schema):
        done.append(schema.files[0])
        return real(schema)

    monkeypatch.setattr(checks.compile, "compile_schema", counting)
    return done


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("catalog-*.pickle")) if directory.is_dir() else []


# --------------------------------------------------------------------------- hits and misses


def test_a_second_run_on_the_same_bytes_is_a_hit_with_the_same_catalog(schema_file, compiles, private_cache):
    first = expected_catalog(schema_file, cache=True)
    assert len(entries(private_cache)) == 1
    second = expected_catalog(schema_file, cache=True)
    assert compiles == [str(schema_file)]  # compiled once
    assert second == first == compile_schema(load_schema(schema_file))
    assert repr(second) == repr(first)  # the not-compared fields (ddl_*, Prisma names) too


def test_an_edit_is_a_miss_and_the_edit_shows(schema_file, compiles, private_cache):
    before = expected_catalog(schema_file, cache=True)
    schema_file.write_text(SCHEMA.replace("model ", "model Extra {\n  id Int @id\n}\n\nmodel ", 1), encoding="utf-8")
    after = expected_catalog(schema_file, cache=True)
    assert len(compiles) == 2
    assert after.table("public", "Extra") is not None and before.table("public", "Extra") is None
    assert len(entries(private_cache)) == 2


def test_a_change_to_the_compiler_is_a_miss(schema_file, compiles, monkeypatch):
    expected_catalog(schema_file, cache=True)
    monkeypatch.setattr(cache, "_code_fingerprint", lambda: b"another compiler")
    expected_catalog(schema_file, cache=True)
    assert len(compiles) == 2


def test_a_folder_key_covers_the_file_names_that_decide_the_order():
    a = cache.catalog_key([("s/a.prisma", b"x"), ("s/b.prisma", b"y")], "s")
    b = cache.catalog_key([("s/b.prisma", b"x"), ("s/c.prisma", b"y")], "s")
    moved = cache.catalog_key([("t/a.prisma", b"x"), ("t/b.prisma", b"y")], "t")
    assert a != b and a == moved
    # a single file: where it lives does not matter, its bytes do
    assert cache.catalog_key([("/a/x.prisma", b"x")]) == cache.catalog_key([("/b/y.prisma", b"x")])
    assert cache.catalog_key([("/a/x.prisma", b"x")]) != cache.catalog_key([("/a/x.prisma", b"x ")])


def test_a_schema_error_is_not_cached_and_is_raised_every_time(tmp_path, private_cache):
    bad = tmp_path / "bad.prisma"
    bad.write_text(SCHEMA + "\nmodel Broken {\n  id Int @id\n  other Nowhere\n}\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(SchemaError, match="Nowhere"):
            expected_catalog(bad, cache=True)
    assert entries(private_cache) == []


def test_without_cache_true_nothing_is_read_or_written(schema_file, compiles, private_cache):
    expected_catalog(schema_file)
    expected_catalog(schema_file)
    assert len(compiles) == 2 and entries(private_cache) == []


# --------------------------------------------------------------------------- damage and settings


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "other key", "not a catalog"])
def test_a_damaged_entry_is_ignored_and_replaced(schema_file, compiles, private_cache, damage):
    good = expected_catalog(schema_file, cache=True)
    (entry,) = entries(private_cache)
    data = entry.read_bytes()
    if damage == "garbage":
        entry.write_bytes(b"\x00\xffnot a pickle at all")
    elif damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":
        entry.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    elif damage == "other key":
        other = next(iter({k for k in ["0" * 64, "1" * 64]} - {entry.stem[len("catalog-"):]}))
        entry.write_bytes(data.replace(entry.stem[len("catalog-"):].encode(), other.encode()))
    else:  # a well-formed entry holding something else than a catalog
        import hashlib
        import pickle

        payload = pickle.dumps({"not": "a catalog"})
        key = entry.stem[len("catalog-"):].encode()
        entry.write_bytes(cache._MAGIC + key + hashlib.sha256(payload).digest() + payload)
    again = expected_catalog(schema_file, cache=True)
    assert again == good and repr(again) == repr(good)
    assert len(compiles) == 2  # the damaged entry was not used
    assert expected_catalog(schema_file, cache=True) == good
    assert len(compiles) == 2  # and it was replaced by a good one


def test_an_entry_others_can_write_is_not_trusted(schema_file, compiles, private_cache):
    expected_catalog(schema_file, cache=True)
    (entry,) = entries(private_cache)
    entry.chmod(0o666)
    expected_catalog(schema_file, cache=True)
    assert len(compiles) == 2


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_driftwatch_no_cache_turns_it_off(schema_file, compiles, private_cache, monkeypatch, value):
    expected_catalog(schema_file, cache=True)  # an entry exists
    monkeypatch.setenv("DRIFTWATCH_NO_CACHE", value)
    expected_catalog(schema_file, cache=True)
    expected_catalog(schema_file, cache=True)
    assert len(compiles) == 3  # not read
    os.remove(entries(private_cache)[0])
    expected_catalog(schema_file, cache=True)
    assert entries(private_cache) == []  # not written


def test_an_unwritable_cache_is_only_slower(schema_file, compiles, tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # driftwatch/ cannot be made under a file
    first = expected_catalog(schema_file, cache=True)
    assert expected_catalog(schema_file, cache=True) == first
    assert len(compiles) == 2


def test_the_cache_lives_under_xdg_cache_home_else_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "driftwatch"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec says: ignore it
    assert cache.cache_dir() == Path.home() / ".cache" / "driftwatch"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_dir() == Path.home() / ".cache" / "driftwatch"


def test_entries_are_private_and_only_the_most_recent_are_kept(tmp_path, private_cache, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    catalog = compile_schema(load_schema(SAMPLE_SCHEMA))
    for i in range(5):
        cache.store_catalog(f"{i:064d}", catalog)
        os.utime(cache._entry(f"{i:064d}"), ns=(i * 10**9, i * 10**9))
    cache.store_catalog(f"{9:064d}", catalog)
    kept = entries(private_cache)
    assert [p.stem[-1] for p in kept] == ["3", "4", "9"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in kept)
    assert not list(private_cache.glob(".tmp-*"))


# --------------------------------------------------------------------------- the check


def test_the_cli_check_is_the_same_cold_and_warm(incident_db, tmp_path, private_cache, compiles, monkeypatch):
    schema = tmp_path / "schema.prisma"
    schema.write_text(SCHEMA, encoding="utf-8")

    def check_json() -> tuple[int, dict]:
        out, err = io.StringIO(), io.StringIO()
        code = run(["check", "--database-url", incident_db, "--schema", str(schema), "--format", "json"], out, err)
        assert err.getvalue() == ""
        return code, json.loads(out.getvalue())

    monkeypatch.setenv("DRIFTWATCH_NO_CACHE", "1")
    cold = check_json()
    monkeypatch.delenv("DRIFTWATCH_NO_CACHE")
    first = check_json()
    warm = check_json()
    assert len(compiles) == 2  # the third run took the catalog from the cache
    assert cold == first == warm
    assert cold[0] == 2 and cold[1]["findings"]


def test_the_overlapped_check_reports_what_a_sequential_one_does(incident_db):
    from checks.diff import diff
    from checks.inspect.live import inspect_database

    expected = compile_schema(load_schema(SAMPLE_SCHEMA))
    sequential = diff(expected, inspect_database(incident_db, expected.schemas))
    result = check_database(incident_db, SAMPLE_SCHEMA)
    assert result.expected == expected
    assert result.report == sequential


def test_a_wrong_guess_of_the_schemas_is_inspected_again(make_db, tmp_path, monkeypatch):
    url = make_db('CREATE SCHEMA auth; CREATE TABLE auth."User" (id int PRIMARY KEY);')
    schema = tmp_path / "multi.prisma"
    schema.write_text(
        'datasource db {\n  provider = "postgresql"\n  schemas = ["auth"]\n}\n'
        'model User {\n  id Int @id\n  @@schema("auth")\n}\n', encoding="utf-8")
    assert _schemas_hint([("", b"", schema.read_text())]) == ("auth",)
    monkeypatch.setattr(check, "_schemas_hint", lambda files: ("public",))  # a wrong guess
    result = check_database(url, schema)
    assert result.actual.schemas == ("auth",)
    assert [t.name for t in result.actual.tables] == ["User"]
    assert result.report.in_sync(True)


@pytest.mark.parametrize("text, hint", [
    ('datasource db {\n  provider = "postgresql"\n}\n', ("public",)),
    ('datasource db {\n  schemas = ["a", "b"]\n  provider = "postgresql"\n}\n', ("a", "b")),
    ('// datasource x {\n  schemas = ["no"]\n}\ndatasource db {\n  provider = "postgresql"\n}\n', ("public",)),
    ('model A {\n  id Int @id\n}\n', ("public",)),
])
def test_the_schemas_hint_reads_the_first_datasource(text, hint):
    assert _schemas_hint([("x.prisma", text.encode(), text)]) == hint


def test_a_schema_error_wins_over_an_unreachable_database(tmp_path):
    bad = tmp_path / "bad.prisma"
    bad.write_text("model {\n", encoding="utf-8")
    with pytest.raises(SchemaError):
        check_database("postgresql://nobody@127.0.0.1:1/none", bad)


def test_a_database_error_comes_from_the_background_as_it_would_in_line(tmp_path):
    with pytest.raises(DatabaseError, match="connection refused"):
        check_database("postgresql://nobody@127.0.0.1:1/none", SAMPLE_SCHEMA)


def test_an_abandoned_background_inspection_finishes_and_lets_go(empty_db, tmp_path):
    import threading
    import time

    bad = tmp_path / "bad.prisma"
    bad.write_text("model {\n", encoding="utf-8")
    with pytest.raises(SchemaError):
        check_database(empty_db, bad)
    deadline = time.monotonic() + 10
    while any(t.name == "driftwatch-inspect" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "driftwatch-inspect" for t in threading.enumerate())


def test_a_background_inspection_waiting_for_its_caller_holds_no_table_lock(make_db):
    """pg_get_expr takes a lock on each table: the transaction must be over before the
    thread waits for the caller (still compiling), or an ALTER TABLE would queue behind it."""
    import time

    import psycopg

    from checks.inspect.live import inspect_in_background

    url = make_db("CREATE TABLE t (id int PRIMARY KEY, n int DEFAULT 1);")
    live = inspect_in_background(url, ["public"])
    time.sleep(1.5)  # the queries are done; the thread waits for result()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '2s'")
        conn.execute("ALTER TABLE t ADD COLUMN x int")  # LockNotAvailable if a lock were held
    assert live.result(["public"]).table("public", "t") is not None


def test_the_key_changes_with_any_source_file_of_the_package(tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "pkg"
    shutil.copytree(Path(cache.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "_PACKAGE", copy)
    before = cache.catalog_key([("s.prisma", b"x")])
    assert cache.catalog_key([("s.prisma", b"x")]) == before
    (copy / "psl" / "grammar.lark").write_bytes((copy / "psl" / "grammar.lark").read_bytes() + b"\n")
    after_grammar = cache.catalog_key([("s.prisma", b"x")])
    (copy / "compile.py").write_text((copy / "compile.py").read_text() + "\n# edited\n")
    after_compile = cache.catalog_key([("s.prisma", b"x")])
    assert len({before, after_grammar, after_compile}) == 3
