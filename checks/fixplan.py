"""Fix plans: the ordered statements that bring a database to what the Prisma schema expects.

    plan = plan_fixes(expected, actual, report, data=LiveData(conn))
    run, skipped = plan.select(allow_destructive=False)

A plan is built from the findings' own fixes (Prisma's text, see `checks.ddl`), so a fix is
never a second opinion on what Prisma wants. A fix is data: `Finding.statements`, each a
`checks.ddl.Statement(op, target, sql)`, so the plan orders and judges statements by what
they do and to what — never by parsing the SQL back or reading a finding's message.
`classify` (SQL text → op) remains only for SQL nobody structured: a runbook's. `plan_fixes`:

* dedupes: one enum recreation shared by several ``extra_enum_value`` findings runs once and
  lists all of them; a statement that two fixes share runs once;
* plans each statement of a fix on its own (one statement, ending in ``;``);
* orders them by `PHASES`, the single place that decides what runs before what (`phase_of`):
  schemas; drops of foreign keys (nothing depends on a foreign key, and a column, index or
  table cannot be dropped while one uses it); enums and their values; tables; columns;
  types, defaults and nullability; primary keys; drops of indexes, then of columns, tables
  (a referencing table before the table it references) and enums; indexes; foreign keys last,
  so that every table and column they reference exists. Within a phase, declaration order;
* marks each statement ``safe`` or ``destructive`` with a reason. Destructive: anything that
  drops (table, column, index, constraint, type), a type change that is not a widening, an
  enum recreation (it removes values), and whatever the live rows would make fail — SET NOT
  NULL on a column holding NULLs, ADD COLUMN NOT NULL without a default on a table with rows,
  a unique index, primary key or foreign key the rows violate. The rows are asked through a
  `DataProbe` (`LiveData` on a connection: bounded, read-only counts); without one, what
  depends on the rows is destructive with the reason that it could not be checked;
* changes a type PostgreSQL cannot cast by itself (text → boolean) with the finding's
  ``USING`` conversion when every live value converts (`DataProbe.converts`), else with
  Prisma's drop-and-add of the column, destructive, saying how many rows lose a value;
* keeps what the schema cannot express (partial, expression, INCLUDE indexes: findings
  without a fix) unless the caller names an index in ``drop_indexes``;
* keeps the statements of one fix together (``unit``): when one of them is destructive
  (dropping an index before re-creating it differently), the others are marked destructive
  too, so that a plan without ``--allow-destructive`` never runs half a replacement.

`FixPlan.select` splits a plan into what runs and what is skipped; `transactions` groups
what runs into transactions (``ALTER TYPE … ADD VALUE`` first, on its own, when later
statements use the new value or the server is older than PostgreSQL 12 — see
`checks.sqltext.needs_own_transaction`). Nothing here writes: `checks.operations.fix` runs
plans through `checks.guard`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .catalog import Catalog, ForeignKey, Table
from .ddl import Fix, Statement, Target, column_default_sql, string_literal
from .findings import DriftReport, Finding

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DESTRUCTIVE",
    "PHASES",
    "SAFE",
    "DataProbe",
    "FixPlan",
    "LiveData",
    "PlannedStatement",
    "describe_finding",
    "finding_key",
    "finding_ref",
    "phase_of",
    "plan_fixes",
]

SAFE, DESTRUCTIVE = "safe", "destructive"

#: The order in which a plan's statements run; `phase_of` assigns each statement its phase.
PHASES = (
    "schemas",
    "drop_foreign_keys",
    "enums",
    "tables",
    "columns",
    "column_changes",
    "primary_keys",
    "drop_indexes",
    "drop_columns",
    "drop_tables",
    "drop_enums",
    "indexes",
    "foreign_keys",
)

#: Counts stop here: "at least 1000000 rows" is as useful as the exact number, and cheaper.
COUNT_CAP = 1_000_000


# ---------------------------------------------------------------------------------------------
# What a plan is made of


@dataclass(frozen=True)
class PlannedStatement:
    """One statement of a plan: its SQL, when it runs, whether it can lose data, what it fixes."""

    sql: str  # one statement, ending in ";"
    phase: str
    safety: str  # SAFE | DESTRUCTIVE
    reason: str | None  # why destructive, or a caveat for a safe one ("may fail if …")
    findings: tuple[Finding, ...]
    unit: int  # statements of one fix share a unit: they run or are skipped together
    op: str = "other"  # what the statement does (`classify`)

    @property
    def destructive(self) -> bool:
        return self.safety == DESTRUCTIVE

    def to_json(self) -> dict[str, Any]:
        return {"sql": self.sql, "safety": self.safety, "reason": self.reason, "phase": self.phase,
                "findings": [finding_ref(f) for f in self.findings]}


@dataclass(frozen=True)
class FixPlan:
    """The whole plan, in the order it runs, and the findings no statement fixes."""

    statements: tuple[PlannedStatement, ...]
    unfixable: tuple[Finding, ...] = ()
    report: DriftReport = field(default_factory=lambda: DriftReport(()))

    @property
    def empty(self) -> bool:
        return not self.statements

    def select(self, allow_destructive: bool) -> tuple[list[PlannedStatement], list[PlannedStatement]]:
        """(statements to run, statements skipped): destructive ones run only when allowed."""
        run = [s for s in self.statements if allow_destructive or not s.destructive]
        skipped = [s for s in self.statements if not (allow_destructive or not s.destructive)]
        return run, skipped

    def covered(self, statements: Iterable[PlannedStatement]) -> list[Finding]:
        """The findings `statements` fix (each once)."""
        seen: dict[tuple, Finding] = {}
        for s in statements:
            for f in s.findings:
                seen.setdefault(finding_key(f), f)
        return list(seen.values())

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.statements]


def transactions(statements: Sequence[PlannedStatement], server_version_num: int | None = None
                 ) -> list[list[PlannedStatement]]:
    """Group statements into the transactions that run them, in order.

    One transaction, except for enum values: PostgreSQL refuses to use a value added by
    ``ALTER TYPE … ADD VALUE`` before that transaction commits (and, before 12, to add one
    inside a transaction at all). So when a later statement names an added value, or the
    server is older than 12, the ADD VALUE statements go first, in a transaction of their
    own that commits before the rest (adding a value is harmless and additive).
    """
    adds = [s for s in statements if s.op == "add_value"]
    rest = [s for s in statements if s.op != "add_value"]
    if not adds or not rest:
        return [list(statements)] if statements else []
    if (server_version_num is not None and server_version_num < 120000) or uses_added_values(adds, rest):
        return [adds, rest]
    return [list(statements)]


def uses_added_values(adds: Sequence[PlannedStatement], rest: Sequence[PlannedStatement]) -> list[PlannedStatement]:
    """The statements of `rest` that mention a value one of `adds` adds (its string literal)."""
    literals = [m.group(1) for s in adds if (m := _ADD_VALUE_LITERAL.search(s.sql))]
    return [s for s in rest if s.op != "create_type" and any(lit in s.sql for lit in literals)]


_ADD_VALUE_LITERAL = re.compile(r"ADD\s+VALUE\s+(?:IF\s+NOT\s+EXISTS\s+)?('(?:[^']|'')*')", re.I | re.S)


# ---------------------------------------------------------------------------------------------
# Findings, briefly


def finding_key(f: Finding) -> tuple[str | None, ...]:
    """What identifies a finding across two checks (not its message, fix or severity)."""
    return (f.kind, f.schema, f.table, f.column, f.name, f.expected, f.actual)


def finding_ref(f: Finding) -> dict[str, Any]:
    """A finding as a plan's JSON names it."""
    return {"kind": f.kind, "severity": f.severity, "schema": f.schema, "table": f.table,
            "column": f.column, "name": f.name}


