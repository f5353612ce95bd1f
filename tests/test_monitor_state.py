"""A check's and an environment's state: pure rules, no store, no clock."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from checks.monitor.results import CheckResult
from checks.monitor.state import Status, environment_state, incident_action, is_flip, next_status

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def r(state: str, i: int = 0, reason: str | None = None) -> CheckResult:
    return CheckResult("health", "api", state, reason or (None if state == "ok" else f"got {state}"),
                       T0 + timedelta(seconds=30 * i))


def walk(states: list[str], threshold: int) -> list[Status]:
    out: list[Status] = []
    previous = None
    for i, s in enumerate(states):
        previous = next_status(previous, r(s, i), threshold)
        out.append(previous)
    return out


def test_a_check_turns_failing_only_after_threshold_consecutive_failures():
    assert [s.state for s in walk(["failing", "failing", "failing"], 3)] == ["warning", "warning", "failing"]
    assert [s.failures for s in walk(["failing", "failing", "failing"], 3)] == [1, 2, 3]


def test_flapping_shows_as_warning_and_never_reaches_failing():
    assert [s.state for s in walk(["failing", "ok", "failing", "ok", "failing"], 2)] == [
        "warning", "ok", "warning", "ok", "warning"]


def test_the_first_success_is_ok_again_and_forgets_the_failures():
    states = walk(["failing", "failing", "ok", "failing"], 2)
    assert [s.state for s in states] == ["warning", "failing", "ok", "warning"]
    assert states[2].failures == 0 and states[2].reason is None


def test_the_reason_says_how_far_from_failing_a_warning_is():
    [first] = walk(["failing"], 2)
    assert first.reason == "got failing (failure 1 of 2 before failing)"


def test_a_threshold_of_one_fails_at_once():
    assert walk(["failing"], 1)[0].state == "failing"
    assert walk(["failing"], 0)[0].state == "failing"  # nonsense thresholds act as 1


def test_error_stays_error_and_neither_counts_nor_forgets_failures():
    states = walk(["failing", "error", "error", "failing"], 2)
    assert [s.state for s in states] == ["warning", "error", "error", "failing"]
    assert [s.failures for s in states] == [1, 1, 1, 2]


def test_a_warning_result_is_a_warning_not_a_failure():
    states = walk(["failing", "warning", "failing"], 2)
    assert [s.state for s in states] == ["warning", "warning", "warning"]
    assert states[1].failures == 0


def test_since_is_when_the_state_began():
    states = walk(["ok", "ok", "failing", "failing"], 1)
    assert [s.since for s in states] == [T0, T0, T0 + timedelta(seconds=60), T0 + timedelta(seconds=60)]


def test_a_flip_is_a_change_of_state_only():
    a = Status("warning", "x (failure 1 of 3 before failing)", 1, T0)
    b = Status("warning", "x (failure 2 of 3 before failing)", 2, T0)
    assert is_flip(None, a) and not is_flip(a, b) and is_flip(b, Status("failing", "x", 3, T0))


def test_an_environment_is_as_bad_as_its_worst_check():
    assert environment_state(["ok", "warning", "ok"]) == "warning"
    assert environment_state(["ok", "error", "warning"]) == "error"
    assert environment_state(["error", "failing"]) == "failing"
    assert environment_state(["ok", "unknown"]) == "unknown"
    assert environment_state([]) == "unknown"


def test_an_incident_opens_on_failing_and_closes_only_when_ok():
    assert incident_action("failing", False) == "open"
    assert incident_action("failing", True) is None
    assert incident_action("warning", True) is None
    assert incident_action("error", True) is None
    assert incident_action("ok", True) == "close"
    assert incident_action("ok", False) is None
