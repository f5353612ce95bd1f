"""Compare the catalog Prisma expects with the one the database has.

Both sides are `Catalog` values of the same type, so the comparison is keyed set
arithmetic: objects present on one side only are missing or extra, objects on both
sides are compared field by field. Each finding carries the SQL Prisma itself would
run to remove it (rendered by `checks.ddl`), so the fix shown to an engineer is the
same text `prisma migrate diff` would have produced.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from . import ddl
from .catalog import Catalog, Column, Enum, ForeignKey, Index, Table, enum_type_ref
from .findings import CRITICAL, INFO, WARNING, DriftReport, Finding


def diff(expected: Catalog, actual: Catalog) -> DriftReport:
    """Every difference between what the schema expects and what the database has."""
    out: list[Finding] = []
    add = out.append
    for schema in expected.schemas:
        if schema not in actual.schemas:
            add(_f("missing_schema", CRITICAL, schema, message=f"schema {schema} does not exist",
                   expected=schema, fix=ddl.create_schema_fix(schema)))
    _diff_enums(expected, actual, add)
    actual_tables = {t.key: t for t in actual.tables}
    expected_keys = {t.key for t in expected.tables}
    for table in expected.tables:
        live = actual_tables.get(table.key)
        if live is None:
            _missing_table(table, add)
        elif live != table:  # equal (compared fields only) has nothing to report: most tables, most checks
            _diff_table(table, live, add)
    for table in actual.tables:
        if table.key not in expected_keys:
            add(_f("extra_table", INFO, table.schema, table.name,
                   message=f"table {table.name} is not in the Prisma schema",
                   actual=table.name, fix=ddl.drop_table_fix(table)))
    return DriftReport(tuple(sorted(out, key=lambda f: f.sort_key)))


def _f(kind: str, severity: str, schema: str, table: str | None = None, *, column: str | None = None,
       name: str | None = None, model: str | None = None, field: str | None = None,
       expected: str | None = None, actual: str | None = None, message: str, fix: ddl.Fix | None = None,
       fixes: tuple[ddl.Fix, ...] = ()) -> Finding:
    """A finding; its fix is `fix`, or the `fixes` one after another (a drop, then the re-creation),
    shown as Prisma's text with a blank line between them."""
    groups = fixes or ((fix,) if fix else ())
    return Finding(kind=kind, severity=severity, schema=schema, table=table, column=column, name=name,
                   model=model, field=field, expected=expected, actual=actual, message=message,
                   fix="\n\n".join(ddl.text(g) for g in groups) or None,
                   statements=tuple(st for g in groups for st in g))


def _diff_enums(expected: Catalog, actual: Catalog, add: Callable[[Finding], None]) -> None:
    live = {e.key: e for e in actual.enums}
    wanted = {e.key for e in expected.enums}
    for enum in expected.enums:
        have = live.get(enum.key)
        if have is None:
            add(_f("missing_enum", CRITICAL, enum.schema, name=enum.name, model=enum.prisma_name,
                   expected=", ".join(enum.values),
                   message=f"enum {enum.name} does not exist", fix=ddl.create_enum_fix(enum)))
            continue
        for value in enum.values:
            if value not in have.values:
                add(_f("missing_enum_value", CRITICAL, enum.schema, name=enum.name, model=enum.prisma_name,
                       expected=value, message=f"enum {enum.name} lacks value {value!r}: writing it fails",
                       fix=ddl.add_enum_value_fix(enum, value)))
        extra = [v for v in have.values if v not in enum.values]
        if extra:
            fix = ddl.recreate_enum_fix(enum, _enum_usages(enum, expected, actual))
        for value in extra:
            add(_f("extra_enum_value", INFO, enum.schema, name=enum.name, model=enum.prisma_name,
                   actual=value, message=f"enum {enum.name} has value {value!r} the schema does not list",
                   fix=fix))
    for enum in actual.enums:
        if enum.key not in wanted:
            add(_f("extra_enum", INFO, enum.schema, name=enum.name, actual=", ".join(enum.values),
                   message=f"enum {enum.name} is not in the Prisma schema", fix=ddl.drop_enum_fix(enum)))