def describe_finding(f: Finding) -> str:
    """`missing_column avatars.projectId`, `missing_foreign_key avatars_projectId_fkey on avatars`."""
    if f.kind in ("missing_enum_value", "extra_enum_value"):
        return f"{f.kind} {f.name} {f.expected if f.kind == 'missing_enum_value' else f.actual!r}"
    if f.table and f.column:
        return f"{f.kind} {f.table}.{f.column}"
    if f.table and f.name:
        return f"{f.kind} {f.name} on {f.table}"
    return f"{f.kind} {f.table or f.name or f.schema}"


# ---------------------------------------------------------------------------------------------
# Reading the rows


class DataProbe(Protocol):
    """Read-only questions about the live rows; every answer is None when it cannot be told."""

    def row_count(self, schema: str, table: str) -> int | None: ...

    def null_count(self, schema: str, table: str, column: str) -> int | None: ...

    def non_null_count(self, schema: str, table: str, column: str) -> int | None: ...

    def duplicate_count(self, schema: str, table: str, columns: Sequence[str], where: str | None) -> int | None: ...

    def orphan_count(self, schema: str, table: str, fk: ForeignKey) -> int | None: ...

    def enum_value_count(self, schema: str, table: str, column: str, values: Sequence[str],
                         array: bool) -> int | None: ...

    def converts(self, schema: str, table: str, column: str, cast: str) -> bool | None: ...


