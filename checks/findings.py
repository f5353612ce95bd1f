"""What a drift check reports: findings, their kinds and how bad each is.

Severity is about the application, not the database: `critical` means some query
the Prisma client sends will fail now; `warning` means behaviour or speed differs
(a missing index, a foreign key that no longer cascades); `info` is an extra object
Prisma does not know about and will not trip over.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field, fields
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ddl import Statement

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"
SEVERITIES = (CRITICAL, WARNING, INFO)
SEVERITY_RANK = {CRITICAL: 0, WARNING: 1, INFO: 2}


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: str
    schema: str
    table: str | None
    column: str | None
    name: str | None
    model: str | None
    field: str | None
    expected: str | None
    actual: str | None
    message: str
    fix: str | None  # Prisma's SQL text for the fix, as shown and in the JSON
    # The same fix as data (`checks.ddl.Statement`: op, target, sql), what a fix plan reads.
    statements: tuple[Statement, ...] = dc_field(default=(), compare=False, repr=False)

    def to_json(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "statements"}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Finding":
        """The finding `to_json` wrote (a stored observation's detail, `check --format json`),
        without its statements: enough for the next step (`checks.operations.next_step`)."""
        return cls(**{f.name: data.get(f.name) for f in fields(cls) if f.name != "statements"})

    @property
    def sort_key(self) -> tuple[int, str, str, str, str]:
        return (
            SEVERITY_RANK[self.severity],
            self.schema,
            self.table or "",
            self.kind,
            self.column or self.name or "",
        )


@dataclass(frozen=True)
class DriftReport:
    findings: tuple[Finding, ...]

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def summary(self) -> dict[str, int]:
        return {s: self.count(s) for s in SEVERITIES}

    def in_sync(self, strict: bool = False) -> bool:
        """In sync means nothing that should fail a deploy gate: info counts only when strict."""
        return not any(f.severity != INFO or strict for f in self.findings)

    def to_json(self, strict: bool = False) -> dict[str, object]:
        return {
            "in_sync": self.in_sync(strict),
            "summary": self.summary,
            "findings": [f.to_json() for f in self.findings],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "DriftReport":
        """The report `to_json` wrote, rebuilt from its findings (the summary follows from them),
        so what was stored can be judged by the same pure functions as a fresh check."""
        return cls(tuple(Finding.from_json(f) for f in data.get("findings") or () if isinstance(f, Mapping)))
