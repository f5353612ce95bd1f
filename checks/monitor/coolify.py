"""The deployment probe: what Coolify says is deployed, and whether it went well.

    await check_deployment(client, url=…, token=…, application=UUID) -> CheckResult

Detail keys (`DETAIL_KEYS`): `status`, `deployment_uuid`, `started_at`, `finished_at`,
`deployment_url` (absolute) and `deployment_commit` describe the newest deployment that is not
queued or running (the latest outcome); `commit`, `commit_message` and `deployed_at` the
deployment whose code runs (newest finished, non-preview, real SHA); `in_progress` the queued or
running one, if any ({deployment_uuid, status, commit, started_at, deployment_url}); then
`application_name`, `application_status`, `git_branch`, `post_deployment_command`(`_container`),
`pre_deployment_command`, `migrates_on_deploy`, and on errors `http_status`, `retry_after_s`.

Two reads of Coolify's API (`GET /api/v1/deployments/applications/{uuid}` and
`GET /api/v1/applications/{uuid}`, concurrently, under one hard deadline) become one
`CheckResult` of kind ``deployment``. Its ``detail`` holds the keys `poll --format json`
shows (status, commit, deployment_uuid, started_at, finished_at, application_status,
post_deployment_command, migrates_on_deploy, …; see `DETAIL_KEYS`); ``commit`` is the SHA the
database check reads the schema at, so it is only ever a real 40-hex SHA, or None.

States (see checks/monitor/results.py):
    ok        the newest finished-or-failed deployment finished and the app is running
    warning   the newest deployment was cancelled, or the container is unhealthy/restarting
    failing   the newest deployment failed, or the application container is exited
    unknown   no deployment yet, or a status Coolify added after this was written
    error     Coolify could not be read: bad token (401, and 400 "Invalid token."), no
              permission or API disabled (403), unknown application (404), rate limited
              (429; `Retry-After` is honoured: no request before it has passed), 5xx or an
              HTML page (upgrading, restarting), a timeout, a body that is not the JSON
              Coolify sends. It says nothing about the application itself.

Coolify's quirks are handled here, once (../shared/coolify/README.md): a deployment list that is
a bare array or `{count, deployments}`, a JSON object keyed by position instead of an array,
null in fields the spec calls strings, `HEAD` instead of a SHA, `finished_at` missing after a
restart, HTML error pages. The token is sent only in the Authorization header; no reason or
detail holds it (server messages are scrubbed of it too).
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Mapping
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from .results import CheckResult, worst

__all__ = ["DETAIL_KEYS", "check_deployment", "deployed_commit", "is_sha", "migrates_on_deploy"]

KIND = "deployment"
DETAIL_KEYS = (
    "status", "commit", "deployment_uuid", "started_at", "finished_at", "deployment_url",
    "deployment_commit", "deployed_at", "commit_message", "in_progress", "application_name", "application_status", "git_branch",
    "post_deployment_command", "post_deployment_command_container", "pre_deployment_command",
    "migrates_on_deploy", "http_status", "retry_after_s",
)

TERMINAL = ("finished", "failed", "cancelled-by-user")
ACTIVE = ("queued", "in_progress")
TAKE = 20  # newest deployments read at once; enough to find the deployed one behind a few failures
MAX_SCAN = 100  # older pages are read until the deployed commit is found, up to this many rows
MAX_BODY = 4 * 1024 * 1024  # a deployment list is a few KB; anything this big is not Coolify
DEFAULT_DEADLINE_S = 10.0

_SHA = re.compile(r"[0-9a-f]{40}")
# A post-deployment command that applies migrations: prisma's own, through any runner, or ours.
_MIGRATES = re.compile(r"\bmigrate\s+deploy\b|\bdb\s+push\b|\bmigrate\b.*\bup\b", re.I)

# Rate limits are per user or client IP for the whole API, so the pause is per instance URL.
_not_before: dict[str, float] = {}


def is_sha(value: object) -> bool:
    """Only a 40-hex value is a SHA (Coolify writes `HEAD` until the build resolves it)."""
    return isinstance(value, str) and _SHA.fullmatch(value.strip().lower()) is not None


def migrates_on_deploy(command: object) -> bool:
    """Whether a post-deployment command applies migrations (`npx prisma migrate deploy`,
    `bunx prisma migrate deploy`, `driftwatch migrate deploy`, …): the step missing in the incident."""
    return isinstance(command, str) and _MIGRATES.search(command) is not None


class _Failed(Exception):
    """A read that gave no usable answer; `reason` is the one line the result shows."""

    def __init__(self, reason: str, *, http_status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Api:
    base: str  # https://host[:port][/prefix], no trailing /api/v1
    shown: str  # the same without userinfo, for messages
    token: str

    def scrub(self, text: str) -> str:
        if self.token and len(self.token) >= 4:
            text = text.replace(self.token, "***")
        return text


async def check_deployment(
    client: httpx.AsyncClient,
    *,
    url: str,
    token: str,
    application: str,
    deadline_s: float = DEFAULT_DEADLINE_S,
    take: int = TAKE,
) -> CheckResult:
    """Read the application's newest deployments and its settings from Coolify.

    ``url`` is the instance (`https://coolify.example.com`, an `/api/v1` suffix is accepted),
    ``application`` the application's UUID. Never raises for anything the network or Coolify
    does: every failure is a result in state `error` with its reason. ``deadline_s`` bounds
    the whole probe, whatever the client's own timeouts (a server that trickles its answer
    cannot hold a polling round).
    """
    started = time.monotonic()
    api = _api(url, token)
    detail: dict[str, Any] = {key: None for key in DETAIL_KEYS}
    detail["migrates_on_deploy"] = False

    def result(state: str, reason: str | None) -> CheckResult:
        return CheckResult(KIND, KIND, state, api.scrub(reason) if reason else None,
                           latency_ms=(time.monotonic() - started) * 1000.0, detail=detail)

    if urlsplit(str(url).strip()).scheme not in ("http", "https") or not urlsplit(str(url).strip()).hostname:
        return result("error", f"the Coolify URL {api.shown!r} is not an http(s) URL")
    if not application or not str(application).strip():
        return result("error", "no Coolify application UUID configured")
    if not token:
        return result("error", f"no Coolify API token configured for {api.shown}")
    wait = _not_before.get(api.base, 0.0) - time.monotonic()
    if wait > 0:
        detail["retry_after_s"] = round(wait, 1)
        return result("error", f"Coolify at {api.shown} rate-limited Driftwatch (429): "
                               f"not asking again for {wait:.0f} s (Retry-After)")
    uuid = quote(str(application).strip(), safe="")
    reads = asyncio.gather(
        _get_json(client, api, f"/api/v1/deployments/applications/{uuid}", {"skip": "0", "take": str(take)},
                  what=f"the deployments of application {application}"),
        _get_json(client, api, f"/api/v1/applications/{uuid}", None, what=f"application {application}"),
        return_exceptions=True,
    )
    try:
        deployments_body, app_body = await asyncio.wait_for(reads, timeout=deadline_s)
    except asyncio.TimeoutError:
        return result("error", f"Coolify at {api.shown} did not answer within {deadline_s:g} s")

    for outcome in (deployments_body, app_body):
        if isinstance(outcome, BaseException) and not isinstance(outcome, _Failed):
            return result("error", f"cannot read Coolify at {api.shown}: {type(outcome).__name__}")
    # The first failure decides: both reads usually fail alike (a bad token, an unknown app).
    failed = next((o for o in (deployments_body, app_body) if isinstance(o, _Failed)), None)
    if isinstance(app_body, Mapping):
        _application_detail(app_body, detail)
    if failed is not None:
        detail["http_status"] = failed.http_status
        if failed.retry_after is not None:
            detail["retry_after_s"] = failed.retry_after
            _not_before[api.base] = time.monotonic() + failed.retry_after
        return result("error", failed.reason)
    try:
        rows = _deployment_rows(deployments_body)
    except _Failed as exc:
        return result("error", exc.reason)
    rows = await _older_pages(client, api, uuid, rows, deployments_body, take, started + deadline_s)
    if not isinstance(app_body, Mapping):
        return result("error", f"Coolify at {api.shown} answered application {application} with JSON that is "
                               f"not an object")
    state, reason = _judge(rows, detail, api, application)
    app_state, app_reason = _application_state(detail["application_status"])
    overall = worst([state, app_state])
    reasons = [r for s, r in ((state, reason), (app_state, app_reason)) if r and s == overall]
    return result(overall, "; ".join(reasons) if overall != "ok" else None)


# ---------------------------------------------------------------------------------------------
# HTTP


def _api(url: str, token: str) -> _Api:
    parts = urlsplit(str(url).strip())
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    path = parts.path.rstrip("/")
    for suffix in ("/api/v1", "/api"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    base = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    shown = urlunsplit((parts.scheme, netloc, path, "", "")) or "<Coolify URL>"
    return _Api(base, shown, token or "")


async def _get_json(client: httpx.AsyncClient, api: _Api, path: str, params: Mapping[str, str] | None,
                    *, what: str) -> Any:
    headers = {"Authorization": f"Bearer {api.token}", "Accept": "application/json"}
    try:
        async with client.stream("GET", api.base + path, params=params, headers=headers) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY:
                    raise _Failed(f"Coolify at {api.shown} sent more than {MAX_BODY // (1024 * 1024)} MiB for {what}",
                                  http_status=response.status_code)
            status, content_type = response.status_code, response.headers.get("content-type", "")
            retry_after = response.headers.get("retry-after")
    except _Failed:
        raise
    except httpx.TimeoutException:
        raise _Failed(f"Coolify at {api.shown} timed out reading {what}") from None
    except httpx.ConnectError as exc:
        raise _Failed(f"cannot connect to Coolify at {api.shown}: {_why(exc)}") from None
    except httpx.HTTPError as exc:
        raise _Failed(f"reading {what} from Coolify at {api.shown} failed: {_why(exc)}") from None
    data: Any = None
    is_json = "json" in content_type.lower()
    if is_json:
        try:
            import json

            data = json.loads(bytes(body).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            is_json = False
    if 200 <= status < 300:
        if not is_json:
            kind = "an HTML page" if "html" in content_type.lower() else f"'{content_type or 'no content type'}'"
            raise _Failed(f"Coolify at {api.shown} answered {what} with {kind}, not JSON "
                          f"(is the URL the Coolify instance?)", http_status=status)
        return data
    message = _message(data) if is_json else None
    said = f": {api.scrub(message)}" if message else ""
    if status == 401 or (status == 400 and message and "token" in message.lower()):
        raise _Failed(f"Coolify at {api.shown} rejected the API token ({status}{said}); make a new token with "
                      f"the read ability", http_status=status)
    if status == 403:
        if message and "disabled" in message.lower():
            why = "the API is disabled on this instance (Settings → Advanced → API access)"
        elif message and "permission" in message.lower():
            why = "the token lacks an ability"
        elif message and "not allowed" in message.lower():
            why = "this address is not on the instance's API allow-list"
        else:
            why = "access refused"
        raise _Failed(f"Coolify at {api.shown} refused {what} (403{said}): {why}", http_status=status)
    if status == 404:
        raise _Failed(f"Coolify at {api.shown} has no {what} (404{said}): check the application UUID "
                      f"and the token's team", http_status=status)
    if status == 429:
        seconds = _retry_after(retry_after)
        hint = f"; retrying after {seconds:g} s" if seconds is not None else ""
        raise _Failed(f"Coolify at {api.shown} rate-limited Driftwatch (429{said}){hint}", http_status=status,
                      retry_after=seconds if seconds is not None else 60.0)
    if status >= 500:
        body_kind = "an HTML page" if not is_json else "JSON"
        raise _Failed(f"Coolify at {api.shown} answered {status} with {body_kind} for {what}{said if is_json else ''}"
                      f" (restarting or upgrading?)", http_status=status)
    raise _Failed(f"Coolify at {api.shown} answered {status} for {what}{said}", http_status=status)


def _why(exc: BaseException) -> str:
    """One line: the OS's reason when httpx wraps it ("All connection attempts failed")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return "connection refused" if "refused" in line.lower() else line[:200]


