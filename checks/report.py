"""Render a drift report for people (grouped text) and for machines (JSON).

The text is read at 3 a.m.: the verdict first, then one block per table, the table
with the worst finding first, each finding on one line with the SQL that fixes it
underneath. Colour only when writing to a terminal.
"""
from __future__ import annotations

import json

from .findings import CRITICAL, INFO, SEVERITY_RANK, WARNING, DriftReport, Finding

_COLOURS = {CRITICAL: "\033[1;31m", WARNING: "\033[33m", INFO: "\033[36m"}
_RESET = "\033[0m"
_BOLD = "\033[1m"
_DIM = "\033[2m"


def render_json(report: DriftReport, *, strict: bool = False) -> str:
    return json.dumps(report.to_json(strict), indent=2, ensure_ascii=False) + "\n"


def render_text(report: DriftReport, *, target: str, strict: bool = False, colour: bool = False,
                show_fix: bool = True) -> str:
    paint = (lambda code, s: f"{code}{s}{_RESET}") if colour else (lambda code, s: s)
    lines: list[str] = []
    s = report.summary
    counts = f"{s[CRITICAL]} critical, {s[WARNING]} warning, {s[INFO]} info"
    if report.in_sync(strict):
        verdict = "IN SYNC" if not report.findings else "IN SYNC (extras only)"
        lines.append(paint(_BOLD + "\033[32m", verdict) + f"  {target}  ({counts})")
    else:
        lines.append(paint(_COLOURS[CRITICAL], "DRIFT") + f"  {target}  ({counts})")
    for (schema, table), group in _by_table(report.findings):
        items = list(group)
        label = f"{schema}.{table}" if table else f"{schema} (types and schemas)"
        model = next((f.model for f in items if f.model and f.table), None)
        lines.append("")
        lines.append(paint(_BOLD, label) + (f"  (model {model})" if model else ""))
        for f in items:
            tag = paint(_COLOURS[f.severity], f"{f.severity.upper():8}")
            lines.append(f"  {tag} {f.kind:20} {f.message}")
            if show_fix and f.fix:
                for sql_line in f.fix.strip().splitlines():
                    lines.append(paint(_DIM, f"             {sql_line}"))
    return "\n".join(lines) + "\n"


def _by_table(findings: tuple[Finding, ...]):
    """Groups per (schema, table), the group holding the worst finding first."""
    def key(f: Finding) -> tuple[str, str]:
        return (f.schema, f.table or "")

    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault(key(f), []).append(f)
    order = sorted(groups, key=lambda k: (min(SEVERITY_RANK[f.severity] for f in groups[k]), k))
    for k in order:
        items = sorted(groups[k], key=lambda f: f.sort_key)
        yield (k[0], k[1] or None), iter(items)


__all__ = ["render_json", "render_text"]
