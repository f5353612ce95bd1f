"""Render a report as md, html or json, through one redaction step shared by all three."""
from __future__ import annotations

import json
from typing import Any

from .html import render_html
from .markdown import render_markdown
from .model import Report
from .redact import Redactor

FORMATS = ("md", "html", "json")
MEDIA_TYPES = {"md": "text/markdown", "html": "text/html", "json": "application/json"}


def redacted_json(report: Report, redactor: Redactor | None = None) -> dict[str, Any]:
    return (redactor or Redactor()).tree(report.to_json())


def render(report: Report, fmt: str, redactor: Redactor | None = None) -> str:
    """The report in `fmt` with every secret removed: the tree is redacted before rendering, and
    the rendered text is scanned again for the secret values in any spelling."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    redactor = redactor or Redactor()
    data = redactor.tree(report.to_json())
    if fmt == "json":
        return redactor.exact(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    if fmt == "md":
        return redactor.text(render_markdown(data))
    charts = redactor.tree(report.charts)
    # Exact values only over HTML: the inlined plotly.js must not be touched by the patterns.
    return redactor.exact(render_html(data, charts))