class LiveData:
    """`DataProbe` on a psycopg connection: each question is one bounded, read-only count.

    Counts stop at `COUNT_CAP`; a question that takes longer than `timeout` seconds, waits
    longer than `lock_timeout` for a table another session locked, or fails, is answered None. Every identifier goes through `psycopg.sql.Identifier`.
    """

    def __init__(self, conn: "psycopg.Connection", timeout: float = 10.0, lock_timeout: float = 2.0) -> None:
        self.conn = conn
        self.timeout = timeout
        self.lock_timeout = lock_timeout

    def _count(self, query: Any, params: Sequence[Any] = ()) -> int | None:
        import psycopg
        from psycopg import sql

        capped = sql.SQL("SELECT count(*) FROM ({} LIMIT {}) AS probe").format(query, sql.Literal(COUNT_CAP))
        try:
            with self.conn.transaction(force_rollback=True):
                self.conn.execute("SET TRANSACTION READ ONLY")
                self.conn.execute(sql.SQL("SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}").format(
                    sql.Literal(max(1, int(self.timeout * 1000))), sql.Literal(max(1, int(self.lock_timeout * 1000)))))
                row = self.conn.execute(capped, params).fetchone()
        except psycopg.Error:
            return None
        return int(row[0]) if row else None

    def row_count(self, schema: str, table: str) -> int | None:
        from psycopg import sql

        return self._count(sql.SQL("SELECT 1 FROM {}").format(sql.Identifier(schema, table)))

    def null_count(self, schema: str, table: str, column: str) -> int | None:
        from psycopg import sql

        return self._count(sql.SQL("SELECT 1 FROM {} WHERE {} IS NULL").format(
            sql.Identifier(schema, table), sql.Identifier(column)))

    def non_null_count(self, schema: str, table: str, column: str) -> int | None:
        from psycopg import sql

        return self._count(sql.SQL("SELECT 1 FROM {} WHERE {} IS NOT NULL").format(
            sql.Identifier(schema, table), sql.Identifier(column)))

    def duplicate_count(self, schema: str, table: str, columns: Sequence[str], where: str | None) -> int | None:
        """Groups of rows sharing a non-NULL value of `columns` (a unique index would refuse them)."""
        from psycopg import sql

        cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        conditions = [sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in columns]
        if where:
            conditions.append(sql.SQL("({})").format(sql.SQL(where)))
        return self._count(sql.SQL("SELECT 1 FROM {} WHERE {} GROUP BY {} HAVING count(*) > 1").format(
            sql.Identifier(schema, table), sql.SQL(" AND ").join(conditions), cols))

    def orphan_count(self, schema: str, table: str, fk: ForeignKey) -> int | None:
        """Rows whose (non-NULL) key has no referenced row (the foreign key would refuse them)."""
        from psycopg import sql

        present = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.columns)
        match = sql.SQL(" AND ").join(
            sql.SQL("p.{} = c.{}").format(sql.Identifier(r), sql.Identifier(c))
            for c, r in zip(fk.columns, fk.referenced_columns))
        return self._count(sql.SQL("SELECT 1 FROM {} AS c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} AS p WHERE {})")
                           .format(sql.Identifier(schema, table), present,
                                   sql.Identifier(fk.referenced_schema, fk.referenced_table), match))

    def enum_value_count(self, schema: str, table: str, column: str, values: Sequence[str],
                         array: bool) -> int | None:
        from psycopg import sql

        test = "{}::text[] && %s::text[]" if array else "{}::text = ANY(%s::text[])"
        return self._count(sql.SQL("SELECT 1 FROM {} WHERE " + test).format(
            sql.Identifier(schema, table), sql.Identifier(column)), (list(values),))


    def converts(self, schema: str, table: str, column: str, cast: str) -> bool | None:
        """Whether every value of the column converts with `cast` (`checks.ddl.conversion_cast`,
        e.g. ``::BOOLEAN``): the cast runs on the rows, read-only and rolled back; False when
        a value (or the type itself) refuses."""
        import psycopg
        from psycopg import sql

        # count(v), not count(*): PostgreSQL would skip a cast whose result nobody reads
        query = sql.SQL("SELECT count(v) FROM (SELECT {}{} AS v FROM {} WHERE {} IS NOT NULL LIMIT {}) AS probe").format(
            sql.Identifier(column), sql.SQL(cast), sql.Identifier(schema, table), sql.Identifier(column),
            sql.Literal(COUNT_CAP))
        try:
            with self.conn.transaction(force_rollback=True):
                self.conn.execute("SET TRANSACTION READ ONLY")
                self.conn.execute(sql.SQL("SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}").format(
                    sql.Literal(max(1, int(self.timeout * 1000))), sql.Literal(max(1, int(self.lock_timeout * 1000)))))
                self.conn.execute(query)
        except (psycopg.DataError, psycopg.errors.CannotCoerce):
            return False  # a value (class 22) or the type itself (42846) does not convert
        except psycopg.Error:
            return None
        return True


class _NoData:
    """The probe used when there is no connection: nothing about the rows is known.

    It spells out DataProbe's questions (rather than answering any attribute), so a
    misspelled or new question fails loudly instead of reading as "unknown"."""

    def row_count(self, schema: str, table: str) -> int | None:
        return None

    def null_count(self, schema: str, table: str, column: str) -> int | None:
        return None

    def non_null_count(self, schema: str, table: str, column: str) -> int | None:
        return None

    def duplicate_count(self, schema: str, table: str, columns: Sequence[str], where: str | None) -> int | None:
        return None

    def orphan_count(self, schema: str, table: str, fk: ForeignKey) -> int | None:
        return None

    def enum_value_count(self, schema: str, table: str, column: str, values: Sequence[str],
                         array: bool) -> int | None:
        return None

    def converts(self, schema: str, table: str, column: str, cast: str) -> bool | None:
        return None


# ---------------------------------------------------------------------------------------------
# What a statement does, and when it runs

