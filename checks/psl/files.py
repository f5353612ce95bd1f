"""Reading a schema's files: what `checks.psl.parser.load_schema` parses.

Kept apart from the parser so that a caller that only needs the bytes (the catalog
cache, keyed on exactly what was read) does not import the parser, lark or the AST.
"""
from __future__ import annotations

import os

from checks.errors import SchemaError

__all__ = ["read_schema_files"]


def read_schema_files(path: str | os.PathLike) -> tuple[str, bool, list[tuple[str, bytes, str]]]:
    """The files `load_schema` would parse: (path as given, is it a folder, [(file, bytes, text)]).

    Raises what `load_schema` raises for a missing path, an empty folder, an unreadable
    file or one that is not UTF-8 text, in the same order; `parse_schema_files` finishes
    the job. The bytes let a caller key a cache on exactly what was read.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise SchemaError("no such file or directory", file=name)
    if os.path.isdir(name):
        found = []
        for root, dirs, files in os.walk(name):
            dirs.sort()
            found.extend(os.path.join(root, f) for f in files if f.endswith(".prisma"))
        found = [f for f in found if os.path.isfile(f)]
        if not found:
            raise SchemaError(
                "folder contains no .prisma file — expected a schema.prisma file or "
                "several *.prisma files",
                file=name,
            )
        out = []
        for f in sorted(found):
            data = _read(f)
            out.append((f, data, _decode(data, f)))
        return name, True, out
    data = _read(name)
    return name, False, [(name, data, _decode(data, name))]


def _read(file: str) -> bytes:
    try:
        with open(file, "rb") as f:
            return f.read()
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise SchemaError(f"cannot be read: {reason}", file=file) from None


def _decode(data: bytes, file: str) -> str:
    bad = len(data)
    nul = data.find(b"\x00")
    if nul >= 0:
        bad = nul
    try:
        text = data[:bad].decode("utf-8")
    except UnicodeDecodeError as e:
        bad = e.start
    if bad == len(data):
        return text
    line = data.count(b"\n", 0, bad) + 1
    start = data.rfind(b"\n", 0, bad) + 1
    prefix = data[start:bad].decode("utf-8", "replace")
    if line == 1 and prefix.startswith("\ufeff"):
        prefix = prefix[1:]
    what = "a NUL byte" if bad == nul else f"the byte 0x{data[bad]:02X}, which is not UTF-8"
    hint = ""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        hint = " (it looks like UTF-16; save it as UTF-8)"
    raise SchemaError(
        f"not a text Prisma schema: found {what} — expected UTF-8 text{hint}",
        file=file,
        line=line,
        column=len(prefix) + 1,
    )
