"""From facts to the story: a pure function, tested on facts built by hand.

Every sentence is stated from evidence the collector found (a deployment row, a flip, a drift
finding, a migration's state, an audit-log action); where the evidence says nothing, the
report says so and leaves a prompt instead of guessing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .facts import ActionInfo, Deployment, DriftPoint, Facts, FlipInfo, MigrationsPoint
from .model import Report, TimelineEntry, iso

if TYPE_CHECKING:
    from ..operations.next_step import NextSteps

BAD = ("failing",)
# An audit row left `started` (the process died) or `interrupted` (Ctrl-C): its effect is unknown.
UNSETTLED = ("started", "interrupted")
SOURCE_ORDER = {"deployment": 0, "migrations": 1, "drift": 2, "health": 3, "smoke": 4, "action": 5}
# A deployment may finish a little after the first failing check saw its new code.
DEPLOY_SLACK = timedelta(minutes=2)
MAX_LISTED = 6


# -- small formatting helpers -----------------------------------------------------------------

def short_commit(commit: str | None) -> str:
    return commit[:7] if commit else "unknown commit"


def short_uuid(uuid: str | None) -> str:
    if not uuid:
        return "(no id)"
    return uuid if len(uuid) <= 10 else uuid[:8] + "…"


def duration(delta: timedelta) -> str:
    seconds = int(round(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


class Clock:
    """Times as a reader wants them: HH:MM:SS when the window is one UTC day, else with the date."""

    def __init__(self, since: datetime, end: datetime) -> None:
        self.one_day = since.date() == end.date()

    def __call__(self, at: datetime | None) -> str:
        if at is None:
            return "unknown time"
        return at.strftime("%H:%M:%S") if self.one_day else at.strftime("%Y-%m-%d %H:%M")


def describe_finding(f: dict[str, Any]) -> str:
    """One short line per finding: what is missing or different, named as the schema names it."""
    kind = str(f.get("kind") or "")
    table, column, name = f.get("table"), f.get("column"), f.get("name")
    what = kind.split("_", 1)[-1].replace("_", " ") if "_" in kind else kind
    if kind == "missing_table":
        return f"table {table} missing"
    if kind == "missing_column":
        return f"column {table}.{column} missing"
    if kind.startswith("missing_"):
        return f"{what} {name or (f'{table}.{column}' if column else table)} missing"
    if kind.startswith("extra_"):
        return f"extra {what} {name or column or table}"
    if kind.startswith("column_"):
        return f"column {table}.{column}: {what} differs (expected {f.get('expected')}, found {f.get('actual')})"
    message = str(f.get("message") or kind)
    return message.split(":", 1)[0]


def summary_text(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "no drift data"
    c, w, i = (int(summary.get(k) or 0) for k in ("critical", "warning", "info"))
    if not c and not w:
        return "in sync" + (f" ({i} info)" if i else "")
    return f"{c} critical, {w} warning" + (f", {i} info" if i else "")


def findings_list(findings: Any, limit: int = MAX_LISTED) -> str:
    items = [describe_finding(f) for f in (findings or []) if isinstance(f, dict)
             and f.get("severity") in ("critical", "warning")]
    if len(items) > limit:
        return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
    return ", ".join(items)


def check_label(kind: str, name: str) -> str:
    return kind if name == kind else f'{kind} "{name}"'


# -- episodes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Episode:
    """A stretch of time one check spent failing."""

    kind: str
    name: str
    start: datetime
    end: datetime | None  # None: still failing at the end of the window
    reason: str | None
    detail: dict[str, Any] | None
    from_start: bool  # it was already failing when the window opened


def episodes(facts: Facts) -> list[Episode]:
    by_check: dict[tuple[str, str], list[FlipInfo]] = {}
    for flip in facts.flips:
        by_check.setdefault((flip.kind, flip.name), []).append(flip)
    found: list[Episode] = []
    known = {(c.kind, c.name): c for c in facts.checks}
    for key in sorted(set(known) | set(by_check)):
        check = known.get(key)
        start: datetime | None = None
        reason: str | None = None
        detail: dict[str, Any] | None = None
        from_start = False
        if check is not None and check.state_at_start in BAD:
            start, from_start = facts.since, True
            reason = check.reason_at_end
        for flip in sorted(by_check.get(key, []), key=lambda f: f.at):
            if flip.to_state in BAD and start is None:
                start, reason, detail, from_start = flip.at, flip.reason, flip.detail, False
            elif flip.to_state not in BAD and start is not None:
                found.append(Episode(key[0], key[1], start, flip.at, reason, detail, from_start))
                start = None
        if start is not None:
            found.append(Episode(key[0], key[1], start, None, reason, detail, from_start))
    # On a tie, what users see (smoke, health) comes first: it is how the incident showed itself.
    return sorted(found, key=lambda e: (e.start, _SEEN_FIRST.get(e.kind, 9), e.name))


_SEEN_FIRST = {"smoke": 0, "health": 1, "drift": 2, "migrations": 3, "deployment": 4}


def returned(kind: str, detail: dict[str, Any] | None, reason: str | None) -> str:
    """What the endpoint answered, from the observation's detail: status code and excerpt."""
    detail = detail or {}
    if kind == "health" and detail.get("status_code") is not None:
        return f"HTTP {detail['status_code']}"
    if kind == "smoke":
        for i, step in enumerate(detail.get("steps") or [], 1):
            if isinstance(step, dict) and step.get("state") not in (None, "ok"):
                said = f"step {i} {step.get('method', '')} {step.get('url', '')}".strip()
                if step.get("status_code") is not None:
                    said += f" → HTTP {step['status_code']}"
                if step.get("excerpt"):
                    said += f" ({_clip(str(step['excerpt']), 120)})"
                return said
    return reason or ""


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the pieces of evidence the story leans on -----------------------------------------------