_IDENT = r'(?:"(?:[^"]|"")*"|[^\W\d][\w$]*)'  # quoted, or a bare (Unicode) word'
_QNAME = rf"{_IDENT}(?:\s*\.\s*{_IDENT})?"
_OPS: list[tuple[str, re.Pattern[str]]] = [
    (op, re.compile(pattern, re.I | re.S)) for op, pattern in [
        ("create_schema", r"CREATE\s+SCHEMA\b"),
        ("create_type", r"CREATE\s+TYPE\b"),
        ("add_value", rf"ALTER\s+TYPE\s+{_QNAME}\s+ADD\s+VALUE\b"),
        ("rename_type", rf"ALTER\s+TYPE\s+{_QNAME}\s+RENAME\b"),
        ("drop_type", r"DROP\s+TYPE\b"),
        ("create_table", r"CREATE\s+TABLE\b"),
        ("drop_table", r"DROP\s+TABLE\b"),
        ("add_column", rf"ALTER\s+TABLE\s+{_QNAME}\s+ADD\s+COLUMN\b"),
        ("drop_column", rf"ALTER\s+TABLE\s+{_QNAME}\s+DROP\s+COLUMN\b"),
        ("alter_type", rf"ALTER\s+TABLE\s+{_QNAME}\s+ALTER\s+COLUMN\s+{_IDENT}\s+(?:SET\s+DATA\s+)?TYPE\b"),
        ("set_not_null", rf"ALTER\s+TABLE\s+{_QNAME}\s+ALTER\s+COLUMN\s+{_IDENT}\s+SET\s+NOT\s+NULL\b"),
        ("drop_not_null", rf"ALTER\s+TABLE\s+{_QNAME}\s+ALTER\s+COLUMN\s+{_IDENT}\s+DROP\s+NOT\s+NULL\b"),
        ("set_default", rf"ALTER\s+TABLE\s+{_QNAME}\s+ALTER\s+COLUMN\s+{_IDENT}\s+SET\s+DEFAULT\b"),
        ("drop_default", rf"ALTER\s+TABLE\s+{_QNAME}\s+ALTER\s+COLUMN\s+{_IDENT}\s+DROP\s+DEFAULT\b"),
        ("add_primary_key", rf"ALTER\s+TABLE\s+{_QNAME}\s+ADD\s+CONSTRAINT\s+{_IDENT}\s+PRIMARY\s+KEY\b"),
        ("add_foreign_key", rf"ALTER\s+TABLE\s+{_QNAME}\s+ADD\s+CONSTRAINT\s+{_IDENT}\s+FOREIGN\s+KEY\b"),
        ("drop_constraint", rf"ALTER\s+TABLE\s+{_QNAME}\s+DROP\s+CONSTRAINT\b"),
        ("rename_constraint", rf"ALTER\s+TABLE\s+{_QNAME}\s+RENAME\s+CONSTRAINT\b"),
        ("create_unique_index", r"CREATE\s+UNIQUE\s+INDEX\b"),
        ("create_index", r"CREATE\s+INDEX\b"),
        ("drop_index", r"DROP\s+INDEX\b"),
        ("rename_index", rf"ALTER\s+INDEX\s+{_QNAME}\s+RENAME\b"),
        ("sequence", r"(?:CREATE|ALTER)\s+SEQUENCE\b"),
        ("setval", r"SELECT\s+setval\s*\("),
    ]
]


def classify(sql: str) -> str:
    """What one statement of free SQL (a runbook's) does, from its leading keywords
    (identifiers are skipped, never read as keywords: a column named `x"; DROP TABLE users; --`
    stays a name). Fixes never come through here: their statements carry their op."""
    text = sql.lstrip()
    for op, pattern in _OPS:
        if pattern.match(text):
            return op
    return "other"


_PHASE_OF_OP = {
    "create_schema": "schemas",
    "create_type": "enums",
    "add_value": "enums",
    "rename_type": "enums",
    "drop_type": "drop_enums",
    "create_table": "tables",
    "drop_table": "drop_tables",
    "add_column": "columns",
    "drop_column": "drop_columns",
    "alter_type": "column_changes",
    "set_not_null": "column_changes",
    "drop_not_null": "column_changes",
    "set_default": "column_changes",
    "drop_default": "column_changes",
    "sequence": "column_changes",
    "setval": "column_changes",
    "add_primary_key": "primary_keys",
    "add_foreign_key": "foreign_keys",
    "create_index": "indexes",
    "create_unique_index": "indexes",
    "rename_index": "indexes",
    "rename_constraint": "foreign_keys",
    "drop_index": "drop_indexes",
}


def phase_of(statement: Statement, finding: Finding) -> str:
    """The phase a statement runs in: the one place that decides a plan's order (`PHASES`)."""
    op = statement.op
    if finding.kind == "column_type":
        return "column_changes"  # a drop-and-add replacement must drop before it adds
    if finding.kind == "extra_enum_value":
        return "enums"  # an enum recreation is one block: new type, move columns, swap, drop old
    if op == "drop_constraint":
        # by what it drops: nothing depends on a foreign key, so those go first
        return "drop_foreign_keys" if statement.target.kind == "foreign_key" else "primary_keys"
    if op in _PHASE_OF_OP:
        return _PHASE_OF_OP[op]
    return "column_changes" if finding.kind == "column_default" else "tables"


# ---------------------------------------------------------------------------------------------
# Building a plan


@dataclass
class _Draft:
    sql: str
    op: str
    phase: str
    findings: list[Finding]
    unit: int
    order: tuple[int, int]  # (declaration rank, position in its fix)
    target: Target
    safety: str = SAFE
    reason: str | None = None


