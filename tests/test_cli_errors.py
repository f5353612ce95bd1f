"""Bad input never yields a traceback or a password: one line on stderr, exit 1."""
from __future__ import annotations

import io
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from checks.cli import run
from checks.localpg import find_pg_ctl, start_system
from tests.conftest import ROOT, SAMPLE_SCHEMA

SECRET = "s3cr3t-Pa55"


def call(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def assert_one_clean_line(code: int, err: str) -> None:
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith("driftwatch: error: ")
    assert "Traceback" not in err
    assert SECRET not in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def password_server(tmp_path_factory):
    if not find_pg_ctl():
        pytest.skip("needs the system PostgreSQL (pg_ctl) to run a server that checks passwords")
    server = start_system(tmp_path_factory.mktemp("pg-scram"), password=SECRET)
    yield server
    server.stop()


def test_a_refused_port_names_the_server_without_the_password():
    code, out, err = call("check", "--database-url", f"postgresql://bob:{SECRET}@127.0.0.1:{free_port()}/app",
                          "--schema", str(SAMPLE_SCHEMA))
    assert_one_clean_line(code, err)
    assert "connection refused" in err
    assert "postgresql://bob@127.0.0.1:" in err


def test_an_unknown_host_says_so():
    code, _, err = call("check", "--database-url", f"postgresql://bob:{SECRET}@no-such-host.invalid:5432/app",
                        "--schema", str(SAMPLE_SCHEMA))
    assert_one_clean_line(code, err)
    assert "unknown host" in err


def test_an_unroutable_host_times_out_instead_of_hanging():
    # 10.255.255.1 is unroutable here; the connect timeout bounds the wait.
    code, _, err = call("check", "--database-url",
                        f"postgresql://bob:{SECRET}@10.255.255.1:5432/app?connect_timeout=1",
                        "--schema", str(SAMPLE_SCHEMA))
    assert_one_clean_line(code, err)
    assert "cannot connect to postgresql://bob@10.255.255.1:5432/app" in err


def test_a_wrong_password_says_authentication_failed(password_server):
    url = password_server.url.replace(SECRET, SECRET + "x")
    code, _, err = call("check", "--database-url", url, "--schema", str(SAMPLE_SCHEMA))
    assert_one_clean_line(code, err)
    assert "authentication failed" in err


def test_a_missing_database_says_it_does_not_exist(pg_server):
    code, _, err = call("check", "--database-url", pg_server.url_for("no_such_db_here"),
                        "--schema", str(SAMPLE_SCHEMA))
    assert_one_clean_line(code, err)
    assert "does not exist" in err


@pytest.mark.parametrize("url", [
    "mysql://root:s3cr3t-Pa55@localhost/app",
    "not a url at all",
    f"postgresql://bob:{SECRET}@localhost:99999/app",
    f"postgresql://bob:{SECRET}@localhost:port/app",
])
def test_a_malformed_url_is_rejected_before_connecting(url):
    code, _, err = call("check", "--database-url", url, "--schema", str(SAMPLE_SCHEMA))
    assert_one_clean_line(code, err)
    assert "malformed database URL" in err


def test_no_database_url_at_all_is_a_usage_error(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    code, _, err = call("check", "--schema", str(SAMPLE_SCHEMA))
    assert_one_clean_line(code, err)
    assert "--database-url" in err


def test_a_missing_schema_file_is_named(empty_db, tmp_path):
    missing = tmp_path / "nope.prisma"
    code, _, err = call("check", "--database-url", empty_db, "--schema", str(missing))
    assert_one_clean_line(code, err)
    assert str(missing) in err


def test_an_unknown_option_is_a_usage_error():
    code, _, err = call("check", "--frobnicate")
    assert_one_clean_line(code, err)
    assert "--frobnicate" in err


def test_the_module_entry_point_works_from_the_repository_root():
    done = subprocess.run([sys.executable, "-m", "checks", "--version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.startswith("driftwatch ")


def test_check_does_not_import_the_command_groups_or_heavy_libraries():
    code = ("import sys; from checks.cli import run; import io; "
            "run(['check', '--schema', '/nonexistent.prisma', '--database-url', 'postgresql://x@127.0.0.1:1/x'],"
            " io.StringIO(), io.StringIO()); "
            "bad = [m for m in sys.modules if m.startswith(('checks.commands.', 'sqlalchemy', 'pandas', "
            "'pydantic', 'streamlit'))]; print(bad)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_help_still_lists_every_command_group():
    done = subprocess.run([sys.executable, "-m", "checks", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    out = done.stdout
    assert done.returncode == 0
    for group in ("check", "sql", "fix", "migrate", "runbook", "audit"):
        assert group in out


def test_a_reader_that_closes_the_pipe_early_gets_no_internal_error(tmp_path):
    """`driftwatch audit --format json | head -1`: the rest of the output has nowhere to go."""
    from checks.history import ActionRecord, HistoryStore

    store_path = tmp_path / "h.sqlite3"
    with HistoryStore.open(str(store_path)) as store:
        for i in range(300):
            store.record_action(ActionRecord(kind="fix", statements="SELECT 1;\n" * 50, details={"n": i}))
    done = subprocess.run(f'"{sys.executable}" -m checks audit --format json --limit 300 '
                          f'--history-url "{store_path}" | head -c 10', shell=True, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout == '{\n  "store'  # 10 bytes
    assert "internal error" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
