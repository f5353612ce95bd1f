"""Prisma schema files → `checks.psl.ast.Schema`.

Public API:
    parse_text(text, file)      one schema given as text
    parse_bytes(data, file)     the same from raw bytes (checks the file is UTF-8 text)
    parse_files([(file, text)]) several files of one schema, merged in path order
    load_schema(path)           a `.prisma` file, or a folder read recursively

Every problem with the input raises `checks.errors.SchemaError` (one line, with
file:line:column); nothing else escapes for any input.

The grammar (grammar.lark) is LALR. PSL is line-sensitive inside blocks, which an
LALR grammar cannot express alone, so `_Parse.run` sits between lark's lexer and
its parser: it decides which newlines matter, recognises block keywords, collects
`///` documentation and knows enough context to word error messages for people.
Lark is imported on first parse only, so importing this module (and the CLI) stays
fast.

Two constructs have no node of their own in `checks.psl.ast` and are encoded with
existing ones: a dotted name in a value (`Role.ADMIN`) is an `Ident` named
"Role.ADMIN", and the object literal of Prisma 7 partial indexes
(`where: { active: true }`) is a `Call` named "{}" whose arguments are all named.
A trailing `///` comment documents the field or enum value on its own line, as in
Prisma; `///` lines above a declaration document it.
"""
from __future__ import annotations

import gc
import logging
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Iterable

from checks.errors import SchemaError
from checks.psl.files import _decode, read_schema_files
from checks.psl.ast import (
    Arg,
    Array,
    Attribute,
    Call,
    ConfigBlock,
    Enum,
    EnumValue,
    Field,
    FieldType,
    Ident,
    Model,
    Number,
    Pos,
    Property,
    Schema,
    Str,
    Value,
)

__all__ = ["parse_text", "parse_bytes", "parse_files", "load_schema", "read_schema_files",
           "parse_schema_files"]

_GRAMMAR = Path(__file__).with_name("grammar.lark")
_lark = None
_lark_lock = threading.RLock()  # re-entrant: stale fast-path tables build the lark parser under it

_KEYWORDS = {
    "model": "MODEL_KW",
    "view": "MODEL_KW",
    "type": "MODEL_KW",
    "enum": "ENUM_KW",
    "datasource": "CONFIG_KW",
    "generator": "CONFIG_KW",
}
_BLOCK_WORDS = "model, view, type, enum, datasource or generator"
_MAX_NESTING = 64  # brackets inside a block; deeper is certainly not a schema


class _KeepComments:
    """Lark post-lexer hook, used only so that lark keeps the comment terminals."""

    always_accept = ("COMMENT", "BLOCK_COMMENT")

    def process(self, stream):
        return stream


# --------------------------------------------------------------------------- public API


def _collect_doc(text: str, depth: int, prev: str | None, item, pending: list[str]) -> None:  # type: ignore[no-untyped-def]
    """A `///` comment documents the item on its own line when it trails one (`id Int /// x`),
    else the next block or field; both parse paths call this so they agree on every doc."""
    if not text.startswith("///"):
        return
    body = text[4:] if text.startswith("/// ") else text[3:]
    if depth == 1 and prev != "_NL" and prev != "_LBRACE":
        if item is not None:
            if item.doc is None:
                item.doc = []
            item.doc.append(body)
    elif depth <= 1:
        pending.append(body)


_NEWLINE = None  # re.compile(r"\r\n?|\n"), on first use


def _block_comment_misplaced(text: str, end: int, depth: int, prev: str | None) -> bool:
    """Whether a `/* … */` ending at `end` sits where Prisma refuses it.

    Prisma takes a block comment between blocks, before a body item (several, even on
    the item's own line), or as the last thing on an item's line; never between the
    parts of an item or inside brackets. Both parse paths call this so they agree."""
    if depth == 0:
        return False
    if depth > 1:
        return True
    if prev == "_NL" or prev == "_LBRACE":
        return False
    i, n = end, len(text)
    while i < n and text[i] in _WS_CHARS:
        i += 1
    return i < n and text[i] not in "\r\n"


def _block_comment_lines(text: str, start: int, end: int) -> tuple[int, int]:
    """(newlines inside the comment, offset just after the last of them, or -1)."""
    global _NEWLINE
    if _NEWLINE is None:
        import re

        _NEWLINE = re.compile(r"\r\n?|\n")
    count, after = 0, -1
    for m in _NEWLINE.finditer(text, start, end):
        count += 1
        after = m.end()
    return count, after


_MISPLACED_BLOCK_COMMENT = (
    "a block comment cannot stand here — expected it on its own line, before a field, "
    "or last on the line (Prisma refuses /* … */ between the parts of a declaration)"
)


def parse_text(text: str, file: str) -> Schema:
    """Parse one complete schema file."""
    return parse_files([(file, text)])


