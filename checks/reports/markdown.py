"""The Markdown format: reads well in a Git repository and pasted into a postmortem doc.

Renders the report's JSON tree (already redacted), never the facts, so it says exactly what
the JSON says. Tables only where rows are short; SQL in fenced blocks.
"""
from __future__ import annotations

from typing import Any

STATUS_LABEL = {"resolved": "Resolved", "ongoing": "Ongoing", "no incident": "No incident"}


def when(value: str | None) -> str:
    """ISO 8601 → `2025-10-12 08:36:12` (UTC is said once, in the header)."""
    if not value:
        return "—"
    return value.replace("T", " ").replace("Z", "").split(".")[0].split("+")[0]


def cell(text: Any) -> str:
    """Table cell text: one line, pipes escaped."""
    return " ".join(str("" if text is None else text).split()).replace("|", "\\|")


def fence(text: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def render_markdown(data: dict[str, Any]) -> str:
    out: list[str] = []
    w = data["window"]
    out.append(f"# {data['title']}")
    out.append("")
    until = when(w["until"]) if w["until"] else f"now ({when(data.get('generated_at'))}, window still open)"
    out.append(f"**Status:** {STATUS_LABEL.get(data['status'], data['status'])} · "
               f"**Environment:** {data['environment']} · **Window (UTC):** {when(w['since'])} → {until}")
    if data.get("incident"):
        inc = data["incident"]
        out.append("")
        out.append(f"Incident {inc['id']}: opened {when(inc['opened_at'])}, "
                   f"{'closed ' + when(inc['closed_at']) if inc['closed_at'] else 'still open'}.")
    out += ["", "## Summary", "", data["summary"], ""]
    if data["status"] == "no incident":
        out += _evidence_checks(data)
        out += _footer(data)
        return "\n".join(out).rstrip() + "\n"
    out += ["## Impact", ""] + [f"- {line}" for line in data["impact"]["lines"]] + [""]
    out += ["## Detection", "", data["detection"]["text"], ""]
    out += ["## Root cause", ""]
    if data["root_cause"]["statements"]:
        out += [f"- {s}" for s in data["root_cause"]["statements"]]
    else:
        out.append(data["root_cause"]["text"])
    out += ["", "## Resolution", ""]
    steps = data["resolution"]["steps"]
    if not steps:
        out.append("No Driftwatch action is recorded in this window (changes made outside Driftwatch are not in the audit log).")
    for n, step in enumerate(steps, 1):
        out.append(f"{n}. **{when(step['at'])}** — {step['who']} ran `{step['command']}`: **{step['outcome']}**"
                   + (f" ({step['error']})" if step.get("error") else ""))
        after = step.get("drift_after")
        if step["outcome"] in ("started", "interrupted"):
            out.append("   - no outcome recorded (the process ended mid-action): check what it changed")
        elif step["outcome"] != "applied":
            out.append("   - changed nothing")
        elif after is None:
            out.append("   - drift after it: unknown (no drift check after it)")
        elif after["remaining"]:
            out.append(f"   - **partial**: left {len(after['remaining'])} finding(s): {', '.join(after['remaining'])}")
        else:
            out.append("   - drift after it: in sync")
        if step.get("sql"):
            out.append("")
            out += ["   " + line if line else "" for line in fence(step["sql"], "sql").splitlines()]
            out.append("")
    out += ["", f"**Now:** {data['resolution']['final_state']}", ""]
    out += ["## Timeline (UTC)", "", "| time | source | what happened |", "|---|---|---|"]
    out += [f"| {when(e['at'])} | {e['source']} | {cell(e['text'])} |" for e in data["timeline"]]
    out += ["", "## Action items", ""]
    out += [f"- [ ] {item['text']} — *{item['why']}*" for item in data["action_items"]] or ["- (none suggested)"]
    out += ["", "## Lessons learned", ""]
    out += [f"- {prompt}" for prompt in data["lessons"]]
    out += ["", "## Evidence", ""]
    out += _evidence(data["evidence"])
    out += _footer(data)
    return "\n".join(out).rstrip() + "\n"


def _drift(title: str, drift: dict[str, Any] | None) -> list[str]:
    if drift is None:
        return [f"### {title}", "", "No drift check in this window.", ""]
    summary = drift.get("summary") or {}
    head = (f"### {title} ({when(drift['at'])}"
            + (f", schema of commit {drift['schema_commit'][:7]}" if drift.get("schema_commit") else "") + ")")
    lines = [head, "", f"{summary.get('critical', 0)} critical, {summary.get('warning', 0)} warning, "
                       f"{summary.get('info', 0)} info" + (f" — {drift['reason']}" if drift.get("reason") and not drift.get("findings") else ""), ""]
    findings = drift.get("findings") or []
    if findings:
        lines += ["| severity | kind | object | message |", "|---|---|---|---|"]
        for f in findings:
            obj = ".".join(str(p) for p in (f.get("table"), f.get("column") or f.get("name")) if p)
            lines.append(f"| {cell(f.get('severity'))} | {cell(f.get('kind'))} | {cell(obj)} | {cell(f.get('message'))} |")
        lines.append("")
    return lines


def _evidence(ev: dict[str, Any]) -> list[str]:
    out = _drift("Drift before", ev["drift_before"]) + _drift("Drift after", ev["drift_after"])
    out += ["### Migrations involved (`_prisma_migrations`)", ""]
    if ev["migrations"]:
        out += ["| migration | at start | first seen failing | at end | changed by |", "|---|---|---|---|---|"]
        out += [f"| {cell(m['name'])} | {cell(m['state_at_start'])} | {cell(_seen(m.get('first_seen')))} | "
                f"{cell(m['state_at_end'])} | {cell('; '.join(m['changed_by']) or '—')} |" for m in ev["migrations"]]
    else:
        out.append("None pending or failed in this window.")
    out += ["", "### Smoke checks (failing steps)", ""]
    if ev["smoke"]:
        for s in ev["smoke"]:
            out.append(f"- **{s['check']}** at {when(s['at'])}, step {s.get('step') or '?'} "
                       f"{s.get('method') or ''} {s.get('url') or ''}: HTTP {s.get('status_code', '—')} — {s.get('reason') or ''}")
            if s.get("excerpt"):
                out += ["", "  " + fence(str(s["excerpt"])).replace("\n", "\n  "), ""]
    else:
        out.append("No smoke step failed.")
    out += ["", "### Deployments", ""]
    if ev["deployments"]:
        out += ["| deployment | commit | status | started | finished | post-deploy migrations |", "|---|---|---|---|---|---|"]
        for d in ev["deployments"]:
            mig = {True: "yes", False: "no", None: "unknown"}[d.get("migrates_on_deploy")]
            if d.get("post_deployment_command"):
                mig += f" (`{d['post_deployment_command']}`)"
            out.append(f"| {cell(d['uuid'])} | {cell((d['commit'] or '')[:12])} | {cell(d['status'])} | "
                       f"{when(d['started_at'])} | {when(d['finished_at'])} | {cell(mig)} |")
    else:
        out.append("No deployment in this window.")
    out += ["", "### Actions (audit log)", ""]
    if ev["actions"]:
        out += ["| # | at | who | command | outcome | drift before | drift after |", "|---|---|---|---|---|---|---|"]
        for a in ev["actions"]:
            out.append(f"| {a['id']} | {when(a['at'])} | {cell(a['who'])} | `{cell(a['command'])}` | {cell(a['outcome'])} | "
                       f"{cell(_s(a['drift_before']))} | {cell(_s(a['drift_after']))} |")
    else:
        out.append("No action recorded.")
    out.append("")
    out += _checks(ev)
    return out


def _seen(seen: dict[str, Any] | None) -> str:
    return "—" if not seen else f"{seen['state']} at {when(seen['at'])}"


def _s(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "—"
    return f"{summary.get('critical', 0)}c/{summary.get('warning', 0)}w/{summary.get('info', 0)}i"


def _checks(ev: dict[str, Any]) -> list[str]:
    out = ["### Checks in the window", ""]
    if not ev["checks"]:
        return out + ["No check was observed.", ""]
    out += ["| check | at start | at end | observations | ok % | latency avg / max (ms) |", "|---|---|---|---|---|---|"]
    for c in ev["checks"]:
        lat = "—" if c["latency_avg_ms"] is None else f"{c['latency_avg_ms']} / {c['latency_max_ms']}"
        label = c["kind"] if c["name"] == c["kind"] else f"{c['kind']}: {c['name']}"
        out.append(f"| {cell(label)} | {cell(c['state_at_start'] or '—')} | {cell(c['state_at_end'] or '—')} | "
                   f"{c['observations']} | {'—' if c['ok_pct'] is None else c['ok_pct']} | {lat} |")
    return out + [""]


def _evidence_checks(data: dict[str, Any]) -> list[str]:
    return _checks(data["evidence"])


def _footer(data: dict[str, Any]) -> list[str]:
    store = data["evidence"].get("store")
    return ["", "---", f"*Generated by Driftwatch at {when(data.get('generated_at'))} UTC"
            + (f" from the history store {store}" if store else "") + ". A first draft: check it, then edit.*", ""]
