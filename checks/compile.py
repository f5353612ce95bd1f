"""A parsed Prisma schema → the catalog Prisma's schema engine creates on PostgreSQL.

`compile_schema` is the expected side of every drift check, so it follows Prisma's
schema engine (prisma-engines: ``sql_schema_calculator`` and the PostgreSQL flavour),
checked against the engine itself (`tools/regen_goldens.py`, ``oracle.mjs``):

* tables: one per ``model`` (``@@ignore`` models included: Prisma still creates them;
  ``view`` blocks create nothing), then one per implicit many-to-many relation;
  names are the database names (``@@map`` / ``@map``), declaration order kept;
* types: the scalar's default native type (``String`` → ``text``, ``DateTime`` →
  ``timestamp(3)``, ``Decimal`` → ``numeric(65,30)``…) or the ``@db.*`` one, in the
  canonical `format_type` spelling of `checks.catalog`; ``@default(autoincrement())``
  is ``autoincrement=True`` (SERIAL), never a default;
* defaults: Prisma's DDL text, canonicalised by `checks.defaults.normalize_default`
  exactly like the inspector canonicalises ``pg_get_expr`` (client-side generators
  ``cuid() uuid() nanoid() ulid()`` and ``@updatedAt`` give no database default);
* constraint names: ``map:`` or Prisma's conventions ``<table>_pkey``,
  ``<table>_<cols>_key`` / ``_idx`` / ``_fkey``, cut to 63 bytes on a character
  boundary as Prisma cuts them; join tables ``_<Relation>`` with ``A``/``B`` columns,
  ``_AB_pkey``, ``_B_index`` and cascading foreign keys;
* foreign keys with Prisma's default actions (``ON DELETE SET NULL`` when every
  referencing column is optional, else ``RESTRICT``; ``ON UPDATE CASCADE``), none at all
  with ``relationMode = "prisma"``;
* partial indexes: ``where: raw("...")`` kept as written, the object form
  (``where: { deletedAt: null }``) in PostgreSQL's deparsed spelling, as the inspector
  reads it back; Prisma's own text rides along in ``Index.ddl_where``;
* names longer than 63 bytes as PostgreSQL stores them (it cuts what Prisma writes).

Where the canonical form cannot be rendered back to Prisma's text (bare ``CHAR``,
``Unsupported("...")``, ``dbgenerated`` casts, an explicit ``ASC``, a default opclass
spelled out), the compiler records Prisma's spelling in the ``ddl_*`` fields of the
catalog, so that `checks.ddl.render_script` reproduces Prisma's script byte for byte.

Semantic errors raise `SchemaError` located at file:line:column, naming the model and
field. Prisma validates much more than this (it is a compiler for drift checks, not a
replacement for ``prisma validate``); what is checked is what would otherwise make
the expected catalog wrong.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field as dc_field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Callable

from . import ddl
from .catalog import (
    Catalog,
    Column,
    Enum,
    Extension,
    ForeignKey,
    Index,
    IndexColumn,
    PrimaryKey,
    Table,
    enum_type_ref,
    quote_ident,
)
from .defaults import normalize_default, normalize_predicate, strip_outer_parens
from .errors import SchemaError
from .psl import ast
from .schema_rules import (
    SCALARS,
    call_arg as _call_arg,
    check_attributes,
    check_enum,
    check_names,
    check_no_composite_types,
    check_views,
    err as _err,
    field_refs as _field_refs,
    where as _where,
)

__all__ = ["compile_schema", "MAX_IDENTIFIER_LENGTH", "constraint_name", "primary_key_name"]

MAX_IDENTIFIER_LENGTH = 63  # PostgreSQL's NAMEDATALEN - 1, in bytes


# scalar → its native type when no @db.* is given: (native name, arguments)
_DEFAULT_NATIVE = {
    "String": ("Text", ()),
    "Boolean": ("Boolean", ()),
    "Int": ("Integer", ()),
    "BigInt": ("BigInt", ()),
    "Float": ("DoublePrecision", ()),
    "Decimal": ("Decimal", (65, 30)),
    "DateTime": ("Timestamp", (3,)),
    "Json": ("JsonB", ()),
    "Bytes": ("ByteA", ()),
}

# @db.<name> → (scalar it belongs to, allowed argument counts)
_NATIVE = {
    "SmallInt": ("Int", (0,)),
    "Integer": ("Int", (0,)),
    "Oid": ("Int", (0,)),
    "BigInt": ("BigInt", (0,)),
    "Decimal": ("Decimal", (0, 2)),
    "Money": ("Decimal", (0,)),
    "Real": ("Float", (0,)),
    "DoublePrecision": ("Float", (0,)),
    "Text": ("String", (0,)),
    "VarChar": ("String", (0, 1)),
    "Char": ("String", (0, 1)),
    "Uuid": ("String", (0,)),
    "Xml": ("String", (0,)),
    "Inet": ("String", (0,)),
    "Citext": ("String", (0,)),
    "Bit": ("String", (0, 1)),
    "VarBit": ("String", (0, 1)),
    "ByteA": ("Bytes", (0,)),
    "Timestamp": ("DateTime", (0, 1)),
    "Timestamptz": ("DateTime", (0, 1)),
    "Date": ("DateTime", (0,)),
    "Time": ("DateTime", (0, 1)),
    "Timetz": ("DateTime", (0, 1)),
    "Boolean": ("Boolean", (0,)),
    "Json": ("Json", (0,)),
    "JsonB": ("Json", (0,)),
}

_CLIENT_GENERATORS = ("cuid", "uuid", "nanoid", "ulid")

_INDEX_METHODS = {"BTree": "btree", "Hash": "hash", "Gist": "gist", "Gin": "gin",
                  "SpGist": "spgist", "Brin": "brin"}

# Prisma's operator classes (`ops: JsonbPathOps`) → SQL name.
_OPCLASSES: dict[str, str] = {
    "InetOps": "inet_ops", "JsonbOps": "jsonb_ops", "JsonbPathOps": "jsonb_path_ops",
    "ArrayOps": "array_ops", "TextOps": "text_ops", "InetInclusionOps": "inet_inclusion_ops",
}
for _kind, _sql in (("Bit", "bit"), ("VarBit", "varbit"), ("Bpchar", "bpchar"), ("Bytea", "bytea"),
                    ("Date", "date"), ("Float4", "float4"), ("Float8", "float8"), ("Inet", "inet"),
                    ("Int2", "int2"), ("Int4", "int4"), ("Int8", "int8"), ("Numeric", "numeric"),
                    ("Oid", "oid"), ("Text", "text"), ("Timestamp", "timestamp"),
                    ("TimestampTz", "timestamptz"), ("Time", "time"), ("TimeTz", "timetz"),
                    ("Uuid", "uuid")):
    _OPCLASSES[f"{_kind}MinMaxOps"] = f"{_sql}_minmax_ops"
    _OPCLASSES[f"{_kind}MinMaxMultiOps"] = f"{_sql}_minmax_multi_ops"
    _OPCLASSES[f"{_kind}BloomOps"] = f"{_sql}_bloom_ops"

# The operator classes PostgreSQL marks default (pg_opclass.opcdefault) per index method; an
# index column names its opclass in the catalog only when it is not one of these (the
# inspector's rule). Spelled out in the schema or not, a default opclass is the same index.
_DEFAULT_OPCLASSES = {
    "btree": frozenset("""array_ops bit_ops bool_ops bpchar_ops bytea_ops char_ops date_ops enum_ops
        float4_ops float8_ops inet_ops int2_ops int4_ops int8_ops interval_ops jsonb_ops macaddr8_ops
        macaddr_ops money_ops multirange_ops name_ops numeric_ops oid_ops oidvector_ops pg_lsn_ops
        range_ops record_ops text_ops tid_ops time_ops timestamp_ops timestamptz_ops timetz_ops
        tsquery_ops tsvector_ops uuid_ops varbit_ops xid8_ops""".split()),
    "hash": frozenset("""aclitem_ops array_ops bool_ops bpchar_ops bytea_ops char_ops cid_ops date_ops
        enum_ops float4_ops float8_ops inet_ops int2_ops int4_ops int8_ops interval_ops jsonb_ops
        macaddr8_ops macaddr_ops multirange_ops name_ops numeric_ops oid_ops oidvector_ops pg_lsn_ops
        range_ops record_ops text_ops tid_ops time_ops timestamp_ops timestamptz_ops timetz_ops
        uuid_ops xid8_ops xid_ops""".split()),
    "gin": frozenset("array_ops jsonb_ops tsvector_ops".split()),
    "gist": frozenset("box_ops circle_ops multirange_ops point_ops poly_ops range_ops tsquery_ops "
                      "tsvector_ops".split()),
    "spgist": frozenset("box_ops inet_ops poly_ops quad_point_ops range_ops text_ops".split()),
    "brin": frozenset("""bit_minmax_ops box_inclusion_ops bpchar_minmax_ops bytea_minmax_ops
        char_minmax_ops date_minmax_ops float4_minmax_ops float8_minmax_ops inet_inclusion_ops
        int2_minmax_ops int4_minmax_ops int8_minmax_ops interval_minmax_ops macaddr8_minmax_ops
        macaddr_minmax_ops name_minmax_ops numeric_minmax_ops oid_minmax_ops pg_lsn_minmax_ops
        range_inclusion_ops text_minmax_ops tid_minmax_ops time_minmax_ops timestamp_minmax_ops
        timestamptz_minmax_ops timetz_minmax_ops uuid_minmax_ops varbit_minmax_ops""".split()),
}

# Built-in type names an Unsupported("...") may use, with PostgreSQL's canonical spelling.
_UNSUPPORTED_ALIASES = {
    "int": "integer", "int4": "integer", "int2": "smallint", "int8": "bigint",
    "float4": "real", "float8": "double precision", "bool": "boolean", "varchar": "character varying",
    "char": "character(1)", "bpchar": "character", "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone", "time": "time without time zone",
    "timetz": "time with time zone", "decimal": "numeric", "varbit": "bit varying",
}


# --------------------------------------------------------------------------- naming


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, cut on a character boundary (Prisma's floor_char_boundary)."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", errors="ignore")


def primary_key_name(table: str) -> str:
    limit = MAX_IDENTIFIER_LENGTH - 5
    return (_cut(table, limit) if len(table.encode()) >= limit else table) + "_pkey"


def constraint_name(table: str, columns: list[str] | tuple[str, ...], suffix: str) -> str:
    """``<table>_<col>_<col><suffix>`` (suffix ``_key``, ``_idx`` or ``_fkey``), cut as Prisma cuts it."""
    joined = f"{table}_{'_'.join(columns)}"
    limit = MAX_IDENTIFIER_LENGTH - len(suffix)
    if len(joined.encode()) >= limit:
        joined = _cut(joined, limit)
    return joined + suffix


# --------------------------------------------------------------------------- errors and small helpers


def _map_name(attrs, default: str) -> str:
    for a in attrs:
        if a.name == "map":
            arg = a.arg("name", 0)
            if arg is not None and isinstance(arg.value, ast.Str):
                return arg.value.value
    return default


def _str_arg(attr: ast.Attribute, name: str, position: int | None = None) -> str | None:
    arg = attr.arg(name, position)
    if arg is not None and isinstance(arg.value, ast.Str):
        return arg.value.value
    return None


def _ident_arg(attr: ast.Attribute, name: str) -> str | None:
    arg = attr.arg(name)
    if arg is not None and isinstance(arg.value, ast.Ident):
        return arg.value.name
    return None


def _is_ignored(model: ast.Model) -> bool:
    return model.attribute("ignore") is not None


# --------------------------------------------------------------------------- the compiler


@dataclass
class _Rel:
    """A relation field on a model (its type is another model)."""

    model: ast.Model
    model_index: int
    field: ast.Field
    field_index: int
    target: ast.Model
    name: str | None
    fields: list[tuple[str, ast.Value]] | None
    references: list[tuple[str, ast.Value]] | None
    attr: ast.Attribute | None


@dataclass
class _TableBuild:
    model: ast.Model
    schema: str
    name: str
    columns: list[Column] = dc_field(default_factory=list)
    column_of: dict[str, Column] = dc_field(default_factory=dict)  # field name → column
    primary_key: PrimaryKey | None = None
    indexes: list[Index] = dc_field(default_factory=list)
    foreign_keys: list[ForeignKey] = dc_field(default_factory=list)
    # (constraint name, "index" | "fk", where it is declared): for the collision check
    names: list[tuple[str, str, ast.Pos]] = dc_field(default_factory=list)


def compile_schema(schema: ast.Schema) -> Catalog:
    """The catalog Prisma would create for ``schema`` on an empty PostgreSQL database."""
    return _Compiler(schema).run()


class _Compiler:
    def __init__(self, schema: ast.Schema) -> None:
        self.schema = schema
        self.models = {m.name: m for m in schema.models}
        self.enums = {e.name: e for e in schema.enums}
        self.ds_name = "db"
        self.schemas: tuple[str, ...] = ("public",)
        self.declared_schemas: set[str] | None = None
        self.relation_mode_prisma = False
        self.extensions: tuple[Extension, ...] = ()
        self.enum_out: dict[str, Enum] = {}
        self.tables: dict[str, _TableBuild] = {}

    # ------------------------------------------------------------------ datasource

    def datasource(self) -> None:
        if not self.schema.datasources:
            first = self.schema.files[0] if self.schema.files else None
            raise SchemaError("the schema has no datasource block: expected "
                              'datasource db { provider = "postgresql" }',
                              file=first, line=1 if first else None, column=1 if first else None)
        ds = self.schema.datasources[0]
        self.ds_name = ds.name
        provider = ds.property("provider")
        value = provider.value if provider is not None else None
        if not isinstance(value, ast.Str):
            raise _err(f'datasource "{ds.name}": provider must be "postgresql"',
                       provider.pos if provider else ds.pos)
        if value.value not in ("postgresql", "postgres"):
            raise _err(f'datasource "{ds.name}": provider "{value.value}" is not supported; '
                       'Driftwatch checks PostgreSQL schemas (provider = "postgresql")', value.pos)
        schemas = ds.property("schemas")
        if schemas is not None:
            if not isinstance(schemas.value, ast.Array) or not all(
                    isinstance(i, ast.Str) for i in schemas.value.items):
                raise _err(f'datasource "{ds.name}": schemas must be a list of strings, '
                           'like schemas = ["public", "auth"]', schemas.pos)
            names = tuple(i.value for i in schemas.value.items)
            self.declared_schemas = set(names)
            if names:
                self.schemas = names
        for key in ("relationMode", "referentialIntegrity"):
            prop = ds.property(key)
            if prop is not None and isinstance(prop.value, ast.Str) and prop.value.value == "prisma":
                self.relation_mode_prisma = True
        ext = ds.property("extensions")
        if ext is not None and isinstance(ext.value, ast.Array):
            out = []  # (name in the schema, extension)
            for item in ext.value.items:
                if isinstance(item, ast.Ident):
                    out.append((item.name, Extension(item.name)))
                elif isinstance(item, ast.Call):
                    opts = {a.name: a.value.value for a in item.args
                            if a.name and isinstance(a.value, ast.Str)}
                    out.append((item.name, Extension(opts.get("map", item.name), opts.get("schema"),
                                                     opts.get("version"))))
                elif isinstance(item, ast.Str):
                    out.append((item.value, Extension(item.value)))
            # Prisma orders them by their name in the schema (not the map:-ped one)
            self.extensions = tuple(e for _, e in sorted(out, key=lambda p: p[0].encode()))

    def namespace(self, attrs, where: str, pos: ast.Pos) -> str:
        for a in attrs:
            if a.name == "schema":
                name = _str_arg(a, "name", 0)
                if name is None:
                    raise _err(f'{where}: @@schema needs a schema name, like @@schema("auth")', a.pos)
                if self.declared_schemas is None:
                    raise _err(f'{where}: @@schema("{name}") but the datasource declares no '
                               f'schemas = [...]; add schemas = ["{name}"] to the datasource', a.pos)
                if name not in self.declared_schemas:
                    listed = ", ".join(f'"{s}"' for s in self.schemas)
                    raise _err(f'{where}: @@schema("{name}") is not one of the datasource schemas '
                               f'[{listed}]', a.pos)
                return name
        if self.declared_schemas is not None:
            raise _err(f"{where}: the datasource lists schemas = [...], so this needs an "
                       f'@@schema("...") attribute naming one of them', pos)
        return "public"

    # ------------------------------------------------------------------ enums

    def compile_enums(self) -> None:
        for e in self.schema.enums:
            check_enum(e)
            schema = self.namespace(e.attributes, f'enum "{e.name}"', e.pos)
            values = tuple(_map_name(v.attributes, v.name) for v in e.values)
            self.enum_out[e.name] = Enum(schema=schema, name=_map_name(e.attributes, e.name),
                                         values=values, prisma_name=e.name)

    # ------------------------------------------------------------------ run

    def run(self) -> Catalog:
        self.datasource()
        check_no_composite_types(self.schema)
        self.compile_enums()
        models = [m for m in self.schema.models if m.kind == "model"]
        check_views(self.schema, self.models, self.enums)
        for m in models:
            self.compile_model(m)
        rels = self.collect_relations()
        for m in models:
            self.compile_keys(m)
        join_tables = self.compile_relations(rels)
        check_names((m, self.tables[m.name].schema, self.tables[m.name].names) for m in models)
        tables = [self.finish(self.tables[m.name]) for m in models] + join_tables
        return _as_postgres_stores_it(Catalog(
            schemas=self.schemas, tables=tuple(tables),
            enums=tuple(self.enum_out[e.name] for e in self.schema.enums), extensions=self.extensions))

    def finish(self, t: _TableBuild) -> Table:
        return Table(schema=t.schema, name=t.name, columns=tuple(t.columns), primary_key=t.primary_key,
                     indexes=tuple(t.indexes), foreign_keys=tuple(t.foreign_keys), model=t.model.name)

    # ------------------------------------------------------------------ columns

    def compile_model(self, m: ast.Model) -> None:
        schema = self.namespace(m.attributes, _where(m), m.pos)
        t = _TableBuild(model=m, schema=schema, name=_map_name(m.attributes, m.name))
        check_attributes(m, self.models, self.enums)
        for f in m.fields:
            type_name = f.type.name
            if type_name in self.models and f.type.unsupported is None:
                target = self.models[type_name]
                if target.kind == "type":
                    raise _err(f'{_where(m, f)}: composite type "{type_name}" is not supported on '
                               'PostgreSQL', f.type.pos)
                continue  # a relation field: no column of its own
            col = self.column(m, f)
            t.columns.append(col)
            t.column_of[f.name] = col
        self.tables[m.name] = t

    def native(self, m: ast.Model, f: ast.Field, scalar: str) -> tuple[str, tuple[int, ...], ast.Attribute | None]:
        prefix = self.ds_name + "."
        for a in f.attributes:
            if a.name.startswith(prefix):
                name = a.name[len(prefix):]
                spec = _NATIVE.get(name)
                if spec is None:
                    known = ", ".join(f"@{prefix}{n}" for n, (s, _) in _NATIVE.items() if s == scalar)
                    raise _err(f"{_where(m, f)}: unknown native type @{a.name} for PostgreSQL"
                               + (f"; {scalar} accepts {known}" if known else ""), a.pos)
                if spec[0] != scalar:
                    known = ", ".join(f"@{prefix}{n}" for n, (s, _) in _NATIVE.items() if s == scalar)
                    raise _err(f"{_where(m, f)}: native type @{a.name} does not fit a {scalar} field"
                               + (f"; {scalar} accepts {known}" if known else ""), a.pos)
                args = []
                for arg in a.args:
                    if not isinstance(arg.value, ast.Number) or not re.fullmatch(r"\d+", arg.value.text):
                        raise _err(f"{_where(m, f)}: @{a.name} takes whole numbers as arguments", arg.pos)
                    args.append(int(arg.value.text))
                if len(args) not in spec[1]:
                    counts = " or ".join(str(c) for c in spec[1])
                    raise _err(f"{_where(m, f)}: @{a.name} takes {counts} arguments, got {len(args)}", a.pos)
                return name, tuple(args), a
            if a.name.startswith("db.") and prefix != "db.":
                raise _err(f'{_where(m, f)}: @{a.name} uses "db" but the datasource is named '
                           f'"{self.ds_name}"; write @{prefix}{a.name[3:]}', a.pos)
        name, args = _DEFAULT_NATIVE[scalar]
        return name, args, None

    def column(self, m: ast.Model, f: ast.Field) -> Column:
        ft = f.type
        name = _map_name(f.attributes, f.name)
        nullable = ft.optional or ft.list
        default_attr = f.attribute("default")
        if ft.unsupported is not None or ft.name == "Unsupported":
            written = ft.unsupported or ""
            canonical = _unsupported_canonical(written) + ("[]" if ft.list else "")
            ddl_type = written + ("[]" if ft.list else "")
            prisma_default = None
            if default_attr is not None:
                prisma_default = self.dbgenerated(m, f, default_attr)
            return self.make_column(name, canonical, ddl_type, nullable, prisma_default, False, f.name)
        if ft.name in self.enums:
            enum = self.enum_out[ft.name]
            canonical = enum_type_ref(enum.schema, enum.name, array=ft.list)
            prisma_default = None
            if default_attr is not None:
                prisma_default = self.enum_default(m, f, default_attr, self.enums[ft.name], canonical)
            return self.make_column(name, canonical, None, nullable, prisma_default, False, f.name)
        if ft.name not in SCALARS:
            if f.attribute("relation") is not None:
                raise _err(f'{_where(m, f)}: relation to a model "{ft.name}" that does not exist',
                           ft.pos)
            raise _err(f'{_where(m, f)}: unknown type "{ft.name}" (not a scalar type, a model '
                       f'or an enum)', ft.pos)
        scalar = ft.name
        native, args, native_attr = self.native(m, f, scalar)
        canonical, spelled = _native_type(native, args)
        if ft.list:
            canonical += "[]"
            spelled += "[]"
        autoincrement = False
        prisma_default = None
        if default_attr is not None:
            prisma_default, autoincrement = self.scalar_default(m, f, default_attr, scalar, native, spelled)
        if autoincrement and native in ("SmallInt", "Integer", "BigInt"):
            spelled = {"SmallInt": "SMALLSERIAL", "Integer": "SERIAL", "BigInt": "BIGSERIAL"}[native]
        elif autoincrement:
            raise _err(f"{_where(m, f)}: autoincrement() needs an integer column, not @{self.ds_name}."
                       f"{native}", default_attr.pos)
        ddl_type = spelled if ddl.prisma_type(canonical, autoincrement) != spelled else None
        return self.make_column(name, canonical, ddl_type, nullable, prisma_default, autoincrement, f.name)

    @staticmethod
    def make_column(name: str, canonical: str, ddl_type: str | None, nullable: bool,
                    prisma_default: str | None, autoincrement: bool, field_name: str) -> Column:
        default = None
        if prisma_default is not None:
            default = _canonical_default(prisma_default, canonical)
        col = Column(name=name, type=canonical, nullable=nullable, default=default,
                     autoincrement=autoincrement, model_field=field_name, ddl_type=ddl_type)
        wanted = prisma_default or None
        if ddl.column_default_sql(col) != wanted:
            col = Column(name=name, type=canonical, nullable=nullable, default=default,
                         autoincrement=autoincrement, model_field=field_name, ddl_type=ddl_type,
                         ddl_default=prisma_default if prisma_default is not None else "")
        return col

    # ------------------------------------------------------------------ defaults

    def default_value(self, m: ast.Model, f: ast.Field, attr: ast.Attribute) -> ast.Value:
        arg = attr.arg("value", 0)
        if arg is None:
            raise _err(f"{_where(m, f)}: @default needs a value", attr.pos)
        return arg.value

    def dbgenerated(self, m, f, attr) -> str | None:
        value = self.default_value(m, f, attr)
        if isinstance(value, ast.Call) and value.name == "dbgenerated":
            if not value.args:
                return None
            if not isinstance(value.args[0].value, ast.Str):
                raise _err(f'{_where(m, f)}: dbgenerated takes a string, like dbgenerated("now()")',
                           value.pos)
            return value.args[0].value.value or None
        raise _err(f"{_where(m, f)}: an Unsupported field only accepts @default(dbgenerated(...))",
                   value.pos)

    def function_default(self, m, f, value: ast.Call, scalar: str | None,
                         attr: ast.Attribute | None = None) -> tuple[str | None, bool]:
        name = value.name
        at = attr.pos if attr is not None else value.pos  # a misplaced function: point at @default
        if name == "dbgenerated":
            return self.dbgenerated(m, f, ast.Attribute("default", (ast.Arg(None, value, value.pos),),
                                                        False, value.pos)), False
        if name == "sequence":
            raise _err(f"{_where(m, f)}: sequence() is only supported on CockroachDB; "
                       "use autoincrement() on PostgreSQL", value.pos)
        if name == "autoincrement":
            if scalar not in ("Int", "BigInt") or f.type.list:
                raise _err(f"{_where(m, f)}: autoincrement() is only allowed on Int and BigInt fields",
                           at)
            return None, True
        if name == "now":
            if scalar != "DateTime":
                raise _err(f"{_where(m, f)}: now() is only allowed on DateTime fields", at)
            return "CURRENT_TIMESTAMP", False
        if name in _CLIENT_GENERATORS:
            if scalar != "String":
                raise _err(f"{_where(m, f)}: {name}() is only allowed on String fields", at)
            return None, False  # generated by Prisma Client: nothing in the database
        raise _err(f"{_where(m, f)}: unknown function {name}() in @default", value.pos)

    def scalar_default(self, m, f, attr, scalar: str, native: str, spelled: str) -> tuple[str | None, bool]:
        value = self.default_value(m, f, attr)
        if isinstance(value, ast.Call):
            return self.function_default(m, f, value, scalar, attr)
        if f.type.list:
            if not isinstance(value, ast.Array):
                raise _err(f"{_where(m, f)}: a list field's default must be a list, like @default([])",
                           value.pos)
            items = [self.literal(m, f, item, scalar, native) for item in value.items]
            return f"ARRAY[{', '.join(items)}]::{spelled}", False
        if isinstance(value, ast.Array):
            raise _err(f"{_where(m, f)}: a list default on a field that is not a list", value.pos)
        return self.literal(m, f, value, scalar, native), False

    def literal(self, m, f, value: ast.Value, scalar: str, native: str) -> str:
        """Prisma's SQL text for one literal default value."""
        def bad() -> SchemaError:  # built only when raised: most defaults fit
            return _err(f"{_where(m, f)}: this default does not fit a {scalar} field", value.pos)

        if scalar == "Boolean":
            if isinstance(value, ast.Ident) and value.name in ("true", "false"):
                return value.name
            raise bad()
        if scalar in ("Int", "BigInt"):
            if isinstance(value, ast.Number) and re.fullmatch(r"-?\d+", value.text):
                return str(int(value.text))
            raise bad()
        if scalar in ("Float", "Decimal"):
            text = value.text if isinstance(value, ast.Number) else (
                value.value if isinstance(value, ast.Str) and scalar == "Decimal" else None)
            if text is None:
                raise bad()
            return _decimal_text(text, bad)
        if not isinstance(value, ast.Str):
            raise bad()
        s = value.value
        if scalar == "String":
            return ddl.string_literal(s)
        if scalar == "Json":
            return ddl.string_literal(s)
        if scalar == "Bytes":
            try:
                raw = base64.b64decode(s, validate=True)
            except (binascii.Error, ValueError):
                raise _err(f"{_where(m, f)}: a Bytes default must be base64", value.pos) from None
            return "'\\x" + raw.hex() + "'"
        if scalar == "DateTime":
            text = _chrono_text(s)
            if text is None:
                raise _err(f'{_where(m, f)}: a DateTime default must be an RFC 3339 timestamp like '
                           f'"2020-01-01T00:00:00Z", got "{s}"', value.pos)
            return ddl.string_literal(text)
        raise bad()

    def enum_default(self, m, f, attr, enum: ast.Enum, canonical: str) -> str | None:
        value = self.default_value(m, f, attr)
        db_values = {v.name: _map_name(v.attributes, v.name) for v in enum.values}

        def one(item: ast.Value) -> str:
            if isinstance(item, ast.Ident) and item.name in db_values:
                return ddl.string_literal(db_values[item.name])
            shown = item.name if isinstance(item, ast.Ident) else "this value"
            raise _err(f'{_where(m, f)}: {shown} is not a value of enum "{enum.name}"', item.pos)

        if isinstance(value, ast.Call):
            prisma, _ = self.function_default(m, f, value, None, attr)
            return prisma
        if f.type.list:
            if not isinstance(value, ast.Array):
                raise _err(f"{_where(m, f)}: a list field's default must be a list", value.pos)
            return f"ARRAY[{', '.join(one(i) for i in value.items)}]::{ddl.prisma_type(canonical)}"
        return one(value)

    # ------------------------------------------------------------------ keys and indexes

    def index_columns(self, m: ast.Model, t: _TableBuild, refs, attr: ast.Attribute, method: str,
                      what: str) -> tuple[IndexColumn, ...]:
        cols = []
        for name, node in refs:
            col = t.column_of.get(name)
            if col is None:
                raise _err(f'{_where(m)}: {what} names "{name}", which is not a scalar field of the model',
                           getattr(node, "pos", attr.pos))
            sort = _call_arg(node, "sort")
            ops = _call_arg(node, "ops")
            if isinstance(ops, ast.Ident) and ops.name not in _OPCLASSES:
                raise _err(f'{_where(m)}: {what}: unknown operator class {ops.name} for field "{name}"; '
                           'use a Prisma name like JsonbPathOps or raw("<opclass>")', ops.pos)
            ddl_sort = None
            if isinstance(sort, ast.Ident):
                ddl_sort = {"Asc": "ASC", "Desc": "DESC"}.get(sort.name)
            cols.append(self.index_column(col, ddl_sort, ops, method))
        return tuple(cols)

    @staticmethod
    def index_column(col: Column, ddl_sort: str | None, ops: ast.Value | None, method: str) -> IndexColumn:
        written = None
        if isinstance(ops, ast.Ident) and ops.name in _OPCLASSES:
            written = _OPCLASSES[ops.name]
        elif isinstance(ops, ast.Call) and ops.name == "raw" and ops.args and isinstance(ops.args[0].value, ast.Str):
            written = ops.args[0].value.value
        is_default = written in _DEFAULT_OPCLASSES.get(method, ())
        return IndexColumn(name=col.name, descending=ddl_sort == "DESC",
                           opclass=None if (written is None or is_default) else written,
                           ddl_sort=ddl_sort, ddl_opclass=written)

    def compile_keys(self, m: ast.Model) -> None:
        t = self.tables[m.name]
        pk_fields: list[tuple[ast.Field, ast.Attribute]] = [
            (f, a) for f in m.fields for a in f.attributes if a.name == "id"]
        block_id = m.attribute("id")
        if len(pk_fields) > 1 or (pk_fields and block_id is not None):
            f, a = pk_fields[-1] if len(pk_fields) > 1 else pk_fields[0]
            raise _err(f"{_where(m, f)}: a model has one primary key: use @@id([...]) for a compound key",
                       a.pos)
        if pk_fields:
            f, a = pk_fields[0]
            col = t.column_of.get(f.name)
            if col is None:
                raise _err(f"{_where(m, f)}: @id on a relation field", a.pos)
            if col.nullable:
                raise _err(f"{_where(m, f)}: an @id field must be required (not optional, not a list)", a.pos)
            t.primary_key = PrimaryKey(_str_arg(a, "map") or primary_key_name(t.name), (col.name,))
            t.names.append((t.primary_key.name, "index", a.pos))
        elif block_id is not None:
            refs = _field_refs(block_id.arg("fields", 0).value if block_id.arg("fields", 0) else None)
            cols = self.index_columns(m, t, refs, block_id, "btree", "@@id")
            for c in cols:
                if _col_by_name(t, c.name).nullable:
                    raise _err(f'{_where(m)}: @@id names "{_col_by_name(t, c.name).model_field}", an optional '
                               "field; primary key fields must be required", block_id.pos)
            t.primary_key = PrimaryKey(_str_arg(block_id, "map") or primary_key_name(t.name),
                                       tuple(c.name for c in cols))
            t.names.append((t.primary_key.name, "index", block_id.pos))
        # unique and plain indexes, in Prisma's order: field @unique, then @@index, then @@unique
        for f in m.fields:
            for a in f.attributes:
                if a.name != "unique":
                    continue
                col = t.column_of.get(f.name)
                if col is None:
                    raise _err(f"{_where(m, f)}: @unique on a relation field; put it on the scalar "
                               "field(s) of the relation", a.pos)
                sort = _ident_arg(a, "sort")
                ic = self.index_column(col, {"Asc": "ASC", "Desc": "DESC"}.get(sort or ""), None, "btree")
                where, ddl_where = self.where(m, t, a)
                t.indexes.append(Index(name=_str_arg(a, "map") or constraint_name(t.name, [col.name], "_key"),
                                       columns=(ic,), unique=True, where=where, ddl_where=ddl_where))
                t.names.append((t.indexes[-1].name, "index", a.pos))
        for kind in ("index", "unique"):
            for a in m.attributes:
                if a.name != kind:
                    continue
                fields_arg = a.arg("fields", 0)
                refs = _field_refs(fields_arg.value if fields_arg else None)
                if not refs:
                    raise _err(f"{_where(m)}: @@{kind} needs a list of fields", a.pos)
                type_name = _ident_arg(a, "type")
                method = "btree"
                if type_name is not None:
                    if type_name not in _INDEX_METHODS:
                        raise _err(f"{_where(m)}: unknown index type {type_name}; PostgreSQL accepts "
                                   + ", ".join(_INDEX_METHODS), a.pos)
                    method = _INDEX_METHODS[type_name]
                cols = self.index_columns(m, t, refs, a, method, f"@@{kind}")
                suffix = "_key" if kind == "unique" else "_idx"
                # @@index(name: "...") is the old spelling of map: (on @@unique, name is client-side)
                name = _str_arg(a, "map") or (_str_arg(a, "name") if kind == "index" else None) \
                    or constraint_name(t.name, [c.name for c in cols], suffix)
                where, ddl_where = self.where(m, t, a)
                t.indexes.append(Index(name=name, columns=cols, unique=kind == "unique", method=method,
                                       where=where, ddl_where=ddl_where))
                t.names.append((name, "index", a.pos))
        if t.primary_key is None and not _is_ignored(m) and not any(
                i.unique and i.where is None and not any(_col_by_name(t, c.name).nullable for c in i.columns)
                for i in t.indexes):
            raise _err(f'{_where(m)}: the model has no unique identifier: add an @id field, an @@id([...]), '
                       'or an @unique / @@unique on required fields (or mark the model @@ignore)',
                       _name_pos(m))

    def where(self, m: ast.Model, t: _TableBuild, a: ast.Attribute) -> tuple[str | None, str | None]:
        """A partial index's condition: (canonical, Prisma's text when different), both without
        the outer parentheses. The canonical form is what PostgreSQL's ``pg_get_expr`` prints,
        as the inspector reports it; for ``raw("...")`` that is the text as written (PostgreSQL
        may deparse it differently, e.g. adding ``::text`` casts)."""
        arg = a.arg("where")
        if arg is None:
            return None, None
        w = arg.value
        if isinstance(w, ast.Call) and w.name == "raw" and w.args and isinstance(w.args[0].value, ast.Str):
            raw = w.args[0].value.value
            return normalize_predicate(raw), (raw if strip_outer_parens(raw) != raw else None)
        if not (isinstance(w, ast.Call) and w.name == "{}"):
            raise _err(f'{_where(m)}: where: takes raw("<SQL condition>") or an object like '
                       '{ deletedAt: null }', arg.pos)
        prisma, canonical = [], []
        for item in w.args:
            col = t.column_of.get(item.name or "")
            if col is None:
                raise _err(f'{_where(m)}: where: names "{item.name}", which is not a scalar field of '
                           'the model', item.pos)
            value, negate = item.value, False
            if isinstance(value, ast.Call) and value.name == "{}":
                if len(value.args) != 1 or value.args[0].name != "not":
                    raise _err(f'{_where(m)}: where: a nested object must be {{ not: <value> }}', value.pos)
                value, negate = value.args[0].value, True
            ident = quote_ident(col.name)
            if isinstance(value, ast.Ident) and value.name == "null":
                test = f"IS {'NOT ' if negate else ''}NULL"
                prisma.append(f"{ident} {test}")
                canonical.append(f"{_pg_ident(col.name)} {test}")
                continue
            if isinstance(value, ast.Str):
                literal = ddl.string_literal(value.value)
            elif isinstance(value, ast.Number):
                literal = value.text
            elif isinstance(value, ast.Ident) and value.name in ("true", "false"):
                literal = value.name
            else:
                raise _err(f"{_where(m)}: where: values are strings, numbers, true, false or null",
                           value.pos)
            prisma.append(f"{ident} {'!=' if negate else '='} {literal}")
            canonical.append(_pg_comparison(col, "<>" if negate else "=", value, literal))
        text = " AND ".join(prisma)
        if len(canonical) > 1:
            canonical = [f"({c})" for c in canonical]
        return normalize_predicate(" AND ".join(canonical)), text

    # ------------------------------------------------------------------ relations

    def collect_relations(self) -> list[_Rel]:
        rels = []
        for mi, m in enumerate(self.schema.models):
            if m.kind != "model":
                continue
            for fi, f in enumerate(m.fields):
                target = self.models.get(f.type.name)
                if target is None or f.type.unsupported is not None:
                    continue
                attr = f.attribute("relation")
                name = fields = references = None
                if attr is not None:
                    name = _str_arg(attr, "name", 0)
                    if attr.arg("fields") is not None:
                        fields = _field_refs(attr.arg("fields").value)
                    if attr.arg("references") is not None:
                        references = _field_refs(attr.arg("references").value)
                rels.append(_Rel(m, mi, f, fi, target, name, fields, references, attr))
        return rels

    @staticmethod
    def opposite(rel: _Rel, by_ends: dict[tuple[int, int, str | None], list[_Rel]]) -> _Rel | None:
        """The first relation (in declaration order) from rel's target back to its model,
        with the same relation name. `by_ends` groups relations by (model, target, name):
        a lookup, not a scan of every relation (which made large schemas quadratic)."""
        for other in by_ends.get((id(rel.target), id(rel.model), rel.name), ()):
            if other is not rel:
                return other
        return None

    def compile_relations(self, rels: list[_Rel]) -> list[Table]:
        join_tables: list[Table] = []
        by_ends: dict[tuple[int, int, str | None], list[_Rel]] = {}
        for rel in rels:
            by_ends.setdefault((id(rel.model), id(rel.target), rel.name), []).append(rel)
        for rel in rels:
            m, f = rel.model, rel.field
            if rel.target.kind == "view":
                continue
            opp = self.opposite(rel, by_ends)
            if opp is None:
                raise _err(f'{_where(m, f)}: the relation to "{rel.target.name}" has no opposite '
                           f'relation field on model "{rel.target.name}"', f.pos)
            if rel.fields is not None or rel.references is not None:
                self.inline_relation(rel)
                continue
            if f.type.list and opp is not None and opp.field.type.list and opp.fields is None:
                # implicit many-to-many, created once, from model A's side
                if m.name > rel.target.name:
                    continue
                if m is rel.target and f.name > opp.field.name:
                    continue
                join_tables.append(self.join_table(rel, opp))
                continue
            if not f.type.list and not opp.field.type.list and opp.fields is None and opp.references is None:
                raise _err(f'{_where(m, f)}: a one-to-one relation needs fields: [...] and references: [...] '
                           'on one side', f.pos)
            if not f.type.list and opp.field.type.list:
                raise _err(f'{_where(m, f)}: the relation to "{rel.target.name}" needs '
                           '@relation(fields: [...], references: [...])', f.pos)
        return join_tables

    def inline_relation(self, rel: _Rel) -> None:
        m, f, target = rel.model, rel.field, rel.target
        where = _where(m, f)
        pos = rel.attr.pos if rel.attr is not None else f.pos
        if rel.fields is None or rel.references is None:
            raise _err(f"{where}: @relation needs both fields: [...] and references: [...]", pos)
        if len(rel.fields) != len(rel.references):
            raise _err(f"{where}: @relation has {len(rel.fields)} fields but {len(rel.references)} "
                       "references; they must pair up one to one", pos)
        if not rel.fields:
            raise _err(f"{where}: @relation fields: [] is empty", pos)
        if f.type.list:
            raise _err(f"{where}: fields: [...] goes on the single side of a relation, not on a list", pos)
        t = self.tables[m.name]
        tt = self.tables[target.name]
        cols, refs = [], []
        for name, node in rel.fields:
            col = t.column_of.get(name)
            if col is None:
                raise _err(f'{where}: @relation fields names "{name}", which is not a scalar field of '
                           f'model "{m.name}"', getattr(node, "pos", pos))
            cols.append(col.name)
        for name, node in rel.references:
            col = tt.column_of.get(name)
            if col is None:
                raise _err(f'{where}: @relation references "{name}", which is not a scalar field of '
                           f'model "{target.name}"', getattr(node, "pos", pos))
            refs.append(col.name)
        if self.relation_mode_prisma:
            return
        on_delete = _ident_arg(rel.attr, "onDelete")
        on_update = _ident_arg(rel.attr, "onUpdate")
        actions = {"Cascade": "CASCADE", "Restrict": "RESTRICT", "NoAction": "NO ACTION",
                   "SetNull": "SET NULL", "SetDefault": "SET DEFAULT"}
        for arg_name, value in (("onDelete", on_delete), ("onUpdate", on_update)):
            if value is not None and value not in actions:
                raise _err(f"{where}: {arg_name}: {value} is not a referential action "
                           f"({', '.join(actions)})", pos)
        # Prisma's "referential arity": required when any referencing column is required
        required = not f.type.optional or any(not t.column_of[n].nullable for n, _ in rel.fields)
        default_delete = "RESTRICT" if required else "SET NULL"
        fk_name = _str_arg(rel.attr, "map") or constraint_name(t.name, cols, "_fkey")
        t.names.append((fk_name, "fk", rel.attr.pos))
        t.foreign_keys.append(ForeignKey(
            name=fk_name,
            columns=tuple(cols), referenced_schema=tt.schema, referenced_table=tt.name,
            referenced_columns=tuple(refs),
            on_delete=actions[on_delete] if on_delete else default_delete,
            on_update=actions[on_update] if on_update else "CASCADE"))

    def join_table(self, rel: _Rel, opp: _Rel) -> Table:
        model_a, model_b = rel.model, rel.target
        relation = rel.name or f"{model_a.name}To{model_b.name}"
        name = ("_" + relation)[:MAX_IDENTIFIER_LENGTH]  # Prisma counts characters here
        ta, tb = self.tables[model_a.name], self.tables[model_b.name]
        for model, t, pointing in ((model_a, ta, opp), (model_b, tb, rel)):
            if t.primary_key is None or len(t.primary_key.columns) != 1:
                raise _err(f'{_where(pointing.model, pointing.field)}: an implicit many-to-many relation '
                           f'needs a single-field @id on model "{model.name}"', pointing.field.pos)

        def id_column(t: _TableBuild, as_name: str) -> Column:
            pk = _col_by_name(t, t.primary_key.columns[0])
            # same type as the referenced id, but never SERIAL: the join table has no sequence
            return Column(name=as_name, type=pk.type, nullable=False, ddl_type=pk.ddl_type)

        cut55 = name[:MAX_IDENTIFIER_LENGTH - 8]
        fk_limit = MAX_IDENTIFIER_LENGTH - 5 - 2
        fk_a = (_cut(name, fk_limit) if len(name.encode()) > fk_limit else name) + "_A_fkey"
        fk_b = (_cut(name, fk_limit) if len(name.encode()) >= fk_limit else name) + "_B_fkey"
        fks: tuple[ForeignKey, ...] = ()
        if not self.relation_mode_prisma:
            fks = (
                ForeignKey(fk_a, ("A",), ta.schema, ta.name, ta.primary_key.columns, "CASCADE", "CASCADE"),
                ForeignKey(fk_b, ("B",), tb.schema, tb.name, tb.primary_key.columns, "CASCADE", "CASCADE"),
            )
        return Table(
            schema=ta.schema, name=name,
            columns=(id_column(ta, "A"), id_column(tb, "B")),
            primary_key=PrimaryKey(cut55 + "_AB_pkey", ("A", "B")),
            indexes=(Index(cut55 + "_B_index", (IndexColumn("B"),)),),
            foreign_keys=fks, model=None)