def parse_bytes(data: bytes, file: str) -> Schema:
    """Parse one complete schema file given as bytes (UTF-8, optionally with a BOM)."""
    return parse_files([(file, _decode(data, file))])


def parse_files(files: list[tuple[str, str]]) -> Schema:
    """Parse the files of one schema (Prisma's multi-file schemas) and merge their blocks.

    Files are taken in path order. Block names must be unique across all files.
    """
    if not files:
        raise SchemaError("no schema file given — expected at least one .prisma file")
    ordered = sorted(files, key=lambda f: f[0])
    parts = [_parse_one(text, file) for file, text in ordered]
    schema = Schema(
        datasources=tuple(b for p in parts for b in p.datasources),
        generators=tuple(b for p in parts for b in p.generators),
        models=tuple(m for p in parts for m in p.models),
        enums=tuple(e for p in parts for e in p.enums),
        files=tuple(file for file, _ in ordered),
    )
    _check_unique_names(schema)
    if not schema.datasources and not schema.models:
        if len(ordered) == 1:
            where, what = ordered[0][0], "the file contains"
        else:
            where, what = None, f"the {len(ordered)} schema files contain"
        raise SchemaError(
            f"{what} no datasource and no model — expected at least a "
            "`datasource` block or a `model` block",
            file=where,
        )
    return schema


def load_schema(path: str | os.PathLike) -> Schema:
    """Load a `.prisma` file, or every `*.prisma` file under a folder (recursively)."""
    return parse_schema_files(*read_schema_files(path))


def parse_schema_files(name: str, is_folder: bool, files: list[tuple[str, bytes, str]]) -> Schema:
    """Parse what `read_schema_files` returned (a problem of a whole folder names the folder)."""
    texts = [(f, text) for f, _, text in files]
    if not is_folder:
        return parse_files(texts)
    try:
        return parse_files(texts)
    except SchemaError as e:
        if e.file is None:  # a problem of the whole folder
            raise SchemaError(e.message, file=name) from None
        raise


# --------------------------------------------------------------------------- parsing


class _Tok:
    """A token as the LALR parser sees it (lark only needs `.type`); cheaper than
    lark's Token, and it carries what the AST needs: file, position, `///` lines."""

    __slots__ = ("type", "value", "line", "column", "file", "doc")

    def __init__(self, type: str, value: str, line: int, column: int, file: str) -> None:
        self.type = type
        self.value = value
        self.line = line
        self.column = column
        self.file = file
        self.doc: list[str] | None = None

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"_Tok({self.type}, {self.value!r}, {self.line}:{self.column})"

    @property
    def pos(self) -> Pos:
        return Pos(self.file, self.line, self.column)


def _get_lark():
    """The LALR parser and the scanner regex, built from grammar.lark on first use."""
    global _lark
    if _lark is None:
        with _lark_lock:
            if _lark is None:
                import re

                import lark

                parser = lark.Lark(
                    _GRAMMAR.read_text(encoding="utf-8"),
                    parser="lalr",
                    lexer="basic",
                    postlex=_KeepComments(),
                    transformer=_Build(),
                    maybe_placeholders=False,
                )
                # One regex of all the grammar's terminals, in lark's own order, plus a
                # catch-all so that no character is skipped silently. Scanning with it
                # directly is ~3x faster than lark's lexer, which matters at 30k lines.
                _lark = (parser, re.compile(_scanner_pattern(parser)).finditer)
    return _lark


def _scanner_pattern(parser) -> str:
    terminals = sorted(
        parser.terminals,
        key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name),
    )
    alternatives = [f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals]
    alternatives.append(r"(?P<_BAD>[\s\S])")
    return "|".join(alternatives)


# The words a message uses for a token the parser did not expect.
_PUNCT = {
    "_LBRACE": '"{"',
    "_RBRACE": '"}"',
    "_LPAR": '"("',
    "_RPAR": '")"',
    "LSQB": '"["',
    "_RSQB": '"]"',
    "_COMMA": '","',
    "_COLON": '":"',
    "_EQUAL": '"="',
    "_QMARK": '"?"',
    "_DOT": '"."',
    "OBJ_OPEN": '"{"',
}
# Order of the alternatives in "expected ..." (lower first).
_RANK = {
    "block": 0, "NAME": 1, "value": 1, "STRING": 2, "NUMBER": 3, "_QMARK": 4, "LSQB": 5,
    "FIELD_ATTR": 6, "BLOCK_ATTR": 7, "_LPAR": 8, "_COLON": 9, "_EQUAL": 10, "_COMMA": 11,
    "_DOT": 12, "_RPAR": 12, "_RSQB": 13, "_LBRACE": 14, "_NL": 15, "_RBRACE": 16, "$END": 17,
}
_BODY_ITEM = {
    "model": "a field name", "view": "a field name", "type": "a field name",
    "enum": "an enum value", "datasource": "a property name", "generator": "a property name",
}


