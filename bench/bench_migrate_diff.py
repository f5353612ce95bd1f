"""Benchmark: `driftwatch migrate diff` on a long generated migration history.

    python bench/bench_migrate_diff.py [--migrations 500] [--runs 3] [--pg pgserver|system]
                                       [--oracle DIR] [--out DIR] [--seed 7]

A benchmark, not a test: it exits 0 whatever the numbers (1 only if it cannot run).

It generates a deterministic history of N migrations in the shapes real apps have (new
tables, columns added and dropped, indexes, foreign keys with their relation fields, enums
and values added to them, data updates in DO blocks, a CREATE INDEX CONCURRENTLY alone in
its file) and the schema.prisma they build, then times, whole process, in the same run:

  driftwatch migrate diff                         (embedded PostgreSQL: start, replay, compare, clean)
  driftwatch migrate diff --shadow-database-url   (an empty database on the benchmark's server)
  node oracle.mjs deploy URL DIR                  (Prisma's engine, same server, empty database: the peer)

and prints wall time, time per migration and the replay time Driftwatch measured itself.
Both must replay everything, and `migrate diff` must find the history in sync with the
generated schema (it says so when not: that would be a bug in the generator or the tool).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
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
class Column:
    name: str
    prisma: str  # the field line's type and attributes, e.g. "Int @default(0)"


@dataclass
class Table:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    indexes: list[str] = field(default_factory=list)  # column names with an @@index
    relations: list[tuple[str, str]] = field(default_factory=list)  # (fk column, target table)


def generate(n: int, seed: int) -> tuple[list[str], str]:
    """(migration scripts in order, the schema.prisma they build)."""
    rnd = random.Random(seed)
    tables: dict[str, Table] = {}
    enums: dict[str, list[str]] = {}
    scripts: list[str] = []
    counter = 0

    def new_table() -> str:
        name = f"Thing{len(tables)}"
        tables[name] = Table(name, {"id": Column("id", "String @id"),
                                    "createdAt": Column("createdAt", "DateTime @default(now())")})
        return (f'-- CreateTable\nCREATE TABLE "{name}" (\n    "id" TEXT NOT NULL,\n'
                f'    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,\n\n'
                f'    CONSTRAINT "{name}_pkey" PRIMARY KEY ("id")\n);\n')

    scripts.append(new_table() + new_table())
    while len(scripts) < n:
        counter += 1
        t = tables[rnd.choice(sorted(tables))]
        kind = rnd.choices(["table", "column", "index", "relation", "enum", "enum_value", "drop", "data",
                            "concurrently"], [14, 30, 12, 12, 5, 5, 8, 10, 4])[0]
        if kind == "table" or len(tables) < 3:
            scripts.append(new_table())
        elif kind == "column":
            col = f"col{counter}"
            sql_type, prisma = rnd.choice([("TEXT", "String?"), ("INTEGER NOT NULL DEFAULT 0", "Int @default(0)"),
                                           ("BOOLEAN NOT NULL DEFAULT false", "Boolean @default(false)"),
                                           ("TIMESTAMP(3)", "DateTime?"), ("JSONB", "Json?"),
                                           ("DOUBLE PRECISION", "Float?")])
            t.columns[col] = Column(col, prisma)
            scripts.append(f'-- AlterTable\nALTER TABLE "{t.name}" ADD COLUMN "{col}" {sql_type};\n')
        elif kind in ("index", "concurrently"):
            free = [c for c in t.columns if c.startswith("col") and c not in t.indexes and "Json" not in t.columns[c].prisma]
            if not free:
                continue
            col = rnd.choice(free)
            t.indexes.append(col)
            how = "CONCURRENTLY " if kind == "concurrently" else ""
            scripts.append(f'-- CreateIndex\nCREATE INDEX {how}"{t.name}_{col}_idx" ON "{t.name}"("{col}");\n')
        elif kind == "relation":
            target = rnd.choice(sorted(tables))
            col = f"r{counter}Id"
            t.columns[col] = Column(col, "String?")
            t.relations.append((col, target))
            t.indexes.append(col)
            scripts.append(
                f'-- AlterTable\nALTER TABLE "{t.name}" ADD COLUMN "{col}" TEXT;\n\n'
                f'-- CreateIndex\nCREATE INDEX "{t.name}_{col}_idx" ON "{t.name}"("{col}");\n\n'
                f'-- AddForeignKey\nALTER TABLE "{t.name}" ADD CONSTRAINT "{t.name}_{col}_fkey" FOREIGN KEY ("{col}") '
                f'REFERENCES "{target}"("id") ON DELETE SET NULL ON UPDATE CASCADE;\n')
        elif kind == "enum":
            name = f"Kind{len(enums)}"
            enums[name] = ["ALPHA", "BETA"]
            col = f"k{counter}"
            t.columns[col] = Column(col, f"{name} @default(ALPHA)")
            scripts.append(f"-- CreateEnum\nCREATE TYPE \"{name}\" AS ENUM ('ALPHA', 'BETA');\n\n"
                           f'-- AlterTable\nALTER TABLE "{t.name}" ADD COLUMN "{col}" "{name}" NOT NULL DEFAULT \'ALPHA\';\n')
        elif kind == "enum_value" and enums:
            name = rnd.choice(sorted(enums))
            value = f"V{counter}"
            enums[name].append(value)
            scripts.append(f"-- AlterEnum\nALTER TYPE \"{name}\" ADD VALUE '{value}';\n")
        elif kind == "drop":
            droppable = [c for c in t.columns if c.startswith("col") and c not in t.indexes]
            if not droppable:
                continue
            col = rnd.choice(droppable)
            del t.columns[col]
            scripts.append(f'/*\n  Warnings:\n\n  - You are about to drop the column `{col}` on the `{t.name}` table. '
                           f'All the data in the column will be lost.\n\n*/\n'
                           f'-- AlterTable\nALTER TABLE "{t.name}" DROP COLUMN "{col}";\n')
        elif kind == "data":
            scripts.append(f"-- Backfill; written by hand\nDO $$\nBEGIN\n"
                           f"  UPDATE \"{t.name}\" SET \"createdAt\" = now() WHERE \"id\" = 'x;y';\n"
                           f"  RAISE NOTICE 'done; {counter}';\nEND $$;\n")
    return scripts, render_schema(tables, enums)


def render_schema(tables: dict[str, Table], enums: dict[str, list[str]]) -> str:
    lines = ['datasource db {\n  provider = "postgresql"\n  url      = env("DATABASE_URL")\n}\n']
    back: dict[str, list[tuple[str, str]]] = {}
    for t in tables.values():
        for col, target in t.relations:
            back.setdefault(target, []).append((t.name, col))
    for t in tables.values():
        lines.append(f"model {t.name} {{")
        for c in t.columns.values():
            lines.append(f"  {c.name} {c.prisma}")
        for col, target in t.relations:
            lines.append(f'  {col[:-2]} {target}? @relation("{t.name}_{col}", fields: [{col}], references: [id], '
                         f"onDelete: SetNull)")
        for source, col in back.get(t.name, []):
            lines.append(f'  back_{source}_{col} {source}[] @relation("{source}_{col}")')
        for col in t.indexes:
            lines.append(f"  @@index([{col}])")
        lines.append("}\n")
    for name, values in enums.items():
        lines.append(f"enum {name} {{\n" + "".join(f"  {v}\n" for v in values) + "}\n")
    return "\n".join(lines)


def write_history(out: Path, scripts: list[str], schema: str) -> tuple[Path, Path]:
    migrations = out / "migrations"
    shutil.rmtree(migrations, ignore_errors=True)
    migrations.mkdir(parents=True)
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')
    for i, script in enumerate(scripts):
        folder = migrations / f"2024{i // 10000:02d}{i % 10000:04d}000000_step_{i}"
        folder.mkdir()
        (folder / "migration.sql").write_text(script)
    schema_path = out / "schema.prisma"
    schema_path.write_text(schema)
    return migrations, schema_path


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})},
                          timeout=3600)
    return time.monotonic() - t, done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="time driftwatch migrate diff on a long migration history")
    ap.add_argument("--migrations", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pg", choices=("pgserver", "system"), default="pgserver")
    ap.add_argument("--oracle", type=Path, default=Path(os.environ.get("PRISMA_ORACLE_DIR", "")))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "migrate-diff")
    args = ap.parse_args(argv)

    scripts, schema = generate(args.migrations, args.seed)
    migrations, schema_path = write_history(args.out, scripts, schema)
    oracle = args.oracle if (args.oracle / "oracle.mjs").exists() else None
    print(f"{len(scripts)} migrations, {sum(len(s) for s in scripts) // 1024} KiB of SQL, "
          f"{schema.count('model ')} models in {schema_path}")
    datadir = Path(tempfile.mkdtemp(prefix="driftwatch-bench-diff-"))
    server = start(args.pg, datadir)
    import psycopg

    def fresh(name: str) -> str:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return server.url_for(name)

    py = [sys.executable, "-m", "checks", "migrate", "diff", "--migrations", str(migrations),
          "--schema", str(schema_path), "--format", "json"]
    results: dict[str, list[float]] = {}
    replay: list[float] = []
    try:
        for run in range(args.runs + 1):  # the first run warms caches (and initdb of the embedded server)
            sides = [("driftwatch migrate diff (embedded PostgreSQL)", py, None),
                     (f"driftwatch migrate diff (shadow on {args.pg})", py + ["--shadow-database-url", fresh("shadow")],
                      None)]
            if oracle is not None:
                sides.append((f"Prisma's engine: oracle deploy into an empty database ({args.pg})",
                              ["node", str(oracle / "oracle.mjs"), "deploy", fresh("peer"), str(migrations)], None))
            for label, cmd, env in sides:
                seconds, done = timed(cmd, env)
                if label.startswith("driftwatch"):
                    payload = json.loads(done.stdout) if done.stdout.strip() else {}
                    if done.returncode != 0 or payload.get("replayed") != len(scripts):
                        print(f"  {label}: exit {done.returncode}, replayed {payload.get('replayed')}, "
                              f"failed {payload.get('failed')}, {done.stderr.strip()[:300]}")
                elif done.returncode != 0 or len(json.loads(done.stdout)["appliedMigrationNames"]) != len(scripts):
                    print(f"  {label}: exit {done.returncode}: {done.stderr.strip()[:300]}")
                if run:
                    results.setdefault(label, []).append(seconds)
        # Driftwatch's own replay time (without start-up and comparison), from one more run
        from checks.replay import migrate_diff

        result = migrate_diff(migrations, schema_path, shadow_url=fresh("shadow"))
        replay.append(result.replay_seconds)
        slowest = sorted(result.timings, key=lambda t: -t[1])[:3]
    finally:
        server.stop()
        shutil.rmtree(datadir, ignore_errors=True)

    n = len(scripts)
    print(f"\nmedian of {args.runs} run(s), whole process, {n} migrations:")
    print(f"| command | wall time | per migration |\n|---|---|---|")
    for label, times in results.items():
        med = statistics.median(times)
        print(f"| {label} | {med:.2f} s | {med / n * 1000:.1f} ms |")
    print(f"\nDriftwatch's replay alone (shadow, in-process): {replay[0]:.2f} s, {replay[0] / n * 1000:.1f} ms per "
          f"migration; in sync: {result.report.in_sync()} ({len(result.report.findings)} finding(s)); slowest: "
          + ", ".join(f"{name} {sec * 1000:.0f} ms" for name, sec in slowest))
    if oracle is None:
        print("(no prisma-oracle: pass --oracle DIR or set PRISMA_ORACLE_DIR for the peer's figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