def plan_fixes(expected: Catalog, actual: Catalog, report: DriftReport, data: DataProbe | None = None,
               drop_indexes: Sequence[str] = ()) -> FixPlan:
    """The statements that remove `report`'s findings from the database, ordered and classified.

    `data` answers questions about the live rows (see `LiveData`); without it, whatever
    depends on the rows is treated as destructive, with a reason saying it was not checked.
    An index the schema cannot express (partial, on an expression, with INCLUDE) is kept:
    its finding has no fix, and it is dropped only when `drop_indexes` names it.
    """
    probe: DataProbe = data if data is not None else _NoData()
    rank = _declaration_rank(expected, actual)
    units: dict[tuple[str, ...], int] = {}
    drafts: list[_Draft] = []
    by_sql: dict[tuple[str, str], _Draft] = {}
    unfixable: list[Finding] = []
    named = set(drop_indexes)
    converts: dict[tuple[str, str | None, str | None], bool | None] = {}
    for finding in report.findings:
        fix: Fix = finding.statements
        if finding.kind == "column_type" and fix:
            fix = _conversion_or_replacement(expected, actual, finding, probe, converts) or fix
        elif not fix and finding.kind in ("extra_index", "index") and finding.name in named:
            fix = _named_drop(actual, finding)
        if not fix:
            unfixable.append(finding)
            continue
        key = tuple(st.sql for st in fix)
        if key in units:  # the same fix for several findings (an enum recreation): run it once
            for d in drafts:
                if d.unit == units[key] and finding not in d.findings:
                    d.findings.append(finding)
            continue
        unit = units[key] = len(units)
        for position, st in enumerate(fix):
            sql = st.sql.strip()
            phase = phase_of(st, finding)
            same = by_sql.get((phase, sql))
            if same is not None:  # two fixes share a statement: run it once, credit both
                same.findings.append(finding)
                continue
            d = _Draft(sql, st.op, phase, [finding], unit, (rank(finding, st.op), position), st.target)
            drafts.append(d)
            by_sql[(phase, sql)] = d
    drafts.sort(key=lambda d: (PHASES.index(d.phase), d.order))
    classifier = _Classifier(expected, actual, probe, drafts, converts)
    for d in drafts:
        d.safety, d.reason = classifier.classify(d)
    _keep_units_together(drafts)
    statements = tuple(PlannedStatement(d.sql, d.phase, d.safety, d.reason, tuple(d.findings), d.unit, d.op)
                       for d in drafts)
    return FixPlan(statements, tuple(unfixable), report)


def _conversion_or_replacement(expected: Catalog, actual: Catalog, f: Finding, probe: Any,
                               converts: dict[tuple[str, str | None, str | None], bool | None]) -> Fix | None:
    """For a type PostgreSQL cannot convert by itself: the finding's own USING conversion when
    every live value converts (or that cannot be told: the rehearsal will), else Prisma's
    drop-and-add of the column. None: the finding's fix as it is. `converts` keeps the
    answer for the classifier."""
    from .ddl import add_foreign_key_fix, conversion_cast, create_index_fix, needs_using, replace_column_fix

    want, live = expected.table(f.schema, f.table or ""), actual.table(f.schema, f.table or "")
    col = want.column(f.column) if want and f.column else None
    have = live.column(f.column) if live and f.column else None
    if want is None or col is None or have is None or not needs_using(have.type, col.type):
        return None
    n = probe.row_count(f.schema, f.table)
    ok = True if n == 0 else probe.converts(f.schema, f.table, f.column, conversion_cast(col, have))
    converts[(f.schema, f.table, f.column)] = ok
    if ok is False:
        # DROP COLUMN takes the column's indexes and foreign keys with it: re-create the schema's
        return (replace_column_fix(want, col, have)
                + tuple(st for i in want.indexes if any(c.name == col.name for c in i.columns)
                        for st in create_index_fix(want, i))
                + tuple(st for k in want.foreign_keys if col.name in k.columns for st in add_foreign_key_fix(want, k)))
    return None


def _named_drop(actual: Catalog, f: Finding) -> Fix | None:
    """`DROP INDEX` for a kept index the user named (`fix --drop-index NAME`)."""
    from .ddl import drop_index_fix

    live = actual.table(f.schema, f.table or "")
    index = next((i for i in live.indexes if i.name == f.name), None) if live else None
    return drop_index_fix(live, index) if live and index else None


def _declaration_rank(expected: Catalog, actual: Catalog) -> Any:
    """Order within a phase: the schema's declaration order (tables, then enums); extra
    tables are dropped referencing-first, so that no DROP TABLE trips over a foreign key."""
    tables = {t.key: i for i, t in enumerate(expected.tables)}
    enums = {e.key: i for i, e in enumerate(expected.enums)}
    extra = [t for t in actual.tables if t.key not in tables]
    drop_order = {t.key: i for i, t in enumerate(_referencing_first(extra))}
    base = len(tables) + 1

    def rank(f: Finding, op: str) -> int:
        if f.table is None:
            return enums.get((f.schema, f.name or ""), len(enums))
        if op == "drop_table":
            return drop_order.get((f.schema, f.table), len(drop_order))
        return tables.get((f.schema, f.table), base)

    return rank


