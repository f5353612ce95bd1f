"""Validate what the Coolify test server sends against Coolify's own OpenAPI subset.

`tests/fixtures/coolify/openapi-subset.yaml` is a verbatim copy of ../shared/coolify/openapi-subset.yaml
(itself verbatim from coollabsio/coolify's openapi.yaml). Every answer the test server sends in a
test goes through `validate_exchange`, so the server cannot drift away from the real API.

Where the running Coolify differs from its spec, ../shared/coolify/README.md documents what the
server really sends, and that is what is checked here instead; each place says so:
  * GET /deployments/applications/{uuid}: `{count, deployments}` (every release), not the spec's
    "array of Application"; a bare array of deployments and an object keyed by position are
    accepted too (README: "Accept a bare array too", "an object's values").
  * GET /deployments: an array, or an object keyed by position (Coolify's JSON encoder).
  * Fields the spec types as non-nullable strings that are null in practice (README's list).
  * Status codes the operation does not list: 403 ({message}, or {success, message} when the
    API is disabled), 404 ({message}), 405 ({message} and `Allow: POST`), 429 (the spec's 429
    response, with `Retry-After`), 5xx (an HTML page; JSON {message} when JSON was accepted).
The validator is the OAS 3.0 one: the spec marks nullability with `nullable: true`.
"""
from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator

SPEC_PATH = Path(__file__).resolve().parent / "fixtures" / "coolify" / "openapi-subset.yaml"

# README, "Nulls": "Fields it types as non-nullable strings are often null in practice".
NULL_IN_PRACTICE = {
    "ApplicationDeploymentQueue": ("commit_message", "current_process_id", "git_type"),
    "Application": ("install_command", "build_command", "start_command"),
}


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


@cache
def _components() -> dict[str, Any]:
    components = copy.deepcopy(spec()["components"])
    for schema, fields in NULL_IN_PRACTICE.items():
        for name in fields:
            components["schemas"][schema]["properties"][name]["nullable"] = True
    return components


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


# README, "Errors and quirks": what the server sends where the spec says otherwise or nothing.
_ADQ_LIST = {"oneOf": [
    {"type": "array", "items": _ref("ApplicationDeploymentQueue")},
    {"type": "object", "additionalProperties": _ref("ApplicationDeploymentQueue"),
     "propertyNames": {"pattern": "^[0-9]+$"}},
]}
_README_200 = {
    "/deployments/applications/{uuid}": {"oneOf": [
        {"type": "object", "required": ["count", "deployments"],
         "properties": {"count": {"type": "integer", "minimum": 0}, "deployments": _ADQ_LIST}},
        {"type": "array", "items": _ref("ApplicationDeploymentQueue")},
    ]},
    "/deployments": _ADQ_LIST,
}
_MESSAGE = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}
_README_ERRORS = {
    403: {"type": "object", "required": ["message"],
          "properties": {"message": {"type": "string"}, "success": {"type": "boolean"},
                         "error": {"type": "string"}}},
    404: _MESSAGE,
    405: _MESSAGE,
    422: {"type": "object", "required": ["message", "errors"],
          "properties": {"message": {"type": "string"}, "errors": {"type": "object"}}},
}


def _validate(schema: dict[str, Any], instance: Any, what: str) -> None:
    root = {**schema, "components": _components()}
    from openapi_schema_validator import oas30_format_checker

    errors = sorted(OAS30Validator(root, format_checker=oas30_format_checker).iter_errors(instance), key=str)
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path)
        raise AssertionError(f"{what}: {first.message} at /{where} ({len(errors)} error(s))")


def _response(route: str, method: str, status: int) -> dict[str, Any] | None:
    operation = spec()["paths"].get(route, {}).get(method.lower())
    if operation is None:
        return None
    response = operation["responses"].get(str(status))
    if response is not None and "$ref" in response:
        response = spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def validate_exchange(ex: Any) -> None:
    """Raise AssertionError unless the answer is one Coolify sends (spec, or README where it differs)."""
    what = f"{ex.method} {ex.path} → {ex.status}"
    ctype = ex.content_type.split(";")[0].strip().lower()
    is_json = ctype == "application/json"
    body: Any = json.loads(ex.body) if is_json else ex.body.decode()
    if ex.route is None:
        raise AssertionError(f"{what}: no such path in the spec subset")
    if ex.status >= 500:  # README: proxies and Laravel answer 5xx with an HTML page
        if is_json:
            _validate(_MESSAGE, body, what)
        else:
            assert ctype == "text/html", f"{what}: 5xx as {ctype}, expected an HTML page"
        return
    if ex.status == 429:
        assert ex.headers.get("Retry-After", "").isdigit(), f"{what}: 429 without an integer Retry-After"
        response = spec()["components"]["responses"]["429"]
        if is_json:
            _validate(response["content"]["application/json"]["schema"], body, what)
        else:
            assert ctype == "text/html", what
        return
    if ex.status == 405:
        assert ex.headers.get("Allow") == "POST", f"{what}: 405 without Allow: POST"
    response = _response(ex.route, ex.method, ex.status)
    if ex.status == 200 and ex.route in _README_200:
        _validate(_README_200[ex.route], body, what)
        return
    if response is None and ex.status in _README_ERRORS:
        assert is_json, f"{what}: expected JSON"
        _validate(_README_ERRORS[ex.status], body, what)
        return
    if ex.status == 404 and response is None:
        response = spec()["components"]["responses"]["404"]
    assert response is not None, f"{what}: status not documented for this operation"
    content = response.get("content", {})
    assert ctype in content, f"{what}: content type {ctype!r}, spec has {sorted(content)}"
    _validate(content[ctype]["schema"], body, what)


def validate_all(server: Any) -> int:
    """Validate every answer the server has sent; return how many."""
    for ex in server.exchanges:
        validate_exchange(ex)
    return len(server.exchanges)
