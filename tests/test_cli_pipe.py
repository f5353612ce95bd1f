"""A reader that stops early (`driftwatch audit --format json | head`) is not an error."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from checks.cli import EXIT_PIPE

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "examples" / "avatar-studio" / "prisma" / "schema.prisma"


def _run_with_reader_gone(*argv: str) -> subprocess.CompletedProcess[bytes]:
    """Start the CLI writing into a pipe whose reading end is already closed, as `| head` leaves it."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "checks", *argv], cwd=ROOT, stdout=write_end,
                              stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)


def test_output_flushed_at_exit_into_a_closed_pipe_prints_nothing_on_stderr():
    # The SQL is smaller than the pipe buffer: it is only written by the flush at exit.
    done = _run_with_reader_gone("sql", "--schema", str(SCHEMA))
    assert done.stderr.decode() == ""
    assert done.returncode == EXIT_PIPE


def test_audit_json_into_a_closed_pipe_is_not_an_internal_error(tmp_path):
    done = _run_with_reader_gone("audit", "--format", "json", "--history-url", str(tmp_path / "h.sqlite3"))
    assert "internal error" not in done.stderr.decode()
    assert "BrokenPipeError" not in done.stderr.decode()
    assert done.returncode == EXIT_PIPE
