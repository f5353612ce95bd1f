#!/usr/bin/env python3
"""Regenerate and verify the golden DDL of the conformance fixtures, using Prisma itself.

Why: Driftwatch's compiler must produce exactly the catalog Prisma would create. The
goldens (tests/fixtures/schemas/<stem>.sql, next to <stem>.prisma or the folder <stem>/)
are what Prisma's schema engine prints for an empty database (`migrate diff
--from-empty`), taken from the prisma-oracle tool so the tests need neither Node nor
Prisma. Each golden is then checked: applied to a fresh database, Prisma must see no
drift against its schema (`oracle.mjs drift` exits 0), so a golden is never a script
Prisma itself would disagree with.

Run from anywhere:
    python tools/regen_goldens.py [--oracle DIR] [--check] [NAME_SUBSTRING ...]

  --oracle DIR   the prisma-oracle folder (or $PRISMA_ORACLE_DIR); default
                 ../shared/tools/prisma-oracle next to the repo. It needs `npm install`.
  DATABASE_URL   any PostgreSQL where we may CREATE DATABASE; if unset, a throwaway
                 server is started with the `pgserver` package. It lacks contrib
                 extensions and libxml, so the round-trip of fixtures needing them
                 (citext, pg_trgm, XML values) is reported SKIP, not FAIL.
  --check        do not write; fail if a golden differs from what Prisma prints now.
Exit status 1 if any fixture fails.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "schemas"


def fixtures(filters: list[str]) -> list[Path]:
    """Every schema: a top-level .prisma file, or a folder of them (multi-file schema)."""
    found = [p for p in sorted(FIXTURES.iterdir()) if p.suffix == ".prisma" or p.is_dir()]
    return [p for p in found if not filters or any(f in p.name for f in filters)]


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def oracle(oracle_dir: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DATABASE_URL=url)
    return subprocess.run(["node", str(oracle_dir / "oracle.mjs"), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def verify(oracle_dir: Path, url: str, schema: Path, sql: str) -> tuple[str, str]:
    """Apply the golden to a fresh database; Prisma must then report no drift."""
    db = "dw_golden_" + "".join(c if c.isalnum() else "_" for c in schema.stem.lower())[:40]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db}"')
        admin.execute(f'CREATE DATABASE "{db}"')
    try:
        try:
            with psycopg.connect(with_database(url, db)) as conn:
                conn.execute(sql)  # no parameters: sent as one multi-statement query
        except psycopg.Error as e:
            msg = str(e).strip().splitlines()[0]
            if isinstance(e, psycopg.errors.FeatureNotSupported):  # e.g. no contrib, no libxml
                return "SKIP", f"this server cannot run the golden: {msg}"
            return "FAIL", f"golden does not apply: {msg}"
        r = oracle(oracle_dir, url, "drift", with_database(url, db), str(schema))
        if r.returncode != 0:
            return "FAIL", f"drift exit {r.returncode} after applying golden:\n{r.stdout}{r.stderr}"
        return "ok", ""
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def run(oracle_dir: Path, url: str, names: list[str], check: bool) -> int:
    failures = skips = 0
    todo = fixtures(names)
    for schema in todo:
        golden = schema.with_suffix(".sql") if schema.is_file() else schema.parent / (schema.name + ".sql")
        r = oracle(oracle_dir, url, "ddl", str(schema))
        if r.returncode != 0:
            print(f"FAIL {schema.name}: Prisma rejects the schema:\n{r.stderr.strip()}")
            failures += 1
            continue
        if check:
            if not golden.exists() or golden.read_text() != r.stdout:
                print(f"FAIL {schema.name}: {golden.name} differs from Prisma's output")
                failures += 1
                continue
        else:
            golden.write_text(r.stdout)
        status, detail = verify(oracle_dir, url, schema, r.stdout)
        failures += status == "FAIL"
        skips += status == "SKIP"
        print(f"{status:4} {schema.name}" + (f": {detail}" if detail else ""))
    print(f"{len(todo)} fixtures, {failures} failed, {skips} round-trips skipped")
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--oracle", type=Path, default=os.environ.get("PRISMA_ORACLE_DIR")
                    or ROOT.parent / "shared" / "tools" / "prisma-oracle")
    ap.add_argument("--check", action="store_true", help="compare, do not write")
    ap.add_argument("names", nargs="*", help="only fixtures whose name contains one of these")
    a = ap.parse_args()
    oracle_dir = a.oracle.resolve()
    if not (oracle_dir / "oracle.mjs").exists():
        sys.exit(f"no oracle.mjs in {oracle_dir}; pass --oracle DIR or set PRISMA_ORACLE_DIR")
    if not (oracle_dir / "node_modules").is_dir():
        sys.exit(f"{oracle_dir} has no node_modules: run `npm install` there first")
    if os.environ.get("DATABASE_URL"):
        return run(oracle_dir, os.environ["DATABASE_URL"], a.names, a.check)
    import pgserver  # only needed when no DATABASE_URL is given

    with tempfile.TemporaryDirectory(prefix="dw-goldens-") as tmp:
        server = pgserver.get_server(tmp, cleanup_mode="stop")
        try:
            return run(oracle_dir, server.get_uri(), a.names, a.check)
        finally:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