def _referencing_first(tables: list[Table]) -> list[Table]:
    """Tables ordered so that each comes before every table it references (cycles: as given)."""
    keys = {t.key for t in tables}
    refs = {t.key: {(fk.referenced_schema, fk.referenced_table) for fk in t.foreign_keys} & keys - {t.key}
            for t in tables}
    out: list[Table] = []
    left = list(tables)
    while left:
        # a table nobody left references can go now
        ready = [t for t in left if not any(t.key in refs[o.key] for o in left if o is not t)]
        pick = ready[0] if ready else left[0]
        out.append(pick)
        left.remove(pick)
    return out


def _keep_units_together(drafts: list[_Draft]) -> None:
    """A fix runs whole or not at all: a safe statement of a fix with a destructive one is
    destructive too (never re-create an index whose DROP was skipped)."""
    number = {id(d): i + 1 for i, d in enumerate(drafts)}
    for d in drafts:
        if d.safety == SAFE:
            mates = [m for m in drafts if m.unit == d.unit and m.safety == DESTRUCTIVE and m is not d]
            if mates:
                m = mates[0]
                d.safety = DESTRUCTIVE
                d.reason = f"runs only together with statement {number[id(m)]} ({m.reason})"


def _mentions(expression: str, column: str | None) -> bool:
    """Whether an index expression (PostgreSQL's deparse) names the column, bare or quoted."""
    return column is not None and re.search(rf'(?<![\w"]){re.escape(column)}(?![\w"])|"{re.escape(column)}"',
                                            expression) is not None


def _count_text(n: int, one: str, many: str | None = None) -> str:
    many = many or one + "s"
    if n >= COUNT_CAP:
        return f"at least {COUNT_CAP} {many}"
    return f"{n} {one if n == 1 else many}"


