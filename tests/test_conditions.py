"""Gatus-style conditions: parsing errors name the problem; failures show the value seen."""
from __future__ import annotations

import pytest

from checks.monitor.conditions import ConditionError, Observation, format_duration, parse, parse_duration

BODY = b'{"status": "degraded", "data": [{"id": 7, "name": "john smith"}], "ok": true, "n": 3.5, "none": null}'


def judge(source: str, **kwargs: object) -> tuple[bool, str | None, str]:
    obs = Observation(**{"status": 200, "body": BODY, "response_time_ms": 120.0, **kwargs})  # type: ignore[arg-type]
    out = parse(source).evaluate(obs)
    return out.passed, out.reason, out.kind


@pytest.mark.parametrize("source", [
    "[STATUS] == 200", "[STATUS] < 300", "[STATUS] >= 200", "[STATUS] != 500",
    "[STATUS] == any(200, 201)", "[BODY].data[0].id == 7", "[BODY].data[0].name == pat(john*)",
    "[BODY].data[0].name == \"john smith\"", "[BODY].data[0].name == john smith",
    "len([BODY].data) == 1", "len([BODY].data[0].name) > 5", "has([BODY].data) == true",
    "has([BODY].errors) == false", "[BODY].ok == true", "[BODY].n > 3", "[BODY].n == 3.5",
    "[BODY].none == null", "[BODY] == pat(*degraded*)", "[RESPONSE_TIME] < 800", "[CONNECTED] == true",
    "[BODY].status != ok",
])
def test_conditions_that_hold(source: str) -> None:
    assert judge(source)[:2] == (True, None)


@pytest.mark.parametrize("source, reason", [
    ("[STATUS] == 201", "[STATUS] == 201: got 200"),
    ("[BODY].status == ok", '[BODY].status == ok: got "degraded"'),
    ("[BODY].data[1].id == 7", "[BODY].data[1].id == 7: got nothing ([BODY].data[1].id is not in the body)"),
    ("len([BODY].data) > 3", "len([BODY].data) > 3: got 1"),
    ("[BODY].ok == false", "[BODY].ok == false: got true"),
    ("[STATUS] == any(201, 204)", "[STATUS] == any(201, 204): got 200"),
    ("[BODY].data[0] == x", '[BODY].data[0] == x: got {"id":7,"name":"john smith"}'),
])
def test_a_failed_condition_shows_the_value_seen(source: str, reason: str) -> None:
    passed, got, _ = judge(source)
    assert not passed
    assert got == reason


def test_response_time_failures_are_latency_over_budget() -> None:
    assert judge("[RESPONSE_TIME] < 100", response_time_ms=950.25) == (
        False, "[RESPONSE_TIME] < 100: got 950.2 ms", "latency")


def test_certificate_expiration_compares_durations() -> None:
    assert judge("[CERTIFICATE_EXPIRATION] > 168h", certificate_expiration_s=30 * 86400)[0]
    assert judge("[CERTIFICATE_EXPIRATION] > 168h", certificate_expiration_s=12 * 3600 + 180) == (
        False, "[CERTIFICATE_EXPIRATION] > 168h: got 12h3m", "condition")
    assert judge("[CERTIFICATE_EXPIRATION] > 0", certificate_expiration_s=-86400)[1] == (
        "[CERTIFICATE_EXPIRATION] > 0: got -1d (expired)")
    assert judge("[CERTIFICATE_EXPIRATION] > 48h")[1] == "[CERTIFICATE_EXPIRATION] > 48h: no certificate (not HTTPS)"


def test_a_body_path_on_a_non_json_body_is_its_own_kind_of_failure() -> None:
    out = parse("[BODY].status == ok").evaluate(Observation(status=200, body=b"<!doctype html>"))
    assert (out.passed, out.kind) == (False, "not_json")
    # the whole body as text needs no JSON
    assert parse("[BODY] == pat(*doctype*)").evaluate(Observation(status=200, body=b"<!doctype html>")).passed


def test_not_connected() -> None:
    assert judge("[CONNECTED] == true", connected=False, status=None)[1] == "[CONNECTED] == true: got false"


@pytest.mark.parametrize("source, message", [
    ("[FOO] == 1", "unknown placeholder [FOO]"),
    ("status == 200", "expected a placeholder such as [STATUS]"),
    ("[STATUS] 200", "expected an operator (== != < <= > >=) after [STATUS], got '200'"),
    ("[STATUS] ==", "nothing to compare with after =="),
    ("[STATUS] < ok", "< needs a number on the right, got 'ok'"),
    ("[STATUS].code == 1", "[STATUS] has no fields"),
    ("[BODY].a < pat(x*)", "pat(...) works with == and != only"),
    ("[CERTIFICATE_EXPIRATION] > soon", "'soon' is not a duration"),
    ("[STATUS] == any()", "any(...) needs one or more values"),
])
def test_a_bad_condition_says_what_is_wrong(source: str, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        parse(source)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_durations() -> None:
    assert parse_duration("168h") == 168 * 3600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("500ms") == 0.5
    assert parse_duration("soon") is None and parse_duration("5") is None
    assert format_duration(3 * 86400 + 4 * 3600) == "3d4h"
    assert format_duration(45) == "45s"
