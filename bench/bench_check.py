#!/usr/bin/env python3
"""Benchmark `driftwatch check` against Prisma's own schema engine on large schemas.

Not a test: it always exits 0 once it has run (1 only if it could not run at all).

For each size (models) it
  1. generates a realistic, deterministic Prisma schema (bench/out/schema-N.prisma):
     8-12 fields per model of varied scalar and native types, optional fields,
     defaults (now(), literals, autoincrement, cuid/uuid), shared enums, @unique,
     @@index/@@unique, @updatedAt, @map/@@map, and 1-2 relations to earlier models;
  2. loads a fresh database with the DDL Prisma itself generates for it
     (`oracle.mjs ddl`), then perturbs it a little (drops one index, one column and
     one table) so that both tools have drift to find, and VACUUM ANALYZEs it (as
     autovacuum soon would; else it runs during the first tool's timed runs);
  3. times whole processes, --runs times each (median reported), on the same
     database in the same run:
        python -m checks check --database-url URL --schema S --format json   (Driftwatch)
        node oracle.mjs drift URL S                                          (Prisma's engine)
     Peak RSS is that process's own maximum resident set, read by a small measuring
     parent (GNU time, else a fork + os.wait4 wrapper; see run_measured).
     Driftwatch is timed twice, both reported: "dw cold" with its catalog cache off
     (DRIFTWATCH_NO_CACHE=1: every run parses and compiles the schema, as a first run
     would) and "dw warm" on a cache hit (a private XDG_CACHE_HOME that the warm-up run
     fills; the schema is unchanged between runs, as in CI re-running a check).

Then it prints a table, the growth per model, the start-up cost (`python -m checks
--version`), the modules `check` imports, and PASS/MISS for the targets (at 500
models: >= 5x faster than Prisma's engine and <= 60 MiB peak RSS), for cold and warm.
The 1-minute load average is printed with every figure: the machine may be shared.

    python bench/bench_check.py [--sizes 50,500,2000] [--runs 3] [--pg pgserver|system]
                                [--oracle DIR] [--out bench/out] [--seed 7]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MODELS = 500
TARGET_SPEEDUP = 5.0
TARGET_RSS_MIB = 60.0
HEAVY_MODULES = ("pydantic", "sqlalchemy", "pandas", "streamlit", "plotly", "httpx", "numpy")


# --------------------------------------------------------------------------- schema

NOUNS = (
    "Account Organization Team Member Invitation Project Board Column Card Label Sprint Release "
    "Invoice Payment Refund Subscription Plan Coupon Order Shipment Warehouse Product Variant "
    "Category Review Wishlist Cart Address Customer Supplier Contract Ticket Incident Alert "
    "Webhook Integration Document Folder Attachment Comment Reaction Notification Channel Thread "
    "Message Event Venue Booking Course Lesson Quiz Enrollment Certificate Device Sensor Reading "
    "Report Dashboard Widget Experiment Cohort Segment Campaign Lead Deal Pipeline Stage"
).split()

ENUMS_BASE = {
    "Status": ["ACTIVE", "INACTIVE", "ARCHIVED"],
    "Priority": ["LOW", "MEDIUM", "HIGH", "URGENT"],
}
ENUM_WORDS = "DRAFT PENDING REVIEW APPROVED REJECTED OPEN CLOSED PAUSED QUEUED RUNNING DONE FAILED".split()

# (field name, Prisma type, attributes, indexable?) -- names chosen so no model name clashes.
SCALARS = [
    ("title", "String", "@db.VarChar(200)", True),
    ("name", "String", "", True),
    ("description", "String?", "@db.Text", False),
    ("notes", "String?", "", False),
    ("code", "String", "@db.VarChar(32)", True),
    ("amount", "Decimal", "@db.Decimal(12, 2)", True),
    ("price", "Decimal?", "@db.Decimal(10, 2)", True),
    ("quantity", "Int", "@default(0)", True),
    ("score", "Float?", "", True),
    ("rating", "Float", "@default(0)", True),
    ("sortOrder", "Int", "@default(0)", True),
    ("version", "Int", "@default(1)", False),
    ("isActive", "Boolean", "@default(true)", True),
    ("isArchived", "Boolean", "@default(false)", False),
    ("publishedAt", "DateTime?", "", True),
    ("expiresAt", "DateTime?", "@db.Timestamptz(6)", True),
    ("startsOn", "DateTime", "@db.Date", True),
    ("metadata", "Json?", "", False),
    ("settings", "Json", "@default(\"{}\")", False),
    ("checksum", "Bytes?", "", False),
    ("sizeBytes", "BigInt", "@default(0)", True),
    ("views", "BigInt?", "", False),
    ("tags", "String[]", "", False),
    ("color", "String", "@default(\"#ffffff\")", False),
    ("locale", "String", "@default(\"en\") @db.VarChar(8)", True),
    ("ratio", "Float?", "@db.Real", False),
    ("shortCount", "Int?", "@db.SmallInt", False),
    ("ipAddress", "String?", "@db.Inet", False),
]
UNIQUES = [("slug", "String", "@unique"), ("email", "String", "@unique"), ("externalId", "String?", "@unique")]


def _lower(s: str) -> str:
    return s[0].lower() + s[1:]


def _snake(s: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in s).lstrip("_")


@dataclass
class Model:
    name: str
    table: str
    id_kind: str  # "int" | "cuid" | "uuid"
    lines: list[str] = field(default_factory=list)
    block: list[str] = field(default_factory=list)
    back: list[str] = field(default_factory=list)
    droppable_columns: list[str] = field(default_factory=list)  # optional, in no index


@dataclass
class GeneratedSchema:
    text: str
    models: list[Model]


def generate_schema(n_models: int, seed: int) -> GeneratedSchema:
    """A deterministic schema of n_models models (the same seed and size give the same text)."""
    rng = random.Random(f"{seed}:{n_models}")
    enums = dict(ENUMS_BASE)
    for j in range(max(0, n_models // 100)):
        enums[f"Kind{j}"] = rng.sample(ENUM_WORDS, rng.randint(3, 6))
    enum_names = list(enums)

    models: list[Model] = []
    for i in range(n_models):
        noun = NOUNS[i % len(NOUNS)]
        name = noun if i < len(NOUNS) else f"{noun}{i // len(NOUNS)}"
        mapped = rng.random() < 0.5
        table = _snake(name) + "s" if mapped else name
        id_kind = rng.choices(["int", "cuid", "uuid"], [60, 25, 15])[0]
        m = Model(name, table, id_kind)
        if id_kind == "int":
            m.lines.append("id Int @id @default(autoincrement())")
        elif id_kind == "cuid":
            m.lines.append("id String @id @default(cuid())")
        else:
            m.lines.append("id String @id @default(uuid()) @db.Uuid")

        target_fields = rng.randint(8, 12)
        used = 1
        # relations to 1-2 earlier models (distinct targets, so no relation names needed)
        if models:
            k = min(len(models), rng.choice([1, 1, 2]))
            for parent in rng.sample(models, k):
                fk = _lower(parent.name) + "Id"
                fk_type = "Int" if parent.id_kind == "int" else "String"
                native = " @db.Uuid" if parent.id_kind == "uuid" else ""
                optional = rng.random() < 0.3
                one_to_one = rng.random() < 0.08
                q = "?" if optional else ""
                m.lines.append(f"{fk} {fk_type}{q}{native}" + (" @unique" if one_to_one else ""))
                on_delete = "SetNull" if optional else rng.choice(["Cascade", "Restrict", "Cascade"])
                m.lines.append(f"{_lower(parent.name)} {parent.name}{q} "
                               f"@relation(fields: [{fk}], references: [id], onDelete: {on_delete})")
                if one_to_one:
                    parent.back.append(f"{_lower(m.name)} {m.name}?")
                else:
                    plural = _lower(m.name) + ("es" if m.name.endswith("s") else "s")
                    parent.back.append(f"{plural} {m.name}[]")
                    if rng.random() < 0.85:
                        m.block.append(f"@@index([{fk}])")
                used += 1

        indexable: list[str] = []
        if rng.random() < 0.4:
            uname, utype, uattr = rng.choice(UNIQUES)
            m.lines.append(f"{uname} {utype} {uattr}")
            used += 1
        if rng.random() < 0.6:
            enum = rng.choice(enum_names)
            if rng.random() < 0.7:
                m.lines.append(f"state {enum} @default({enums[enum][0]})")
            else:
                m.lines.append(f"state {enum}?")
            indexable.append("state")
            used += 1
        timestamps = rng.random() < 0.85
        n_scalars = max(2, target_fields - used - (2 if timestamps else 0))
        for fname, ftype, fattr, can_index in rng.sample(SCALARS, n_scalars):
            col = fname
            if rng.random() < 0.15 and _snake(fname) != fname:
                col = _snake(fname)
                fattr = (fattr + f' @map("{col}")').strip()
            m.lines.append(f"{fname} {ftype} {fattr}".rstrip())
            if can_index:
                indexable.append(fname)
            elif ftype.endswith("?"):
                m.droppable_columns.append(col)
        if timestamps:
            m.lines.append("createdAt DateTime @default(now())")
            m.lines.append("updatedAt DateTime @updatedAt")
            indexable.append("createdAt")
        if len(indexable) >= 2 and rng.random() < 0.35:
            m.block.append(f"@@index([{', '.join(rng.sample(indexable, 2))}])")
        elif indexable and rng.random() < 0.3:
            m.block.append(f"@@index([{rng.choice(indexable)}])")
        if len(indexable) >= 2 and rng.random() < 0.1:
            m.block.append(f"@@unique([{', '.join(rng.sample(indexable, 2))}])")
        if mapped:
            m.block.append(f'@@map("{table}")')
        models.append(m)

    out = [
        f"// Generated by bench/bench_check.py: {n_models} models, seed {seed}. Do not edit.",
        "datasource db {", '  provider = "postgresql"', "}", "",
        "generator client {", '  provider = "prisma-client-js"', "}", "",
    ]
    for ename, values in enums.items():
        out.append(f"enum {ename} {{")
        out.extend(f"  {v}" for v in values)
        out.append("}")
        out.append("")
    for m in models:
        out.append(f"model {m.name} {{")
        fields = [(ln.split(" ", 2) + [""])[:3] for ln in m.lines + m.back]  # name, type, attributes
        w0 = max(len(f[0]) for f in fields)
        w1 = max(len(f[1]) for f in fields)
        out.extend(f"  {f[0].ljust(w0)} {f[1].ljust(w1)} {f[2]}".rstrip() for f in fields)
        if m.block:
            out.append("")
            out.extend(f"  {b}" for b in m.block)
        out.append("}")
        out.append("")
    return GeneratedSchema("\n".join(out), models)


# --------------------------------------------------------------------------- processes

@dataclass
class Run:
    wall_ms: float
    rss_mib: float
    code: int
    stdout: str
    stderr: str


# ru_maxrss is inherited through exec: a child forked (or vforked, as subprocess and
# posix_spawn do) from this process starts its record at *our* peak RSS, which with
# psycopg and pgserver loaded is ~40 MiB -- larger than a small child's real peak.
# So each command is started by a small measuring parent: GNU time (-f %M) when present,
# else a fresh `python -S` that forks, execs and reads os.wait4's per-child rusage
# (whose own ~8 MiB then becomes the floor of what can be measured).
GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
_WAIT4_WRAPPER = (
    "import os,sys\n"
    "pid=os.fork()\n"
    "if pid==0:\n"
    "    try: os.execvp(sys.argv[2],sys.argv[2:])\n"
    "    finally: os._exit(127)\n"
    "_,st,ru=os.wait4(pid,0)\n"
    "open(sys.argv[1],'w').write(str(ru.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(st) & 255)\n"
)


def run_measured(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
                 timeout: float = 900) -> Run:
    """Run one process to completion; its wall time and its own peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        if GNU_TIME:
            wrapped = [GNU_TIME, "-f", "%M", "-o", rss.name, *cmd]
        else:
            wrapped = [sys.executable, "-S", "-c", _WAIT4_WRAPPER, rss.name, *cmd]
        t0 = time.perf_counter()
        proc = subprocess.Popen(wrapped, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        # Not proc.wait(timeout): with a timeout it polls, sleeping up to 50 ms between
        # polls, which added 0-50 ms to every figure. A blocking wait, and a timer to kill.
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            code = proc.wait()
        finally:
            watchdog.cancel()
        wall = (time.perf_counter() - t0) * 1000
        rss.seek(0)
        text = rss.read().strip().splitlines()
        kib = int(text[-1]) if text and text[-1].isdigit() else 0  # GNU time may add "Command exited ..."
        out.seek(0)
        err.seek(0)
        return Run(wall, kib / 1024, code,
                   out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def oracle_cmd(oracle: Path, *args: str) -> list[str]:
    return ["node", str(oracle / "oracle.mjs"), *args]


# --------------------------------------------------------------------------- databases

def load_database(admin_url: str, db_url: str, dbname: str, ddl: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{dbname}" TEMPLATE template0')
    # One multi-statement query is one implicit transaction, and 2,000 tables' worth of
    # locks overflows max_locks_per_transaction: send Prisma's script in batches instead.
    # (Statements end with ";" at the end of a line; the generated schema has no string
    # default that could contain one.)
    statements = [st for st in re.split(r";[ \t]*\n", ddl + "\n") if st.strip()]
    with psycopg.connect(db_url, autocommit=True) as conn:
        for i in range(0, len(statements), 200):
            conn.execute(";\n".join(statements[i:i + 200]))  # no parameters: simple query protocol


def perturb(db_url: str, gen: GeneratedSchema) -> tuple[list[str], int]:
    """Drop one index, one column, one table; return what was done and the table count."""
    import psycopg

    done: list[str] = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        # the last model's table: nothing references it, so only it goes
        last = gen.models[-1].table
        conn.execute(f'DROP TABLE "{last}" CASCADE')
        done.append(f"table {last}")
        mid = len(gen.models) // 2
        for m in gen.models[mid:-1] + gen.models[:mid]:
            if m.droppable_columns:
                col = m.droppable_columns[0]
                conn.execute(f'ALTER TABLE "{m.table}" DROP COLUMN "{col}"')
                done.append(f"column {m.table}.{col}")
                break
        rows = conn.execute(
            "SELECT i.indexname FROM pg_indexes i WHERE i.schemaname = 'public' "
            "AND i.indexname LIKE '%\\_idx' ORDER BY i.indexname").fetchall()
        if rows:
            name = rows[len(rows) // 2][0]
            conn.execute(f'DROP INDEX "{name}"')
            done.append(f"index {name}")
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    return done, int(tables)


def settle(db_url: str) -> None:
    """VACUUM ANALYZE the fresh database, as autovacuum would soon after such a load:
    otherwise autovacuum starts during the first tool's timed runs (its CPU competes
    with them) and the catalog queries of the first runs see no statistics."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# --------------------------------------------------------------------------- reporting

DW_TOOLS = ("dw cold", "dw warm")


@dataclass
class Result:
    models: int
    tables: int
    tool: str
    runs: list[Run]
    expected_code: int = 2
    load: float = 0.0  # 1-minute load average right after the timed runs

    @property
    def ms(self) -> float:
        return statistics.median(r.wall_ms for r in self.runs)

    @property
    def rss(self) -> float:
        return max(r.rss_mib for r in self.runs)

    @property
    def codes(self) -> set[int]:
        return {r.code for r in self.runs}

    def found(self) -> str:
        last = self.runs[-1]
        if self.tool in DW_TOOLS:
            try:
                data = json.loads(last.stdout)
                findings = data.get("findings", data) if isinstance(data, dict) else data
                return f"{len(findings)} findings"
            except (ValueError, TypeError, AttributeError):
                return "unparsable output"
        stmts = sum(1 for ln in last.stdout.splitlines() if ln.rstrip().endswith(";"))
        return f"{stmts} SQL stmts"


def heavy_imports(cmd: list[str], env: dict[str, str]) -> tuple[list[tuple[str, float]], float, dict[str, float]]:
    """Imports of a command (-X importtime): cumulative ms per root package, total, heavy ones."""
    r = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    tops: dict[str, float] = {}
    heavy: dict[str, float] = {}
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cum, raw = line[len("import time:"):].split("|")
        if not cum.strip().isdigit():
            continue  # the header line
        name = raw.strip()
        ms = int(cum) / 1000
        if name in HEAVY_MODULES:
            heavy[name] = max(heavy.get(name, 0.0), ms)
        if raw.startswith(" ") and not raw.startswith("  "):  # level 0: disjoint in time
            root = name.split(".")[0]
            tops[root] = tops.get(root, 0.0) + ms
    total = sum(tops.values())
    return sorted(tops.items(), key=lambda kv: -kv[1]), total, heavy


def print_table(results: list[Result]) -> None:
    hdr = f"{'models':>6} {'tables':>6}  {'tool':<10} {'median ms':>10} {'peak MiB':>9} {'ms/model':>9} " \
          f"{'ratio':>7} {'load':>5}  {'exit':<5} found"
    print(hdr)
    print("-" * len(hdr))
    by_size: dict[int, dict[str, Result]] = {}
    for r in results:
        by_size.setdefault(r.models, {})[r.tool] = r
    for size in sorted(by_size):
        pair = by_size[size]
        pr = pair.get("prisma")
        for tool in (*DW_TOOLS, "prisma"):
            r = pair.get(tool)
            if r is None:
                continue
            ratio = f"{pr.ms / r.ms:6.1f}x" if (pr and r is not pr) else ""
            codes = ",".join(str(c) for c in sorted(r.codes))
            flag = "" if r.codes == {r.expected_code} else "!"
            print(f"{r.models:>6} {r.tables:>6}  {r.tool:<10} {r.ms:>10.0f} {r.rss:>9.1f} "
                  f"{r.ms / r.models:>9.2f} {ratio:>7} {r.load:>5.2f}  {codes + flag:<5} {r.found()}")
    print("ratio = Prisma engine median / Driftwatch median (higher is better for Driftwatch); "
          "exit 2 = drift found as expected, '!' = unexpected exit code; load = 1-min load average "
          "after the runs.\ndw cold = catalog cache off (DRIFTWATCH_NO_CACHE=1, parse + compile every run); "
          "dw warm = catalog cache hit (unchanged schema)")


def print_growth(results: list[Result]) -> None:
    for tool in (*DW_TOOLS, "prisma"):
        rs = sorted((r for r in results if r.tool == tool), key=lambda r: r.models)
        if len(rs) < 2:
            continue
        steps = []
        for a, b in zip(rs, rs[1:]):
            steps.append(f"{a.models}->{b.models}: +{(b.ms - a.ms) / (b.models - a.models):.2f} ms/model")
        print(f"  {tool:<10} " + ", ".join(f"{r.models}: {r.ms / r.models:.2f} ms/model" for r in rs)
              + "   (marginal " + "; ".join(steps) + ")")


# --------------------------------------------------------------------------- main

def default_oracle() -> Path:
    env = os.environ.get("PRISMA_ORACLE_DIR")
    return Path(env) if env else (ROOT.parent / "shared" / "tools" / "prisma-oracle")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="50,500,2000", help="comma-separated model counts (default 50,500,2000)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per tool and size; the median is reported")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per tool and size first (default 1)")
    ap.add_argument("--pg", choices=("pgserver", "system"), default="pgserver",
                    help="PostgreSQL to start: the pgserver wheel (16, default) or the system's pg_ctl (15)")
    ap.add_argument("--oracle", type=Path, default=None,
                    help="prisma-oracle folder (default $PRISMA_ORACLE_DIR or ../shared/tools/prisma-oracle)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out", help="generated schemas and results")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--python", default=sys.executable, help="interpreter for Driftwatch (default: this one)")
    ap.add_argument("--only", choices=("driftwatch", "prisma"), help="time one tool only")
    ap.add_argument("--generate-only", action="store_true", help="write the schemas and stop")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per process (default 900)")
    args = ap.parse_args(argv)

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    oracle = (args.oracle or default_oracle()).resolve()

    schemas: dict[int, tuple[Path, GeneratedSchema]] = {}
    for n in sizes:
        gen = generate_schema(n, args.seed)
        path = args.out / f"schema-{n}.prisma"
        path.write_text(gen.text)
        schemas[n] = (path, gen)
        print(f"schema: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
              f"({n} models, {len(gen.text.splitlines())} lines)")
    if args.generate_only:
        return 0

    if not (oracle / "oracle.mjs").exists():
        print(f"bench: no prisma-oracle at {oracle} (pass --oracle DIR or set PRISMA_ORACLE_DIR)", file=sys.stderr)
        return 1
    if not (oracle / "node_modules").is_dir():
        print(f"bench: {oracle} has no node_modules: run npm install there", file=sys.stderr)
        return 1
    if not shutil.which("node"):
        print("bench: node is not on PATH", file=sys.stderr)
        return 1

    warnings.filterwarnings("ignore")  # platformdirs chatter from pgserver
    from checks.localpg import start

    pgdir = Path(tempfile.mkdtemp(prefix="dw-bench-pg-"))
    print(f"starting PostgreSQL ({args.pg}) in {pgdir} ...", flush=True)
    server = start(args.pg, pgdir)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "DRIFTWATCH_DEBUG", "DRIFTWATCH_NO_CACHE")}
    env.setdefault("NO_COLOR", "1")
    bench_cache = Path(tempfile.mkdtemp(prefix="dw-bench-cache-"))  # warm runs' own catalog cache
    env_cold = dict(env, DRIFTWATCH_NO_CACHE="1", XDG_CACHE_HOME=str(bench_cache))
    env_warm = dict(env, XDG_CACHE_HOME=str(bench_cache))
    dw_base = [args.python, "-m", "checks"]
    results: list[Result] = []
    notes: list[str] = []
    try:
        import psycopg

        with psycopg.connect(server.url, autocommit=True) as c:
            version = c.execute("SHOW server_version").fetchone()[0]
        print(f"PostgreSQL {version}, node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}, "
              f"python {sys.version.split()[0]}", flush=True)

        for n in sizes:
            path, gen = schemas[n]
            dbname = f"dw_bench_{n}"
            url = server.url_for(dbname)
            t0 = time.perf_counter()
            ddl = run_measured(oracle_cmd(oracle, "ddl", str(path)), env=dict(env, DATABASE_URL=server.url),
                               timeout=args.timeout)
            if ddl.code != 0:
                print(f"bench: Prisma rejected the generated {n}-model schema:\n{ddl.stderr[-2000:]}", file=sys.stderr)
                return 1
            (args.out / f"schema-{n}.sql").write_text(ddl.stdout)
            load_database(server.url, url, dbname, ddl.stdout)
            done, tables = perturb(url, gen)
            settle(url)
            print(f"\n[{n} models] DB {dbname}: Prisma DDL {ddl.wall_ms / 1000:.1f}s, loaded+perturbed in "
                  f"{time.perf_counter() - t0:.1f}s; dropped {', '.join(done)}; {tables} tables", flush=True)

            tools = []
            if args.only in (None, "driftwatch"):
                dw_cmd = [*dw_base, "check", "--database-url", url, "--schema", str(path), "--format", "json"]
                tools.append(("dw cold", dw_cmd, ROOT, env_cold))
                tools.append(("dw warm", dw_cmd, ROOT, env_warm))
            if args.only in (None, "prisma"):
                tools.append(("prisma", oracle_cmd(oracle, "drift", url, str(path)), None, env))
            for tool, cmd, cwd, tool_env in tools:
                for _ in range(max(args.warmup, 1 if tool == "dw warm" else 0)):  # fills the cache
                    run_measured(cmd, cwd=cwd, env=tool_env, timeout=args.timeout)
                runs = [run_measured(cmd, cwd=cwd, env=tool_env, timeout=args.timeout) for _ in range(args.runs)]
                res = Result(n, tables, tool, runs, load=os.getloadavg()[0])
                results.append(res)
                last = runs[-1]
                (args.out / f"{tool.replace(' ', '-')}-{n}.out").write_text(
                    last.stdout + ("\n--- stderr\n" + last.stderr if last.stderr else ""))
                cached = ""
                if tool == "dw warm":  # the runs read what the warm-up stored
                    cached = f", {len(list((bench_cache / 'driftwatch').glob('catalog-*.pickle')))} cached catalog(s)"
                print(f"  {tool:<10} " + " ".join(f"{r.wall_ms:.0f}ms/{r.rss_mib:.0f}MiB/exit{r.code}" for r in runs)
                      + f"  (load {res.load:.2f}{cached})", flush=True)
                if res.codes != {2}:
                    err = (last.stderr.strip().splitlines() or ["(no stderr)"])[-1]
                    notes.append(f"{tool} at {n} models exited {sorted(res.codes)}, expected 2: {err[:300]}")

        # start-up cost
        ver = [run_measured([*dw_base, "--version"], cwd=ROOT, env=env) for _ in range(max(3, args.runs))]
        bare = [run_measured([args.python, "-c", "pass"], cwd=ROOT, env=env) for _ in range(max(3, args.runs))]
        imports, import_ms, heavy = [], 0.0, {}
        if args.only in (None, "driftwatch") and sizes:
            probe = sizes[0]
            imports, import_ms, heavy = heavy_imports(
                [*dw_base, "check", "--database-url", server.url_for(f"dw_bench_{probe}"),
                 "--schema", str(schemas[probe][0]), "--format", "json"], env_cold)
    finally:
        server.stop()
        shutil.rmtree(pgdir, ignore_errors=True)
        shutil.rmtree(bench_cache, ignore_errors=True)

    print("\n=== driftwatch check vs Prisma schema engine (wasm)  "
          f"[{args.pg}, PostgreSQL {version}, runs={args.runs}, median wall, peak RSS of the process, "
          f"load now {os.getloadavg()[0]:.2f}]")
    print_table(results)
    print("\ngrowth (median ms / models):")
    print_growth(results)
    vm = statistics.median(r.wall_ms for r in ver)
    bm = statistics.median(r.wall_ms for r in bare)
    print(f"\nstart-up: `python -m checks --version` {vm:.0f} ms, {max(r.rss_mib for r in ver):.1f} MiB "
          f"(bare `python -c pass` {bm:.0f} ms)")
    if imports:
        top = ", ".join(f"{n} {ms:.0f}" for n, ms in imports[:8])
        print(f"imports of `check` (-X importtime, top-level cumulative ms, total {import_ms:.0f}): {top}")
        print("  heavy modules imported by check: "
              + (", ".join(f"{n} ({ms:.0f} ms)" for n, ms in sorted(heavy.items())) if heavy else "none"))

    print(f"\ntargets at {TARGET_MODELS} models:")
    pr = next((r for r in results if r.tool == "prisma" and r.models == TARGET_MODELS), None)
    for tool in DW_TOOLS:
        dw = next((r for r in results if r.tool == tool and r.models == TARGET_MODELS), None)
        if dw is None:
            continue
        if pr and dw.codes == {2}:
            speed = pr.ms / dw.ms
            print(f"  {tool}: speed  >= {TARGET_SPEEDUP:.0f}x Prisma's engine: {speed:.1f}x  "
                  f"{'PASS' if speed >= TARGET_SPEEDUP else 'MISS'}  (load {dw.load:.2f} / {pr.load:.2f})")
        else:
            print(f"  {tool}: speed  >= {TARGET_SPEEDUP:.0f}x Prisma's engine: n/a "
                  f"({'needs a Prisma run' if not pr else 'needs a Driftwatch run exiting 2'})")
        if dw.codes == {2}:
            print(f"  {tool}: memory <= {TARGET_RSS_MIB:.0f} MiB peak RSS: {dw.rss:.1f} MiB  "
                  f"{'PASS' if dw.rss <= TARGET_RSS_MIB else 'MISS'}")
        else:
            print(f"  {tool}: memory <= {TARGET_RSS_MIB:.0f} MiB peak RSS: n/a")
    for note in notes:
        print(f"note: {note}")

    (args.out / "results.json").write_text(json.dumps({
        "pg": args.pg, "postgres": version, "runs": args.runs, "seed": args.seed,
        "startup_ms": vm, "python_bare_ms": bm,
        "results": [{"models": r.models, "tables": r.tables, "tool": r.tool, "median_ms": r.ms,
                     "peak_rss_mib": r.rss, "load_avg_1min": r.load, "walls_ms": [x.wall_ms for x in r.runs],
                     "exit_codes": [x.code for x in r.runs]} for r in results],
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