def first_drifting(facts: Facts) -> DriftPoint | None:
    return next((p for p in facts.drift if p.drifting), None)


def drift_at(facts: Facts, at: datetime) -> DriftPoint | None:
    """The drift result in force at `at` (the newest change point at or before it)."""
    found = None
    for point in facts.drift:
        if point.at <= at:
            found = point
    return found


def drift_after_action(facts: Facts, action: ActionInfo) -> tuple[dict[str, Any] | None, str]:
    """The drift left after an action: its own re-check when recorded, else what the drift check
    reported after it and before the next action (or the end of the window)."""
    if action.drift_after is not None:
        return action.drift_after, "re-checked by the action"
    done = action.finished_at or action.started_at
    later = [a.started_at for a in facts.actions if a.started_at > action.started_at]
    horizon = min(later) if later else facts.end
    point = drift_at(facts, horizon)
    if point is None or (point.at < done and not any(p.at >= done for p in facts.drift) and horizon == done):
        return None, "no drift check after it"
    if point.state in ("error", "unknown"):
        return None, "the drift check could not run after it"
    return {"summary": point.summary, "findings": list(point.findings)}, f"drift check at {iso(point.at)}"


def trigger_deployment(facts: Facts, first_bad: datetime | None) -> Deployment | None:
    candidates = ([facts.deployment_before] if facts.deployment_before else []) + list(facts.deployments)
    if first_bad is None:
        return None
    best = None
    for dep in candidates:
        started = dep.started_at or dep.first_seen
        if started <= first_bad + DEPLOY_SLACK and (best is None or dep.at >= best.at):
            best = dep
    return best


def migrations_at(facts: Facts, at: datetime | None) -> MigrationsPoint | None:
    if not facts.migrations:
        return None
    if at is None:
        return facts.migrations[0]
    # The state in force at `at`; when it shows nothing wrong, the first result soon after it
    # (the migration check runs next to, not exactly with, the drift check).
    found = None
    for point in facts.migrations:
        if point.at <= at:
            found = point
    if found is None or not (found.pending or found.failed):
        soon = next((p for p in facts.migrations if at < p.at <= at + DEPLOY_SLACK), None)
        if soon is not None and (soon.pending or soon.failed):
            return soon
    return found or facts.migrations[0]


def command_of(action: ActionInfo) -> str:
    """The command as the operator ran it (or the dashboard ran it for them)."""
    said = action.details.get("command") if isinstance(action.details, dict) else None
    if isinstance(said, str) and said:
        return said
    kind = action.kind
    if kind == "fix":
        return "driftwatch fix --apply"
    if kind == "rehearsal":
        return "driftwatch fix (rehearsal, rolled back)"
    if kind == "runbook":
        mode = " --apply" if action.outcome != "rehearsed" else ""
        return f"driftwatch runbook run {action.target or ''}{mode}".replace("  ", " ")
    d = action.details if isinstance(action.details, dict) else {}
    if kind == "deploy":
        folder = d.get("migrations")
        return "driftwatch migrate deploy" + (f" --migrations {folder}" if isinstance(folder, str) and folder else "")
    if kind == "resolve":
        which = d.get("migration") or (d.get("applied") if isinstance(d.get("applied"), str) else None) \
            or d.get("rolled_back") or action.target
        how = d.get("as") or ("applied" if isinstance(d.get("applied"), str) else
                              "rolled_back" if d.get("rolled_back") else None)
        flag = {"applied": "--applied", "rolled_back": "--rolled-back"}.get(str(how), "")
        return f"driftwatch migrate resolve {flag} {which or ''}".replace("  ", " ").strip()
    if kind == "migrate_command":
        return action.statements or "migrate command"
    return f"driftwatch {kind}"


def _action_sql(action: ActionInfo) -> str | None:
    if action.kind == "migrate_command":
        return None  # the statements are the command itself
    return action.statements


# -- the report ---------------------------------------------------------------------------------

def compose(facts: Facts) -> Report:
    clock = Clock(facts.since, facts.end)
    eps = episodes(facts)
    first_bad = min((e.start for e in eps), default=None)
    drift_first = first_drifting(facts)
    drift_last = facts.drift[-1] if facts.drift else None
    if first_bad is None and drift_first is not None:
        first_bad = drift_first.at
    trigger = trigger_deployment(facts, first_bad)
    mig_first = migrations_at(facts, drift_first.at if drift_first else first_bad)
    mig_last = facts.migrations[-1] if facts.migrations else None
    actions = sorted(facts.actions, key=lambda a: (a.started_at, a.id or 0))
    still = [e for e in eps if e.end is None]
    status = _status(facts, eps)

    root = _root_cause(facts, clock, eps, trigger, drift_first, mig_first)
    impact = _impact(facts, clock, eps)
    detection = _detection(facts, clock, eps, drift_first, actions, first_bad)
    resolution = _resolution(facts, clock, actions, still, drift_last, mig_last, status)
    advice = next_step_at_end(drift_last, mig_last)
    resolution["next_step"] = advice.to_json() if advice is not None else None
    timeline = _timeline(facts, clock)
    items = _action_items(facts, eps, trigger, drift_first, mig_first, advice, resolution, detection, still)
    evidence = _evidence(facts, eps, drift_first, drift_last, actions)
    title = _title(facts, status, eps, trigger, drift_first)
    summary = _summary(facts, clock, status, eps, root, resolution, still)
    return Report(
        title=title,
        environment=facts.environment,
        status=status,
        since=facts.since,
        until=facts.until,
        generated_at=facts.now,
        summary=summary,
        impact=impact,
        detection=detection,
        root_cause=root,
        resolution=resolution,
        timeline=timeline,
        action_items=items,
        lessons=_lessons(status, eps, resolution),
        evidence=evidence,
        incident=_incident_json(facts),
        charts=_charts(facts),
    )