def _enum_usages(enum: Enum, expected: Catalog, actual: Catalog) -> list[tuple[Table, Column]]:
    """Every column that holds the enum in the database now: a recreation of the type must
    carry all of them across, or dropping the old type fails. Where the schema knows the
    column, its expected default is the one restored."""
    ref = enum_type_ref(enum.schema, enum.name)
    found = []
    for live in actual.tables:
        want = expected.table(live.schema, live.name)
        for column in live.columns:
            if column.type in (ref, ref + "[]"):
                known = want.column(column.name) if want else None
                found.append((want or live, known or column))
    return found


def _missing_table(table: Table, add: Callable[[Finding], None]) -> None:
    add(_f("missing_table", CRITICAL, table.schema, table.name, model=table.model, expected=table.name,
           message=f"table {table.name} does not exist: every query on model {table.model} fails",
           fix=ddl.create_table_fix(table)))
    for index in table.indexes:
        _missing_index(table, index, add)
    for fk in table.foreign_keys:
        _missing_fk(table, fk, add)


def _missing_index(table: Table, index: Index, add: Callable[[Finding], None]) -> None:
    kind, what = ("missing_unique", "unique index") if index.unique else ("missing_index", "index")
    add(_f(kind, WARNING, table.schema, table.name, name=index.name, model=table.model,
           field=_fields(table, [c.name for c in index.columns]), expected=_describe_index(index),
           message=f"{what} {index.name} on {table.name} ({_cols(index)}) does not exist",
           fix=ddl.create_index_fix(table, index)))


def _missing_fk(table: Table, fk: ForeignKey, add: Callable[[Finding], None]) -> None:
    add(_f("missing_foreign_key", WARNING, table.schema, table.name, name=fk.name, model=table.model,
           field=_fields(table, fk.columns), expected=_describe_fk(fk),
           message=f"foreign key {fk.name} ({', '.join(fk.columns)} → {fk.referenced_table}) does not exist",
           fix=ddl.add_foreign_key_fix(table, fk)))


def _fields(table: Table, columns: tuple[str, ...] | list[str]) -> str | None:
    names = [c.model_field for name in columns if (c := table.column(name)) is not None and c.model_field]
    return ", ".join(names) or None


def _cols(index: Index) -> str:
    return ", ".join(c.name + (" DESC" if c.descending else "") for c in index.columns)


def _describe_index(index: Index) -> str:
    text = ("UNIQUE " if index.unique else "") + f"{index.method} ({_cols(index)})"
    ops = [f"{c.name}:{c.opclass}" for c in index.columns if c.opclass]
    if ops:
        text += " ops " + ", ".join(ops)
    if index.include:
        text += f" INCLUDE ({', '.join(index.include)})"
    if index.where:
        text += f" WHERE {index.where}"
    return text


def _describe_fk(fk: ForeignKey) -> str:
    return (f"({', '.join(fk.columns)}) → {fk.referenced_schema}.{fk.referenced_table}"
            f"({', '.join(fk.referenced_columns)}) ON DELETE {fk.on_delete} ON UPDATE {fk.on_update}")


def _describe_column(column: Column) -> str:
    text = column.type + ("" if column.nullable else " NOT NULL")
    if column.autoincrement:
        text += " autoincrement"
    if column.default is not None:
        text += f" DEFAULT {column.default}"
    return text


