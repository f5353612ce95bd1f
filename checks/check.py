"""One drift check end to end: schema file → expected catalog, database → live catalog, diff.

The CLI, the dashboard and the fix planner all start here, so that they agree on
what "in sync" means for a given schema and database.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .catalog import Catalog
from .findings import DriftReport


@dataclass(frozen=True)
class CheckResult:
    expected: Catalog
    actual: Catalog
    report: DriftReport


def expected_catalog(schema_path: str | Path) -> Catalog:
    """Parse and compile a .prisma file or folder (SchemaError on any problem)."""
    from .compile import compile_schema
    from .psl.parser import load_schema

    return compile_schema(load_schema(schema_path))


def check_database(database_url: str, schema_path: str | Path) -> CheckResult:
    """Compare a live database with a Prisma schema."""
    from .catalog import in_schema
    from .db import split_prisma_url
    from .diff import diff
    from .inspect.live import inspect_database

    expected = in_schema(expected_catalog(schema_path), split_prisma_url(database_url)[1])
    actual = inspect_database(database_url, expected.schemas)
    return CheckResult(expected, actual, diff(expected, actual))