def _message(data: Any) -> str | None:
    if isinstance(data, Mapping) and isinstance(data.get("message"), str):
        return " ".join(data["message"].split())[:200]
    return None


def _retry_after(value: str | None) -> float | None:
    """Retry-After is seconds or an HTTP date; anything else is ignored (60 s is assumed)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 3600))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import datetime, timezone

    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, min(3600.0, (when - datetime.now(timezone.utc)).total_seconds()))


# ---------------------------------------------------------------------------------------------
# Reading the answers


def _rows(value: Any) -> list[Any] | None:
    """A JSON list as Coolify may send it: an array, or an object keyed by position."""
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        return list(value.values())
    return None


def _deployment_rows(body: Any) -> list[Mapping[str, Any]]:
    """The deployments newest first, from `{count, deployments}` (every release) or a bare array
    (the spec); either list may come as an object keyed by position."""
    rows = _rows(body.get("deployments")) if isinstance(body, Mapping) and "deployments" in body else None
    if rows is None:
        rows = _rows(body) if not (isinstance(body, Mapping) and "count" in body) else None
    if rows is None:
        raise _Failed("Coolify's deployment list is neither an array nor {count, deployments}")
    found = [r for r in rows if isinstance(r, Mapping)]
    # Coolify orders by created_at desc, id desc; sort again in case the rows were keyed out of order.
    return sorted(found, key=lambda r: (str(r.get("created_at") or ""), _int(r.get("id")) or 0), reverse=True)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _is_preview(row: Mapping[str, Any]) -> bool:
    return (_int(row.get("pull_request_id")) or 0) > 0


def deployed_commit(rows: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The deployment whose code runs: the newest `finished` one that is not a preview
    (pull_request_id 0) and carries a real SHA (a restart-only deployment keeps `HEAD`)."""
    for row in rows:
        if row.get("status") == "finished" and not _is_preview(row) and is_sha(row.get("commit")):
            return row
    return None