class _Parse:
    """One file's parse: scanning, newline and keyword handling, docs, error wording.

    The tree → AST work happens in `_Build`, which lark calls at each reduction.
    """

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.stack: list[_Tok] = []  # open "{", "(", "[" tokens, outermost first
        self.block: tuple[str, str, int, int] | None = None  # kind, name, line, column
        self.prev: str | None = None  # type of the last token given to the parser
        self.prev2: str | None = None

    def run(self) -> Schema:
        from lark.exceptions import UnexpectedToken

        parser, scan = _get_lark()
        ip = parser.parse_interactive()
        feed = ip.parser_state.feed_token
        file = self.file
        stack = self.stack
        line, line_start = 1, 0
        prev = prev2 = None
        pending: list[str] = []  # `///` lines waiting for their declaration
        item: _Tok | None = None  # name of the field / enum value being read, for trailing docs
        keyword = name = None  # the top-level block being opened
        try:
            for m in scan(self.text):
                t = m.lastgroup
                if t == "WS":
                    continue
                depth = len(stack)
                if t == "_NL":
                    if depth == 1 and prev != "_NL" and prev != "_LBRACE":
                        feed(_Tok(t, "\n", line, m.start() - line_start + 1, file))
                        self.prev2, self.prev = prev2, prev = prev, t
                    line += 1
                    line_start = m.end()
                    continue
                if t == "COMMENT":
                    _collect_doc(m.group(), depth, prev, item, pending)
                    continue
                if t == "BLOCK_COMMENT":
                    if _block_comment_misplaced(self.text, m.end(), depth, prev):
                        raise self._error(_MISPLACED_BLOCK_COMMENT, line, m.start() - line_start + 1)
                    count, after = _block_comment_lines(self.text, m.start(), m.end())
                    if count:
                        line += count
                        line_start = after
                    continue
                tok = _Tok(t, m.group(), line, m.start() - line_start + 1, file)
                if t == "_BAD":
                    raise self._bad_character(tok, ip, self.text.startswith("/*", m.start()))
                if depth == 0:
                    if t == "NAME" and (prev is None or prev == "_RBRACE"):
                        kw = _KEYWORDS.get(tok.value)
                        if kw is not None:
                            tok.type = t = kw
                            keyword = tok
                            if pending:
                                tok.doc = pending
                                pending = []
                    elif t == "NAME":
                        name = tok
                elif depth == 1 and (prev == "_NL" or prev == "_LBRACE"):
                    # first token of a body item: field, enum value, property, @@attribute or "}"
                    if t == "NAME":
                        item = tok
                        if pending:
                            tok.doc = pending
                            pending = []
                    else:
                        item = None
                        pending = []
                elif t == "_LBRACE" and depth > 1:
                    tok.type = t = "OBJ_OPEN"  # `where: { ... }` inside an attribute
                feed(tok)
                if t == "_LBRACE" or t == "_LPAR" or t == "LSQB" or t == "OBJ_OPEN":
                    if depth == 0:
                        self.block = (keyword.value, name.value, keyword.line, keyword.column)
                    elif depth >= _MAX_NESTING:
                        raise self._error(
                            "brackets nested too deeply — expected at most "
                            f"{_MAX_NESTING} levels", tok.line, tok.column,
                        )
                    stack.append(tok)
                elif (t == "_RBRACE" or t == "_RPAR" or t == "_RSQB") and stack:
                    stack.pop()
                self.prev2, self.prev = prev2, prev = prev, t
            eof = _Tok("$END", "", line, len(self.text) - line_start + 1, file)
            if stack:
                raise self._unclosed(eof)
            blocks = feed(eof, True)
        except UnexpectedToken as e:
            try:  # exact, unlike e.expected, which LALR's merged states can widen
                expected = ip.accepts()
            except Exception:  # pragma: no cover - lark could not replay; use its guess
                expected = e.expected
            raise self._unexpected(e.token, expected) from None
        return _schema(blocks, file)

    # -- errors ---------------------------------------------------------------

    def _error(self, message: str, line: int, column: int) -> SchemaError:
        return SchemaError(message, file=self.file, line=line, column=column)

    def _unclosed(self, eof: _Tok) -> SchemaError:
        if len(self.stack) > 1:
            opener = self.stack[1]
            return self._error(
                f'unexpected end of file — "{opener}" opened at {opener.line}:{opener.column} '
                f'is never closed (expected "{_CLOSE_OF[opener.value]}")',
                eof.line, eof.column,
            )
        kind, name, line, column = self.block or ("block", "?", self.stack[0].line, self.stack[0].column)
        return self._error(
            f"unexpected end of file — block `{kind} {name}` opened at {line}:{column} "
            'is never closed (expected "}")',
            eof.line, eof.column,
        )

    def _bad_character(self, tok: _Tok, ip, opens_comment: bool = False) -> SchemaError:
        ch = tok.value
        if opens_comment:
            message = 'unterminated block comment — expected "*/" to close this "/*"'
        elif ch == '"':
            message = 'unterminated string — expected a closing " on the same line'
        elif ch == "@":
            message = 'unexpected "@" — expected an attribute name right after it (like @id or @@index)'
        elif ch == "/":
            message = 'unexpected "/" — comments start with //'
        else:
            shown = f'"{ch}"' if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"
            try:
                exp = self._describe_expected(ip.accepts())
            except Exception:  # pragma: no cover - lark could not replay; say less
                exp = ""
            message = f"unexpected character {shown}" + (f" — expected {exp}" if exp else "")
        return self._error(message, tok.line, tok.column)

    def _unexpected(self, tok: _Tok, expected: set[str]) -> SchemaError:
        t = tok.type
        if t == "$END" and self.stack:
            return self._unclosed(tok)
        message = f"unexpected {_describe_token(tok)} — expected "
        message += self._describe_expected(expected) or "something else"
        depth = len(self.stack)
        if depth == 0 and t == "_RBRACE":
            message += '; this "}" closes no block'
        elif depth == 1 and t == "FIELD_ATTR" and self.prev in ("_NL", "_LBRACE"):
            message += "; attributes must be on the same line as their field"
        elif depth == 1 and t == "_LBRACE" and self.block is not None:
            kind, name, line, column = self.block
            message += f'; is the "}}" of `{kind} {name}` (opened at {line}:{column}) missing?'
        elif depth > 1 and self.stack[1].line < tok.line:
            opener = self.stack[1]
            message += (
                f'; the "{opener}" opened at {opener.line}:{opener.column} is not closed '
                f'(expected "{_CLOSE_OF[opener.value]}")'
            )
        return self._error(message, tok.line, tok.column)

    def _describe_expected(self, expected: Iterable[str]) -> str:
        expected = set(expected)
        phrases: dict[str, str] = {}
        if expected & _KEYWORD_TYPES:
            phrases["block"] = f"a block ({_BLOCK_WORDS})"
            expected -= _KEYWORD_TYPES
        if "STRING" in expected and "NAME" in expected:
            phrases["value"] = "a value"
            expected -= {"STRING", "NUMBER", "NAME", "LSQB", "OBJ_OPEN"}
        for t in expected:
            if t == "NAME":
                phrases[t] = self._name_role()
            elif t == "STRING":
                phrases[t] = "a string"
            elif t == "NUMBER":
                phrases[t] = "a number"
            elif t == "FIELD_ATTR":
                phrases[t] = "an attribute (@...)"
            elif t == "BLOCK_ATTR":
                phrases[t] = "a block attribute (@@...)"
            elif t == "_NL":
                phrases[t] = "end of line"
            elif t == "$END":
                phrases[t] = "end of file"
            elif t == "LSQB" and "_QMARK" in expected:
                phrases[t] = '"[]"'
            elif t == "_LPAR" and "_QMARK" in expected:
                continue  # only Unsupported("...") takes one; not worth suggesting
            elif t in _PUNCT:
                phrases[t] = _PUNCT[t]
        if "block" in phrases:
            phrases.pop("$END", None)  # "or end of file" adds nothing there
        words = [phrases[k] for k in sorted(phrases, key=lambda k: (_RANK.get(k, 99), k))]
        words = list(dict.fromkeys(words))
        if len(words) <= 1:
            return "".join(words)
        return ", ".join(words[:-1]) + " or " + words[-1]

    def _name_role(self) -> str:
        depth = len(self.stack)
        if depth == 0:
            return "a block name"
        if depth == 1:
            kind = self.block[0] if self.block else "model"
            if self.prev in ("_NL", "_LBRACE"):
                return _BODY_ITEM.get(kind, "a name")
            if kind in ("model", "view", "type") and self.prev == "NAME" and self.prev2 in ("_NL", "_LBRACE"):
                return "a field type"
        if self.stack[-1].type == "OBJ_OPEN" and self.prev in ("OBJ_OPEN", "_COMMA"):
            return "a key"
        return "a name"


