"""Render a drift report for people: grouped text, and the grouping itself.

The text is read at 3 a.m.: the verdict first, then one block per table, the table
with the worst finding first, each finding on one line with the SQL that fixes it
underneath. Colour only when writing to a terminal. `by_table` is that grouping, for
every caller that lists findings (the dashboard's table too), so they list them alike.
The JSON form is `DriftReport.to_json`.
"""
from __future__ import annotations

from collections.abc import Iterable

from .findings import CRITICAL, INFO, SEVERITY_RANK, WARNING, DriftReport, Finding

_COLOURS = {CRITICAL: "\033[1;31m", WARNING: "\033[33m", INFO: "\033[36m"}
_RESET = "\033[0m"
_BOLD = "\033[1m"
_DIM = "\033[2m"


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
    for (schema, table), items in by_table(report.findings):
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


def verdict_line(report: DriftReport, target: str) -> str:
    """The first line of the text report: IN SYNC or DRIFT, where, and the counts."""
    return render_text(report, target=target, show_fix=False).splitlines()[0]


def by_table(findings: Iterable[Finding]) -> list[tuple[tuple[str, str | None], list[Finding]]]:
    """Findings grouped per (schema, table), the group holding the worst finding first, each
    group in its findings' sort order; schema-level findings (enums, schemas) have table None."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.schema, f.table or ""), []).append(f)
    order = sorted(groups, key=lambda k: (min(SEVERITY_RANK[f.severity] for f in groups[k]), k))
    return [((k[0], k[1] or None), sorted(groups[k], key=lambda f: f.sort_key)) for k in order]


def in_order(findings: Iterable[Finding]) -> list[Finding]:
    """The findings as `render_text` lists them: by table, the worst table first."""
    return [f for _, items in by_table(findings) for f in items]


__all__ = ["by_table", "in_order", "render_text", "verdict_line"]
