"""The catalog model: one shape for what the Prisma schema expects and what PostgreSQL has.

Both the Prisma compiler (`checks.compile`) and the live inspector (`checks.inspect`)
produce a `Catalog`, so drift is a plain comparison of two values of the same type.
Everything is a frozen dataclass with tuples, hence hashable and comparable with `==`.

Canonical forms, which both producers must follow exactly:

* ``Column.type`` is what PostgreSQL's ``format_type(atttypid, atttypmod)`` prints for
  built-in types, lower case (``text``, ``integer``, ``timestamp(3) without time zone``,
  ``character varying(120)``, ``numeric(10,4)``, ``jsonb``, ``text[]``). Enum types
  (and any other user-defined type) are written fully qualified and always quoted:
  ``"public"."Role"``, with ``[]`` appended for arrays. See `enum_type_ref`.
* ``Column.default`` is the default expression with literal casts removed
  (``'USER'`` not ``'USER'::"Role"``, ``0`` not ``'0'::numeric``), ``CURRENT_TIMESTAMP``
  for ``now()``, ``NULL`` when absent. Sequence defaults (serial, identity) are not a
  default: they set ``Column.autoincrement`` instead. See `checks.defaults`.
* Index columns carry their sort order only when it is DESC and their operator class
  only when it is not the type's default, because that is what Prisma can express.
  INCLUDE columns are a separate tuple, in their order (`Index.include`).
* Referential actions are the SQL words: ``CASCADE``, ``RESTRICT``, ``NO ACTION``,
  ``SET NULL``, ``SET DEFAULT``.

Prisma names (model, field) ride along with ``compare=False`` so they never cause drift.
So do the ``ddl_*`` fields: Prisma's exact spelling where the canonical form cannot be
rendered back to it (``CHAR`` vs ``CHAR(1)``, an ``Unsupported("...")`` type as written,
a ``dbgenerated`` expression with its casts, an explicit ``ASC`` or default operator class
in an index). They are set by the compiler, read by `checks.ddl`, and ``None`` elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field


def quote_ident(name: str) -> str:
    """Quote an identifier the way Prisma's DDL does: always, doubling inner quotes."""
    return '"' + name.replace('"', '""') + '"'


def enum_type_ref(schema: str, name: str, *, array: bool = False) -> str:
    """Canonical `Column.type` for a user-defined (enum) type."""
    return f"{quote_ident(schema)}.{quote_ident(name)}" + ("[]" if array else "")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    default: str | None = None
    autoincrement: bool = False
    model_field: str | None = field(default=None, compare=False)
    ddl_type: str | None = field(default=None, compare=False)
    ddl_default: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PrimaryKey:
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class IndexColumn:
    name: str  # a column name, or PostgreSQL's deparse of an expression (`lower(email)`)
    descending: bool = False
    opclass: str | None = None
    expression: bool = False  # an expression, which no Prisma schema can declare
    ddl_sort: str | None = field(default=None, compare=False)  # "ASC"/"DESC" as written
    ddl_opclass: str | None = field(default=None, compare=False)  # as written, even if default


@dataclass(frozen=True)
class Index:
    """A plain or unique index (Prisma creates uniques as unique indexes, not constraints).

    Compared: key columns (with sort order, operator class, expression or not), unique,
    method, the partial-index condition and INCLUDE columns. Not compared: NULLS
    FIRST/LAST, NULLS NOT DISTINCT, collations, storage parameters (`WITH (fillfactor…)`),
    tablespaces, and whether the index is valid (a failed CREATE INDEX CONCURRENTLY)."""

    name: str
    columns: tuple[IndexColumn, ...]
    unique: bool = False
    method: str = "btree"
    where: str | None = None
    include: tuple[str, ...] = ()  # INCLUDE (…) columns; a Prisma schema never declares any
    ddl_where: str | None = field(default=None, compare=False)  # Prisma's text when it differs


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    referenced_schema: str
    referenced_table: str
    referenced_columns: tuple[str, ...]
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: PrimaryKey | None = None
    indexes: tuple[Index, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    model: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None


@dataclass(frozen=True)
class Enum:
    schema: str
    name: str
    values: tuple[str, ...]
    prisma_name: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)


@dataclass(frozen=True)
class Extension:
    """A PostgreSQL extension the schema asks for (`extensions = [...]` in the datasource)."""

    name: str
    schema: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Catalog:
    """A set of schemas with their tables and enums, in a stable (declaration) order."""

    schemas: tuple[str, ...] = ("public",)
    tables: tuple[Table, ...] = ()
    enums: tuple[Enum, ...] = ()
    # Not compared: the inspector does not report extensions; compare them explicitly.
    extensions: tuple[Extension, ...] = field(default=(), compare=False)

    def table(self, schema: str, name: str) -> Table | None:
        for t in self.tables:
            if t.schema == schema and t.name == name:
                return t
        return None

    def enum(self, schema: str, name: str) -> Enum | None:
        for e in self.enums:
            if e.schema == schema and e.name == name:
                return e
        return None


def in_schema(catalog: Catalog, schema: str) -> Catalog:
    """The same catalog with everything from `public` moved to `schema`.

    Without multiSchema, Prisma puts every object in the schema named by the connection
    string's `?schema=` (default `public`); the compiler writes `public`, and the check
    moves the catalog to where the application really lives.
    """
    from dataclasses import replace

    if schema == "public" or catalog.schemas != ("public",):
        return catalog
    old_prefix = quote_ident("public") + "."
    new_prefix = quote_ident(schema) + "."

    def column(c: Column) -> Column:
        return replace(c, type=new_prefix + c.type[len(old_prefix):]) if c.type.startswith(old_prefix) else c

    def table(t: Table) -> Table:
        return replace(
            t,
            schema=schema,
            columns=tuple(column(c) for c in t.columns),
            foreign_keys=tuple(
                replace(f, referenced_schema=schema) if f.referenced_schema == "public" else f
                for f in t.foreign_keys
            ),
        )

    return replace(
        catalog,
        schemas=(schema,),
        tables=tuple(table(t) for t in catalog.tables),
        enums=tuple(replace(e, schema=schema) for e in catalog.enums),
    )
