"""The report's time window: `--since`/`--until` as ISO 8601 or relative ("2h" = two hours ago).

A relative time counts back from `now`, so a report asked for at 09:30 with `--since 2h`
starts at 07:30. A naive ISO time is taken as UTC: the store and every timeline are in UTC,
and a postmortem read in another time zone must not shift by the reader's offset.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..errors import UsageError

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(value: str, *, now: datetime | None = None, option: str = "--since") -> datetime:
    """`2h`, `30m`, `7d`, `1w`, or ISO 8601 (`2025-10-12T08:30:00Z`, a date alone) → aware UTC."""
    now = now or utcnow()
    text = value.strip()
    found = _RELATIVE.match(text)
    if found:
        amount, unit = float(found.group(1)), found.group(2).lower()
        return now - timedelta(seconds=amount * _UNIT_SECONDS[unit])
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option} {value!r}: not a time; use ISO 8601 (2025-10-12T08:30:00Z) or a relative age (2h, 30m, 7d)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


@dataclass(frozen=True)
class Window:
    """[since, until); `until` None means still open: the report runs up to `now`."""

    since: datetime
    until: datetime | None
    now: datetime

    @property
    def end(self) -> datetime:
        return self.until if self.until is not None else self.now

    @property
    def is_open(self) -> bool:
        return self.until is None

    def __post_init__(self) -> None:
        if self.since >= self.end:
            raise UsageError(
                f"the window is empty: --since {self.since.isoformat()} is not before "
                f"{'--until ' if self.until else 'now '}{self.end.isoformat()}"
            )


def window(since: str, until: str | None = None, *, now: datetime | None = None) -> Window:
    now = now or utcnow()
    start = parse_time(since, now=now, option="--since")
    end = parse_time(until, now=now, option="--until") if until else None
    return Window(start, end, now)


# Bucket widths for the charts and the per-check aggregates: about 100–300 points whatever the
# window, so a week of 30-second checks is read as a few hundred rows per check, not 20,000.
_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400)


def bucket_seconds(span: timedelta, *, max_points: int = 300) -> int:
    seconds = span.total_seconds()
    for size in _BUCKETS:
        if seconds / size <= max_points:
            return size
    return _BUCKETS[-1]