def _verb(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


class _Classifier:
    """Safe or destructive, and why, for each statement of a plan."""

    def __init__(self, expected: Catalog, actual: Catalog, probe: Any, drafts: list[_Draft],
                 converts: dict[tuple[str, str | None, str | None], bool | None] | None = None) -> None:
        self.converts = converts or {}
        self.expected = expected
        self.actual = actual
        self.probe = probe
        self.drafts = drafts
        self.number = {id(d): i + 1 for i, d in enumerate(drafts)}

    # --- helpers

    def _want(self, f: Finding) -> Table | None:
        return self.expected.table(f.schema, f.table) if f.table else None

    def _live(self, f: Finding) -> Table | None:
        return self.actual.table(f.schema, f.table) if f.table else None

    def _rows(self, f: Finding) -> int | None:
        """Rows of the finding's table now; 0 for a table this plan creates."""
        if self._live(f) is None:
            return 0
        return self.probe.row_count(f.schema, f.table)

    def _mate(self, d: _Draft, op: str) -> _Draft | None:
        return next((m for m in self.drafts if m.unit == d.unit and m.op == op and m is not d), None)

    # --- the rules

    def classify(self, d: _Draft) -> tuple[str, str | None]:
        f = d.findings[0]
        method = getattr(self, "_" + d.op, None)
        if f.kind == "extra_enum_value":
            return self._enum_recreation(d)
        if method is None:
            return SAFE, None
        return method(d, f)

    def _drop_table(self, d: _Draft, f: Finding) -> tuple[str, str | None]:
        n = self.probe.row_count(f.schema, f.table)
        rows = "its rows" if n is None else ("no rows" if n == 0 else _count_text(n, "row"))
        return DESTRUCTIVE, f"drops table {f.table} with {rows}"

    def _drop_column(self, d: _Draft, f: Finding) -> tuple[str, str | None]:
        n = self.probe.non_null_count(f.schema, f.table, f.column)
        if f.kind == "column_type":  # the drop-and-add of a type no value survives
            lost = ("every row holding a value loses it" if n is None else
                    "no row holds a value" if n == 0 else
                    f"{_count_text(n, 'row')} {_verb(n, 'loses its', 'lose their')} value")
            live, want = self._live(f), self._want(f)
            wanted = {i.name for i in want.indexes} if want else set()
            gone = [i.name for i in (live.indexes if live else ()) if i.name not in wanted
                    and any(c.name == f.column or (c.expression and _mentions(c.name, f.column)) for c in i.columns)]
            also = f"; it also drops index {', '.join(gone)}, which the schema does not declare" if gone else ""
            return DESTRUCTIVE, (f"drops and re-adds {f.table}.{f.column} as {f.expected}: not every value converts "
                                 f"from {f.actual}, so {lost}{also}")
        data = ("the values it holds" if n is None else
                "no values (all NULL)" if n == 0 else _count_text(n, "non-NULL value"))
        return DESTRUCTIVE, f"drops column {f.table}.{f.column} with {data}"

    def _drop_index(self, d: _Draft, f: Finding) -> tuple[str, str | None]:
        create = self._mate(d, "create_index") or self._mate(d, "create_unique_index")
        if create is not None:
            return DESTRUCTIVE, (f"drops index {f.name} to re-create it as the schema expects "
                                 f"(statement {self.number[id(create)]})")
        if f.kind == "extra_index" and f.expected:  # a duplicate of the schema's own index
            return SAFE, f"drops index {f.name} on {f.table}, a duplicate of {f.expected}, which stays"
        live = self._live(f)
        index = next((i for i in live.indexes if i.name == d.target.name), None) if live else None
        unique = index is not None and index.unique
        what = "it stops rejecting duplicates" if unique else "queries that used it may get slower"
        return DESTRUCTIVE, f"drops {'unique ' if unique else ''}index {f.name} on {f.table}: {what}"

    def _drop_constraint(self, d: _Draft, f: Finding) -> tuple[str, str | None]:
        add = self._mate(d, "add_foreign_key") or self._mate(d, "add_primary_key")
        if d.target.kind == "foreign_key":
            what = f"foreign key {d.target.name} on {f.table}"
            loss = f"{f.table} rows no longer have to match a referenced row"
        else:
            what = f"primary key {d.target.name} of {f.table}"
            loss = "duplicate ids are no longer prevented"
        if add is not None:
            return DESTRUCTIVE, f"drops {what} to re-create it as the schema expects (statement {self.number[id(add)]})"
        return DESTRUCTIVE, f"drops {what}: {loss}"

    def _drop_type(self, d: _Draft, f: Finding) -> tuple[str, str | None]:
        return DESTRUCTIVE, f"drops enum {f.name} ({f.actual})"

    def _enum_recreation(self, d: _Draft) -> tuple[str, str | None]:
        removed = [f.actual for f in d.findings if f.kind == "extra_enum_value" and f.actual is not None]
        f = d.findings[0]
        values = ", ".join(string_literal(v) for v in removed)
        held = self._rows_holding(f.schema, f.name or "", removed)
        if held is None:
            rows = "rows holding them make it fail (not checked)"
        elif held:
            rows = f"{_count_text(held, 'row')} {_verb(held, 'holds', 'hold')} them, so it would fail"
        else:
            rows = "no row holds them"
        return DESTRUCTIVE, f"recreates enum {f.name} without {values}: {rows}"

    def _rows_holding(self, schema: str, enum: str, values: list[str]) -> int | None:
        from .catalog import enum_type_ref

        ref = enum_type_ref(schema, enum)
        total = 0
        for table in self.actual.tables:
            for column in table.columns:
                if column.type in (ref, ref + "[]"):
                    n = self.probe.enum_value_count(table.schema, table.name, column.name, values,
                                                    column.type.endswith("[]"))
                    if n is None:
                        return None
                    total += n
        return total

    def _add_column(self, d: _Draft, f: Finding) -> tuple[str, str | None]:
        want = self._want(f)
        col = want.column(f.column) if want and f.column else None
        if col is None or col.nullable or col.autoincrement or column_default_sql(col) is not None:
            return SAFE, None
        n = self._rows(f)
        if n is None:
            return DESTRUCTIVE, (f"may fail: {f.table}.{f.column} is NOT NULL without a default, which fails if "
                                 f"{f.table} has rows (could not count them)")
        if n:
            return DESTRUCTIVE, (f"would fail: {f.table} has {_count_text(n, 'row')} and the new column {f.column} "
                                 f"is NOT NULL without a default (fill it, or give it a default first)")
        return SAFE, f"{f.table} is empty, so the NOT NULL column without a default can be added"

    def _set_not_null(self, d: _Draft, f: Finding) -> tuple[str, str | None]:
        n = self.probe.null_count(f.schema, f.table, f.column)
        if n is None:
            return DESTRUCTIVE, f"may fail: could not check {f.table}.{f.column} for NULLs (it fails if a row holds one)"
        if n:
            return DESTRUCTIVE, (f"would fail: {_count_text(n, 'row')} of {f.table} {_verb(n, 'holds', 'hold')} NULL in {f.column} "
                                 f"(fill them before requiring a value)")
        return SAFE, None

    def _alter_type(self, d: _Draft, f: Finding) -> tuple[str, str | None]:
        from .ddl import needs_using

        old, new = f.actual or "", f.expected or ""
        if _widens(old, new):
            return SAFE, f"widens {f.table}.{f.column} from {old} to {new}"
        n = self._rows(f)
        if n == 0:
            return SAFE, f"changes {f.table}.{f.column} from {old} to {new}; the table is empty"
        if f.kind == "column_type" and needs_using(old, new):
            what = f"converts {f.table}.{f.column} from {old} to {new} with USING"
            if self.converts.get((f.schema, f.table, f.column)) is None:
                return DESTRUCTIVE, f"may fail: {what}, and whether every value converts could not be checked"
            if old.split("(")[0] in ("text", "character varying", "character") or old.startswith('"'):
                return SAFE, f"{what}: every value converts (checked); only its spelling is not kept"
            return DESTRUCTIVE, f"{what}: every value converts (checked), but values may change (e.g. 2 → true)"
        return DESTRUCTIVE, (f"changes {f.table}.{f.column} from {old} to {new}: values may be rounded, truncated "
                             f"or fail to convert")

    def _add_primary_key(self, d: _Draft, f: Finding) -> tuple[str, str | None]:
        want = self._want(f)
        pk = want.primary_key if want else None
        if pk is None or self._live(f) is None:
            return SAFE, None
        return self._unique_rows(f, pk.name, pk.columns, None, "primary key", nulls=True)

    def _create_unique_index(self, d: _Draft, f: Finding) -> tuple[str, str | None]:
        want = self._want(f)
        index = next((i for i in want.indexes if i.name == f.name), None) if want else None
        if index is None or self._live(f) is None:
            return SAFE, None
        return self._unique_rows(f, index.name, tuple(c.name for c in index.columns), index.where, "unique index")

    def _unique_rows(self, f: Finding, name: str, columns: Sequence[str], where: str | None, what: str,
                     nulls: bool = False) -> tuple[str, str | None]:
        live = self._live(f)
        assert live is not None
        if any(live.column(c) is None for c in columns):
            return self._new_columns(f, name, columns, what)
        dups = self.probe.duplicate_count(f.schema, f.table, columns, where)
        holes = sum(self.probe.null_count(f.schema, f.table, c) or 0 for c in columns) if nulls else 0
        if dups is None:
            return DESTRUCTIVE, f"may fail: could not check {f.table} for rows that violate {what} {name}"
        if dups:
            return DESTRUCTIVE, (f"would fail: {_count_text(dups, 'value')} of ({', '.join(columns)}) "
                                 f"{_verb(dups, 'appears', 'appear')} in "
                                 f"more than one row of {f.table}, which {what} {name} refuses")
        if holes:
            return DESTRUCTIVE, f"would fail: {f.table} has NULLs in ({', '.join(columns)}), which {what} {name} refuses"
        return SAFE, None

    def _new_columns(self, f: Finding, name: str, columns: Sequence[str], what: str) -> tuple[str, str | None]:
        want = self._want(f)
        live = self._live(f)
        assert want is not None and live is not None
        new = [want.column(c) for c in columns if live.column(c) is None]
        if all(c is not None and c.nullable and column_default_sql(c) is None and not c.autoincrement for c in new):
            return SAFE, None  # new columns hold only NULLs: nothing to violate
        n = self._rows(f)
        if n == 0:
            return SAFE, None
        return DESTRUCTIVE, (f"may fail: {what} {name} covers a column this plan adds to {f.table}, which has rows; "
                             f"the rehearsal will tell")

    def _add_foreign_key(self, d: _Draft, f: Finding) -> tuple[str, str | None]:
        want = self._want(f)
        fk = next((k for k in want.foreign_keys if k.name == f.name), None) if want else None
        live = self._live(f)
        if fk is None or live is None:
            return SAFE, None
        if any(live.column(c) is None for c in fk.columns):
            return self._new_columns(f, fk.name, fk.columns, "foreign key")
        if self.actual.table(fk.referenced_schema, fk.referenced_table) is None:
            n = self._rows(f)
            if n == 0:
                return SAFE, None
            # the referenced table is created by this plan, empty: every non-NULL key is an orphan
            nonnull = self.probe.row_count(f.schema, f.table) if len(fk.columns) > 1 else \
                self.probe.non_null_count(f.schema, f.table, fk.columns[0])
            if nonnull == 0:
                return SAFE, None
            return DESTRUCTIVE, (f"would fail: {fk.referenced_table} is created empty by this plan, and rows of "
                                 f"{f.table} already reference it")
        orphans = self.probe.orphan_count(f.schema, f.table, fk)
        if orphans is None:
            return DESTRUCTIVE, f"may fail: could not check {f.table} for rows without a match in {fk.referenced_table}"
        if orphans:
            return DESTRUCTIVE, (f"would fail: {_count_text(orphans, 'row')} of {f.table} "
                                 f"{_verb(orphans, 'references', 'reference')} no row of "
                                 f"{fk.referenced_table} ({', '.join(fk.columns)})")
        return SAFE, None


# ---------------------------------------------------------------------------------------------
# Type widening

_INT_RANK = {"smallint": 0, "integer": 1, "bigint": 2}
_PARAM = re.compile(r"^(?P<base>[a-z ]+?)(?:\((?P<args>[0-9, ]+)\))?(?P<tail>(?: with(?:out)? time zone)?)$")


def _widens(old: str, new: str) -> bool:
    """Whether every value of type `old` converts to `new` unchanged (canonical format_type text)."""
    if old == new:
        return True
    if old.endswith("[]") != new.endswith("[]"):
        return False
    if old.endswith("[]"):
        return _widens(old[:-2], new[:-2])
    if old in _INT_RANK and new in _INT_RANK:
        return _INT_RANK[new] >= _INT_RANK[old]
    if old in _INT_RANK and new == "numeric":
        return True
    if (old, new) == ("real", "double precision"):
        return True
    a, b = _PARAM.match(old), _PARAM.match(new)
    if not a or not b:
        return False
    base_a, base_b = a["base"] + a["tail"], b["base"] + b["tail"]
    args_a = [int(x) for x in a["args"].split(",")] if a["args"] else []
    args_b = [int(x) for x in b["args"].split(",")] if b["args"] else []
    if base_a == "character varying" and base_b in ("character varying", "text"):
        return not args_b or (bool(args_a) and args_b[0] >= args_a[0])
    if base_a == "bit varying" and base_b == "bit varying":
        return not args_b or (bool(args_a) and args_b[0] >= args_a[0])
    if base_a == base_b == "numeric":
        if not args_b:
            return True
        if not args_a:
            return False
        p1, s1 = (args_a + [0])[:2]
        p2, s2 = (args_b + [0])[:2]
        return s2 >= s1 and p2 - s2 >= p1 - s1
    if base_a == base_b and a["base"] in ("timestamp", "time"):
        # format_type prints the default precision (6) without a modifier
        return (args_b[0] if args_b else 6) >= (args_a[0] if args_a else 6)
    return False