_OPTIONAL = object()
_LIST = object()


def _value(node) -> Value:
    if type(node) is _Tok:
        t = node.type
        if t == "STRING":
            return Str(_unescape(node), node.pos)
        if t == "NUMBER":
            return Number(node.value, node.pos)
        return Ident(node.value, node.pos)
    return node  # Array or Call, built already


def _doc(tok: _Tok) -> str | None:
    return "\n".join(tok.doc) if tok.doc else None


class _Build:
    """Lark callbacks, one per grammar rule: build the AST while parsing (no parse tree).

    Every position comes from a `_Tok`, which knows its file, so one instance serves
    all parses and threads."""

    def start(self, blocks):
        return blocks

    def model(self, c):
        kw, name, *items = c
        fields = tuple(i for i in items if type(i) is Field)
        attributes = tuple(i for i in items if type(i) is Attribute)
        return Model(kw.value, name.value, fields, attributes, _doc(kw), kw.pos)

    def field(self, c):
        name, ftype, *attributes = c
        return Field(name.value, ftype, tuple(attributes), _doc(name), name.pos)

    def field_type(self, c):
        name, *rest = c
        optional = is_list = False
        unsupported = None
        for part in rest:
            if part is _OPTIONAL:
                optional = True
            elif part is _LIST:
                is_list = True
            else:
                if name.value != "Unsupported":
                    raise SchemaError(
                        f'unexpected "(" after type {name.value} — only Unsupported("...") '
                        "takes an argument",
                        file=name.file, line=name.line, column=name.column + len(name.value),
                    )
                unsupported = _unescape(part)
        return FieldType(name.value, optional, is_list, unsupported, name.pos)

    def optional(self, c):
        return _OPTIONAL

    def list(self, c):
        return _LIST

    def enum(self, c):
        kw, name, *items = c
        values = tuple(i for i in items if type(i) is EnumValue)
        attributes = tuple(i for i in items if type(i) is Attribute)
        return Enum(name.value, values, attributes, _doc(kw), kw.pos)

    def enum_value(self, c):
        name, *attributes = c
        return EnumValue(name.value, tuple(attributes), _doc(name), name.pos)

    def config(self, c):
        kw, name, *properties = c
        return ConfigBlock(kw.value, name.value, tuple(properties), kw.pos)

    def property(self, c):
        name, value = c
        return Property(name.value, _value(value), name.pos)

    def field_attr(self, c):
        tok, *args = c
        return Attribute(tok.value[1:], tuple(args), False, tok.pos)

    def block_attr(self, c):
        tok, *args = c
        return Attribute(tok.value[2:], tuple(args), True, tok.pos)

    def arg(self, c):
        if len(c) == 2:
            return Arg(c[0].value, _value(c[1]), c[0].pos)
        value = _value(c[0])
        return Arg(None, value, value.pos)

    def array(self, c):
        lsqb, *items = c
        return Array(tuple(_value(i) for i in items), lsqb.pos)

    def call(self, c):
        name, *args = c
        if type(name) is Ident:  # a dotted path
            return Call(name.name, tuple(args), name.pos)
        return Call(name.value, tuple(args), name.pos)

    def path(self, c):
        return Ident(".".join(t.value for t in c), c[0].pos)

    def object(self, c):
        # `{ key: value, ... }` (partial indexes' `where:`) has no node of its own in
        # the AST: it is a Call named "{}" whose arguments are all named.
        brace, *members = c
        return Call("{}", tuple(members), brace.pos)

    def member(self, c):
        key, value = c
        return Arg(key.value, _value(value), key.pos)