async def _older_pages(client: httpx.AsyncClient, api: _Api, uuid: str, rows: list[Mapping[str, Any]], body: Any,
                       take: int, deadline: float) -> list[Mapping[str, Any]]:
    """Read older pages while the deployed commit is not among the rows (a run of failed or
    preview deployments can push it off the first page), up to MAX_SCAN rows in all. Best
    effort: a page that cannot be read ends the search, and the result says what was found."""
    total = body.get("count") if isinstance(body, Mapping) else None
    while (deployed_commit([r for r in rows if not _is_preview(r)]) is None and isinstance(total, int)
           and len(rows) < min(total, MAX_SCAN) and len(rows) % take == 0 and rows):
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            break
        try:
            more = await asyncio.wait_for(
                _get_json(client, api, f"/api/v1/deployments/applications/{uuid}",
                          {"skip": str(len(rows)), "take": str(take)}, what="older deployments"),
                timeout=remaining)
            page = _deployment_rows(more)
        except (_Failed, asyncio.TimeoutError):
            break
        if not page:
            break
        rows = rows + page
    return rows


def _ended_at(row: Mapping[str, Any]) -> str | None:
    """finished_at, else updated_at for a terminal deployment (null after a startup cleanup)."""
    if row.get("finished_at"):
        return _text(row.get("finished_at"))
    return _text(row.get("updated_at")) if row.get("status") in TERMINAL else None