def _diff_table(want: Table, have: Table, add: Callable[[Finding], None]) -> None:
    schema, name, model = want.schema, want.name, want.model
    for col in want.columns:
        live = have.column(col.name)
        where = dict(column=col.name, model=model, field=col.model_field)
        if live is None:
            add(_f("missing_column", CRITICAL, schema, name, **where, expected=_describe_column(col),
                   message=f"column {name}.{col.name} does not exist: queries on {model} that select it fail",
                   fix=ddl.add_column_fix(want, col)))
            continue
        if live.type != col.type:
            severity = WARNING if _same_family(col.type, live.type) else CRITICAL
            if ddl.needs_using(live.type, col.type):
                fix = ddl.convert_column_type_fix(want, col, live)
                note = " (PostgreSQL has no automatic cast between them: the fix converts each value)"
            else:
                fix, note = ddl.alter_column_type_fix(want, col), ""
            add(_f("column_type", severity, schema, name, **where, expected=col.type, actual=live.type,
                   message=f"column {name}.{col.name} is {live.type}, the schema expects {col.type}{note}",
                   fix=fix))
        if live.nullable != col.nullable:
            _diff_nullable(want, col, live, add)
        if (live.default != col.default or live.autoincrement != col.autoincrement) and not (
                live.type != col.type and ddl.needs_using(live.type, col.type)):
            # (after a conversion the type change's own fix sets the schema's default)
            _diff_default(want, col, live, add)
    wanted = {c.name for c in want.columns}
    for live in have.columns:
        if live.name not in wanted:
            blocks_inserts = not live.nullable and live.default is None and not live.autoincrement
            add(_f("extra_column", CRITICAL if blocks_inserts else INFO, schema, name, column=live.name,
                   model=model, actual=_describe_column(live),
                   message=(f"column {name}.{live.name} is NOT NULL without a default and unknown to the schema: "
                            f"every insert fails") if blocks_inserts else
                           f"column {name}.{live.name} is not in the Prisma schema",
                   fix=ddl.drop_column_fix(want, live)))
    _diff_primary_key(want, have, add)
    _diff_indexes(want, have, add)
    _diff_foreign_keys(want, have, add)


def _diff_nullable(want: Table, col: Column, live: Column, add: Callable[[Finding], None]) -> None:
    where = dict(column=col.name, model=want.model, field=col.model_field)
    name = want.name
    if col.type.endswith("[]") and col.nullable:
        # A scalar list: Prisma declares it nullable but never writes NULL to it, and its own
        # drift check ignores list nullability. An omitted list gets the column's default, so
        # with one NOT NULL makes no write fail; without one, a create that omits it fails.
        if live.default is None:
            add(_f("column_nullable", CRITICAL, want.schema, name, **where, expected="NULL", actual="NOT NULL",
                   message=f"list column {name}.{col.name} is NOT NULL without a default: a {want.model} create "
                           f"without {col.model_field or col.name} fails (Prisma sends no value for an omitted "
                           f"list); updates and reads work", fix=ddl.drop_not_null_fix(want, col)))
    elif col.nullable:
        add(_f("column_nullable", CRITICAL, want.schema, name, **where, expected="NULL", actual="NOT NULL",
               message=f"column {name}.{col.name} is NOT NULL but optional in the schema: "
                       f"writes without a value fail", fix=ddl.drop_not_null_fix(want, col)))
    else:
        add(_f("column_nullable", WARNING, want.schema, name, **where, expected="NOT NULL", actual="NULL",
               message=f"column {name}.{col.name} allows NULL but is required in the schema: "
                       f"a NULL row breaks reads", fix=ddl.set_not_null_fix(want, col)))


def _same_family(expected: str, actual: str) -> bool:
    """Only a length or precision differs (varchar(120) vs varchar(100)): behaviour, not failure."""
    return expected.split("(")[0] == actual.split("(")[0] and expected.endswith("[]") == actual.endswith("[]")


def _diff_default(want: Table, col: Column, live: Column, add: Callable[[Finding], None]) -> None:
    expected = "autoincrement()" if col.autoincrement else col.default
    actual = "autoincrement()" if live.autoincrement else live.default
    # Prisma relies on the database for @default(now()), literals and autoincrement:
    # losing one on a NOT NULL column makes every insert that omits it fail.
    severity = CRITICAL if expected is not None and actual is None and not col.nullable else WARNING
    restore = col.default is not None or col.autoincrement
    fix = ddl.set_default_fix(want, col) if restore else ddl.drop_default_fix(want, col)
    add(_f("column_default", severity, want.schema, want.name, column=col.name, model=want.model,
           field=col.model_field, expected=expected, actual=actual,
           message=f"column {want.name}.{col.name} defaults to {actual or 'nothing'}, "
                   f"the schema expects {expected or 'no default'}", fix=fix))


