"""Driftwatch beside Prisma's own engine on real applications' migration histories.

    python bench/compare_apps.py [--pg system|pgserver] [--oracle DIR] [--details DIR] APP...

APP is a folder holding a Prisma app's `prisma` folder (found by its migration_lock.toml;
the schema is the one `.prisma` file outside the migrations folder, or their common folder
when there are several), or `NAME=SCHEMA::MIGRATIONS` to say both. Nothing of the apps is
part of this repository: extract their prisma folders somewhere else (e.g. /tmp) first.

For each app, on a private PostgreSQL (`checks.localpg`, the system's by default since real
apps need contrib extensions such as pg_trgm or citext; stopped at the end):

1. Prisma's engine replays the migrations into a fresh database
   (`oracle.mjs deploy URL MIGRATIONS`, each file as one script, like `prisma migrate deploy`);
2. Prisma's drift (`oracle.mjs drift URL SCHEMA`) and `driftwatch check` compare that
   database with the schema;
3. `driftwatch migrate diff --shadow-database-url` replays the same folder into another
   empty database and compares it with the schema.

It prints one row per app: migrations replayed (Prisma / Driftwatch), whether Prisma,
`check` and `migrate diff` see it in sync, and the objects only one side names (Prisma's from
its SQL, Driftwatch's from its findings; info findings are listed apart since they do not
fail `check`). A benchmark, not a test: exit 0 whatever it finds.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checks.localpg import start  # noqa: E402


@dataclass
class App:
    name: str
    schema: Path
    migrations: Path


@dataclass
class Row:
    app: App
    total: int = 0
    prisma_replayed: int | None = None
    prisma_error: str | None = None
    prisma_in_sync: bool | None = None
    prisma_objects: set[str] = field(default_factory=set)
    check_in_sync: bool | None = None
    check_error: str | None = None
    check_objects: set[str] = field(default_factory=set)
    check_info: set[str] = field(default_factory=set)
    diff_in_sync: bool | None = None
    diff_replayed: int | None = None
    diff_failed: str | None = None
    diff_error: str | None = None
    diff_objects: set[str] = field(default_factory=set)
    seconds: dict[str, float] = field(default_factory=dict)


def find_app(spec: str) -> App:
    if "=" in spec and "::" in spec:
        name, rest = spec.split("=", 1)
        schema, migrations = rest.split("::", 1)
        return App(name, Path(schema), Path(migrations))
    root = Path(spec)
    locks = sorted(root.rglob("migration_lock.toml"))
    if not locks:
        raise SystemExit(f"compare_apps: no migration_lock.toml under {root}")
    migrations = locks[0].parent
    schemas = sorted(p for p in root.rglob("*.prisma") if migrations not in p.parents)
    if not schemas:
        raise SystemExit(f"compare_apps: no .prisma file under {root} outside {migrations}")
    schema = schemas[0] if len(schemas) == 1 else Path(os.path.commonpath(schemas))
    return App(root.name, schema, migrations)


def sh(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout,
                          cwd=ROOT)


# Objects Prisma's drift script touches: what each statement (or ALTER TABLE clause) names.
_CLAUSES = [
    (re.compile(r'^CREATE TABLE "(?:[^"]+"\.")?([^"]+)"'), "{0}"),
    (re.compile(r'^DROP TABLE "(?:[^"]+"\.")?([^"]+)"'), "{0}"),
    (re.compile(r'^CREATE (?:UNIQUE )?INDEX "([^"]+)"'), "{0}"),
    (re.compile(r'^DROP INDEX "(?:[^"]+"\.")?([^"]+)"'), "{0}"),
    (re.compile(r'^CREATE TYPE "(?:[^"]+"\.")?([^"]+)"'), "{0}"),
    (re.compile(r'^DROP TYPE "(?:[^"]+"\.")?([^"]+)"'), "{0}"),
    (re.compile(r'^ALTER TYPE "(?:[^"]+"\.")?([^"]+)"'), "{0}"),
    (re.compile(r'^ALTER INDEX "(?:[^"]+"\.")?([^"]+)" RENAME TO "([^"]+)"'), "{1}"),
    (re.compile(r'^CREATE SCHEMA (?:IF NOT EXISTS )?"([^"]+)"'), "{0}"),
    (re.compile(r'^CREATE EXTENSION (?:IF NOT EXISTS )?"([^"]+)"'), "extension {0}"),
]
_TABLE_CLAUSES = [
    (re.compile(r'(?:ADD|DROP|ALTER) COLUMN "([^"]+)"'), "{table}.{0}"),
    (re.compile(r'(?:ADD|DROP) CONSTRAINT "([^"]+)"'), "{0}"),
    (re.compile(r'RENAME CONSTRAINT "([^"]+)" TO "([^"]+)"'), "{1}"),
    (re.compile(r'RENAME COLUMN "([^"]+)" TO "([^"]+)"'), "{table}.{1}"),
]
_ALTER_TABLE = re.compile(r'^ALTER TABLE (?:ONLY )?"(?:[^"]+"\.")?([^"]+)"')


def prisma_objects(script: str) -> set[str]:
    found: set[str] = set()
    text = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    for statement in (s.strip() for s in text.split(";")):
        if not statement:
            continue
        m = _ALTER_TABLE.match(statement)
        if m:
            table = m.group(1)
            names = {tpl.format(*c.groups(), table=table) for rx, tpl in _TABLE_CLAUSES for c in rx.finditer(statement)}
            found |= names or {table}
            continue
        for rx, tpl in _CLAUSES:
            c = rx.match(statement)
            if c:
                found.add(tpl.format(*c.groups()))
                break
        else:
            found.add(statement.split("\n", 1)[0][:60])
    return found


_COLUMN_KINDS = {"missing_column", "column_type", "column_nullable", "column_default", "extra_column"}
_TABLE_KINDS = {"missing_table", "extra_table"}


def finding_object(f: dict[str, object]) -> str:
    if f["kind"] in _COLUMN_KINDS:
        return f"{f['table']}.{f['column']}"
    if f["kind"] in _TABLE_KINDS or not f.get("name"):
        return str(f.get("table") or f.get("name") or f.get("schema"))
    return str(f["name"])


def one_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip() and "Warning" not in x and "warn(" not in x]
    return (lines[-1] if lines else "")[:200]


def compare(app: App, server_url_for, oracle: Path, python: str, details: Path | None, admin,
            init_sql: str | None = None) -> Row:
    row = Row(app)
    row.total = sum(1 for p in app.migrations.iterdir() if p.is_dir())
    live_db, shadow_db = f"cmp_{_ident(app.name)}", f"cmp_{_ident(app.name)}_shadow"
    for db in (live_db, shadow_db):
        admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin(f'CREATE DATABASE "{db}" TEMPLATE template0')
        if init_sql:  # what the app's platform provides before any migration (Prisma's shadowDbInitScript)
            admin(init_sql, db)
    live, shadow = server_url_for(live_db), server_url_for(shadow_db)
    node = ["node", str(oracle / "oracle.mjs")]

    t = time.monotonic()
    deployed = sh([*node, "deploy", live, str(app.migrations)])
    row.seconds["prisma deploy"] = time.monotonic() - t
    if deployed.returncode != 0:
        row.prisma_error = one_line(deployed.stderr or deployed.stdout)
    try:
        row.prisma_replayed = len(json.loads(deployed.stdout.strip().splitlines()[-1])["appliedMigrationNames"])
    except (ValueError, KeyError, IndexError):
        row.prisma_replayed = _finished(live)

    t = time.monotonic()
    drift = sh([*node, "drift", live, str(app.schema)])
    row.seconds["prisma drift"] = time.monotonic() - t
    if drift.returncode in (0, 2):
        row.prisma_in_sync = drift.returncode == 0
        row.prisma_objects = prisma_objects(drift.stdout)
    else:
        row.prisma_error = (row.prisma_error or "") + " drift: " + one_line(drift.stderr)

    t = time.monotonic()
    check = sh([python, "-m", "checks", "check", "--database-url", live, "--schema", str(app.schema),
                "--format", "json", "--migrations", "none"], env={"DRIFTWATCH_NO_CACHE": "1"})
    row.seconds["driftwatch check"] = time.monotonic() - t
    if check.returncode in (0, 2):
        payload = json.loads(check.stdout)
        row.check_in_sync = payload["in_sync"]
        row.check_objects = {finding_object(f) for f in payload["findings"] if f["severity"] != "info"}
        row.check_info = {finding_object(f) for f in payload["findings"] if f["severity"] == "info"}
    else:
        row.check_error = one_line(check.stderr)

    t = time.monotonic()
    diff = sh([python, "-m", "checks", "migrate", "diff", "--migrations", str(app.migrations), "--schema",
               str(app.schema), "--shadow-database-url", shadow, "--format", "json"],
              env={"DRIFTWATCH_NO_CACHE": "1"})
    row.seconds["driftwatch migrate diff"] = time.monotonic() - t
    if diff.stdout.strip():
        payload = json.loads(diff.stdout)
        row.diff_in_sync = payload["in_sync"]
        row.diff_replayed = payload["replayed"]
        row.diff_failed = payload["failed"] and f"{payload['failed']['name']}: {payload['failed']['error']}"
        row.diff_objects = {finding_object(f) for f in payload["findings"] if f["severity"] != "info"}
    else:
        row.diff_error = one_line(diff.stderr)

    if details is not None:
        out = details / app.name
        out.mkdir(parents=True, exist_ok=True)
        (out / "prisma-deploy.txt").write_text(deployed.stdout + deployed.stderr)
        (out / "prisma-drift.sql").write_text(drift.stdout + drift.stderr)
        (out / "check.json").write_text(check.stdout + check.stderr)
        (out / "migrate-diff.json").write_text(diff.stdout + diff.stderr)
    for db in (live_db, shadow_db):
        admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return row


def _ident(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


def _finished(url: str) -> int | None:
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL").fetchone()[0]
    except psycopg.Error:
        return None


def yes_no(value: bool | None, error: str | None = None) -> str:
    if error:
        return "error"
    return {True: "yes", False: "no", None: "?"}[value]


def print_table(rows: list[Row]) -> None:
    """The agreement table. "Only Prisma" are objects Prisma's drift changes that no Driftwatch
    finding names; "only Driftwatch" are objects of warning or critical findings (the ones that
    fail `check`) Prisma leaves alone; the last column holds what Prisma changes but Driftwatch
    reports as info only (so `check` passes on it)."""
    print("| application | migrations (replayed: Prisma / Driftwatch) | Prisma in sync? | `check` in sync? "
          "| `migrate diff` in sync? | only Prisma names | only Driftwatch names | Prisma changes, Driftwatch info |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        named = r.check_objects | r.check_info
        only_prisma = sorted(r.prisma_objects - named)
        only_dw = sorted(r.check_objects - r.prisma_objects)
        as_info = sorted(r.prisma_objects & (r.check_info - r.check_objects))
        cell = lambda items: ", ".join(items[:8]) + (f" (+{len(items) - 8})" if len(items) > 8 else "") or "—"  # noqa: E731
        replayed = f"{r.total} ({r.prisma_replayed} / {r.diff_replayed})"
        diff = yes_no(r.diff_in_sync, r.diff_error)
        if r.diff_failed:
            diff = f"failed at {r.diff_failed.split(':')[0]}"
        print(f"| {r.app.name} | {replayed} | {yes_no(r.prisma_in_sync)} | {yes_no(r.check_in_sync, r.check_error)} "
              f"| {diff} | {cell(only_prisma)} | {cell(only_dw)} | {cell(as_info)} |")
    for r in rows:
        notes = [f"Prisma: {r.prisma_error}" if r.prisma_error else "",
                 f"check: {r.check_error}" if r.check_error else "",
                 f"migrate diff: {r.diff_error or r.diff_failed}" if (r.diff_error or r.diff_failed) else ""]
        if r.diff_objects != r.check_objects and r.diff_in_sync is not None:
            notes.append(f"migrate diff names {sorted(r.diff_objects ^ r.check_objects)[:6]} unlike check")
        notes = [n for n in notes if n]
        if notes:
            print(f"- {r.app.name}: " + "; ".join(notes))
    print()
    print("seconds per app: " + "; ".join(
        f"{r.app.name}: " + ", ".join(f"{k} {v:.1f}" for k, v in r.seconds.items()) for r in rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("apps", nargs="+", help="app folders (or NAME=SCHEMA::MIGRATIONS)")
    ap.add_argument("--pg", choices=("system", "pgserver"), default="system")
    ap.add_argument("--oracle", type=Path, default=Path(os.environ.get("PRISMA_ORACLE_DIR", "")))
    ap.add_argument("--details", type=Path, help="write each tool's raw output under this folder")
    ap.add_argument("--init-sql", type=Path, help="SQL run in each fresh database first: what the app's platform "
                                                  "provides (e.g. Supabase's extensions schema), like Prisma's "
                                                  "shadowDbInitScript")
    args = ap.parse_args(argv)
    if not (args.oracle / "oracle.mjs").exists():
        print("compare_apps: pass --oracle DIR or set PRISMA_ORACLE_DIR", file=sys.stderr)
        return 1
    apps = [find_app(a) for a in args.apps]
    datadir = Path(tempfile.mkdtemp(prefix="driftwatch-compare-"))
    server = start(args.pg, datadir)
    import psycopg

    def admin(statement: str, database: str = "postgres") -> None:
        with psycopg.connect(server.url_for(database), autocommit=True) as conn:
            conn.execute(statement)

    rows = []
    try:
        for app in apps:
            print(f"… {app.name}: {app.schema} / {app.migrations}", file=sys.stderr, flush=True)
            rows.append(compare(app, server.url_for, args.oracle.resolve(), sys.executable, args.details, admin,
                                args.init_sql.read_text() if args.init_sql else None))
    finally:
        server.stop()
        shutil.rmtree(datadir, ignore_errors=True)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
