"""Every workflow that changes or judges a database, once, for the CLI and the dashboard.

    from checks.operations import Caller, apply_fix, next_steps

    result = apply_fix(url, "prisma/schema.prisma", caller=Caller(actor="ana@example.com",
                                                                   environment="production"))
    if result.error: ...            # errors are values; only bugs raise
    result.next_steps().lines()     # what to do now

Modules (each function takes plain parameters and returns a result dataclass; the CLI's
`checks.commands` only parse arguments and print these, the dashboard only renders them):

    common     Caller(actor, environment, history_url, store): who acts, where, which audit
               store; GuardedRun/run_statements (the guard, one or two transactions);
               describe_failure; drift_json
    fix        plan_fix / rehearse_fix / apply_fix -> FixResult
    runbook    run_runbook -> RunbookResult
    migrate    deploy_migrations -> DeployOutcome, rehearse_deploy -> DeployRehearsalOutcome,
               deploy_with_command -> CommandDeployOutcome, resolve_migration -> ResolveOutcome
    next_step  next_steps(drift, history, schema=) -> NextSteps: a pure function, the one
               source of "what to do next"

Every write is recorded in the audit log through `checks.history.timed_action` (started,
then its outcome), attributed to `Caller.actor` in `Caller.environment`.
"""
from __future__ import annotations

from .common import Caller, GuardedRun, describe_failure, drift_json, limits
from .fix import FixResult, apply_fix, plan_fix, rehearse_fix
from .migrate import (
    CommandDeployOutcome,
    DeployOutcome,
    DeployRehearsalOutcome,
    ResolveOutcome,
    deploy_migrations,
    deploy_with_command,
    rehearse_deploy,
    resolve_migration,
)
from .next_step import NextSteps, Step, next_steps
from .runbook import RunbookResult, run_runbook

__all__ = [
    "Caller",
    "CommandDeployOutcome",
    "DeployOutcome",
    "DeployRehearsalOutcome",
    "FixResult",
    "GuardedRun",
    "NextSteps",
    "ResolveOutcome",
    "RunbookResult",
    "Step",
    "apply_fix",
    "deploy_migrations",
    "deploy_with_command",
    "describe_failure",
    "drift_json",
    "limits",
    "next_steps",
    "plan_fix",
    "rehearse_deploy",
    "rehearse_fix",
    "resolve_migration",
    "run_runbook",
]
