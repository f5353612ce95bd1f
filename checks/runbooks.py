"""Emergency runbooks: a folder of reviewed `.sql` files, each with a header saying what it is.

    runbooks/fix-avatar-projects-table.sql

    -- title: Create the missing avatar_projects table
    -- when: creating a project returns 400 and `driftwatch check` reports avatar_projects missing
    -- author: jane@example.com
    -- reviewed-by: sam@example.com
    -- Free comment lines are the description.
    CREATE TABLE IF NOT EXISTS "avatar_projects" (…);

The header is the comment lines before the first statement. A line ``-- key: value`` whose
key is one word (letters, digits, ``-``, ``_``) is a field; every other comment line is part
of the description (``-- description: …`` adds to it too). A file with only free comments
(as written in the heat of an incident) is accepted: its title comes from the file name
(``fix-avatar-projects-table`` → "Fix avatar projects table") and `Runbook.warnings` says
which of title, when and author are missing.

    find_runbooks_dir(explicit, schema) -> Path
    list_runbooks(directory) -> list[Runbook]
    load_runbook(directory, name) -> Runbook        (name: the file stem)

A runbook runs through `checks.guard`, which owns the transaction: a file wrapped in
``BEGIN; … COMMIT;`` has that wrapper taken off (with a warning); any other transaction
control makes `Runbook.statements` raise UsageError.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .sqltext import is_transaction_control, split_statements

__all__ = ["REQUIRED_FIELDS", "Runbook", "find_runbooks_dir", "list_runbooks", "load_runbook", "parse_runbook"]

#: Fields every runbook should have; a missing one is a warning, never an error.
REQUIRED_FIELDS = ("title", "when", "author")

_FIELD = re.compile(r"^--\s*(?P<key>[A-Za-z][A-Za-z0-9_-]*)\s*:\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class Runbook:
    name: str  # the file stem
    path: Path
    title: str
    when: str | None
    author: str | None
    description: str | None
    fields: dict[str, str] = field(default_factory=dict)  # every `-- key: value` of the header
    sql: str = ""
    warnings: tuple[str, ...] = ()

    def statements(self) -> list[str]:
        """The statements to run, each with its `;` (UsageError on transaction control or bad quoting)."""
        statements = [s.strip() for s in split_statements(self.sql)]
        if len(statements) >= 2 and _is_begin(statements[0]) and _is_commit(statements[-1]):
            statements = statements[1:-1]
        for i, s in enumerate(statements, 1):
            if is_transaction_control(s):
                raise UsageError(f"runbook {self.name}: statement {i} ({s.splitlines()[0][:60]}) controls the "
                                 f"transaction; Driftwatch runs a runbook in its own transaction — remove it")
        if not statements:
            raise UsageError(f"runbook {self.name} has no SQL statement")
        return [s + ";" for s in statements]


def _is_begin(sql: str) -> bool:
    words = sql.upper().split()
    return bool(words) and (words[0] == "BEGIN" or words[:2] == ["START", "TRANSACTION"])


def _is_commit(sql: str) -> bool:
    words = sql.upper().split()
    return bool(words) and words[0] in ("COMMIT", "END")


def title_from_name(name: str) -> str:
    """`fix-avatar-projects-table` → `Fix avatar projects table`."""
    words = re.sub(r"[-_.]+", " ", name).strip()
    return words[:1].upper() + words[1:] if words else name


def parse_runbook(path: Path) -> Runbook:
    """Read one runbook file (UsageError when it cannot be read or is not UTF-8)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"runbook {path} is not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"cannot read runbook {path}: {exc.strerror or exc}") from None
    fields: dict[str, str] = {}
    description: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            if description and description[-1]:
                description.append("")
            continue
        if not stripped.startswith("--"):
            break
        m = _FIELD.match(stripped)
        if m and m["key"].lower() != "description":
            fields.setdefault(m["key"].lower(), m["value"])
            continue
        comment = m["value"] if m else stripped[2:].strip()
        description.append(comment)
    desc = " ".join(" ".join(description).split()) or None
    warnings = []
    if fields.get("title"):
        title = fields["title"]
    else:
        title = title_from_name(path.stem)
        warnings.append("no `-- title:` line: the title comes from the file name")
    if not fields.get("when"):
        warnings.append("no `-- when:` line: say in which situation to run it")
    if not fields.get("author"):
        warnings.append("no `-- author:` line: say who wrote it (and `-- reviewed-by:` who checked it)")
    if not desc:
        warnings.append("no description: add comment lines saying what it changes")
    has_begin = False
    try:
        statements = split_statements(text)
        has_begin = any(is_transaction_control(s) for s in statements)
    except UsageError as exc:
        warnings.append(f"cannot be split into statements: {exc}")
    if has_begin:
        warnings.append("it has BEGIN/COMMIT: Driftwatch runs it in its own transaction (a whole-file "
                        "BEGIN … COMMIT wrapper is taken off; any other is refused)")
    return Runbook(path.stem, path, title, fields.get("when"), fields.get("author"), desc, fields, text,
                   tuple(warnings))


def find_runbooks_dir(explicit: str | None, schema: str | None = None) -> Path:
    """`--runbooks DIR` if given; else `runbooks/` here; else `runbooks/` beside the schema's
    `prisma/` folder (`prisma/../runbooks`). UsageError naming where it looked."""
    if explicit:
        path = Path(explicit)
        if not path.is_dir():
            raise UsageError(f"runbooks folder {path} does not exist")
        return path
    candidates = [Path("runbooks")]
    if schema:
        s = Path(schema)
        base = s if s.is_dir() else s.parent  # prisma/ (or prisma/schema/ for a multi-file schema)
        candidates += [base.parent / "runbooks", base.parent.parent / "runbooks"]
    for c in candidates:
        if c.is_dir():
            return c
    looked = ", ".join(dict.fromkeys(str(c) for c in candidates))
    raise UsageError(f"no runbooks folder (looked in {looked}): pass --runbooks DIR")


def list_runbooks(directory: Path) -> list[Runbook]:
    """Every `*.sql` file of the folder (not recursive), sorted by name."""
    return [parse_runbook(p) for p in sorted(directory.glob("*.sql")) if p.is_file()]


def load_runbook(directory: Path, name: str) -> Runbook:
    """The runbook whose file stem is `name` (a `.sql` suffix is accepted); UsageError listing the
    ones that exist otherwise. Names are file stems only: no path may leave the folder."""
    stem = name[:-4] if name.endswith(".sql") else name
    if not stem or "/" in stem or "\\" in stem or stem in (".", ".."):
        raise UsageError(f"runbook name {name!r} is a file name without a folder (see `driftwatch runbook list`)")
    path = directory / f"{stem}.sql"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(directory.glob("*.sql"))) or "none"
        raise UsageError(f"no runbook {stem} in {directory} (there: {known})")
    return parse_runbook(path)
