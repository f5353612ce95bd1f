"""SQL text: split scripts into statements and classify them, without a database.

Fix plans, runbooks, migrations and the write guard all need to know where one statement
ends and what kind it is; this module is that one lexer, kept apart from `checks.guard`
(which owns sessions, locks and transactions) so that reading SQL text never imports
the write path.

``split_statements(sql) -> list[str]`` / ``statement_spans(sql) -> list[(start, end)]``
    Split a script like psql does: quotes ('', E'' with backslashes, U&'', B'', X''),
    quoted identifiers, dollar quotes ($$, $tag$), -- and nested /* */ comments,
    parentheses, and CREATE FUNCTION/PROCEDURE … BEGIN ATOMIC … END bodies. Each
    statement is returned without leading comments and without its ``;``; comment-only
    pieces are dropped. Assumes standard_conforming_strings = on (PostgreSQL's default
    since 9.1). An unterminated quote or comment raises UsageError with its line.

``needs_own_transaction(sql, *, server_version_num=None) -> bool``
    True for statements PostgreSQL refuses inside a transaction block. ``ALTER TYPE …
    ADD VALUE`` counts only on servers before 12 (pass ``conn.info.server_version``).

``is_transaction_control(sql) -> bool``, ``first_line(sql) -> str``, ``head_words(sql)``
    Helpers used for refusing, classifying and reporting.
"""
from __future__ import annotations

import re
from typing import Iterator

from .errors import UsageError

__all__ = [
    "created_objects",
    "first_line",
    "head_words",
    "is_transaction_control",
    "needs_own_transaction",
    "split_statements",
    "statement_spans",
]


_SPACE = re.compile(r"[ \t\n\r\f\v]+")
_WORD = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z_0-9$\x80-\U0010ffff]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_.]*")
_PARAM = re.compile(r"\$[0-9]+")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z_0-9\x80-\U0010ffff]*)?\$")
_STD_STRING = re.compile(r"'(?:[^']|'')*'", re.S)
_ESC_STRING = re.compile(r"'(?:[^'\\]|\\.|'')*'", re.S)
_QIDENT = re.compile(r'"(?:[^"]|"")*"', re.S)
_COMMENT_MARK = re.compile(r"/\*|\*/")


def _line_of(sql: str, pos: int) -> int:
    return sql.count("\n", 0, pos) + 1


def _tokens(sql: str) -> Iterator[tuple[str, int, int]]:
    """Yield (kind, start, end) for every significant token; comments and spaces are skipped.

    Kinds: word, string, qident, dollar, param, number, semicolon, open, close, op.
    """
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        m = _SPACE.match(sql, i)
        if m:
            i = m.end()
            continue
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if sql.startswith("/*", i):
            depth, j = 1, i + 2
            while depth:
                m = _COMMENT_MARK.search(sql, j)
                if not m:
                    raise UsageError(f"unterminated /* comment starting at line {_line_of(sql, i)}")
                depth += 1 if m.group() == "/*" else -1
                j = m.end()
            i = j
            continue
        if c == "'":
            j = _match_or_fail(_STD_STRING, sql, i, "quoted string")
            yield "string", i, j
            i = j
            continue
        if c == '"':
            j = _match_or_fail(_QIDENT, sql, i, "quoted identifier")
            yield "qident", i, j
            i = j
            continue
        if c == "$":
            m = _PARAM.match(sql, i)
            if m:
                yield "param", i, m.end()
                i = m.end()
                continue
            m = _DOLLAR_TAG.match(sql, i)
            if m:
                close = sql.find(m.group(), m.end())
                if close < 0:
                    raise UsageError(
                        f"unterminated dollar-quoted string {m.group()} starting at line {_line_of(sql, i)}"
                    )
                j = close + len(m.group())
                yield "dollar", i, j
                i = j
                continue
            yield "op", i, i + 1
            i += 1
            continue
        m = _WORD.match(sql, i)
        if m:
            word, j = m.group(), m.end()
            low = word.lower()
            if low == "e" and sql.startswith("'", j):  # E'…': backslash escapes
                end = _match_or_fail(_ESC_STRING, sql, j, "E'' string")
                yield "string", i, end
                i = end
            elif low in ("b", "x", "n") and sql.startswith("'", j):
                end = _match_or_fail(_STD_STRING, sql, j, "quoted string")
                yield "string", i, end
                i = end
            elif low == "u" and sql.startswith("&'", j):
                end = _match_or_fail(_STD_STRING, sql, j + 1, "U&'' string")
                yield "string", i, end
                i = end
            elif low == "u" and sql.startswith('&"', j):
                end = _match_or_fail(_QIDENT, sql, j + 1, "U&\"\" identifier")
                yield "qident", i, end
                i = end
            else:
                yield "word", i, j
                i = j
            continue
        m = _NUMBER.match(sql, i)
        if m:
            yield "number", i, m.end()
            i = m.end()
            continue
        kind = {";": "semicolon", "(": "open", ")": "close"}.get(c, "op")
        yield kind, i, i + 1
        i += 1