def _schema(blocks, file: str) -> Schema:
    datasources, generators, models, enums = [], [], [], []
    for b in blocks:
        if type(b) is Model:
            models.append(b)
        elif type(b) is Enum:
            enums.append(b)
        elif b.kind == "datasource":
            datasources.append(b)
        else:
            generators.append(b)
    return Schema(tuple(datasources), tuple(generators), tuple(models), tuple(enums), (file,))


def _unescape(tok: _Tok) -> str:
    raw = tok.value[1:-1]
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = raw[i + 1]  # the scanner guarantees a character after a backslash
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
            continue
        if e == "u":
            code = _hex4(raw, i + 2)
            if code is not None and 0xD800 <= code < 0xDC00 and raw.startswith("\\u", i + 6):
                low = _hex4(raw, i + 8)
                if low is not None and 0xDC00 <= low < 0xE000:
                    out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                    i += 12
                    continue
            if code is not None and not 0xD800 <= code < 0xE000:
                out.append(chr(code))
                i += 6
                continue
            message = (
                "invalid unicode escape in string — expected \\u and 4 hex digits "
                "(a surrogate pair for characters beyond U+FFFF)"
            )
        else:
            message = (
                f'unknown escape sequence "\\{e}" in string — expected one of '
                '\\" \\\\ \\n \\r \\t \\b \\f \\/ \\\' \\0 \\uXXXX '
                "(a Windows path needs \\\\ for each \\)"
            )
        raise SchemaError(message, file=tok.file, line=tok.line, column=tok.column + 1 + i)
    return "".join(out)


_KEYWORD_TYPES = frozenset({"MODEL_KW", "ENUM_KW", "CONFIG_KW"})
_CLOSE_OF = {"{": "}", "(": ")", "[": "]"}
_ESCAPES = {
    '"': '"', "\\": "\\", "/": "/", "'": "'", "n": "\n", "r": "\r", "t": "\t",
    "b": "\b", "f": "\f", "0": "\0",
}


def _hex4(s: str, i: int) -> int | None:
    digits = s[i:i + 4]
    if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
        return int(digits, 16)
    return None


