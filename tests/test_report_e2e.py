"""End to end on real pieces: the poller watches the incident database, `migrate deploy` fixes
it, the poller sees it in sync, and the report tells that story from the history store."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from checks.cli import run
from tests.conftest import SAMPLE_MIGRATIONS, SAMPLE_SCHEMA

MIGRATION = "20251012082000_add_avatar_projects"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return run(list(argv), out, err), out.getvalue(), err.getvalue()


def test_poll_then_migrate_deploy_then_poll_is_reported_as_resolved_by_the_deploy(
        incident_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    store = tmp_path / "history.sqlite3"
    config = tmp_path / "driftwatch.toml"
    config.write_text(f"""
[store]
url = "{store}"

[environments.production]
database_url = "env:DATABASE_URL"
schema = "{SAMPLE_SCHEMA}"
migrations = "{SAMPLE_MIGRATIONS}"
failure_threshold = 1
""")
    monkeypatch.setenv("DATABASE_URL", incident_db)
    monkeypatch.setenv("DRIFTWATCH_ENVIRONMENT", "production")
    monkeypatch.setenv("DRIFTWATCH_ACTOR", "alice@oncall")
    monkeypatch.setenv("DRIFTWATCH_HISTORY_URL", str(store))

    code, out, err = cli("poll", "--config", str(config), "--once", "--format", "json")
    assert code == 2, err
    code, _, err = cli("migrate", "deploy", "--database-url", incident_db, "--migrations", str(SAMPLE_MIGRATIONS),
                       "--history-url", str(store))
    assert code == 0, err
    code, out, err = cli("poll", "--config", str(config), "--once", "--format", "json")
    assert code == 0, out + err

    for fmt in ("md", "html", "json"):
        code, out, err = cli("report", "--config", str(config), "--env", "production", "--since", "1h",
                             "--format", fmt)
        assert (code, err) == (0, ""), err
        if fmt == "json":
            data = json.loads(out)
        elif fmt == "md":
            md = out
    assert data["status"] == "resolved"
    assert "table avatar_projects" in " ".join(data["root_cause"]["statements"])
    assert f"migration {MIGRATION} was not applied" in data["root_cause"]["statements"]
    steps = data["resolution"]["steps"]
    assert [(s["kind"], s["who"], s["outcome"]) for s in steps] == [("deploy", "alice@oncall", "applied")]
    assert steps[0]["partial"] is False and steps[0]["drift_after"]["remaining"] == []
    assert "the database is in sync" in data["resolution"]["final_state"]
    sources = [e["source"] for e in data["timeline"]]
    assert sources.index("drift") < sources.index("action") < len(sources) - 1
    assert [m["name"] for m in data["evidence"]["migrations"]] == [MIGRATION]
    assert data["evidence"]["migrations"][0]["state_at_end"] == "applied"
    assert "## Resolution" in md and "driftwatch migrate deploy" in md
