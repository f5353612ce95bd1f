"""One canonical text for a column default, whichever side it comes from.

PostgreSQL does not keep a default as it was written: it stores a parsed expression and
`pg_get_expr` prints it back with casts made explicit (``'USER'::"Role"``, ``'-5'::integer``,
``ARRAY['a'::text]``), negative numbers quoted, timestamps re-rendered, jsonb re-ordered.
Prisma's DDL writes the same defaults differently (``'USER'``, ``-5``,
``ARRAY['a']::TEXT[]``, ``'2020-01-01 00:00:00 +00:00'``). `normalize_default` maps both
spellings to one text so that the drift check can compare defaults with ``==``.

It is a pure function (no database, no settings): the live inspector calls it on
`pg_get_expr` output and the Prisma compiler may call it on the SQL it would emit.
What PostgreSQL prints depends on a few session settings; the inspector pins them
(``TimeZone=UTC``, ``DateStyle=ISO``, ``standard_conforming_strings=on``,
``bytea_output=hex``), and the temporal rules below assume the same.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

__all__ = ["normalize_default", "strip_outer_parens"]

_NUMERIC_TYPES = ("smallint", "integer", "bigint", "real", "double precision", "numeric")
_SQL_VALUE_FUNCTIONS = (
    "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
    "current_user", "current_role", "session_user", "user", "current_catalog", "current_schema",
)
_TRUE = {"t", "true", "y", "yes", "on", "1"}
_FALSE = {"f", "false", "n", "no", "off", "0"}

_NEXTVAL = re.compile(r"nextval\s*\(\s*'(?:[^']|'')*'\s*(?:::\s*regclass\s*)?\)", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = r'(?:"(?:[^"]|"")+"|[^\W\d][\w$]*)'
# A type name after `::`: words (`double precision`, `timestamp(3) without time zone`),
# an optional schema, a type modifier and array brackets. Nothing that looks like an operator.
_TYPE_NAME = re.compile(
    rf"\s*{_IDENT}(?:\s*\.\s*{_IDENT})?(?:\s+{_IDENT})*"
    rf"\s*(?:\(\s*\d+\s*(?:,\s*-?\d+\s*)?\))?(?:\s+{_IDENT})*\s*(?:\[\s*\d*\s*\]\s*)*"
)
_VALUE_FUNCTION = re.compile(
    r"(" + "|".join(_SQL_VALUE_FUNCTIONS) + r")\s*(\(\s*\d+\s*\))?", re.IGNORECASE
)
_NOW = re.compile(r"(?:now|transaction_timestamp)\s*\(\s*\)", re.IGNORECASE)
_TEMPORAL = re.compile(
    r"(?:(?P<date>\d{4}-\d{2}-\d{2})(?:[ T]|$))?"
    r"(?:(?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?"
    r"\s*(?P<zone>Z|UTC|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)


def normalize_default(expr: str | None, column_type: str) -> tuple[str | None, bool]:
    """Return ``(canonical default, autoincrement)`` for a default expression.

    ``expr`` is a default as `pg_get_expr` prints it or as DDL writes it; ``column_type``
    is the column's canonical type (`checks.catalog`: ``integer``, ``text[]``,
    ``"public"."Role"``, ``timestamp(3) without time zone``…), which decides how a
    literal is spelled. The rules, applied to the whole expression:

    * No default, or ``NULL`` (``NULL::text``) → ``(None, False)``.
    * ``nextval('<any sequence>'::regclass)`` (serial, bigserial, a hand-made sequence)
      → ``(None, True)``. Identity columns have no default expression at all; the
      inspector sets autoincrement from ``attidentity`` itself.
    * Redundant outer parentheses go: ``(1 + 2)`` → ``1 + 2``.
    * Casts on a literal go, however many: ``'USER'::"Role"`` → ``'USER'``,
      ``'abc'::character varying`` → ``'abc'``, ``('-0.25'::numeric)::double precision``
      → ``-0.25``.
    * Strings are written with single quotes, ``''`` for a quote and backslashes as
      they are (standard-conforming strings; an ``E'...'`` input is decoded first):
      ``'it''s'``, ``'back\\slash'``.
    * Numbers, for numeric column types (``smallint integer bigint real
      double precision numeric``), lose their quotes and are written in plain decimal
      notation without a ``+``, without trailing fractional zeros, and ``0`` for zero:
      ``'0'::numeric`` → ``0``, ``'-5'::integer`` → ``-5``, ``1.10`` → ``1.1``,
      ``1e20`` → ``100000000000000000000``. ``'NaN'`` and ``'Infinity'`` stay quoted.
    * Booleans are ``true`` / ``false`` (``'t'``, ``'on'``, ``TRUE``… accepted).
    * ``now()``, ``transaction_timestamp()``, ``current_timestamp`` → ``CURRENT_TIMESTAMP``;
      other SQL value functions are upper-cased (``CURRENT_DATE``, ``CURRENT_USER``).
    * Literals of some types are written as PostgreSQL prints their values:
      ``jsonb`` → jsonb's text (keys ordered by length then bytes, duplicate keys
      dropped, ``", "`` and ``": "`` separators: ``'{"a": [1, 2]}'``; ``json`` keeps its
      text as written, like PostgreSQL); ``bytea`` → lower-case hex ``'\\x6869'``;
      ``uuid`` → lower case with hyphens; ``date`` → ``'2021-03-04'``; ``time`` →
      ``'12:34:56.5'``; ``timetz`` → ``'12:34:56+02'``; ``timestamp`` →
      ``'2020-01-01 00:00:00'`` (an offset is ignored, as PostgreSQL ignores it);
      ``timestamptz`` → converted to UTC, ``'2020-01-01 08:20:30.123+00'``. Fractional
      seconds lose trailing zeros and are not rounded to the column's precision
      (PostgreSQL does not round a stored default either). Text that does not parse
      as such a value is kept as written.
    * Arrays (``column_type`` ends in ``[]``) are ``ARRAY[e1, e2, ...]::<column_type>``,
      each element canonical for the element type by the rules above, ``NULL`` for a
      null element, nested ``ARRAY[...]`` for more dimensions, and the cast to the
      column type always present so that the text is valid SQL on its own (an empty
      ``ARRAY[]`` cannot be typed otherwise, and a text[] cannot be assigned to an enum
      array): ``ARRAY[]::text[]``, ``ARRAY['a', 'b,c']::text[]``,
      ``ARRAY[1, 2, -3]::integer[]``, ``ARRAY['RED']::"public"."Color"[]``. The
      array-literal spelling ``'{a,"b,c"}'`` is converted to the same form.
    * Anything else (``gen_random_uuid()``, ``now() + '1 day'::interval``,
      ``'x'::text || 'y'::text``) is kept as PostgreSQL prints it, minus outer
      parentheses: casts and ``now()`` inside a larger expression are not touched,
      so a hand-written ``dbgenerated(...)`` matches only when spelled as PostgreSQL
      deparses it.
    """
    if expr is None:
        return None, False
    text = expr.strip()
    if not text:
        return None, False
    if _NEXTVAL.fullmatch(strip_outer_parens(text)):
        return None, True
    return _canonical(text, column_type.strip()), False


# --------------------------------------------------------------------------- scanning


def _scan(text: str):
    """Yield ``(index, char, depth)`` for characters outside quotes; depth counts ( and [."""
    depth = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            escapes = i > 0 and text[i - 1] in "eE" and (i < 2 or not (text[i - 2].isalnum() or text[i - 2] in "_$"))
            i = _end_of_string(text, i, escapes)
            continue
        if ch == '"':
            j = i + 1
            while j < n:
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
            continue
        if ch in "([":
            yield i, ch, depth
            depth += 1
        elif ch in ")]":
            depth -= 1
            yield i, ch, depth
        else:
            yield i, ch, depth
        i += 1


def _end_of_string(text: str, start: int, escapes: bool) -> int:
    """Index just past the single-quoted string starting at ``start``."""
    j, n = start + 1, len(text)
    while j < n:
        c = text[j]
        if escapes and c == "\\":
            j += 2
            continue
        if c == "'":
            if j + 1 < n and text[j + 1] == "'":
                j += 2
                continue
            return j + 1
        j += 1
    return n


def strip_outer_parens(text: str) -> str:
    """Remove parentheses that enclose the whole expression: ``((a IS NULL))`` → ``a IS NULL``."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        closing = None
        for i, ch, depth in _scan(text):
            if ch == ")" and depth == 0:
                closing = i
                break
        if closing != len(text) - 1:
            break
        text = text[1:-1].strip()
    return text


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, start = [], 0
    for i, ch, depth in _scan(text):
        if ch == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _split_cast(text: str) -> tuple[str, str] | None:
    """``operand::type`` → (operand, type) when the last top-level ``::`` ends in a bare type name."""
    last = None
    for i, ch, depth in _scan(text):
        if ch == ":" and depth == 0 and text.startswith("::", i) and (last is None or i > last + 1):
            last = i
    if last is None:
        return None
    type_name = text[last + 2 :]
    if not _TYPE_NAME.fullmatch(type_name):
        return None
    return text[:last].strip(), type_name.strip()


def _is_string(text: str) -> bool:
    if text[:1] in "eE" and text[1:2] == "'":
        return _end_of_string(text, 1, True) == len(text)
    return text[:1] == "'" and _end_of_string(text, 0, False) == len(text)


def _is_array_constructor(text: str) -> bool:
    if not (text[:5].upper() == "ARRAY" and text.endswith("]")):
        return False
    rest = text[5:].lstrip()
    if not rest.startswith("["):
        return False
    offset = len(text) - len(rest)
    for i, ch, depth in _scan(text):
        if i >= offset and ch == "]" and depth == 0:
            return i == len(text) - 1
    return False


def _is_atom(text: str) -> bool:
    """A literal whose cast may go: a string, a number, NULL, a boolean, an ARRAY[...]."""
    return (
        _is_string(text)
        or bool(_NUMBER.fullmatch(text))
        or text.upper() in ("NULL", "TRUE", "FALSE")
        or _is_array_constructor(text)
    )


def _strip_casts(text: str) -> str:
    """Drop casts (and parentheses) around a literal; leave any other expression alone."""
    text = strip_outer_parens(text)
    split = _split_cast(text)
    if split is None:
        return text
    operand = _strip_casts(split[0])
    return operand if _is_atom(operand) else text


def _string_value(literal: str) -> str:
    if literal[:1] in "eE":
        return _decode_escape_string(literal[2:-1])
    return literal[1:-1].replace("''", "'")


def _decode_escape_string(body: str) -> str:
    out: list[str] = []
    i, n = 0, len(body)
    simple = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
    while i < n:
        c = body[i]
        if c == "'" and i + 1 < n and body[i + 1] == "'":
            out.append("'")
            i += 2
            continue
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            out.append(chr(int(m.group(), 8)))
            i += 1 + len(m.group())
        elif nxt == "x" and re.match(r"[0-9A-Fa-f]", body[i + 2 : i + 3]):
            m = re.match(r"[0-9A-Fa-f]{1,2}", body[i + 2 :])
            out.append(chr(int(m.group(), 16)))
            i += 2 + len(m.group())
        elif nxt in "uU":
            width = 4 if nxt == "u" else 8
            digits = body[i + 2 : i + 2 + width]
            if re.fullmatch(r"[0-9A-Fa-f]{%d}" % width, digits):
                out.append(chr(int(digits, 16)))
                i += 2 + width
            else:
                out.append(nxt)
                i += 2
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --------------------------------------------------------------------------- canonical forms


def _base_type(column_type: str) -> str:
    """``timestamp(3) without time zone`` → ``timestamp without time zone``; ``numeric(10,2)`` → ``numeric``."""
    return re.sub(r"\s*\(\s*\d+\s*(?:,\s*-?\d+\s*)?\)", "", column_type).strip().lower()


def _canonical(text: str, column_type: str) -> str | None:
    text = _strip_casts(text)
    if text.upper() == "NULL":
        return None
    if column_type.endswith("[]"):
        array = _canonical_array(text, column_type[:-2].rstrip())
        if array is not None:
            return f"{array}::{column_type}"
        return text
    return _canonical_scalar(text, column_type)


def _canonical_scalar(text: str, column_type: str) -> str:
    base = _base_type(column_type)
    if _is_string(text):
        return _canonical_literal(_string_value(text), base)
    if _NUMBER.fullmatch(text):
        return _canonical_number(text)
    upper = text.upper()
    if upper in ("TRUE", "FALSE"):
        return upper.lower()
    if _NOW.fullmatch(text):
        return "CURRENT_TIMESTAMP"
    m = _VALUE_FUNCTION.fullmatch(text)
    if m:
        return m.group(1).upper() + re.sub(r"\s+", "", m.group(2) or "")
    return text


def _canonical_literal(value: str, base: str) -> str:
    """A string literal's canonical text for a column of (typmod-less) type ``base``."""
    if base in _NUMERIC_TYPES and _NUMBER.fullmatch(value.strip()):
        return _canonical_number(value.strip())
    if base == "boolean":
        low = value.strip().lower()
        if low in _TRUE:
            return "true"
        if low in _FALSE:
            return "false"
    elif base == "jsonb":
        value = _jsonb_text(value) or value
    elif base == "bytea":
        value = _bytea_hex(value) or value
    elif base == "uuid":
        digits = re.sub(r"[{}-]", "", value.strip())
        if re.fullmatch(r"[0-9A-Fa-f]{32}", digits):
            d = digits.lower()
            value = f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"
    elif base in ("date", "time without time zone", "time with time zone",
                  "timestamp without time zone", "timestamp with time zone"):
        value = _temporal(value, base) or value
    return _quote(value)


def _canonical_number(text: str) -> str:
    try:
        d = Decimal(text)
    except InvalidOperation:
        return text
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def _canonical_array(text: str, element_type: str) -> str | None:
    """``ARRAY[...]`` or ``'{...}'`` → ``ARRAY[e1, e2]`` with canonical elements, else None."""
    if _is_array_constructor(text):
        body = text[text.index("[") + 1 : -1].strip()
        items = _split_top(body) if body else []
        out = []
        for item in items:
            item = _strip_casts(item)
            if item.upper() == "NULL":
                out.append("NULL")
            elif item.startswith("[") and item.endswith("]"):  # ARRAY[[1,2],[3,4]]
                out.append(_canonical_array("ARRAY" + item, element_type) or item)
            elif _is_array_constructor(item):
                out.append(_canonical_array(item, element_type) or item)
            else:
                out.append(_canonical_scalar(item, element_type))
        return "ARRAY[" + ", ".join(out) + "]"
    if _is_string(text):
        parsed = _parse_array_literal(_string_value(text))
        if parsed is None:
            return None
        return _render_parsed_array(parsed, element_type)
    return None


def _render_parsed_array(items: list, element_type: str) -> str:
    out = []
    for item in items:
        if item is None:
            out.append("NULL")
        elif isinstance(item, list):
            out.append(_render_parsed_array(item, element_type))
        else:
            out.append(_canonical_literal(item, _base_type(element_type)))
    return "ARRAY[" + ", ".join(out) + "]"


def _parse_array_literal(value: str) -> list | None:
    """PostgreSQL's array input syntax (``{a,"b,c",NULL,{1,2}}``) → nested lists of str/None."""
    value = value.strip()
    if value.startswith("["):  # explicit bounds: [1:2]={...}
        return None
    pos = 0

    def parse_array() -> list | None:
        nonlocal pos
        if pos >= len(value) or value[pos] != "{":
            return None
        pos += 1
        items: list = []
        while True:
            while pos < len(value) and value[pos].isspace():
                pos += 1
            if pos < len(value) and value[pos] == "}" and not items:
                pos += 1
                return items
            if pos >= len(value):
                return None
            if value[pos] == "{":
                sub = parse_array()
                if sub is None:
                    return None
                items.append(sub)
            elif value[pos] == '"':
                pos += 1
                buf = []
                while pos < len(value) and value[pos] != '"':
                    if value[pos] == "\\" and pos + 1 < len(value):
                        pos += 1
                    buf.append(value[pos])
                    pos += 1
                if pos >= len(value):
                    return None
                pos += 1
                items.append("".join(buf))
            else:
                buf = []
                while pos < len(value) and value[pos] not in ",}":
                    if value[pos] == "\\" and pos + 1 < len(value):
                        pos += 1
                    buf.append(value[pos])
                    pos += 1
                word = "".join(buf).strip()
                items.append(None if word.upper() == "NULL" else word)
            while pos < len(value) and value[pos].isspace():
                pos += 1
            if pos >= len(value):
                return None
            if value[pos] == ",":
                pos += 1
                continue
            if value[pos] == "}":
                pos += 1
                return items
            return None

    items = parse_array()
    if items is None or value[pos:].strip():
        return None
    return items


def _jsonb_text(value: str) -> str | None:
    """The text jsonb_out prints for ``value``, or None when it is not JSON PostgreSQL accepts."""

    def reject(_: str) -> None:
        raise ValueError("not JSON for PostgreSQL")

    try:
        parsed = json.loads(value, parse_float=Decimal, parse_int=Decimal, parse_constant=reject,
                            object_pairs_hook=dict)
    except (ValueError, RecursionError):
        return None

    def render(v: object) -> str:
        if isinstance(v, dict):
            keys = sorted(v, key=lambda k: (len(k.encode()), k.encode()))
            return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {render(v[k])}" for k in keys) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(render(x) for x in v) + "]"
        if isinstance(v, Decimal):
            text = format(v, "f")  # numeric_out: plain notation, scale kept ("1.50")
            return text.lstrip("-") if v == 0 else text
        if v is True:
            return "true"
        if v is False:
            return "false"
        if v is None:
            return "null"
        if "\x00" in v:
            raise ValueError("jsonb rejects \\u0000")
        return json.dumps(v, ensure_ascii=False)

    try:
        return render(parsed)
    except ValueError:
        return None


def _bytea_hex(value: str) -> str | None:
    if value.startswith("\\x"):
        digits = re.sub(r"\s", "", value[2:])
        if re.fullmatch(r"(?:[0-9A-Fa-f]{2})*", digits):
            return "\\x" + digits.lower()
        return None
    out = bytearray()
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            if value[i + 1 : i + 2] == "\\":
                out.append(0x5C)
                i += 2
                continue
            m = re.match(r"[0-3][0-7]{2}", value[i + 1 : i + 4])
            if not m:
                return None
            out.append(int(m.group(), 8))
            i += 4
            continue
        out.extend(c.encode())
        i += 1
    return "\\x" + out.hex()


def _temporal(value: str, base: str) -> str | None:
    m = _TEMPORAL.fullmatch(value.strip())
    if not m or not (m.group("date") or m.group("time")):
        return None
    date_s, time_s, zone_s = m.group("date"), m.group("time") or "00:00:00", m.group("zone")
    parts = time_s.split(":")
    hour, minute = int(parts[0]), int(parts[1])
    sec_s = parts[2] if len(parts) > 2 else "0"
    second, _, frac = sec_s.partition(".")
    frac = (frac + "000000")[:6] if frac else "000000"
    offset = _offset(zone_s)
    if offset is None and zone_s:
        return None
    try:
        y, mo, d = (int(x) for x in (date_s or "2000-01-01").split("-"))
        moment = datetime(y, mo, d, hour, minute, int(second), int(frac))
    except ValueError:
        return None
    if base == "date":
        return _render_date(moment) if date_s else None
    if base == "timestamp with time zone":
        if not date_s:
            return None
        moment = moment - (offset or timedelta(0))
        return _render_date(moment) + " " + _render_time(moment) + "+00"
    if base == "timestamp without time zone":
        return _render_date(moment) + " " + _render_time(moment) if date_s else None
    if base == "time without time zone":
        return _render_time(moment) if m.group("time") else None
    if base == "time with time zone":
        return _render_time(moment) + _render_offset(offset or timedelta(0)) if m.group("time") else None
    return None


def _offset(zone: str | None) -> timedelta | None:
    if not zone:
        return None
    if zone.upper() in ("Z", "UTC"):
        return timedelta(0)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return sign * timedelta(hours=hours, minutes=minutes)


def _render_date(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"


def _render_time(moment: datetime) -> str:
    text = f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text


def _render_offset(offset: timedelta) -> str:
    total = int(offset.total_seconds() // 60)
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    return f"{sign}{hours:02d}" + (f":{minutes:02d}" if minutes else "")


_LITERAL_CAST = re.compile(r"('(?:[^']|'')*')::(?:\"[^\"]+\"|[a-z_][a-z0-9_ ]*?)(?:\[\])?(?=[\s),]|$)")
_SIMPLE_QUOTED = re.compile(r'"([a-z_][a-z0-9_]*)"')


def normalize_predicate(text: str | None) -> str | None:
    """One spelling for a partial index's condition, whoever wrote it.

    PostgreSQL prints a condition back in its own words: ``code <> ''`` written by hand
    (or in Prisma's ``raw()``) returns as ``(code <> ''::text)``. Both sides of a diff pass
    through this function so that only a real change of condition is drift: outer
    parentheses, casts on string literals, quotes around plain lower-case names, ``!=``
    and runs of whitespace are not. (Parentheses inside are kept: they can change meaning.)
    """
    if text is None:
        return None
    out = strip_outer_parens(text)
    out = _LITERAL_CAST.sub(r"\1", out)
    out = _SIMPLE_QUOTED.sub(r"\1", out)
    out = out.replace("!=", "<>")
    return " ".join(out.split())