def _describe_token(tok) -> str:
    t = tok.type
    if t == "$END":
        return "end of file"
    if t == "_NL":
        return "end of line"
    if t == "STRING":
        s = str(tok)
        return "string " + (s if len(s) <= 40 else s[:37] + '..."')
    if t == "NUMBER":
        return f"number {tok}"
    s = str(tok)
    return f'"{s if len(s) <= 40 else s[:37] + "..."}"'


# --------------------------------------------------------------------------- the fast path
#
# `_Parse.run` above is the reference: lark's LALR parser fed token by token through
# lark's own machinery, which also words every syntax error. For a schema that parses,
# `_fast_parse` below does the same work without lark's per-token overhead: the same
# scanning and newline/keyword rules, the same `_Build` callbacks at the same
# reductions, driven by lark's own LALR table for grammar.lark (pre-computed in
# `_tables.py`). Anything unusual (a syntax error, a bad character, a `_Build` error)
# makes it give up, and the reference parse runs from the start, so every error,
# message and position is exactly the reference's. Same AST, 2-3x faster.


class _GiveUp(Exception):
    """The fast path met something only the reference parse words properly."""


_fast = None


def _fast_tables():
    global _fast
    if _fast is None:
        with _lark_lock:
            if _fast is None:
                _fast = _load_fast_tables()
    return _fast


def _load_fast_tables():
    """(rows, start, end, scan) for `_fast_parse`, from `_tables.py` when it matches the
    grammar and the installed lark, else derived from lark now (slower, same result)."""
    import hashlib
    import re

    import lark  # also the reference parser's; its version is part of the table's identity

    from checks.psl import _tables

    digest = hashlib.sha256(_GRAMMAR.read_bytes()).hexdigest()
    if _tables.GRAMMAR_SHA256 == digest and _tables.LARK_VERSION == lark.__version__:
        data = {k: getattr(_tables, k) for k in ("SCANNER", "START", "END", "RULES", "STATES")}
    else:  # grammar.lark was edited (run `python -m checks.psl.parser --write-tables`)
        data = derive_tables(_get_lark()[0])
    build = _Build()
    reduces = [(size, origin, _reducer(steps, kind, getattr(build, method, None)))
               for origin, size, steps, kind, method in data["RULES"]]
    rows = [{sym: act if act >= 0 else reduces[~act] for sym, act in row.items()} for row in data["STATES"]]
    # Whitespace before a token is part of its match, so that it costs no loop turn
    # (a lone run of it is left only at the end of the text).
    scan = re.compile(f"{_WS_CLASS}*(?:{data['SCANNER']})").finditer
    return rows, data["START"], data["END"], scan


_WS_CLASS = "[ \\t\\f\\u00a0\\u1680\\u2000-\\u200a\\u202f\\u205f\\u3000\\ufeff]"
_WS_CHARS = frozenset(" \t\f\u00a0\u1680\u202f\u205f\u3000\ufeff") | {chr(c) for c in range(0x2000, 0x200b)}


def _reducer(steps: tuple[int, ...], kind: str, method):
    """The callback for one grammar rule, as lark's parse-tree builder would call it.

    `steps` says, for each symbol of the rule, 0 drop (a filtered `_TOKEN`), 1 keep,
    2 splice (the list an inlined `_rule` produced). `kind` is "call" (a `_Build`
    method), "one" (a `?rule` with a single child: that child) or "list" (an inlined
    `_rule`: its children, spliced by the parent)."""
    if kind == "one":
        (index,) = [i for i, s in enumerate(steps) if s == 1]
        return lambda c: c[index]
    if all(s == 1 for s in steps):
        pick = None
    elif 2 not in steps:
        keep = [i for i, s in enumerate(steps) if s == 1]
        if len(keep) == 1:
            (i,) = keep
            pick = lambda c: [c[i]]  # noqa: E731
        elif len(keep) == 2:
            i, j = keep
            pick = lambda c: [c[i], c[j]]  # noqa: E731
        else:
            pick = lambda c: [c[i] for i in keep]  # noqa: E731
    else:
        plan = tuple((i, s) for i, s in enumerate(steps) if s)

        def pick(c):
            out = None
            for i, s in plan:
                if s == 2:
                    if out is None:
                        out = c[i]  # a list made by one reduction and used only here
                    else:
                        out += c[i]
                elif out is None:
                    out = [c[i]]
                else:
                    out.append(c[i])
            return [] if out is None else out

    if kind == "list":
        return pick or list
    if pick is None:
        return method
    return lambda c: method(pick(c))


