"""What makes a parsed Prisma schema unusable on PostgreSQL, checked apart from building.

`checks.compile` builds the expected catalog; the rules here only refuse, with a
`SchemaError` located at file:line:column that names the model and field. The compiler
calls each at the point where Prisma would report it (a schema with several errors
reports the same first one as before the split), so building code carries no checks of
its own beyond what needs its results (a namespace, a resolved column).

    check_no_composite_types(schema)        composite `type` blocks exist only on MongoDB
    check_enum(enum)                        at least one value, each once
    check_views(schema, models, enums)      a view's fields name known types
    check_attributes(model, models, enums)  known attributes, once each, where they fit
    check_names(built)                      constraint names PostgreSQL would refuse twice
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from .errors import SchemaError
from .psl import ast

SCALARS = ("String", "Boolean", "Int", "BigInt", "Float", "Decimal", "DateTime", "Json", "Bytes")

FIELD_ATTRIBUTES = frozenset({"id", "unique", "default", "map", "relation", "updatedAt", "ignore",
                               "shardKey"})
BLOCK_ATTRIBUTES = frozenset({"id", "unique", "index", "map", "ignore", "schema", "shardKey"})


def err(message: str, pos: ast.Pos | None) -> SchemaError:
    if pos is None:
        return SchemaError(message)
    return SchemaError(message, file=pos.file, line=pos.line, column=pos.column)


def where(model: ast.Model, f: ast.Field | None = None) -> str:
    what = f'{model.kind} "{model.name}"'
    return what + (f', field "{f.name}"' if f is not None else "")


def field_refs(value: ast.Value | None) -> list[tuple[str, ast.Value]]:
    """``[a, b(sort: Desc)]`` → [("a", node), ("b", node)]; a single name is a list of one."""
    if value is None:
        return []
    items = value.items if isinstance(value, ast.Array) else (value,)
    out = []
    for item in items:
        if isinstance(item, ast.Ident):
            out.append((item.name, item))
        elif isinstance(item, ast.Call):
            out.append((item.name, item))
        elif isinstance(item, ast.Str):
            out.append((item.value, item))
    return out


def call_arg(call: ast.Value, name: str) -> ast.Value | None:
    if isinstance(call, ast.Call):
        for a in call.args:
            if a.name == name:
                return a.value
    return None


def check_no_composite_types(schema: ast.Schema) -> None:
    for m in schema.models:
        if m.kind == "type":
            raise err(f'type "{m.name}": composite types are only supported on MongoDB, '
                      'not on PostgreSQL; use a model with a relation or a Json field', m.pos)


def check_enum(e: ast.Enum) -> None:
    where_ = f'enum "{e.name}"'
    if not e.values:
        raise err(f"{where_}: an enum needs at least one value", e.pos)
    seen: set[str] = set()
    for v in e.values:
        if v.name in seen:
            raise err(f'{where_}: value "{v.name}" is declared twice', v.pos)
        seen.add(v.name)


def check_views(schema: ast.Schema, models: Mapping[str, ast.Model], enums: Mapping[str, ast.Enum]) -> None:
    """A view creates no DDL, but a typo in a view is still a broken schema."""
    for v in schema.models:
        if v.kind == "view":
            for f in v.fields:
                known = f.type.name in SCALARS or f.type.name in enums or f.type.name in models
                if not known and f.type.unsupported is None and f.type.name != "Unsupported":
                    raise err(f'{where(v, f)}: unknown type "{f.type.name}" (not a scalar type, '
                              'a model or an enum)', f.type.pos)


def check_attributes(m: ast.Model, models: Mapping[str, ast.Model], enums: Mapping[str, ast.Enum]) -> None:
    """Field and block attributes a model may carry, each once, where they make sense."""
    seen: set[str] = set()
    for f in m.fields:
        if f.name in seen:
            raise err(f'{where(m, f)}: the field "{f.name}" is defined twice', f.pos)
        seen.add(f.name)
        is_relation = f.type.name in models and f.type.unsupported is None
        attrs_seen: set[str] = set()
        for a in f.attributes:
            if a.name not in FIELD_ATTRIBUTES and "." not in a.name:
                raise err(f"{where(m, f)}: unknown attribute @{a.name}", a.pos)
            key = "native type" if "." in a.name else a.name
            if key in attrs_seen:
                raise err(f"{where(m, f)}: @{a.name} is given twice"
                           if key != "native type" else f"{where(m, f)}: a second native type @{a.name}",
                           a.pos)
            attrs_seen.add(key)
            if "." in a.name and (f.type.name in enums or f.type.unsupported is not None):
                raise err(f"{where(m, f)}: native type @{a.name} on a field that is not of a "
                           "scalar type", a.pos)
            if a.name == "updatedAt" and not is_relation and f.type.name != "DateTime":
                raise err(f"{where(m, f)}: @updatedAt only goes on DateTime fields", a.pos)
            if is_relation and a.name in ("default", "updatedAt", "id", "unique", "map") or \
                    is_relation and "." in a.name:
                raise err(f"{where(m, f)}: @{a.name} cannot go on a relation field; put it on the "
                           "scalar field the relation uses", a.pos)
            if a.name == "relation" and (f.type.name in SCALARS or f.type.name in enums
                                         or f.type.unsupported is not None):
                raise err(f'{where(m, f)}: @relation on a field of type {f.type.name}, which is not '
                           'a model', a.pos)
            if a.name == "id" and a.arg("sort") is not None:
                raise err(f"{where(m, f)}: PostgreSQL primary keys take no sort: argument", a.pos)
    for a in m.attributes:
        if a.name == "fulltext":
            raise err(f"{where(m)}: @@fulltext indexes exist only on MySQL and MongoDB; on "
                       "PostgreSQL use @@index([...], type: Gin) on a tsvector column", a.pos)
        if a.name not in BLOCK_ATTRIBUTES:
            raise err(f"{where(m)}: unknown attribute @@{a.name}", a.pos)
        if a.name == "id":
            fields_arg = a.arg("fields", 0)
            for _, node in field_refs(fields_arg.value if fields_arg else None):
                if call_arg(node, "sort") is not None:
                    raise err(f"{where(m)}: PostgreSQL primary keys take no sort: argument", a.pos)


def check_names(built: Iterable[tuple[ast.Model, str, Iterable[tuple[str, str, ast.Pos]]]]) -> None:
    """Constraint names PostgreSQL would refuse twice: primary keys, indexes and unique
    constraints share one namespace per schema, foreign keys one per table (Prisma's rule).

    `built` is (model, its schema, the names its table declares as (name, "index" | "fk",
    where)): the names come from building, so this runs after it."""
    per_schema: dict[tuple[str, str], str] = {}
    for m, schema, declared in built:
        per_table: set[str] = set()
        for name, kind, pos in declared:
            if name in per_table:
                raise err(f'{where(m)}: the constraint name "{name}" is used twice on this model; '
                          'give one a different map: name', pos)
            per_table.add(name)
            if kind == "index":
                other = per_schema.setdefault((schema, name), m.name)
                if other != m.name:
                    raise err(f'{where(m)}: the constraint name "{name}" is already used by model '
                          f'"{other}"; primary keys, indexes and unique constraints share one '
                          'namespace: give one a different map: name', pos)
