"""Gatus-style conditions on an HTTP response: `[STATUS] == 200`, `[BODY].status == ok`.

Users of Gatus already write these, so the syntax is Gatus' own:

    left      [STATUS]  [BODY]  [BODY].data[0].id  [RESPONSE_TIME] (ms)
              [CERTIFICATE_EXPIRATION] (a duration: 168h, 7d, 1h30m)  [CONNECTED]
              len(<placeholder>)  has(<placeholder>)
    operator  ==  !=  <  <=  >  >=
    right     a literal (200, ok, "quoted text", true, 48h), pat(glob*), any(a, b, c)

The right side is free text, as in Gatus (`[BODY].status == all good` compares with
"all good"), so a grammar would only re-state "placeholder, operator, rest": a small hand
parser does it and names what is wrong in one line. `parse` runs when the configuration is
loaded, so a bad condition is a configuration error with its key path, never a failed check.

A failed condition says what it saw: `[BODY].status == ok: got "degraded"`.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDERS = ("STATUS", "BODY", "RESPONSE_TIME", "CERTIFICATE_EXPIRATION", "CONNECTED")
OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_ORDERED = ("<", "<=", ">", ">=")

_LEFT = re.compile(
    r"""^(?:(?P<func>len|has)\(\s*)?
        \[(?P<name>[A-Z_]+)\]
        (?P<path>(?:\.[^\s.\[\]()=<>!]+|\[\d+\])*)
        (?(func)\s*\))""",
    re.VERBOSE,
)
_OPERATOR = re.compile(r"\s*(==|!=|<=|>=|<|>)\s*")
_PATH_PART = re.compile(r"\.([^\s.\[\]()=<>!]+)|\[(\d+)\]")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
MISSING = object()


class ConditionError(ValueError):
    """A condition that cannot be parsed; the message says what is wrong, in one line."""


@dataclass(frozen=True)
class Observation:
    """What one HTTP exchange showed, as conditions see it.

    `body` is the (capped) response bytes; `certificate_expiration_s` is the seconds until
    the server certificate's notAfter (None without TLS); `connected` is False when no
    response came back at all.
    """

    status: int | None = None
    body: bytes = b""
    response_time_ms: float | None = None
    certificate_expiration_s: float | None = None
    connected: bool = True
    _json: list[Any] = field(default_factory=list, compare=False, repr=False)

    def json(self) -> Any:
        """The body as JSON (parsed once); raises ValueError when it is not JSON."""
        if not self._json:
            try:
                self._json.append(json.loads(self.body.decode("utf-8")))
            except (UnicodeDecodeError, ValueError) as exc:
                self._json.append(exc)
        value = self._json[0]
        if isinstance(value, Exception):
            raise ValueError("body is not JSON") from value
        return value


@dataclass(frozen=True)
class Outcome:
    """A condition's verdict. `kind` says what kind of failure it is, so the check can lead
    its reason with it: `condition`, `not_json` (a [BODY] path on a non-JSON body) or
    `latency` (a [RESPONSE_TIME] condition: latency over budget)."""

    passed: bool
    reason: str | None = None
    kind: str = "condition"


@dataclass(frozen=True)
class Condition:
    """One parsed condition; `source` is the text as configured."""

    source: str
    placeholder: str
    path: tuple[str | int, ...]
    func: str | None
    operator: str
    matcher: str  # literal | pat | any
    values: tuple[Any, ...]

    def __str__(self) -> str:
        return self.source

    def evaluate(self, obs: Observation) -> Outcome:
        """Whether `obs` satisfies the condition, and if not, what was seen instead."""
        kind = "latency" if self.placeholder == "RESPONSE_TIME" else "condition"
        try:
            seen = self._value(obs)
        except _NotJson:
            return Outcome(False, f"{self.source}: body is not JSON", "not_json")
        if seen is MISSING and self.func != "has":
            where = "[BODY]" + _path_text(self.path)
            return Outcome(False, f"{self.source}: got nothing ({where} is not in the body)", kind)
        if seen is None and self.placeholder == "CERTIFICATE_EXPIRATION":
            return Outcome(False, f"{self.source}: no certificate (not HTTPS)", kind)
        if seen is None and self.placeholder == "RESPONSE_TIME":
            return Outcome(False, f"{self.source}: no response", kind)
        if self._holds(seen):
            return Outcome(True)
        return Outcome(False, f"{self.source}: got {self._show(seen)}", kind)

    def _value(self, obs: Observation) -> Any:
        name = self.placeholder
        if name == "STATUS":
            value: Any = obs.status
        elif name == "RESPONSE_TIME":
            value = None if obs.response_time_ms is None else round(obs.response_time_ms, 1)
        elif name == "CERTIFICATE_EXPIRATION":
            value = obs.certificate_expiration_s
        elif name == "CONNECTED":
            value = obs.connected
        elif not self.path:
            value = obs.body.decode("utf-8", "replace") if obs.body else MISSING
        else:
            try:
                value = walk_path(obs.json(), self.path)
            except ValueError:
                raise _NotJson() from None
        if self.func == "has":
            return value is not MISSING and value is not None
        if self.func == "len":
            if value is MISSING:
                return MISSING
            if isinstance(value, (str, list, dict)):
                return len(value)
            return len(_text(value))
        return value

    def _holds(self, seen: Any) -> bool:
        op = self.operator
        if self.matcher == "pat":
            hit = any(_glob(p).fullmatch(_text(seen)) is not None for p in self.values)
        elif self.matcher == "any":
            hit = any(_equal(seen, v) for v in self.values)
        elif op in ("==", "!="):
            hit = _equal(seen, self.values[0])
        else:
            number = _number(seen)
            if number is None:
                return False
            limit = self.values[0]
            return {"<": number < limit, "<=": number <= limit,
                    ">": number > limit, ">=": number >= limit}[op]
        return hit if op == "==" else not hit

    def _show(self, seen: Any) -> str:
        if self.placeholder == "RESPONSE_TIME" and self.func is None:
            return f"{seen:g} ms"
        if self.placeholder == "CERTIFICATE_EXPIRATION" and self.func is None:
            return format_duration(seen) + (" (expired)" if seen < 0 else "")
        if isinstance(seen, bool):
            return "true" if seen else "false"
        if seen is None:
            return "null"
        if isinstance(seen, (int, float)):
            return f"{seen:g}" if isinstance(seen, float) else str(seen)
        if isinstance(seen, str):
            text = json.dumps(seen[:80] + ("…" if len(seen) > 80 else ""), ensure_ascii=False)
            return text
        text = json.dumps(seen, ensure_ascii=False, separators=(",", ":"))
        return text if len(text) <= 80 else text[:79] + "…"


class _NotJson(Exception):
    pass


def parse(source: str) -> Condition:
    """Parse one condition; raise ConditionError naming what is wrong."""
    if not isinstance(source, str):
        raise ConditionError("a condition is a string such as \"[STATUS] == 200\"")
    text = source.strip()
    left = _LEFT.match(text)
    if not left:
        if re.match(r"^\s*(len|has)\(", text) or text.startswith("["):
            bad = re.match(r"^(?:(?:len|has)\(\s*)?\[([^\]]*)\]", text)
            if bad and bad.group(1) not in PLACEHOLDERS:
                raise ConditionError(f"unknown placeholder [{bad.group(1)}] (expected one of "
                                     + ", ".join(f"[{p}]" for p in PLACEHOLDERS) + ")")
        raise ConditionError(f"{text!r}: expected a placeholder such as [STATUS] or [BODY].status "
                             "on the left")
    name, func = left.group("name"), left.group("func")
    if name not in PLACEHOLDERS:
        raise ConditionError(f"unknown placeholder [{name}] (expected one of "
                             + ", ".join(f"[{p}]" for p in PLACEHOLDERS) + ")")
    path = tuple(m.group(1) if m.group(1) is not None else int(m.group(2))
                 for m in _PATH_PART.finditer(left.group("path")))
    if path and name != "BODY":
        raise ConditionError(f"[{name}] has no fields; only [BODY] takes a path like [BODY].data[0].id")
    op_match = _OPERATOR.match(text, left.end())
    if not op_match:
        rest = text[left.end():].strip()
        raise ConditionError(f"expected an operator (== != < <= > >=) after {text[:left.end()]}"
                             + (f", got {rest!r}" if rest else ""))
    operator = op_match.group(1)
    right = text[op_match.end():].strip()
    if not right:
        raise ConditionError(f"nothing to compare with after {operator}")
    matcher, values = _right_side(right, name, func, operator)
    return Condition(text, name, path, func, operator, matcher, values)


def parse_all(sources: list[str]) -> tuple[Condition, ...]:
    return tuple(parse(s) for s in sources)


def _right_side(right: str, name: str, func: str | None, op: str) -> tuple[str, tuple[Any, ...]]:
    call = re.fullmatch(r"(pat|any)\((.*)\)", right, re.DOTALL)
    if call:
        if op not in ("==", "!="):
            raise ConditionError(f"{call.group(1)}(...) works with == and != only, not {op}")
        if call.group(1) == "pat":
            return "pat", (_unquote(call.group(2).strip()),)
        items = [_unquote(i.strip()) for i in _split_args(call.group(2))]
        if not items or any(i == "" for i in items):
            raise ConditionError("any(...) needs one or more values separated by commas")
        return "any", tuple(_literal(i, name, func) for i in items)
    value = _literal(_unquote(right), name, func) if not right.startswith('"') else _unquote(right)
    if op in _ORDERED:
        if name == "CERTIFICATE_EXPIRATION" and func is None:
            seconds = parse_duration(right)
            if seconds is None:
                raise ConditionError(f"{right!r} is not a duration (e.g. 168h, 7d, 30m)")
            return "literal", (seconds,)
        number = _number(value)
        if number is None:
            raise ConditionError(f"{op} needs a number on the right, got {right!r}")
        return "literal", (number,)
    if name == "CERTIFICATE_EXPIRATION" and func is None:
        seconds = parse_duration(right)
        if seconds is None:
            raise ConditionError(f"{right!r} is not a duration (e.g. 168h, 7d, 30m)")
        return "literal", (seconds,)
    return "literal", (value,)


def _literal(text: str, name: str, func: str | None) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.match(text):
        return float(text) if any(c in text for c in ".eE") else int(text)
    return text


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _split_args(text: str) -> list[str]:
    out, current, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append(current)
            current = ""
        else:
            current += ch
    out.append(current)
    return out


def walk_path(value: Any, path: tuple[str | int, ...]) -> Any:
    """The value at a [BODY] path (`("data", 0, "id")`) in parsed JSON, or MISSING."""
    for part in path:
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return MISSING
            value = value[part]
        else:
            if not isinstance(value, dict) or part not in value:
                return MISSING
            value = value[part]
    return value


def _path_text(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value is MISSING:
        return "null" if value is None else ""
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value is MISSING:
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return None


def _equal(seen: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(seen, bool):
        return _text(seen) == _text(expected)
    a, b = _number(seen), _number(expected)
    if a is not None and b is not None and not isinstance(seen, str):
        return math.isclose(a, b) if isinstance(a, float) or isinstance(b, float) else a == b
    return _text(seen) == _text(expected)


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.DOTALL)


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (`168h`, `1h30m`, `500ms`, also `7d`); None if not one."""
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if not body:
        return None
    if _NUMBER.match(body):
        return sign * float(body) if float(body) == 0 else None
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(body):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _SECONDS[m.group(2)]
        pos = m.end()
    return sign * total if pos == len(body) else None


def format_duration(seconds: float) -> str:
    """`3d4h`, `12h3m`, `45s`: enough precision for a certificate's remaining life."""
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{sign}{days}d{hours}h" if hours else f"{sign}{days}d"
    if hours:
        return f"{sign}{hours}h{minutes}m" if minutes else f"{sign}{hours}h"
    if minutes:
        return f"{sign}{minutes}m{s}s" if s else f"{sign}{minutes}m"
    return f"{sign}{s}s"
