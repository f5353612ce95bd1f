"""Every invalid schema in tests/fixtures/invalid/ is one clean line from the CLI, located.

The first line of each fixture says `// error: <Prisma's message> @ line:column`; the CLI
must print `driftwatch: error: <file>:<line>:<column>: …`, exit 1, no traceback. The words
are ours (tests/test_compile.py checks them); the place is Prisma's.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from checks.cli import run

INVALID = Path(__file__).parent / "fixtures" / "invalid"
# Files whose expectation cannot sit in a first-line comment.
SPECIAL = {"empty.prisma": ("no datasource and no model", None, None), "garbage.prisma": ("not a text", 2, 1)}


def expectation(path: Path) -> tuple[str, int | None, int | None]:
    if path.name in SPECIAL:
        return SPECIAL[path.name]
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = re.match(r"// error: (.*) @ (\d+):(\d+)\s*$", first)
    assert m, f"{path.name}: first line must be '// error: <text> @ line:col'"
    return m.group(1), int(m.group(2)), int(m.group(3))


@pytest.mark.parametrize("path", sorted(INVALID.glob("*.prisma")), ids=lambda p: p.stem)
@pytest.mark.parametrize("command", ["sql", "check"])
def test_an_invalid_schema_is_one_located_line(path: Path, command: str, monkeypatch):
    # check parses the schema before it connects: no database is needed to reject it
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    text, line, column = expectation(path)
    out, err = io.StringIO(), io.StringIO()
    code = run([command, "--schema", str(path)], out, err)
    message = err.getvalue()
    assert code == 1 and out.getvalue() == ""
    assert message.count("\n") == 1 and "Traceback" not in message
    where = f"{path}:{line}:{column}: " if line else f"{path}: "
    assert message.startswith(f"driftwatch: error: {where}"), message
    if path.name in SPECIAL:
        assert text in message
    else:
        assert len(message) > len(f"driftwatch: error: {where}") + 10  # says what is wrong