def derive_tables(parser) -> dict:
    """The data of `_tables.py` from a lark LALR parser built from grammar.lark."""
    import hashlib

    import lark

    table = parser.parser.parser.parser.parse_table
    rules = list(parser.rules)
    index = {id(r): i for i, r in enumerate(rules)}
    out_rules = []
    for r in rules:
        origin = str(r.origin.name)
        if r.alias or r.options.template_source or r.options.keep_all_tokens:
            raise ValueError(f"rule {origin}: aliases, templates and keep_all_tokens are not supported")
        steps = tuple(
            0 if s.is_term and s.filter_out else 2 if (not s.is_term and s.name.startswith("_")) else 1
            for s in r.expansion
        )
        if origin.startswith("_"):
            if r.options.expand1 or hasattr(_Build, origin):
                raise ValueError(f"rule {origin}: an inlined rule must be a plain list of children")
            kind = "list"
        elif hasattr(_Build, origin):
            kind = "call"
            if r.options.expand1:
                raise ValueError(f"rule {origin}: ?rules with a _Build method are not supported")
        elif r.options.expand1 and steps.count(1) == 1 and 2 not in steps:
            kind = "one"
        else:
            raise ValueError(f"rule {origin}: needs a _Build method")
        out_rules.append((origin, len(r.expansion), steps, kind, origin))
    if sorted(table.states) != list(range(len(table.states))):
        raise ValueError("lark's LALR states are not numbered 0..n-1")
    states = []
    for s in range(len(table.states)):
        row = {}
        for sym, (action, arg) in table.states[s].items():
            if action.name == "Shift":
                row[str(sym)] = arg
            else:
                row[str(sym)] = ~index[id(arg)]
        states.append(row)
    scanner = _scanner_pattern(parser)
    return {
        "GRAMMAR_SHA256": hashlib.sha256(_GRAMMAR.read_bytes()).hexdigest(),
        "LARK_VERSION": lark.__version__,
        "SCANNER": scanner,
        "START": table.start_states["start"],
        "END": table.end_states["start"],
        "RULES": tuple(out_rules),
        "STATES": tuple(states),
    }


def write_tables(path: str | os.PathLike | None = None) -> None:
    """Regenerate `_tables.py` from grammar.lark (after editing the grammar)."""
    data = derive_tables(_get_lark()[0])
    lines = [
        '"""LALR tables of grammar.lark for the parser\'s fast path, made by lark.',
        "",
        "Generated by `python -m checks.psl.parser --write-tables`; do not edit. A stale copy is",
        "harmless (the parser then derives the tables from lark at run time), but slower.",
        '"""',
        f"GRAMMAR_SHA256 = {data['GRAMMAR_SHA256']!r}",
        f"LARK_VERSION = {data['LARK_VERSION']!r}",
        f"SCANNER = {ascii(data['SCANNER'])}",
        f"START = {data['START']}",
        f"END = {data['END']}",
        "# (rule, symbols, per symbol 0 drop / 1 keep / 2 splice, kind, _Build method)",
        "RULES = (",
        *(f"    {r!r}," for r in data["RULES"]),
        ")",
        "# per state: symbol -> next state (shift, goto) or ~rule (reduce)",
        "STATES = (",
        *(f"    {row!r}," for row in data["STATES"]),
        ")",
        "",
    ]
    target = Path(path) if path else Path(__file__).with_name("_tables.py")
    target.write_text("\n".join(lines), encoding="utf-8")


def _fast_parse(text: str, file: str) -> Schema:
    """`_Parse(text, file).run()` for a schema without errors; `_GiveUp` (or any
    exception) otherwise. Mirrors `_Parse.run` step by step: keep the two in step."""
    rows, start, end, scan = _fast_tables()
    ss = [start]  # LALR state stack, as lark's
    row = rows[start]  # actions of the state on top of ss
    vs: list = []  # value stack, as lark's (None for punctuation, which lark filters out)
    tok_new = _Tok
    keywords = _KEYWORDS
    depth = 0  # open brackets (the reference's len(stack))
    line, line_start = 1, 0
    prev = None  # type of the last token given to the parser
    pending: list[str] = []  # `///` lines waiting for their declaration
    item = None  # name of the field / enum value being read, for trailing docs
    for m in scan(text):
        t = m.lastgroup
        if t == "_NL":
            line += 1
            line_start = m.end()
            if depth != 1 or prev == "_NL" or prev == "_LBRACE":
                continue
            value = None
            prev = t
        elif t == "COMMENT":
            _collect_doc(m.group(t), depth, prev, item, pending)
            continue
        elif t == "BLOCK_COMMENT":
            if _block_comment_misplaced(text, m.end(), depth, prev):
                raise _GiveUp
            count, after = _block_comment_lines(text, m.start(t), m.end())
            if count:
                line += count
                line_start = after
            continue
        elif t == "WS":  # only at the very end
            continue
        elif t == "_BAD":
            raise _GiveUp
        else:
            value = None if t[0] == "_" else tok_new(t, m.group(t), line, m.start(t) - line_start + 1, file)
            if depth == 0:
                if t == "NAME" and (prev is None or prev == "_RBRACE"):
                    kw = keywords.get(value.value)
                    if kw is not None:
                        value.type = t = kw
                        if pending:
                            value.doc = pending
                            pending = []
            elif depth == 1:
                if prev == "_NL" or prev == "_LBRACE":
                    # first token of a body item: field, enum value, property, @@attribute or "}"
                    if t == "NAME":
                        item = value
                        if pending:
                            value.doc = pending
                            pending = []
                    else:
                        item = None
                        pending = []
            elif t == "_LBRACE":  # `where: { ... }` inside an attribute
                t = "OBJ_OPEN"
                value = tok_new(t, "{", line, m.start("_LBRACE") - line_start + 1, file)
            if t == "_LBRACE" or t == "_LPAR" or t == "LSQB" or t == "OBJ_OPEN":
                depth += 1
                if depth > _MAX_NESTING:
                    raise _GiveUp
            elif (t == "_RBRACE" or t == "_RPAR" or t == "_RSQB") and depth:
                depth -= 1
            prev = t
        # feed it: lark's ParserState.feed_token, inlined
        while True:
            act = row.get(t)
            if act is None:
                raise _GiveUp  # a syntax error
            if act.__class__ is int:  # shift
                ss.append(act)
                vs.append(value)
                row = rows[act]
                break
            size, origin, reduce = act
            if size == 1:
                ss.pop()
                vs.append(reduce([vs.pop()]))
            elif size:
                children = vs[-size:]
                del ss[-size:]
                del vs[-size:]
                vs.append(reduce(children))
            else:
                vs.append(reduce([]))
            state = rows[ss[-1]][origin]
            ss.append(state)
            row = rows[state]
    if depth:
        raise _GiveUp
    while True:  # end of input: reduce until the start rule is complete
        act = rows[ss[-1]].get("$END")
        if act is None or act.__class__ is int:
            raise _GiveUp
        size, origin, reduce = act
        if size:
            children = vs[-size:]
            del ss[-size:]
            del vs[-size:]
        else:
            children = []
        vs.append(reduce(children))
        ss.append(rows[ss[-1]][origin])
        if ss[-1] == end:
            return _schema(vs[-1], file)