def _diff_primary_key(want: Table, have: Table, add: Callable[[Finding], None]) -> None:
    pk, live = want.primary_key, have.primary_key
    if pk == live:
        return
    base = dict(model=want.model)
    if pk is not None and live is None:
        add(_f("missing_primary_key", WARNING, want.schema, want.name, name=pk.name, **base,
               field=_fields(want, pk.columns), expected=f"{pk.name} ({', '.join(pk.columns)})",
               message=f"table {want.name} has no primary key: duplicate ids are not prevented",
               fix=ddl.add_primary_key_fix(want, pk)))
    elif pk is None and live is not None:
        add(_f("extra_primary_key", INFO, want.schema, want.name, name=live.name, **base,
               actual=f"{live.name} ({', '.join(live.columns)})",
               message=f"table {want.name} has a primary key the schema does not declare",
               fix=ddl.drop_primary_key_fix(want, live)))
    elif pk is not None and live is not None:
        add(_f("primary_key", WARNING, want.schema, want.name, name=pk.name, **base,
               expected=f"{pk.name} ({', '.join(pk.columns)})", actual=f"{live.name} ({', '.join(live.columns)})",
               message=f"primary key of {want.name} differs from the schema",
               fixes=(ddl.drop_primary_key_fix(want, live), ddl.add_primary_key_fix(want, pk))))


def _shape(index: Index) -> tuple[object, ...]:
    return (index.columns, index.unique, index.method, index.where, index.include)


def expressible(index: Index) -> bool:
    """Whether a Prisma schema can declare the index: no condition, no expression, no INCLUDE.

    Teams write the others by hand in migrations (`CREATE UNIQUE INDEX … WHERE`,
    `lower(email)`) to enforce rules Prisma cannot; Prisma's drift check ignores them,
    and a fix plan keeps them unless the user names one (`fix --drop-index NAME`)."""
    return index.where is None and not index.include and not any(c.expression for c in index.columns)