def _deployment_url(api: _Api, row: Mapping[str, Any]) -> str | None:
    path = _text(row.get("deployment_url"))
    if path is None:
        return None
    return path if path.startswith(("http://", "https://")) else api.shown.rstrip("/") + "/" + path.lstrip("/")


def _judge(rows: list[Mapping[str, Any]], detail: dict[str, Any], api: _Api, application: str) -> tuple[str, str | None]:
    main = [r for r in rows if not _is_preview(r)]
    deployed = deployed_commit(main)
    if deployed is not None:
        detail["commit"] = deployed["commit"].strip().lower()
        detail["commit_message"] = _text(deployed.get("commit_message"))
        detail["deployed_at"] = _ended_at(deployed)
    running = next((r for r in main if r.get("status") in ACTIVE), None)
    if running is not None:
        detail["in_progress"] = {
            "deployment_uuid": _text(running.get("deployment_uuid")),
            "status": running.get("status"),
            "commit": running["commit"].strip().lower() if is_sha(running.get("commit")) else None,
            "started_at": _text(running.get("created_at")),
            "deployment_url": _deployment_url(api, running),
        }
    # The latest outcome: the newest deployment that is not queued or running.
    latest = next((r for r in main if r.get("status") not in ACTIVE), None) or (main[0] if main else None)
    if latest is None:
        return "unknown", f"application {application} has no deployments yet"
    status = _text(latest.get("status"))
    detail.update({
        "status": status,
        "deployment_uuid": _text(latest.get("deployment_uuid")),
        "started_at": _text(latest.get("created_at")),
        "finished_at": _ended_at(latest),
        "deployment_url": _deployment_url(api, latest),
        "deployment_commit": latest["commit"].strip().lower() if is_sha(latest.get("commit")) else None,
    })
    short = (latest["commit"].strip()[:7] if is_sha(latest.get("commit")) else None)
    of = f" of commit {short}" if short else ""
    uuid = detail["deployment_uuid"] or "?"
    if status == "finished":
        return "ok", None
    if status == "failed":
        when = f" at {detail['finished_at']}" if detail["finished_at"] else ""
        still = f"; {detail['commit'][:7]} is still the deployed commit" if detail["commit"] else ""
        return "failing", f"deployment {uuid}{of} failed{when}{still}"
    if status == "cancelled-by-user":
        return "warning", f"deployment {uuid}{of} was cancelled by a user"
    if status in ACTIVE:
        return "unknown", f"deployment {uuid}{of} is {status}; no deployment has ended yet"
    return "unknown", f"deployment {uuid}{of} has status {status!r}, which Driftwatch does not know"


def _application_detail(app: Mapping[str, Any], detail: dict[str, Any]) -> None:
    detail["application_name"] = _text(app.get("name"))
    detail["application_status"] = _text(app.get("status"))
    detail["git_branch"] = _text(app.get("git_branch"))
    for key in ("post_deployment_command", "post_deployment_command_container", "pre_deployment_command"):
        detail[key] = _text(app.get(key))
    detail["migrates_on_deploy"] = migrates_on_deploy(detail["post_deployment_command"])


def _application_state(status: str | None) -> tuple[str, str | None]:
    """The container state (`running:healthy`, `exited`, …), matched by prefix as Coolify writes it."""
    if not status:
        return "ok", None
    state, _, health = status.partition(":")
    state = state.strip().lower()
    if state.startswith("running"):
        if health.strip().lower() == "unhealthy":
            return "warning", f"application container is {status}"
        return "ok", None
    if state.startswith(("exited", "stopped", "dead")):
        return "failing", f"application container is {status} (not running)"
    if state.startswith(("starting", "restarting", "degraded", "paused")):
        return "warning", f"application container is {status}"
    return "ok", None
