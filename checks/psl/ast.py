"""Syntax tree of a Prisma schema, as the parser produces it and the compiler reads it.

The tree keeps every construct and its position (file, line, column), so that the
compiler can report semantic errors at the place a user must edit. It says nothing
about what the schema means for PostgreSQL; that is `checks.compile`'s job.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Pos:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Str:
    value: str  # unescaped
    pos: Pos


@dataclass(frozen=True)
class Number:
    text: str  # as written: "2", "-1", "0.5"
    pos: Pos


@dataclass(frozen=True)
class Ident:
    """A bare name: `Cascade`, `Desc`, `true`, `false`, a field or model name."""

    name: str
    pos: Pos


@dataclass(frozen=True)
class Array:
    items: tuple["Value", ...]
    pos: Pos


@dataclass(frozen=True)
class Call:
    """A function call or a field reference with arguments: `now()`, `cuid(2)`,
    `dbgenerated("gen_random_uuid()")`, `title(sort: Desc, ops: raw("..."))`."""

    name: str
    args: tuple["Arg", ...]
    pos: Pos


Value = Union[Str, Number, Ident, Array, Call]


@dataclass(frozen=True)
class Arg:
    name: str | None  # None for a positional argument
    value: Value
    pos: Pos


@dataclass(frozen=True)
class Attribute:
    """`@id`, `@default(now())`, `@db.VarChar(120)` (name "db.VarChar"), `@@index([...])`.

    `name` excludes the leading `@`/`@@`; `block` is True for `@@` attributes.
    """

    name: str
    args: tuple[Arg, ...]
    block: bool
    pos: Pos

    def arg(self, name: str, position: int | None = None) -> Arg | None:
        """The argument called `name`, or the positional one at `position`."""
        positional = 0
        for a in self.args:
            if a.name == name:
                return a
            if a.name is None:
                if position is not None and positional == position:
                    return a
                positional += 1
        return None


@dataclass(frozen=True)
class FieldType:
    name: str  # "String", "Int", a model/enum/type name; "Unsupported" for Unsupported("...")
    optional: bool
    list: bool
    unsupported: str | None  # the quoted text of Unsupported("...")
    pos: Pos


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    attributes: tuple[Attribute, ...]
    doc: str | None  # `///` comments above the field, joined with newlines
    pos: Pos

    def attribute(self, name: str) -> Attribute | None:
        for a in self.attributes:
            if a.name == name:
                return a
        return None


@dataclass(frozen=True)
class Model:
    """A `model`, `view` or composite `type` block (see `kind`)."""

    kind: str  # "model" | "view" | "type"
    name: str
    fields: tuple[Field, ...]
    attributes: tuple[Attribute, ...]  # block attributes (@@...)
    doc: str | None
    pos: Pos

    def attribute(self, name: str) -> Attribute | None:
        for a in self.attributes:
            if a.name == name:
                return a
        return None


@dataclass(frozen=True)
class EnumValue:
    name: str
    attributes: tuple[Attribute, ...]  # e.g. @map("...")
    doc: str | None
    pos: Pos


@dataclass(frozen=True)
class Enum:
    name: str
    values: tuple[EnumValue, ...]
    attributes: tuple[Attribute, ...]  # @@map, @@schema
    doc: str | None
    pos: Pos


@dataclass(frozen=True)
class Property:
    """`provider = "postgresql"` inside a datasource or generator block."""

    name: str
    value: Value  # Str, Array, Call (env("DATABASE_URL")), Ident, Number
    pos: Pos


@dataclass(frozen=True)
class ConfigBlock:
    kind: str  # "datasource" | "generator"
    name: str
    properties: tuple[Property, ...]
    pos: Pos

    def property(self, name: str) -> Property | None:
        for p in self.properties:
            if p.name == name:
                return p
        return None


@dataclass(frozen=True)
class Schema:
    """All blocks of all files, each list in file order (files sorted by path)."""

    datasources: tuple[ConfigBlock, ...]
    generators: tuple[ConfigBlock, ...]
    models: tuple[Model, ...]  # kind "model", "view" and "type" together
    enums: tuple[Enum, ...]
    files: tuple[str, ...]