def _diff_indexes(want: Table, have: Table, add: Callable[[Finding], None]) -> None:
    live = {i.name: i for i in have.indexes}
    wanted = {i.name for i in want.indexes}
    extras = [i for i in have.indexes if i.name not in wanted]
    for index in want.indexes:
        got = live.get(index.name)
        if got is None:
            renamed = next((e for e in extras if _shape(e) == _shape(index)), None)
            if renamed is not None:
                extras.remove(renamed)
                add(_f("index", INFO, want.schema, want.name, name=index.name, model=want.model,
                       expected=index.name, actual=renamed.name,
                       message=f"index {renamed.name} on {want.name} should be named {index.name}",
                       fix=ddl.rename_index_fix(want, renamed.name, index.name)))
            else:
                _missing_index(want, index, add)
        elif got != index and not index.unique and index.where is None and got.where is not None \
                and _shape(replace(got, where=None)) == _shape(index):
            # The schema's @@index, made partial by hand: reads that used it still can, and a
            # plain index rejects nothing, so no write fails. Prisma's drift ignores it too.
            add(_f("index", INFO, want.schema, want.name, name=index.name, model=want.model,
                   field=_fields(want, [c.name for c in index.columns]),
                   expected=_describe_index(index), actual=_describe_index(got),
                   message=f"index {index.name} on {want.name} is partial (WHERE {got.where}), which the Prisma "
                           f"schema cannot express: kept", fix=None))
        elif got != index:
            add(_f("index", WARNING, want.schema, want.name, name=index.name, model=want.model,
                   field=_fields(want, [c.name for c in index.columns]),
                   expected=_describe_index(index), actual=_describe_index(got),
                   message=f"index {index.name} on {want.name} is {_describe_index(got)}, "
                           f"the schema expects {_describe_index(index)}",
                   fixes=(ddl.drop_index_fix(want, got), ddl.create_index_fix(want, index))))
    for extra in extras:
        twin = next((i for i in have.indexes if i.name in wanted and i is not extra and _shape(i) == _shape(extra)),
                    None)
        if twin is not None:
            # Left over (after a table or index rename, say): the schema's own index already
            # rejects or serves exactly what this one does. Dropping it changes nothing.
            add(_f("extra_index", INFO, want.schema, want.name, name=extra.name, model=want.model, expected=twin.name,
                   actual=_describe_index(extra),
                   message=f"{'unique ' if extra.unique else ''}index {extra.name} on {want.name} duplicates "
                           f"the schema's index {twin.name}", fix=ddl.drop_index_fix(want, extra)))
        elif not expressible(extra):
            add(_f("extra_index", INFO, want.schema, want.name, name=extra.name, model=want.model,
                   actual=_describe_index(extra),
                   message=f"{'unique ' if extra.unique else ''}index {extra.name} on {want.name} is not "
                           f"expressible in the Prisma schema: kept", fix=None))
        else:
            add(_f("extra_index", WARNING if extra.unique else INFO, want.schema, want.name, name=extra.name,
                   model=want.model, actual=_describe_index(extra),
                   message=(f"unique index {extra.name} on {want.name} is not in the schema: it can reject writes"
                            if extra.unique else f"index {extra.name} on {want.name} is not in the Prisma schema"),
                   fix=ddl.drop_index_fix(want, extra)))


def _fk_shape(fk: ForeignKey) -> tuple[object, ...]:
    return (fk.columns, fk.referenced_schema, fk.referenced_table, fk.referenced_columns, fk.on_delete, fk.on_update)


def _diff_foreign_keys(want: Table, have: Table, add: Callable[[Finding], None]) -> None:
    live = {f.name: f for f in have.foreign_keys}
    wanted = {f.name for f in want.foreign_keys}
    extras = [f for f in have.foreign_keys if f.name not in wanted]
    for fk in want.foreign_keys:
        got = live.get(fk.name)
        renamed = None if got is not None else next((e for e in extras if _fk_shape(e) == _fk_shape(fk)), None)
        if renamed is not None:
            # Same definition, another name (a migration named it after the field, the schema's
            # @map changed Prisma's name): every write behaves the same, and Prisma itself
            # only renames it. Dropping and re-adding would re-check every row under a lock.
            extras.remove(renamed)
            add(_f("foreign_key", INFO, want.schema, want.name, name=fk.name, model=want.model,
                   field=_fields(want, fk.columns), expected=fk.name, actual=renamed.name,
                   message=f"foreign key {renamed.name} on {want.name} should be named {fk.name}",
                   fix=ddl.rename_foreign_key_fix(want, renamed.name, fk.name)))
        elif got is None:
            _missing_fk(want, fk, add)
        elif got != fk:
            add(_f("foreign_key", WARNING, want.schema, want.name, name=fk.name, model=want.model,
                   field=_fields(want, fk.columns), expected=_describe_fk(fk), actual=_describe_fk(got),
                   message=f"foreign key {fk.name} on {want.name} is {_describe_fk(got)}, "
                           f"the schema expects {_describe_fk(fk)}",
                   fixes=(ddl.drop_foreign_key_fix(want, got), ddl.add_foreign_key_fix(want, fk))))
    for extra in extras:
        add(_f("extra_foreign_key", WARNING, want.schema, want.name, name=extra.name, model=want.model,
               actual=_describe_fk(extra),
               message=f"foreign key {extra.name} on {want.name} is not in the schema: "
                       f"it can block writes and deletes Prisma expects to succeed",
               fix=ddl.drop_foreign_key_fix(want, extra)))
