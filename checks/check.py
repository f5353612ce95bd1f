"""One drift check end to end: schema file → expected catalog, database → live catalog, diff.

The CLI, the dashboard and the fix planner all start here, so that they agree on
what "in sync" means for a given schema and database.

`check_database` inspects the database on a background thread while this one parses
and compiles the schema: importing psycopg, connecting and PostgreSQL's own work on
the catalog queries then cost no wall time of their own. A schema error still wins
over a database error, as if the schema were compiled first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .catalog import Catalog
    from .findings import DriftReport


@dataclass(frozen=True)
class CheckResult:
    expected: Catalog
    actual: Catalog
    report: DriftReport


def expected_catalog(schema_path: str | Path, *, cache: bool = False) -> Catalog:
    """Parse and compile a .prisma file or folder (SchemaError on any problem).

    With ``cache=True`` a catalog compiled before from the very same bytes (by the very
    same code) is taken from `checks.cache` instead; see there."""
    from .psl.files import read_schema_files

    return _expected(read_schema_files(schema_path), cache)


def _expected(read: tuple[str, bool, list[tuple[str, bytes, str]]], cache: bool) -> Catalog:
    name, is_folder, files = read
    key = None
    if cache:
        from . import cache as catalog_cache

        if catalog_cache.enabled():
            key = catalog_cache.catalog_key([(f, data) for f, data, _ in files], name if is_folder else None)
            hit = catalog_cache.load_catalog(key)
            if hit is not None:
                return hit
    from .compile import compile_schema
    from .psl.parser import parse_schema_files

    catalog = compile_schema(parse_schema_files(name, is_folder, files))
    if key is not None:
        catalog_cache.store_catalog(key, catalog)
    return catalog


def check_database(database_url: str, schema_path: str | Path, *, cache: bool = False) -> CheckResult:
    """Compare a live database with a Prisma schema (``cache``: see `expected_catalog`)."""
    from .db import split_prisma_url
    from .inspect.live import inspect_in_background
    from .psl.files import read_schema_files

    read = read_schema_files(schema_path)
    app_schema = split_prisma_url(database_url)[1]  # Prisma's ?schema=, default public
    hint = _schemas_hint(read[2])
    live = inspect_in_background(database_url, (app_schema,) if hint == ("public",) else hint)
    # From here on this thread's work overlaps with PostgreSQL running the catalog queries.
    try:
        from .catalog import in_schema

        expected = in_schema(_expected(read, cache), app_schema)
        from .diff import diff
    except BaseException:
        live.abandon()
        raise

    actual = live.result(expected.schemas)
    return CheckResult(expected, actual, diff(expected, actual))


_DATASOURCE = re.compile(r"^[ \t]*datasource[ \t]+\w+[ \t]*\{", re.M)
_SCHEMAS = re.compile(r"^[ \t]*schemas[ \t]*=[ \t]*\[([^\]]*)\]", re.M)


def _schemas_hint(files: list[tuple[str, bytes, str]]) -> tuple[str, ...]:
    """The schemas the first datasource lists (``public`` when none), read cheaply, to
    start inspecting before the schema is compiled. Only a guess: if the compiled
    catalog says otherwise, the database is inspected again with its list."""
    for _, _, text in files:
        m = _DATASOURCE.search(text)
        if m is None:
            continue
        body = text[m.end():text.find("}", m.end())]
        s = _SCHEMAS.search(body)
        if s is None:
            return ("public",)
        names = tuple(re.findall(r'"([^"\\]*)"', s.group(1)))
        return names or ("public",)
    return ("public",)