def _match_or_fail(pattern: re.Pattern[str], sql: str, i: int, what: str) -> int:
    m = pattern.match(sql, i)
    if not m:
        raise UsageError(f"unterminated {what} starting at line {_line_of(sql, i)}")
    return m.end()


def _is_routine(words: list[str]) -> bool:
    """CREATE [OR REPLACE] FUNCTION|PROCEDURE: the statements psql scans for BEGIN ATOMIC."""
    if not words or words[0] != "CREATE":
        return False
    if len(words) > 1 and words[1] in ("FUNCTION", "PROCEDURE"):
        return True
    return len(words) > 3 and words[1] == "OR" and words[2] == "REPLACE" and words[3] in ("FUNCTION", "PROCEDURE")


def statement_spans(sql: str) -> list[tuple[int, int]]:
    """(start, end) of each statement in `sql`, as `split_statements` returns them."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    last_end = 0
    depth = begin_depth = 0
    words: list[str] = []
    for kind, s, e in _tokens(sql):
        if kind == "semicolon" and depth == 0 and begin_depth == 0:
            if start is not None:
                spans.append((start, last_end))
            start, words = None, []
            continue
        if start is None:
            start = s
        last_end = e
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth = max(0, depth - 1)
        elif kind == "word":
            word = sql[s:e].upper()
            if len(words) < 4:
                words.append(word)
            # psql's heuristic (psqlscan.l): inside CREATE FUNCTION/PROCEDURE, BEGIN … END
            # (and CASE … END within it) holds semicolons that do not end the statement.
            if depth == 0 and _is_routine(words):
                if word == "BEGIN":
                    begin_depth += 1
                elif word == "CASE" and begin_depth >= 1:
                    begin_depth += 1
                elif word == "END" and begin_depth > 0:
                    begin_depth -= 1
    if start is not None:
        spans.append((start, last_end))
    return spans


def split_statements(sql: str) -> list[str]:
    """Split a SQL script into statements (see the module docstring for the rules)."""
    return [sql[s:e] for s, e in statement_spans(sql)]


def head_words(sql: str, limit: int = 24) -> list[str]:
    """Upper-cased bare words at parenthesis depth 0 of the first statement."""
    out: list[str] = []
    depth = 0
    for kind, s, e in _tokens(sql):
        if kind == "semicolon" and depth == 0:
            break
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth = max(0, depth - 1)
        elif kind == "word" and depth == 0:
            out.append(sql[s:e].upper())
            if len(out) >= limit:
                break
    return out


def is_transaction_control(sql: str) -> bool:
    """True for BEGIN, START TRANSACTION, COMMIT, END, ABORT, ROLLBACK (not ROLLBACK TO), PREPARE TRANSACTION."""
    w = head_words(sql, 3)
    if not w:
        return False
    if w[0] in ("BEGIN", "START", "COMMIT", "END", "ABORT"):
        return True
    if w[0] == "ROLLBACK":
        return not (len(w) > 1 and w[1] == "TO")
    return w[0] == "PREPARE" and len(w) > 1 and w[1] == "TRANSACTION"


def needs_own_transaction(sql: str, *, server_version_num: int | None = None) -> bool:
    """True when PostgreSQL refuses to run this statement inside a transaction block.

    CREATE/DROP INDEX CONCURRENTLY, REINDEX … CONCURRENTLY, REINDEX SCHEMA/DATABASE/SYSTEM,
    ALTER TABLE … DETACH PARTITION … CONCURRENTLY, VACUUM, CLUSTER without a table,
    CREATE/DROP DATABASE, CREATE/DROP TABLESPACE, ALTER DATABASE … SET TABLESPACE,
    ALTER SYSTEM, CREATE/DROP SUBSCRIPTION, and ALTER TYPE … ADD VALUE on servers before
    12 (``server_version_num`` < 120000; None means a current server).
    """
    w = head_words(sql)
    if not w:
        return False
    head, rest = w[0], w[1:]
    if head == "VACUUM":
        return True
    if head == "CLUSTER":
        return all(x == "VERBOSE" for x in rest)
    if head == "CREATE":
        r = rest[1:] if rest[:1] == ["UNIQUE"] else rest
        if r[:2] == ["INDEX", "CONCURRENTLY"]:
            return True
        return bool(rest) and rest[0] in ("DATABASE", "TABLESPACE", "SUBSCRIPTION")
    if head == "DROP":
        if rest[:2] == ["INDEX", "CONCURRENTLY"]:
            return True
        return bool(rest) and rest[0] in ("DATABASE", "TABLESPACE", "SUBSCRIPTION")
    if head == "REINDEX":
        return "CONCURRENTLY" in rest[:3] or (bool(rest) and rest[0] in ("SCHEMA", "DATABASE", "SYSTEM"))
    if head == "ALTER" and rest:
        if rest[0] == "SYSTEM":
            return True
        if rest[0] == "DATABASE":
            return any(a == "SET" and b == "TABLESPACE" for a, b in zip(rest, rest[1:]))
        if rest[0] == "TABLE":
            return "DETACH" in rest and "CONCURRENTLY" in rest
        if rest[0] == "TYPE" and server_version_num is not None and server_version_num < 120000:
            return any(a == "ADD" and b == "VALUE" for a, b in zip(rest, rest[1:]))
    return False


def first_line(sql: str, width: int = 80) -> str:
    """The first line of a statement's SQL (after leading comments), shortened to `width`."""
    try:
        spans = statement_spans(sql)
    except UsageError:
        spans = []
    text = sql[spans[0][0]:] if spans else sql.strip()
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(line) > width:
        line = line[: width - 1] + "…"
    return line