def _status(facts: Facts, eps: list[Episode]) -> str:
    end = facts.end
    if facts.incident is not None:
        closed = facts.incident.closed_at
        return "resolved" if closed is not None and closed <= end else "ongoing"
    if facts.incidents:
        open_at_end = [i for i in facts.incidents if i.closed_at is None or i.closed_at > end]
        return "ongoing" if open_at_end else "resolved"
    if eps:
        return "ongoing" if any(e.end is None for e in eps) else "resolved"
    return "no incident"


def _title(facts: Facts, status: str, eps: list[Episode], trigger: Deployment | None,
           drift_first: DriftPoint | None) -> str:
    if status == "no incident":
        return f"{facts.environment}: no incident"
    if True:
        missing = [describe_finding(f) for f in (drift_first.findings if drift_first else ())
                   if f.get("severity") == "critical"]
        if missing:
            head = missing[0] + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
            if trigger is not None:
                head += f" after the deployment of {short_commit(trigger.commit)}"
        elif facts.incident is not None and facts.incident.title:
            head = facts.incident.title
            if head.startswith(facts.environment):
                return head
        elif eps:
            head = f"{check_label(eps[0].kind, eps[0].name)} failing"
        else:
            head = "incident"
    return f"{facts.environment}: {head}"


def _root_cause(facts: Facts, clock: Clock, eps: list[Episode], trigger: Deployment | None,
                drift_first: DriftPoint | None, mig: MigrationsPoint | None) -> dict[str, Any]:
    statements: list[str] = []
    if trigger is not None:
        verb = trigger.status or "seen"
        statements.append(f"deployment {short_uuid(trigger.uuid)} of commit {short_commit(trigger.commit)} "
                          f"{verb} at {clock(trigger.at)}")
    expects: list[str] = []
    if drift_first is not None:
        crit = [f for f in drift_first.findings if f.get("severity") == "critical"]
        tables = [f"table {f.get('table')}" for f in crit if f.get("kind") == "missing_table"]
        columns = [f"column {f.get('table')}.{f.get('column')}" for f in crit if f.get("kind") == "missing_column"]
        others = [describe_finding(f) for f in crit if f.get("kind") not in ("missing_table", "missing_column")]
        expects = tables + columns
        whose = "the schema"
        if drift_first.schema_commit:
            whose = ("that commit's schema" if trigger is not None and trigger.commit and
                     drift_first.schema_commit.startswith(trigger.commit[:7]) or
                     (trigger is not None and trigger.commit and trigger.commit.startswith(drift_first.schema_commit[:7]))
                     else f"the schema of commit {short_commit(drift_first.schema_commit)}")
        if expects:
            statements.append(f"{whose} expects {_and(expects)}, which the database did not have")
        if others:
            statements.append(f"{whose} differs from the database: {_and(others[:MAX_LISTED])}")
        if not crit and drift_first.drifting:
            statements.append(f"the database drifted from {whose}: {findings_list(drift_first.findings)}")
        if drift_first.fallback_reason:
            statements.append(f"(the drift check compared the fallback schema: {drift_first.fallback_reason})")
    if mig is not None:
        if mig.pending:
            statements.append(f"migration{'s' if len(mig.pending) > 1 else ''} {_and(list(mig.pending))} "
                              f"{'were' if len(mig.pending) > 1 else 'was'} not applied")
        if mig.failed:
            statements.append(f"migration{'s' if len(mig.failed) > 1 else ''} {_and(list(mig.failed))} failed")
    if trigger is not None and (mig is not None and (mig.pending or mig.failed) or expects):
        if trigger.migrates_on_deploy is False:
            if trigger.post_deployment_command:
                statements.append(f"the post-deployment command `{trigger.post_deployment_command}` does not run migrations")
            else:
                statements.append("no post-deployment migration command is configured")
    if statements:
        text = "; ".join(statements)
        text = text[0].upper() + text[1:] + "."
    elif eps:
        text = ("The evidence does not show the cause: no deployment, drift or migration change preceded the "
                f"first failure ({check_label(eps[0].kind, eps[0].name)} at {clock(eps[0].start)}).")
    else:
        text = "Nothing failed in this window."
    return {
        "text": text,
        "statements": statements,
        "trigger": _deployment_json(trigger) if trigger else None,
        "schema_commit": drift_first.schema_commit if drift_first else None,
        "expected_missing": expects,
        "pending_migrations": list(mig.pending) if mig else [],
        "failed_migrations": list(mig.failed) if mig else [],
        "post_deployment_migrations": None if trigger is None else trigger.migrates_on_deploy,
    }


