"""The dashboard's report page: preview and three downloads, made by the CLI's own code."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from checks.cli import run
from checks.history import HistoryStore
from tests.report_scenario import record_incident

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "app_pages" / "report.py")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("page") / "history.sqlite3"
    with HistoryStore.open(str(path)) as store:
        record_incident(store)
    return str(path)


def page(monkeypatch: pytest.MonkeyPatch, store: str) -> AppTest:
    monkeypatch.setenv("DRIFTWATCH_HISTORY_URL", store)
    monkeypatch.delenv("DRIFTWATCH_CONFIG", raising=False)
    monkeypatch.chdir(Path(store).parent)  # no ./driftwatch.toml here
    return AppTest.from_file(PAGE, default_timeout=60)


def test_the_page_previews_the_incident_and_offers_the_three_formats(monkeypatch, store_path):  # type: ignore[no-untyped-def]
    at = page(monkeypatch, store_path).run()
    assert not at.exception
    assert at.subheader[0].value.startswith("production: table avatar_projects missing")
    preview = "\n".join(m.value for m in at.markdown)
    assert "## Root cause" in preview and "**partial**" in preview
    buttons = at.get("download_button")
    assert len(buttons) == 3


def test_the_page_and_the_cli_write_the_same_json(monkeypatch, store_path):  # type: ignore[no-untyped-def]
    import checks.reports as reports

    built = reports.downloads("production", incident=1, history_url=store_path)
    out = io.StringIO()
    assert run(["report", "--history-url", store_path, "--env", "production", "--incident", "1", "--format", "json"],
               out, io.StringIO()) == 0
    a, b = json.loads(built.files["json"]), json.loads(out.getvalue())
    a.pop("generated_at"), b.pop("generated_at")
    assert a == b


def test_a_time_window_with_a_bad_time_shows_one_line_not_a_traceback(monkeypatch, store_path):  # type: ignore[no-untyped-def]
    at = page(monkeypatch, store_path).run()
    at.radio[0].set_value("a time window").run()
    at.text_input[0].set_value("yesterday").run()
    assert not at.exception
    assert "not a time" in at.error[0].value


def test_an_empty_store_says_there_is_no_history_yet(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    at = page(monkeypatch, str(tmp_path / "empty.sqlite3")).run()
    assert not at.exception
    assert "No monitoring history yet" in at.info[0].value