def _parse_one(text: str, file: str) -> Schema:
    if text.startswith("\ufeff"):
        text = text[1:]
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise SchemaError(
            "not a text Prisma schema: found a NUL character — expected UTF-8 text",
            file=file, line=line, column=column,
        )
    # A parse allocates a few objects per token and frees none of them, so the cyclic
    # GC only re-scans a growing heap: pausing it makes large schemas ~35% faster.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            return _fast_parse(text, file)
        except Exception as exc:  # anything unusual: the reference parse says exactly what
            missed: Exception | None = exc
        schema = _Parse(text, file).run()  # a SchemaError here: the fast path was right to stop
        _fast_path_missed(missed, file)
        return schema
    finally:
        if gc_was_enabled:
            gc.enable()


#: How often the fast path failed on a schema the reference parser accepts, by exception type.
#: Each one is a fast-path bug that only makes parsing slower: counted, logged, and raised
#: when $DRIFTWATCH_STRICT_FAST_PATH is set (the test suite sets it).
FAST_PATH_MISSES: Counter[str] = Counter()


def _fast_path_missed(exc: Exception | None, file: str) -> None:
    if exc is None:
        return
    FAST_PATH_MISSES[type(exc).__name__] += 1
    logging.getLogger("driftwatch.psl").warning(
        "the parser's fast path failed on %s, which the reference parse accepts (%s: %s); parsed the slow way",
        file, type(exc).__name__, exc)
    if os.environ.get("DRIFTWATCH_STRICT_FAST_PATH"):
        raise AssertionError(f"the parser's fast path failed on a valid schema ({file}): "
                             f"{type(exc).__name__}: {exc}") from exc


def _check_unique_names(schema: Schema) -> None:
    def check(blocks) -> None:
        seen: dict[str, tuple[str, Pos]] = {}
        for kind, name, pos in blocks:
            if name in seen:
                first_kind, first = seen[name]
                if first_kind == kind:
                    message = f"{kind} `{name}` is defined twice: first at {first}, again here"
                else:
                    message = (
                        f"{kind} `{name}` has the same name as {first_kind} `{name}` at {first}; "
                        "models, views, types and enums need distinct names"
                    )
                raise SchemaError(message, file=pos.file, line=pos.line, column=pos.column)
            seen[name] = (kind, pos)

    order = {f: i for i, f in enumerate(schema.files)}
    named = [(m.kind, m.name, m.pos) for m in schema.models]
    named += [("enum", e.name, e.pos) for e in schema.enums]
    named.sort(key=lambda b: (order.get(b[2].file, 0), b[2].line, b[2].column))
    check(named)
    check([("datasource", d.name, d.pos) for d in schema.datasources])
    check([("generator", g.name, g.pos) for g in schema.generators])


if __name__ == "__main__":  # python -m checks.psl.parser --write-tables
    import sys

    if sys.argv[1:] != ["--write-tables"]:
        sys.exit("usage: python -m checks.psl.parser --write-tables")
    write_tables()