def _name(sql: str, kind: str, s: int, e: int) -> str:
    """An identifier token as PostgreSQL reads it: unquoted words fold to lower case."""
    if kind == "qident":
        return sql[s + 1:e - 1].replace('""', '"')
    return sql[s:e].lower()


def created_objects(sql: str, *, if_not_exists: bool = False) -> list[tuple[str, str]]:
    """What a script creates that a second run would trip on, as (kind, name) pairs.

    kind is "table" (created, or renamed into), "index", "type" or "column" (name
    "table.column"); names are
    unqualified, as PostgreSQL folds them. ``IF NOT EXISTS`` statements are left out (they
    do not fail when the object exists) unless `if_not_exists` (what a script may create). Used to say, before anyone runs `migrate deploy`,
    that a pending migration would fail on objects a hand fix or runbook already made.
    """
    found: list[tuple[str, str]] = []
    for start, end in statement_spans(sql):
        toks = [(k, s, e) for k, s, e in _tokens(sql[start:end]) if k != "semicolon"]
        text = sql[start:end]
        words = [text[s:e].upper() if k == "word" else None for k, s, e in toks]

        def ident_after(i: int) -> tuple[str | None, int]:
            """The (possibly schema-qualified) name starting at token i; its last part."""
            name = None
            while i < len(toks) and toks[i][0] in ("word", "qident"):
                name = _name(text, toks[i][0], toks[i][1], toks[i][2])
                if i + 1 < len(toks) and text[toks[i + 1][1]:toks[i + 1][2]] == ".":
                    i += 2
                    continue
                return name, i + 1
            return name, i

        def skip(i: int, *seq: str) -> int:
            while i < len(words) and words[i] in seq:
                i += 1
            return i

        if not words or words[0] not in ("CREATE", "ALTER"):
            continue
        if words[0] == "CREATE":
            i = skip(1, "OR", "REPLACE", "UNLOGGED", "TEMP", "TEMPORARY", "UNIQUE", "GLOBAL", "LOCAL")
            what = words[i] if i < len(words) else None
            if what not in ("TABLE", "INDEX", "TYPE"):
                continue
            i = skip(i + 1, "CONCURRENTLY")
            if words[i:i + 3] == ["IF", "NOT", "EXISTS"]:
                if not if_not_exists:
                    continue
                i += 3
            if what == "INDEX" and i < len(words) and words[i] == "ON":
                continue  # an unnamed index gets a fresh name
            name, _ = ident_after(i)
            if name:
                found.append((what.lower(), name))
            continue
        # ALTER TABLE [IF EXISTS] [ONLY] t ADD [COLUMN] c, ADD [COLUMN] d …
        if len(words) < 2 or words[1] != "TABLE":
            continue
        i = skip(2, "ONLY")
        if words[i:i + 2] == ["IF", "EXISTS"]:
            i = skip(i + 2, "ONLY")
        table, i = ident_after(i)
        if table and words[i:i + 2] == ["RENAME", "TO"]:
            renamed, _ = ident_after(i + 2)
            if renamed:
                found.append(("table", renamed))
            continue
        depth = 0
        while table and i < len(toks):
            kind = toks[i][0]
            depth += 1 if kind == "open" else -1 if kind == "close" else 0
            if depth == 0 and words[i] == "ADD":
                j = skip(i + 1, "COLUMN")
                if if_not_exists and words[j:j + 3] == ["IF", "NOT", "EXISTS"]:
                    j += 3
                if j < len(words) and words[j] in ("CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK",
                                                   "EXCLUDE", "IF"):
                    i = j
                    continue
                column, i = ident_after(j)
                if column:
                    found.append(("column", f"{table}.{column}"))
                continue
            i += 1
    return found
