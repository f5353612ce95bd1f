"""Incident reports: the postmortem's first draft, from what Driftwatch saw and did.

    from checks.reports import build_report, render, Redactor

    report = build_report(store, "production", since="2h")            # or incident=12
    text = render(report, "md", Redactor(secrets))                    # "md" | "html" | "json"

Modules: `window` (the time window), `facts` (what was collected), `collect` (the history
store → facts, the only module that knows its tables), `compose` (facts → the story, pure),
`model` (the report and its JSON), `redact`, and the renderers `markdown`, `html`, `render`.
The CLI (`driftwatch report`) and the dashboard's report page (through `downloads`,
`known_environments`, `incidents_of`) call these same functions.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .facts import IncidentInfo
from .model import Report
from .redact import Redactor, secrets_in
from .render import FORMATS, MEDIA_TYPES, render
from .window import Window, utcnow, window

if TYPE_CHECKING:
    from ..history.store import HistoryStore

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "Downloads",
    "Redactor",
    "Report",
    "Window",
    "build_report",
    "downloads",
    "filename",
    "incident_window",
    "incidents_of",
    "known_environments",
    "list_incidents",
    "render",
    "secrets_in",
    "window",
]

# An incident's report starts before it opened, so the deployment that triggered it (usually
# minutes earlier) is on the timeline, and ends after it closed, to show the checks stayed ok.
LEAD_IN = timedelta(minutes=30)
TAIL = timedelta(minutes=5)


def incident_window(incident: IncidentInfo, now: datetime | None = None) -> Window:
    now = now or utcnow()
    until = None if incident.closed_at is None else min(incident.closed_at + TAIL, now)
    return Window(incident.opened_at - LEAD_IN, until, now)


def list_incidents(store: HistoryStore, environment: str | None = None) -> list[IncidentInfo]:
    from .collect import list_incidents as _list

    return _list(store, environment)


def build_report(
    store: HistoryStore,
    environment: str,
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    incident: int | None = None,
    now: datetime | None = None,
    database: str | None = None,
) -> Report:
    """Collect and compose the report of `environment` for an incident or a window.

    `since`/`until` are datetimes or strings (ISO 8601 or relative like "2h"); `until` None
    leaves the window open (up to now). `database`, a redacted URL, also claims audit-log
    actions recorded without an environment for that database. Raises UsageError for an
    unknown environment or incident, or an empty window.
    """
    from ..errors import UsageError
    from .collect import collect, get_incident
    from .compose import compose
    from .window import parse_time

    now = now or utcnow()
    found = None
    if incident is not None:
        if since is not None or until is not None:
            raise UsageError("give either an incident or a window (--since/--until), not both")
        found = get_incident(store, incident)
        if found.environment != environment:
            raise UsageError(f"incident {incident} is of environment {found.environment!r}, not {environment!r}")
        win = incident_window(found, now)
    else:
        if since is None:
            raise UsageError("give an incident (--incident ID) or a window (--since T)")
        start = since if isinstance(since, datetime) else parse_time(since, now=now, option="--since")
        end = None if until is None else until if isinstance(until, datetime) else parse_time(until, now=now, option="--until")
        win = Window(start, end, now)
    facts = collect(store, environment, win, incident=found, database=database)
    return compose(facts)


def filename(report: Report, fmt: str) -> str:
    """A download name: environment, start of the window, status."""
    stamp = report.since.strftime("%Y%m%d-%H%M")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in report.environment)
    return f"driftwatch-report-{safe}-{stamp}.{fmt}"


@dataclass(frozen=True)
class Downloads:
    """A report and its three renderings, each named for download: what the dashboard page shows."""

    report: Report
    files: dict[str, str]  # format → text, redacted
    names: dict[str, str]  # format → file name


def downloads(
    environment: str,
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    incident: int | None = None,
    history_url: str | None = None,
    config: str | None = None,
    secrets: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Downloads:
    """Everything the dashboard's report page needs, by the CLI's own steps: read the config
    (store, secrets, database), build the report, render md/html/json through one redactor.
    `secrets` are st.secrets, whose values are redacted too. Raises DriftwatchError."""
    from ..history import HistoryStore
    from .settings import settings

    found = settings(config, environment, secrets=secrets)
    with HistoryStore.open(found.store_url or history_url) as store:
        report = build_report(store, environment, since=since, until=until, incident=incident, now=now,
                              database=found.database)
    redactor = Redactor(found.secrets)
    return Downloads(report, {fmt: render(report, fmt, redactor) for fmt in FORMATS},
                     {fmt: filename(report, fmt) for fmt in FORMATS})


def known_environments(history_url: str | None = None, config: str | None = None) -> list[str]:
    """Environments with anything recorded in the store, and those the config names."""
    from ..history import HistoryStore
    from .collect import environments
    from .settings import settings

    found = settings(config)
    with HistoryStore.open(found.store_url or history_url) as store:
        return sorted(set(environments(store)) | set(found.environments))


def incidents_of(environment: str | None, history_url: str | None = None, config: str | None = None) -> list[IncidentInfo]:
    from ..history import HistoryStore
    from .settings import settings

    found = settings(config)
    with HistoryStore.open(found.store_url or history_url) as store:
        return list_incidents(store, environment)