def _and(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _impact(facts: Facts, clock: Clock, eps: list[Episode]) -> dict[str, Any]:
    failing = []
    lines = []
    for e in eps:
        end = e.end or facts.end
        said = returned(e.kind, e.detail, e.reason)
        since = "before the window opened" if e.from_start else clock(e.start)
        until = clock(e.end) if e.end else "the end of the window (still failing)"
        lines.append(f"{check_label(e.kind, e.name)} failed from {since} to {until} ({duration(end - e.start)})"
                     + (f": {said}" if said else ""))
        failing.append({"kind": e.kind, "name": e.name, "from": iso(e.start), "until": iso(e.end),
                        "duration_s": int((end - e.start).total_seconds()), "reason": e.reason,
                        "returned": said or None})
    failed_keys = {(e.kind, e.name) for e in eps}
    stayed_ok = [c for c in facts.checks if (c.kind, c.name) not in failed_keys and c.count and c.failing_count == 0]
    unobserved = [c for c in facts.checks if c.state_at_end == "error"]
    for kind in ("health", "smoke"):
        calm = [c for c in stayed_ok if c.kind == kind]
        if len(calm) > 3:  # fifty endpoints that never failed are one line, not fifty
            names = ", ".join(repr(c.name) for c in calm[:3])
            warned = sum(1 for c in calm if c.ok_count < c.count)
            lines.append(f"{len(calm)} {kind} checks never failed ({names} and {len(calm) - 3} more)"
                         + (f"; {warned} of them had warnings" if warned else ""))
            continue
        for c in calm:
            code = (c.detail_at_end or {}).get("status_code")
            how = "stayed ok throughout" if c.ok_count == c.count else f"never failed ({c.count - c.ok_count} warnings)"
            lines.append(f"{check_label(c.kind, c.name)} {how}" + (f" (HTTP {code})" if code else ""))
    for c in unobserved:
        lines.append(f"{check_label(c.kind, c.name)} could not be observed at the end: {c.reason_at_end}")
    text = "\n".join(lines) if lines else "No check failed in this window."
    return {"text": text, "lines": lines, "failing": failing,
            "stayed_ok": [{"kind": c.kind, "name": c.name} for c in stayed_ok],
            "could_not_observe": [{"kind": c.kind, "name": c.name, "reason": c.reason_at_end} for c in unobserved]}


def _detection(facts: Facts, clock: Clock, eps: list[Episode], drift_first: DriftPoint | None,
               actions: list[ActionInfo], first_bad: datetime | None) -> dict[str, Any]:
    lines = []
    first = eps[0] if eps else None
    if first is not None:
        when = "was already failing when the window opened" if first.from_start else f"failed first, at {clock(first.start)}"
        lines.append(f"{check_label(first.kind, first.name)} {when}" + (f": {first.reason}" if first.reason else ""))
    if drift_first is not None:
        lines.append(f"the drift check found {findings_list(drift_first.findings, 3) or summary_text(drift_first.summary)} "
                     f"at {clock(drift_first.at)}" + (f" (schema of {short_commit(drift_first.schema_commit)})"
                                                      if drift_first.schema_commit else ""))
    if facts.incident is not None:
        lines.append(f"incident {facts.incident.id} opened at {clock(facts.incident.opened_at)}")
    acted = next((a for a in actions if first_bad is None or a.started_at >= first_bad), None)
    to_act = None
    if first_bad is not None and acted is not None:
        to_act = acted.started_at - first_bad
        lines.append(f"the first action came {duration(to_act)} after the first failure: {acted.actor} ran "
                     f"{command_of(acted)} at {clock(acted.started_at)}")
    elif first_bad is not None:
        lines.append("nobody acted in this window")
    health_ok = [c for c in facts.checks if c.kind == "health" and c.count and c.failing_count == 0]
    if eps and health_ok and not any(e.kind == "health" for e in eps):
        names = ", ".join(check_label(c.kind, c.name) for c in health_ok)
        lines.append(f"{names} stayed ok: a health check alone would not have detected this")
    text = "; ".join(lines)
    text = (text[0].upper() + text[1:] + ".") if text else "Nothing to detect: no check failed in this window."
    return {
        "text": text,
        "first_failing_check": None if first is None else {
            "kind": first.kind, "name": first.name, "at": iso(first.start), "reason": first.reason},
        "first_drift_finding": None if drift_first is None else {
            "at": iso(drift_first.at), "summary": drift_first.summary,
            "findings": [describe_finding(f) for f in drift_first.findings if f.get("severity") in ("critical", "warning")]},
        "first_action_at": iso(acted.started_at) if acted else None,
        "time_to_first_action_s": None if to_act is None else int(to_act.total_seconds()),
    }


def _resolution(facts: Facts, clock: Clock, actions: list[ActionInfo], still: list[Episode],
                drift_last: DriftPoint | None, mig_last: MigrationsPoint | None, status: str) -> dict[str, Any]:
    steps = []
    lines = []
    for n, a in enumerate(actions, 1):
        after, source = drift_after_action(facts, a)
        remaining = [describe_finding(f) for f in (after or {}).get("findings") or []
                     if isinstance(f, dict) and f.get("severity") in ("critical", "warning")]
        changed = a.outcome == "applied"
        partial = changed and bool(remaining)
        command = command_of(a)
        line = f"{clock(a.started_at)} {a.actor} ran `{command}`: {a.outcome}"
        if a.error:
            line += f" ({a.error})"
        if a.outcome in UNSETTLED:
            line += " — no outcome recorded (the process ended mid-action): check what it changed"
        elif not changed:
            line += " — changed nothing"
        elif after is None:
            line += "; drift after it unknown"
        elif remaining:
            line += f"; left {summary_text(after.get('summary'))}: {_and(remaining[:MAX_LISTED])}" + \
                    (f" and {len(remaining) - MAX_LISTED} more" if len(remaining) > MAX_LISTED else "") + " — partial"
        else:
            line += "; drift after it: in sync"
        lines.append(f"{n}. {line}")
        steps.append({
            "at": iso(a.started_at), "who": a.actor, "kind": a.kind, "command": command,
            "sql": _action_sql(a), "outcome": a.outcome, "error": a.error,
            "drift_after": None if after is None else {"summary": after.get("summary"), "remaining": remaining,
                                                       "source": source},
            "partial": partial, "audit_id": a.id, "text": line,
        })
    if status == "no incident":
        final = "Nothing failed in this window; nothing needed resolving."
    elif still:
        final = "Still failing at " + clock(facts.end) + ": " + "; ".join(
            f"{check_label(e.kind, e.name)} ({_failing_now(facts, e, drift_last, mig_last)})" for e in still) + "."
    else:
        last_fix = max((e.end for e in _all_episodes_end(facts)), default=None)
        final = f"Every check was ok again by {clock(last_fix)}" if last_fix else "Every check was ok at the end"
        if drift_last is not None:
            final += ("; the database is in sync with " +
                      (f"the schema of {short_commit(drift_last.schema_commit)}" if drift_last.schema_commit else "the schema")
                      if not drift_last.drifting else f"; drift remains: {summary_text(drift_last.summary)}")
        if mig_last is not None and not mig_last.pending and not mig_last.failed:
            final += "; every migration is applied"
        elif mig_last is not None:
            final += f"; migrations still pending: {_and(list(mig_last.pending))}" if mig_last.pending else ""
        final += "."
    if not actions and status != "no incident":
        lines.append("No Driftwatch action is recorded in this window (changes made outside Driftwatch are not in the audit log).")
    text = "\n".join(lines + [final])
    return {"text": text, "steps": steps, "final_state": final,
            "in_sync_at_end": None if drift_last is None else not drift_last.drifting}


def _failing_now(facts: Facts, e: Episode, drift_last: DriftPoint | None, mig_last: MigrationsPoint | None) -> str:
    """What a still-failing check says at the end of the window (not what it said when it broke)."""
    if e.kind == "drift" and drift_last is not None and drift_last.drifting:
        return f"{summary_text(drift_last.summary)}: {findings_list(drift_last.findings)}"
    if e.kind == "migrations" and mig_last is not None and (mig_last.pending or mig_last.failed):
        parts = ([f"pending {_and(list(mig_last.pending))}"] if mig_last.pending else []) + \
                ([f"failed {_and(list(mig_last.failed))}"] if mig_last.failed else [])
        return "; ".join(parts)
    end = next((c for c in facts.checks if (c.kind, c.name) == (e.kind, e.name)), None)
    reason = end.reason_at_end if end is not None and end.reason_at_end else e.reason
    return returned(e.kind, _end_detail(facts, e), reason) or "failing"


def _end_detail(facts: Facts, e: Episode) -> dict[str, Any] | None:
    for c in facts.checks:
        if (c.kind, c.name) == (e.kind, e.name):
            return c.detail_at_end
    return e.detail


def _all_episodes_end(facts: Facts) -> list[Episode]:
    return [e for e in episodes(facts) if e.end is not None]


def _flip_text(flip: FlipInfo) -> str:
    change = f"{flip.from_state} → {flip.to_state}" if flip.from_state else f"first seen {flip.to_state}"
    said = returned(flip.kind, flip.detail, flip.reason) if flip.to_state != "ok" else ""
    if flip.reason and said and flip.reason not in said:
        said = f"{flip.reason} ({said})" if flip.kind == "health" else said
    elif flip.reason and not said and flip.to_state != "ok":
        said = flip.reason
    return f"{check_label(flip.kind, flip.name)} {change}" + (f": {said}" if said else "")


FLAP_LISTED = 4  # more ok ↔ warning changes than this for one check are told as one line
FLIPS_KEPT = 5  # of a check with more state changes than twice this, the first and last few are listed


def _is_flap(flip: FlipInfo) -> bool:
    return flip.from_state in ("ok", "warning") and flip.to_state in ("ok", "warning")


def _flap_counts(facts: Facts) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for flip in facts.flips:
        if _is_flap(flip):
            counts[(flip.kind, flip.name)] = counts.get((flip.kind, flip.name), 0) + 1
    return counts


def _flapping(facts: Facts, clock: Clock) -> list[TimelineEntry]:
    """One line per check that flapped between ok and warning many times: a week of a slightly
    slow endpoint is not a thousand timeline rows."""
    out = []
    by_check: dict[tuple[str, str], list[FlipInfo]] = {}
    for flip in facts.flips:
        if _is_flap(flip):
            by_check.setdefault((flip.kind, flip.name), []).append(flip)
    for (kind, name), flaps in by_check.items():
        n = len(flaps)
        if n <= FLAP_LISTED:
            continue
        reason = next((f.reason for f in flaps if f.to_state == "warning" and f.reason), None)
        out.append(TimelineEntry(flaps[0].at, kind, f"{check_label(kind, name)} flapped between ok and warning {n} times "
                                                     f"(first {clock(flaps[0].at)}, last {clock(flaps[-1].at)})"
                                                     + (f": {reason}" if reason else "")))
    return out


def _timeline(facts: Facts, clock: Clock) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    for dep in facts.deployments:
        label = f"deployment {short_uuid(dep.uuid)} of commit {short_commit(dep.commit)}"
        if dep.started_at and facts.since <= dep.started_at <= facts.end:
            entries.append(TimelineEntry(dep.started_at, "deployment", f"{label} started"))
        if dep.finished_at and facts.since <= dep.finished_at <= facts.end:
            extra = ""
            if dep.migrates_on_deploy is False:
                extra = "; no post-deployment migration command"
            entries.append(TimelineEntry(dep.finished_at, "deployment", f"{label} {dep.status or 'finished'}{extra}"))
        if not dep.started_at and not dep.finished_at:
            entries.append(TimelineEntry(dep.first_seen, "deployment", f"{label}: {dep.status or 'seen'}"))
    drift_at_times = {p.at for p in facts.drift}
    mig_at_times = {p.at for p in facts.migrations}
    flap_counts = _flap_counts(facts)
    told: dict[tuple[str, str], list[FlipInfo]] = {}
    for flip in facts.flips:
        if flip.from_state is None and flip.to_state == "ok":
            continue  # a check's first, healthy observation is not news
        if _is_flap(flip) and flap_counts.get((flip.kind, flip.name), 0) > FLAP_LISTED:
            continue  # told once, by _flapping
        if flip.kind == "drift" and flip.at in drift_at_times:
            continue  # told by the drift change point at the same moment, with its findings
        if flip.kind == "migrations" and flip.at in mig_at_times:
            continue
        told.setdefault((flip.kind, flip.name), []).append(flip)
    for (kind, name), changes in told.items():
        if len(changes) > 2 * FLIPS_KEPT:
            # A check that changed state hundreds of times: its first and last changes, and a count.
            hidden = changes[FLIPS_KEPT:-FLIPS_KEPT]
            entries.append(TimelineEntry(hidden[0].at, kind, f"{check_label(kind, name)} changed state {len(hidden)} more "
                                                             f"times until {clock(hidden[-1].at)} (see the charts)"))
            changes = changes[:FLIPS_KEPT] + changes[-FLIPS_KEPT:]
        entries += [TimelineEntry(f.at, f.kind, _flip_text(f)) for f in changes]
    entries += _flapping(facts, clock)
    flip_states = {(f.kind, f.at): f for f in facts.flips}
    previous: DriftPoint | None = None
    for point in facts.drift:
        if previous is None and not point.drifting and point.state == "ok":  # in sync from the start: not news
            previous = point
            continue
        flip = flip_states.get(("drift", point.at))
        state = f" ({flip.from_state} → {flip.to_state})" if flip and flip.from_state else ""
        if point.drifting:
            text = f"drift{state}: {summary_text(point.summary)} — {findings_list(point.findings)}"
            if point.schema_commit:
                text += f" (schema of {short_commit(point.schema_commit)})"
        elif point.state in ("error", "unknown"):
            text = f"drift check could not run{state}: {point.reason or point.state}"
        else:
            text = f"drift{state}: in sync" + (f" with the schema of {short_commit(point.schema_commit)}" if point.schema_commit else "")
        entries.append(TimelineEntry(point.at, "drift", text))
        previous = point
    prev_m: MigrationsPoint | None = None
    for point in facts.migrations:
        if prev_m is None and not point.pending and not point.failed and point.state == "ok":
            prev_m = point
            continue
        flip = flip_states.get(("migrations", point.at))
        state = f" ({flip.from_state} → {flip.to_state})" if flip and flip.from_state else ""
        parts = []
        if point.pending:
            parts.append(f"pending {_and(list(point.pending))}")
        if point.failed:
            parts.append(f"failed {_and(list(point.failed))}")
        if point.state in ("error", "unknown") and not parts:
            parts.append(f"could not read the history: {(point.detail or {}).get('reason') or point.state}")
        text = f"migrations{state}: " + ("; ".join(parts) if parts else "every migration applied")
        entries.append(TimelineEntry(point.at, "migrations", text))
        prev_m = point
    for a in facts.actions:
        after, _ = drift_after_action(facts, a)
        text = f"{a.actor} ran `{command_of(a)}`: {a.outcome}"
        if a.outcome == "applied" and after is not None:
            text += f"; drift after: {summary_text(after.get('summary'))}"
        if a.error:
            text += f" ({a.error})"
        entries.append(TimelineEntry(a.started_at, "action", text))
    entries.sort(key=lambda e: (e.at, SOURCE_ORDER[e.source]))
    return entries


def next_step_at_end(drift: DriftPoint | None, migrations: MigrationsPoint | None) -> "NextSteps | None":
    """What to do next about the database as the window ends: `next_steps` itself, judged from
    the stored drift and migration results (rebuilt by `DriftReport.from_json` and
    `MigrationSummary.from_json`), so the report names the step and command `check`,
    `migrate status`, the poller and the dashboard name for the same state. None when
    neither check left a usable result."""
    from ..findings import DriftReport
    from ..migrations import MigrationSummary
    from ..operations.next_step import next_steps

    report = None
    if drift is not None and drift.state not in ("error", "unknown"):
        report = DriftReport.from_json({"findings": list(drift.findings)})
    history = None
    if migrations is not None and migrations.detail is not None and migrations.state != "unknown":
        detail = migrations.detail
        if migrations.state == "error":
            history = MigrationSummary.from_json({"directory": detail.get("directory"),
                                                  "error": detail.get("reason") or "the history could not be read"})
        else:
            history = MigrationSummary.from_json({**detail, "pending": list(migrations.pending),
                                                  "failed": list(migrations.failed)})
    if report is None and history is None:
        return None
    return next_steps(report, history, schema=drift.schema if drift is not None else None)


def _next_step_item(advice: "NextSteps", still: list[Episode]) -> dict[str, Any]:
    """The next step as an action item: the headline, the first step and its exact command."""
    first = advice.first
    assert first is not None
    text = f"{advice.headline} Next: {first.say}" + (f": `{first.command}`" if first.command else "")
    if advice.warning:
        text += f" (warning: {advice.warning})"
    why = ("the window ends with these checks failing: " + "; ".join(check_label(e.kind, e.name) for e in still)
           if still else "the database's state as the window ends")
    return {"text": text, "why": why, "priority": "now", "command": first.command, "state": advice.state}


def _action_items(facts: Facts, eps: list[Episode], trigger: Deployment | None, drift_first: DriftPoint | None,
                  mig_first: MigrationsPoint | None, advice: "NextSteps | None",
                  resolution: dict[str, Any], detection: dict[str, Any], still: list[Episode]) -> list[dict[str, Any]]:
    """What to do now (the next step, from `next_steps`, when the database needs one), then
    the postmortem's items: what would have prevented the incident or found it sooner."""
    items: list[dict[str, Any]] = []
    if not eps and drift_first is None:
        return items
    pending = list(mig_first.pending) if mig_first else []
    if advice is not None and advice.first is not None:
        items.append(_next_step_item(advice, still))
    elif still:
        items.append({"text": "Fix what is still failing: " + "; ".join(check_label(e.kind, e.name) for e in still),
                      "why": "the window ends with these checks failing", "priority": "now"})
    if pending and trigger is not None and trigger.migrates_on_deploy is not True:
        items.append({"text": "Run `prisma migrate deploy` as the post-deployment command of the Coolify application "
                              "(or `driftwatch migrate deploy`), so a deploy cannot start code whose tables do not exist",
                      "why": f"{_and(pending)} was pending after deployment {short_uuid(trigger.uuid)}", "priority": "high"})
    elif pending:
        items.append({"text": "Apply migrations as part of every deployment (`prisma migrate deploy` after the build)",
                      "why": f"{_and(pending)} was pending while the new code ran", "priority": "high"})
    if drift_first is not None:
        items.append({"text": "Gate CI and the deploy on `driftwatch check` against the schema being deployed "
                              "(exit 2 on drift)",
                      "why": f"the drift ({summary_text(drift_first.summary)}) was only found after the deploy",
                      "priority": "high"})
    smoke_failed = any(e.kind == "smoke" for e in eps)
    health_failed = any(e.kind == "health" for e in eps)
    if smoke_failed and not health_failed:
        names = sorted({e.name for e in eps if e.kind == "smoke"})
        items.append({"text": f"Alert on the smoke check{'s' if len(names) > 1 else ''} "
                              f"{_and([repr(n) for n in names])}, not only on /health",
                      "why": "the health endpoint stayed ok throughout", "priority": "medium"})
    partial = [s for s in resolution["steps"] if s["partial"]]
    for step in partial:
        if step["kind"] in ("runbook", "migrate_command"):
            items.append({"text": f"Retire or complete `{step['command']}`: it left {len(step['drift_after']['remaining'])} "
                                  "finding(s) behind; prefer `driftwatch fix` or `migrate deploy`, which re-check",
                          "why": f"partial fix at {step['at']}", "priority": "medium"})
    to_act = detection.get("time_to_first_action_s")
    if to_act is not None and to_act > 15 * 60:
        items.append({"text": "Page the on-call engineer when the drift or smoke check turns failing",
                      "why": f"{duration(timedelta(seconds=to_act))} passed between the first failure and the first action",
                      "priority": "medium"})
    return items


def _lessons(status: str, eps: list[Episode], resolution: dict[str, Any]) -> list[str]:
    if status == "no incident":
        return []
    prompts = [
        "What went well? (for a human to answer)",
        "What went wrong? (for a human to answer)",
        "Where did we get lucky? (for a human to answer)",
    ]
    if any(s["partial"] for s in resolution["steps"]):
        prompts.append("Why was a partial fix applied first, and how did we learn it was partial?")
    if eps and any(e.kind == "smoke" for e in eps):
        prompts.append("Which user-facing flows have no smoke check yet?")
    return prompts


def _deployment_json(dep: Deployment) -> dict[str, Any]:
    return {"uuid": dep.uuid, "commit": dep.commit, "status": dep.status, "started_at": iso(dep.started_at),
            "finished_at": iso(dep.finished_at), "application_status": dep.application_status,
            "post_deployment_command": dep.post_deployment_command, "migrates_on_deploy": dep.migrates_on_deploy}


def _drift_json(point: DriftPoint | None) -> dict[str, Any] | None:
    if point is None:
        return None
    return {"at": iso(point.at), "state": point.state, "schema_commit": point.schema_commit,
            "summary": point.summary, "findings": list(point.findings), "reason": point.reason,
            "fallback_reason": point.fallback_reason}


def _migration_rows(facts: Facts) -> list[dict[str, Any]]:
    """The `_prisma_migrations` rows involved: every migration seen pending or failed in the window,
    its state at both ends, and the action that changed it."""
    names: list[str] = []
    for point in facts.migrations:
        for name in point.pending + point.failed:
            if name not in names:
                names.append(name)
    for a in facts.actions:
        for name in _migrations_named(a):
            if name not in names:
                names.append(name)
    first = facts.migrations[0] if facts.migrations else None
    last = facts.migrations[-1] if facts.migrations else None

    def state(point: MigrationsPoint | None, name: str) -> str | None:
        if point is None:
            return None
        if name in point.pending:
            return "pending"
        if name in point.failed:
            return "failed"
        detail = point.detail or {}
        for other in ("rolled_back", "edited", "missing_locally"):
            if name in (detail.get(other) or []):
                return other
        by_state = detail.get("by_state")
        if isinstance(by_state, dict):
            for st, listed in by_state.items():
                if isinstance(listed, list) and name in listed:
                    return str(st)
            return "not in the deployed migrations"
        seen = first_seen(name)
        if point.state in ("error", "unknown"):
            return "unknown (the history could not be read)"
        if seen is not None and point.at < datetime.fromisoformat(seen["at"].replace("Z", "+00:00")):
            return "not listed (applied, or not yet in the deployed migrations)"
        return "applied"

    def first_seen(name: str) -> dict[str, Any] | None:
        for point in facts.migrations:
            if name in point.pending or name in point.failed:
                return {"at": iso(point.at), "state": state(point, name)}
        return None

    rows = []
    for name in names:
        by = [f"{a.actor}: {command_of(a)} ({a.outcome}, {iso(a.started_at)})" for a in facts.actions
              if name in _migrations_named(a)]
        rows.append({"name": name, "state_at_start": state(first, name), "first_seen": first_seen(name),
                     "state_at_end": state(last, name), "changed_by": by})
    return rows


def _migrations_named(a: ActionInfo) -> list[str]:
    found: list[str] = []
    d = a.details if isinstance(a.details, dict) else {}
    for key in ("applied", "rolled_back", "migration", "migrations_applied"):
        value = d.get(key)
        if isinstance(value, str) and value and "/" not in value:
            found.append(value)
        elif isinstance(value, list):
            found += [v for v in value if isinstance(v, str)]
    return found


def _evidence(facts: Facts, eps: list[Episode], drift_first: DriftPoint | None, drift_last: DriftPoint | None,
              actions: list[ActionInfo]) -> dict[str, Any]:
    smoke = []
    for e in eps:
        if e.kind != "smoke":
            continue
        for i, step in enumerate((e.detail or {}).get("steps") or [], 1):
            if isinstance(step, dict) and step.get("state") not in (None, "ok"):
                smoke.append({"check": e.name, "at": iso(e.start), "step": i, "method": step.get("method"),
                              "url": step.get("url"), "status_code": step.get("status_code"),
                              "state": step.get("state"), "reason": step.get("reason"),
                              "excerpt": step.get("excerpt")})
        if not (e.detail or {}).get("steps"):
            smoke.append({"check": e.name, "at": iso(e.start), "step": None, "reason": e.reason})
    before = drift_first or (facts.drift[0] if facts.drift else None)
    return {
        "drift_before": _drift_json(before),
        "drift_after": _drift_json(drift_last),
        "migrations": _migration_rows(facts),
        "smoke": smoke,
        "deployments": [_deployment_json(d) for d in facts.deployments],
        "actions": [{"id": a.id, "at": iso(a.started_at), "finished_at": iso(a.finished_at), "who": a.actor,
                     "kind": a.kind, "command": command_of(a), "sql": _action_sql(a), "outcome": a.outcome,
                     "error": a.error, "drift_before": (a.drift_before or {}).get("summary"),
                     "drift_after": (a.drift_after or {}).get("summary")} for a in actions],
        "checks": [{"kind": c.kind, "name": c.name, "state_at_start": c.state_at_start, "state_at_end": c.state_at_end,
                    "reason_at_end": c.reason_at_end, "observations": c.count,
                    "ok_pct": None if not c.count else round(100.0 * c.ok_count / c.count, 2),
                    "latency_avg_ms": None if c.latency_avg is None else round(c.latency_avg, 1),
                    "latency_max_ms": None if c.latency_max is None else round(c.latency_max, 1)}
                   for c in facts.checks],
        "store": facts.store,
    }


def _summary(facts: Facts, clock: Clock, status: str, eps: list[Episode], root: dict[str, Any],
             resolution: dict[str, Any], still: list[Episode]) -> str:
    if status == "no incident":
        n = len(facts.checks)
        return (f"No incident in {facts.environment} between {clock(facts.since)} and {clock(facts.end)} UTC: "
                f"none of its checks failed ({n} observed)." if n else
                f"No incident in {facts.environment} between {clock(facts.since)} and {clock(facts.end)} UTC: "
                "no check recorded a failure (no observations were stored for this environment).")
    first = eps[0] if eps else None
    parts = []
    if first is not None:
        end = max((e.end or facts.end) for e in eps)
        names = _and(list(dict.fromkeys(check_label(e.kind, e.name) for e in eps)))
        span = f"from {clock(first.start)} to {clock(end)} UTC ({duration(end - first.start)})" if not still else \
            f"since {clock(first.start)} UTC"
        parts.append(f"In {facts.environment}, {names} failed {span}.")
    if root["statements"]:
        parts.append(root["text"])
    steps = resolution["steps"]
    if status == "resolved":
        who = sorted({s["who"] for s in steps if s["outcome"] == "applied"})
        did = f" after {len([s for s in steps if s['outcome'] == 'applied'])} action(s) by {_and(who)}" if who else ""
        parts.append(f"Resolved{did}: {resolution['final_state'][0].lower()}{resolution['final_state'][1:]}")
    else:
        parts.append(resolution["final_state"])
    return " ".join(parts)


def _incident_json(facts: Facts) -> dict[str, Any] | None:
    inc = facts.incident
    if inc is None:
        return None
    return {"id": inc.id, "environment": inc.environment, "opened_at": iso(inc.opened_at),
            "closed_at": iso(inc.closed_at), "title": inc.title}


def _charts(facts: Facts) -> dict[str, Any]:
    """Series for the HTML charts, all already aggregated: buckets, flips, change points."""
    series: dict[str, dict[str, list[Any]]] = {}
    for b in facts.buckets:
        s = series.setdefault(f"{b.kind}:{b.name}", {"kind": b.kind, "name": b.name, "t": [], "avg": [], "max": [],
                                                      "ok": [], "bad": [], "count": []})  # type: ignore[dict-item]
        s["t"].append(b.start)
        s["avg"].append(b.latency_avg)
        s["max"].append(b.latency_max)
        s["ok"].append(b.ok_count)
        s["bad"].append(b.bad_count)
        s["count"].append(b.count)
    segments = []
    by_check: dict[tuple[str, str], list[FlipInfo]] = {}
    for f in facts.flips:
        by_check.setdefault((f.kind, f.name), []).append(f)
    for c in facts.checks:
        state = c.state_at_start or "unknown"
        at = facts.since
        for f in sorted(by_check.get((c.kind, c.name), []), key=lambda x: x.at):
            if f.at > at:
                segments.append({"kind": c.kind, "name": c.name, "from": at, "to": f.at, "state": state})
            state, at = f.to_state, max(at, f.at)
        segments.append({"kind": c.kind, "name": c.name, "from": at, "to": facts.end, "state": state})
    return {
        "bucket_seconds": facts.bucket_seconds,
        "latency": list(series.values()),
        "states": segments,
        "drift": [{"at": p.at, "critical": int(p.summary.get("critical") or 0),
                   "warning": int(p.summary.get("warning") or 0), "info": int(p.summary.get("info") or 0)}
                  for p in facts.drift],
        "deployments": [{"at": d.at, "label": f"{short_commit(d.commit)} {d.status or ''}".strip()}
                        for d in facts.deployments if facts.since <= d.at <= facts.end],
        "actions": [{"at": a.started_at, "label": f"{a.kind} by {a.actor}: {a.outcome}"} for a in facts.actions],
        "since": facts.since,
        "end": facts.end,
    }
