"""The next step for an environment, as the Overview's button shows it.

The advice itself is the engine's (checks.operations' next step, shared with the CLI and the
report) when this Driftwatch has it; until then a small reading of the current drift and
migration states stands in, naming the same commands.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    text: str
    command: str | None
    action: str | None  # the Actions page's choice: "fix" | "deploy" | "resolve" | None
    button: str = "Open the action"


def suggest(env: Any, shown: list[Any]) -> Step | None:
    latest = {(s.result.kind, s.result.name): s.result for s in shown if not s.stale}
    drift = latest.get(("drift", "drift"))
    migrations = latest.get(("migrations", "migrations"))
    if drift is None or drift.state == "error":
        return None
    pending = list((migrations.detail or {}).get("pending") or []) if migrations else []
    failed = list((migrations.detail or {}).get("failed") or []) if migrations else []
    folder = env.migrations or "prisma/migrations"
    if failed:
        if drift.state == "ok":
            return Step(f"migration {failed[0]} is recorded as failed, but the database is in sync: "
                        "mark it applied.", f"driftwatch migrate resolve --applied {failed[0]}", "resolve",
                        "Resolve it")
        return Step(f"migration {failed[0]} failed and drift remains: mark it rolled back, then deploy.",
                    f"driftwatch migrate resolve --rolled-back {failed[0]}", "resolve", "Resolve it")
    if pending and drift.state != "ok":
        return Step(f"apply the pending migration{'s' if len(pending) > 1 else ''} {', '.join(pending)}: "
                    "it creates what the schema expects.", f"driftwatch migrate deploy --migrations {folder}",
                    "deploy", "Apply the pending migration")
    if drift.state != "ok":
        return Step("remove the drift with the fix Prisma's own SQL describes.",
                    "driftwatch fix --apply", "fix", "Review the fix")
    if pending:
        return Step(f"the database matches the schema but {', '.join(pending)} is not recorded: mark it applied.",
                    f"driftwatch migrate resolve --applied {pending[0]}", "resolve", "Resolve it")
    return None
