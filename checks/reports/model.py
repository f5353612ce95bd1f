"""The report: a postmortem's first draft in the shape of Google SRE's template.

`Report.to_json()` is the JSON format and the one tree every renderer reads, so Markdown,
HTML and JSON can never tell different stories. Sections hold a `text` for readers and the
structured fields behind it for tools. Times are aware UTC datetimes here and ISO 8601 in JSON.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

STATUSES = ("resolved", "ongoing", "no incident")
SOURCES = ("deployment", "health", "smoke", "drift", "migrations", "action")


def iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    source: str
    text: str

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"timeline source {self.source!r} is not one of {', '.join(SOURCES)}")

    def to_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "source": self.source, "text": self.text}


@dataclass
class Report:
    title: str
    environment: str
    status: str
    since: datetime
    until: datetime | None  # None: open window, reported up to generated_at
    generated_at: datetime
    summary: str
    impact: dict[str, Any]
    detection: dict[str, Any]
    root_cause: dict[str, Any]
    resolution: dict[str, Any]
    timeline: list[TimelineEntry]
    action_items: list[dict[str, Any]]
    lessons: list[str]
    evidence: dict[str, Any]
    incident: dict[str, Any] | None = None
    charts: dict[str, Any] = field(default_factory=dict)  # series for the HTML charts; not in JSON

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"report status {self.status!r} is not one of {', '.join(STATUSES)}")

    def to_json(self) -> dict[str, Any]:
        """The JSON format: issue 8's top-level keys first, then the additions."""
        return {
            "title": self.title,
            "environment": self.environment,
            "status": self.status,
            "window": {"since": iso(self.since), "until": iso(self.until), "open": self.until is None},
            "summary": self.summary,
            "impact": self.impact,
            "detection": self.detection,
            "root_cause": self.root_cause,
            "resolution": self.resolution,
            "timeline": [entry.to_json() for entry in self.timeline],
            "action_items": self.action_items,
            "evidence": self.evidence,
            "lessons": self.lessons,
            "incident": self.incident,
            "generated_at": iso(self.generated_at),
        }