def _as_postgres_stores_it(catalog: Catalog) -> Catalog:
    """Every identifier cut to 63 bytes, as PostgreSQL cuts a longer one it is given.

    Prisma cuts the constraint names it generates itself (see `constraint_name`) but
    writes a longer table, column or type name as it is; PostgreSQL then stores its first
    63 bytes (on a character boundary). The catalog holds what the database will hold, and
    the DDL rendered from it is equivalent to Prisma's."""
    def cut(name: str) -> str:
        return _cut(name, MAX_IDENTIFIER_LENGTH)

    def cuts(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(cut(n) for n in names)

    if all(len(n.encode()) <= MAX_IDENTIFIER_LENGTH for n in _identifiers(catalog)):
        return catalog
    tables = []
    for t in catalog.tables:
        tables.append(replace(
            t, name=cut(t.name),
            columns=tuple(replace(c, name=cut(c.name), type=_cut_type(c.type)) for c in t.columns),
            primary_key=replace(t.primary_key, name=cut(t.primary_key.name), columns=cuts(t.primary_key.columns))
            if t.primary_key else None,
            indexes=tuple(replace(i, name=cut(i.name), columns=tuple(replace(c, name=cut(c.name)) for c in i.columns))
                          for i in t.indexes),
            foreign_keys=tuple(replace(f, name=cut(f.name), columns=cuts(f.columns),
                                       referenced_schema=cut(f.referenced_schema),
                                       referenced_table=cut(f.referenced_table),
                                       referenced_columns=cuts(f.referenced_columns))
                               for f in t.foreign_keys)))
    enums = tuple(replace(e, name=cut(e.name)) for e in catalog.enums)
    return replace(catalog, tables=tuple(tables), enums=enums)


def _identifiers(catalog: Catalog):
    for e in catalog.enums:
        yield e.name
    for t in catalog.tables:
        yield t.name
        for c in t.columns:
            yield c.name
            yield c.type
        if t.primary_key:
            yield t.primary_key.name
        for i in t.indexes:
            yield i.name
        for f in t.foreign_keys:
            yield f.name


def _cut_type(canonical: str) -> str:
    m = re.fullmatch(r'"((?:[^"]|"")*)"\."((?:[^"]|"")*)"(\[\])?', canonical)
    if not m:
        return canonical
    schema, name = (g.replace('""', '"') for g in m.groups()[:2])
    return enum_type_ref(_cut(schema, MAX_IDENTIFIER_LENGTH), _cut(name, MAX_IDENTIFIER_LENGTH),
                         array=bool(m.group(3)))


def _name_pos(block: ast.Model | ast.Enum) -> ast.Pos:
    """Where the block's name starts (`model Log` → the L), assuming one space after the keyword."""
    keyword = getattr(block, "kind", "enum")
    return ast.Pos(block.pos.file, block.pos.line, block.pos.column + len(keyword) + 1)


def _col_by_name(t: _TableBuild, name: str) -> Column:
    return next(c for c in t.columns if c.name == name)


# --------------------------------------------------------------------------- types


def _native_type(native: str, args: tuple[int, ...]) -> tuple[str, str]:
    """(canonical format_type spelling, Prisma's DDL spelling) of a native type."""
    fixed = _FIXED_NATIVE.get(native)
    if fixed is not None:
        return fixed
    a = args[0] if args else None
    p = f"({a})" if a is not None else ""
    if native == "Decimal":
        if args:
            return f"numeric({args[0]},{args[1]})", f"DECIMAL({args[0]},{args[1]})"
        return "numeric", "DECIMAL"
    if native == "VarChar":
        return f"character varying{p}", f"VARCHAR{p}"
    if native == "Char":
        return f"character({a if a is not None else 1})", f"CHAR{p}"
    if native == "Bit":
        return f"bit({a if a is not None else 1})", f"BIT{p}"
    if native == "VarBit":
        return f"bit varying{p}", f"VARBIT{p}"
    if native == "Timestamp":
        return f"timestamp{p} without time zone", f"TIMESTAMP{p}"
    if native == "Timestamptz":
        return f"timestamp{p} with time zone", f"TIMESTAMPTZ{p}"
    if native == "Time":
        return f"time{p} without time zone", f"TIME{p}"
    if native == "Timetz":
        return f"time{p} with time zone", f"TIMETZ{p}"
    raise KeyError(native)


# Native types without arguments: always the same spellings.
_FIXED_NATIVE = {
    "SmallInt": ("smallint", "SMALLINT"), "Integer": ("integer", "INTEGER"),
    "BigInt": ("bigint", "BIGINT"), "Oid": ("oid", "OID"), "Money": ("money", "MONEY"),
    "Real": ("real", "REAL"), "DoublePrecision": ("double precision", "DOUBLE PRECISION"),
    "Text": ("text", "TEXT"), "Uuid": ("uuid", "UUID"), "Xml": ("xml", "XML"), "Inet": ("inet", "INET"),
    "Citext": (enum_type_ref("public", "citext"), "CITEXT"), "ByteA": ("bytea", "BYTEA"),
    "Date": ("date", "DATE"), "Boolean": ("boolean", "BOOLEAN"), "Json": ("json", "JSON"),
    "JsonB": ("jsonb", "JSONB"),
}


def _unsupported_canonical(written: str) -> str:
    """``Unsupported("int4range")`` → ``int4range``; a few aliases get PostgreSQL's spelling."""
    text = " ".join(written.split())
    if text.startswith('"'):
        return text
    low = text.lower()
    m = re.fullmatch(r"([a-z_][a-z0-9_ ]*?)\s*(\(\s*\d+\s*(?:,\s*\d+\s*)?\))?", low)
    if not m:
        return low
    base, mod = m.group(1).strip(), (m.group(2) or "").replace(" ", "")
    if base in ("timestamp", "timestamptz", "time", "timetz") and mod:
        zone = "with" if base.endswith("tz") else "without"
        return f"{base.removesuffix('tz')}{mod} {zone} time zone"
    if base in ("varchar", "character varying") and mod:
        return f"character varying{mod}"
    if base in ("char", "character", "bpchar") and mod:
        return f"character{mod}"
    if base in ("decimal", "numeric") and mod:
        return f"numeric{mod}"
    return _UNSUPPORTED_ALIASES.get(base, base) + mod


# --------------------------------------------------------------------------- partial index conditions

# Words PostgreSQL's quote_ident quotes (reserved, type/function-name and column-name keywords).
_PG_KEYWORDS = frozenset("""
all analyse analyze and any array as asc asymmetric authorization between bigint binary bit boolean both
case cast char character check coalesce collate collation column concurrently constraint create cross
current_catalog current_date current_role current_schema current_time current_timestamp current_user dec
decimal default deferrable desc distinct do else end except exists extract false fetch float for foreign
freeze from full grant greatest group grouping having ilike in initially inner inout int integer intersect
interval into is isnull join json json_array json_arrayagg json_exists json_object json_objectagg
json_query json_scalar json_serialize json_table json_value lateral leading least left like limit
localtime localtimestamp merge_action national natural nchar none normalize not notnull null nullif
numeric offset on only or order out outer overlaps overlay placing position precision primary real
references returning right row select session_user setof similar smallint some substring symmetric
system_user table tablesample then time timestamp to trailing treat trim true union unique user using
values varchar variadic verbose when where window with xmlattributes xmlconcat xmlelement xmlexists
xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable
""".split())


def _pg_ident(name: str) -> str:
    """An identifier as PostgreSQL's deparser prints it: bare when it can be."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) and name not in _PG_KEYWORDS:
        return name
    return quote_ident(name)


def _pg_type_name(canonical: str) -> str:
    m = re.fullmatch(r'"((?:[^"]|"")*)"\."((?:[^"]|"")*)"', canonical)
    if m:  # an enum; the inspector's search_path holds its schema, so it prints unqualified
        return _pg_ident(m.group(2).replace('""', '"'))
    return canonical


def _pg_comparison(col: Column, op: str, value: ast.Value, literal: str) -> str:
    """``column op literal`` as ``pg_get_expr`` prints it for an index predicate."""
    ident = _pg_ident(col.name)
    base = re.sub(r"\(\d+(,\d+)?\)", "", col.type)
    if isinstance(value, ast.Str):
        if base == "character varying":
            return f"({ident})::text {op} {literal}::text"
        cast = {"character": "bpchar"}.get(base, _pg_type_name(col.type))
        return f"{ident} {op} {literal}::{cast}"
    if isinstance(value, ast.Number):
        negative = literal.startswith("-")
        is_int = re.fullmatch(r"-?\d+", literal) is not None
        if base in ("integer", "bigint", "smallint") and is_int:
            return f"{ident} {op} " + (f"'{literal}'::integer" if negative else literal)
        if base == "numeric":
            if is_int:
                return f"{ident} {op} ({literal})::numeric" if not negative else f"{ident} {op} '{literal}'::numeric"
            return f"{ident} {op} " + (f"'{literal}'::numeric" if negative else literal)
        if base in ("double precision", "real"):
            if negative:
                return f"{ident} {op} ('{literal}'::numeric)::{base}" if not is_int else \
                    f"{ident} {op} ('{literal}'::integer)::{base}"
            return f"{ident} {op} ({literal})::{base}"
    return f"{ident} {op} {literal}"


# --------------------------------------------------------------------------- literal texts


def _decimal_text(text: str, bad: Callable[[], SchemaError]) -> str:
    """A number as Prisma's BigDecimal prints it: as written, minus leading zeros and a ``-`` on zero."""
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise bad() from None
    if not d.is_finite():
        raise bad()
    out = format(d, "f")
    if d == 0:
        out = out.lstrip("-")
    return out


_CHRONO_NANOS = re.compile(r"'(\d{4}-\d{2}-\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{7,9}) ([+-]\d{2}:\d{2})'")


@lru_cache(maxsize=4096)
def _canonical_default(prisma_default: str, canonical_type: str) -> str | None:
    """Prisma's default text as the inspector reads it back. Schemas repeat the same few
    defaults (now(), 0, false) thousands of times, and this is pure: memoised."""
    return normalize_default(_to_microseconds(prisma_default), canonical_type)[0]


def _to_microseconds(text: str) -> str:
    """PostgreSQL rounds a literal's fractional seconds to microseconds; so must the canonical
    default. Rewrites chrono literals with 7-9 fractional digits, carrying into the seconds."""
    def round_one(m: re.Match) -> str:
        day, hh, mm, ss, frac, zone = m.groups()
        micros = round(int(frac.ljust(9, "0")) / 1000)
        moment = datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss}") + timedelta(microseconds=micros)
        return f"'{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond:06d} {zone}'"

    return _CHRONO_NANOS.sub(round_one, text)


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})")


def _chrono_text(value: str) -> str | None:
    """An RFC 3339 timestamp as chrono's ``DateTime<FixedOffset>`` prints it:
    ``2021-06-15T12:30:45.123+02:00`` → ``2021-06-15 12:30:45.123 +02:00``."""
    m = _RFC3339.fullmatch(value.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    try:
        datetime(int(y), int(mo), int(d), int(h), int(mi), min(int(s), 59))
    except ValueError:
        return None
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    text = f"{y}-{mo}-{d} {h}:{mi}:{s}"
    if nanos:
        if nanos % 1_000_000 == 0:
            text += f".{nanos // 1_000_000:03d}"
        elif nanos % 1_000 == 0:
            text += f".{nanos // 1_000:06d}"
        else:
            text += f".{nanos:09d}"
    offset = "+00:00" if zone in ("Z", "z") else zone
    return f"{text} {offset}"
