"""Health and smoke checks: HTTP requests whose answers are judged by Gatus-style conditions.

All requests of a round go through one `httpx.AsyncClient` (`make_client`: connection
reuse, at most `concurrency` connections, see http_transport.py) and a semaphore of the same size;
`HttpChecker` keeps that client between rounds. No server can hold a round:
every check runs under an asyncio deadline of its `timeout_s` (httpx's own timeouts are per
read, so a server trickling one byte a second would otherwise never time out), bodies are
read to at most `MAX_BODY_BYTES`, and redirects are followed by hand, at most
`MAX_REDIRECTS`, without reading the redirect responses' bodies.

The state returned is the raw observation: `ok`, `failing` (the endpoint answered wrongly or
not at all), or `error` (Driftwatch could not run the check: an unresolved secret). Turning
repeated failures into `failing` is the poller's job (`failure_threshold`).

Nothing that leaves this module carries a secret: reasons, URLs and body excerpts are
scrubbed of the check's resolved secrets, of URL passwords and of credential-looking query
parameters and JSON keys.
"""
from __future__ import annotations

import asyncio
import functools
import http.cookiejar
import json
import logging
import re
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence
from urllib.parse import quote, urlsplit

import httpx

from ..config import HealthCheck, SmokeCheck, SmokeStep, mask_url
from .conditions import Condition, Observation, walk_path, MISSING
from .http_transport import CheckTransport, tls_context  # noqa: F401 (re-exported)
from .results import CheckResult, utcnow

# httpx logs every request with its full URL, query string included, at INFO. A smoke step's
# URL may carry a token in its query: keep that logger quiet whatever the caller configures.
logging.getLogger("httpx").setLevel(logging.WARNING)

MAX_BODY_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
EXCERPT_CHARS = 300
DEFAULT_CONCURRENCY = 64
USER_AGENT = "driftwatch-monitor"

_TEMPLATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Exchange:
    """One request's outcome: a response (possibly cut at MAX_BODY_BYTES) or why there was none."""

    observation: Observation | None
    failure: str | None = None
    content_type: str = ""
    truncated: bool = False


# --- the public probes ------------------------------------------------------------------

def make_client(*, concurrency: int = DEFAULT_CONCURRENCY, verify: bool | ssl.SSLContext = True) -> httpx.AsyncClient:
    """A client for checks: at most `concurrency` connections, kept alive per origin
    (http_transport.CheckTransport), redirects followed by hand. A check with `verify_tls = false`
    is sent over unverified connections of the same client (`verify` is the verified side)."""
    transport = CheckTransport(concurrency=max(1, concurrency), verify=verify)
    return _CheckClient(transport=transport, follow_redirects=False, trust_env=False,
                        timeout=httpx.Timeout(10.0), headers={"User-Agent": USER_AGENT})


class _NoCookieJar(http.cookiejar.CookieJar):
    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Any) -> None:
        return None


class _NoCookies(httpx.Cookies):
    """Checks share a client but never cookies: a session one endpoint sets must not change
    what another check (or the next round) sees. Also spares the per-response work httpx does
    before it asks the jar (two urllib Request/Response adapters: 7% of a round's CPU)."""

    def __init__(self) -> None:
        super().__init__(_NoCookieJar())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


_NO_COOKIES = _NoCookies()
_NO_AUTH = httpx.Auth()  # sends the request as it is


class _CheckClient(httpx.AsyncClient):
    """httpx's client whose cookies are always none (see _NoCookies)."""

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, value: Any) -> None:
        return None


async def run_health(client: httpx.AsyncClient, check: HealthCheck) -> CheckResult:
    """Request the endpoint once, judge it by its conditions, never raise."""
    started = utcnow()
    if check.problems:
        return _unobservable("health", check, started, {"status_code": None})
    needs_body = any(c.placeholder == "BODY" for c in check.conditions)
    try:
        exchange = await _exchange(client, check.method, check.url, check.headers, check.json_body, check.body,
                                   timeout_s=check.timeout_s, follow_redirects=check.follow_redirects,
                                   verify=check.verify_tls)
    except Exception as exc:  # a bug in Driftwatch, not the endpoint's fault: say so, keep the round
        return CheckResult("health", check.name, "error", _scrub(f"internal error: {type(exc).__name__}: {exc}",
                                                                 check.secrets), started, None, {"status_code": None})
    obs = exchange.observation
    detail = {"status_code": obs.status if obs else None}
    latency = obs.response_time_ms if obs else None
    if exchange.failure:
        return CheckResult("health", check.name, "failing", _scrub(exchange.failure, check.secrets), started,
                           latency, detail)
    assert obs is not None
    reason = _judge(check.conditions, obs, exchange, needs_body)
    if reason:
        return CheckResult("health", check.name, "failing", _scrub(reason, check.secrets), started, latency, detail)
    return CheckResult("health", check.name, "ok", None, started, latency, detail)


async def run_smoke(client: httpx.AsyncClient, check: SmokeCheck, *, run_id: str) -> CheckResult:
    """Run the steps in order; after a failure, run only the `always` steps whose captures
    exist (the cleanup). The first failing step's reason is the check's reason."""
    started = utcnow()
    if check.problems:
        return _unobservable("smoke", check, started, {"steps": []})
    values: dict[str, Any] = {"run_id": run_id}
    steps: list[dict[str, Any]] = []
    first_failure: str | None = None
    t0 = time.perf_counter()
    deadline = time.monotonic() + check.timeout_s
    for index, step in enumerate(check.steps, start=1):
        if first_failure is not None and not step.always:
            steps.append(_step_record(step, _fill(step.url, values, url=True), check.secrets,
                                      state="skipped", reason="skipped: an earlier step failed"))
            continue
        missing = [n for n in _names(step) if n not in values]
        if missing:
            reason = "skipped: " + ", ".join(f"{{{n}}}" for n in missing) + " was not captured"
            steps.append(_step_record(step, _fill(step.url, values, url=True), check.secrets,
                                      state="skipped", reason=reason))
            continue
        # cleanup after a failure gets its own budget: leaving test data behind is worse than a slow round
        budget = deadline - time.monotonic() if first_failure is None else check.timeout_s
        if budget <= 0.01:
            reason = f"timeout: the smoke check's {_seconds(check.timeout_s)} s deadline passed before this step"
            record = _step_record(step, _fill(step.url, values, url=True), check.secrets, state="failing",
                                  reason=reason)
            reason = record["reason"]
        else:
            record, reason = await _run_step(client, check, step, values,
                                             min(step.timeout_s or check.timeout_s, budget))
        steps.append(record)
        if reason is not None and first_failure is None:
            first_failure = f"step {index} {step.method} {_short(record['url'])}: {reason}"
    latency = (time.perf_counter() - t0) * 1000
    detail = {"steps": steps}
    if first_failure is None:
        cleanup = next((s for s in steps if s["state"] == "failing"), None)
        if cleanup is not None:
            i = steps.index(cleanup) + 1
            first_failure = f"step {i} {cleanup['method']} {_short(cleanup['url'])}: {cleanup['reason']}"
    if first_failure is not None:
        return CheckResult("smoke", check.name, "failing", _scrub(first_failure, check.secrets), started, latency,
                           detail)
    return CheckResult("smoke", check.name, "ok", None, started, latency, detail)


async def run_http_checks(checks: Iterable[HealthCheck | SmokeCheck], *, concurrency: int = DEFAULT_CONCURRENCY,
                          run_id: str | None = None) -> list[CheckResult]:
    """Run health and smoke checks at most `concurrency` at a time; results in input order.

    One round with clients of its own; a resident poller keeps an `HttpChecker` instead, so
    kept-alive connections outlive the round.
    """
    async with HttpChecker(concurrency=concurrency) as checker:
        return await checker.run(checks, run_id=run_id)


class HttpChecker:
    """A client and a concurrency bound shared by every round that uses it.

        async with HttpChecker(concurrency=64) as checker:
            results = await checker.run(env.http_checks())
    """

    def __init__(self, *, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.concurrency = max(1, concurrency)
        self._gate = asyncio.Semaphore(self.concurrency)
        self.client = make_client(concurrency=self.concurrency)

    async def __aenter__(self) -> HttpChecker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def run(self, checks: Iterable[HealthCheck | SmokeCheck], *, run_id: str | None = None) -> list[CheckResult]:
        run_id = run_id or uuid.uuid4().hex[:8]
        return list(await asyncio.gather(*(self.run_one(c, run_id=run_id) for c in checks)))

    async def run_one(self, check: HealthCheck | SmokeCheck, *, run_id: str | None = None) -> CheckResult:
        async with self._gate:
            if isinstance(check, SmokeCheck):
                return await run_smoke(self.client, check, run_id=run_id or uuid.uuid4().hex[:8])
            return await run_health(self.client, check)

    async def aclose(self) -> None:
        await self.client.aclose()


# --- one request ------------------------------------------------------------------------

async def _exchange(client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], json_body: Any,
                    body: str | None, *, timeout_s: float, follow_redirects: bool = True, verify: bool = True,
                    max_body: int = MAX_BODY_BYTES) -> Exchange:
    """Send one request (following redirects by hand) under a hard deadline of timeout_s."""
    timeout = httpx.Timeout(timeout_s)
    kwargs: dict[str, Any] = {"headers": headers, "timeout": timeout}
    if not verify:  # read by CheckTransport (a plain client ignores it)
        kwargs["extensions"] = {"driftwatch_verify": False}
    if json_body is not None:
        kwargs["json"] = json_body
    elif body is not None:
        kwargs["content"] = body.encode("utf-8")
    t0 = time.perf_counter()
    try:
        request = client.build_request(method, _parsed_url(url), **kwargs)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        return Exchange(None, f"invalid URL {mask_url(url)}: {exc}")
    response: httpx.Response | None = None
    hops: list[str] = []
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                # httpx looks for credentials in every request's URL (unquoting them); a URL
                # without any, on a client without auth, needs no auth flow: 2% of a round's CPU
                auth = _NO_AUTH if client.auth is None and not request.url.userinfo else httpx.USE_CLIENT_DEFAULT
                response = await client.send(request, stream=True, follow_redirects=False, auth=auth)
                if not (follow_redirects and response.has_redirect_location and response.next_request):
                    break
                hops.append(mask_url(str(response.headers.get("location", ""))))
                next_request = response.next_request
                await response.aclose()
                if len(hops) > MAX_REDIRECTS:
                    loop = " (a loop)" if len(set(hops)) < len(hops) else ""
                    return Exchange(Observation(connected=True, response_time_ms=_ms(t0)),
                                    f"too many redirects{loop}: more than {MAX_REDIRECTS}, "
                                    f"last to {hops[-1]}")
                request = next_request
            chunks: list[bytes] = []
            size = 0
            truncated = False
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > max_body:
                    truncated = True
                    break
            data = b"".join(chunks)[:max_body]
            elapsed = _ms(t0)
            cert = _certificate_expiration(response)
            await response.aclose()
    except TimeoutError:
        status = response.status_code if response is not None else None
        what = ("the body did not arrive" if status is not None else "no response")
        obs = Observation(status=status, connected=status is not None, response_time_ms=_ms(t0))
        return Exchange(obs, f"timeout: {what} within {_seconds(timeout_s)} s")
    except httpx.HTTPError as exc:
        if response is not None:
            await response.aclose()
        return Exchange(Observation(connected=False, response_time_ms=None), _network_reason(exc, timeout_s))
    finally:
        if response is not None and not response.is_closed:
            await response.aclose()
    obs = Observation(status=response.status_code, body=data, response_time_ms=elapsed,
                      certificate_expiration_s=cert, connected=True)
    return Exchange(obs, None, response.headers.get("content-type", ""), truncated)


@functools.lru_cache(maxsize=4096)
def _parsed_url(url: str) -> httpx.URL:
    """A check's URL parsed once, not every round (httpx.URL is immutable; a URL that does
    not parse raises here as it would in build_request)."""
    return httpx.URL(url)


def _network_reason(exc: httpx.HTTPError, timeout_s: float) -> str:
    """What went wrong below HTTP, in the words an on-call engineer searches for."""
    chain = list(_causes(exc))
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            return f"DNS: cannot resolve the host ({cause.strerror or cause})"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS: {cause.verify_message or cause.reason or 'certificate verification failed'}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
    text = str(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return f"timeout: no connection within {_seconds(timeout_s)} s"
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout)):
        return f"timeout: no response within {_seconds(timeout_s)} s"
    low = text.lower()
    if "name or service not known" in low or "nodename nor servname" in low or "temporary failure in name" in low \
            or "no address associated" in low:
        return f"DNS: cannot resolve the host ({text})"
    if "connection refused" in low or "connect call failed" in low:
        return "connection refused"
    if "certificate" in low or "ssl" in low or "tls" in low:
        return f"TLS: {text}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the HTTP exchange: {text or 'connection closed'}"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return f"unsupported URL: {text}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _causes(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
        if isinstance(current, BaseExceptionGroup):  # anyio's happy eyeballs may group them
            current = current.exceptions[0] if current.exceptions else None


def _certificate_expiration(response: httpx.Response) -> float | None:
    """Seconds until the server certificate expires (negative: expired), when verified TLS."""
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return None
    try:
        cert = ssl_object.getpeercert()
        not_after = cert.get("notAfter") if cert else None
        return ssl.cert_time_to_seconds(not_after) - time.time() if not_after else None
    except (ValueError, AttributeError):
        return None


def _judge(conditions: Sequence[Condition], obs: Observation, exchange: Exchange, needs_body: bool) -> str | None:
    """The reason the response fails its conditions (the first that fails), or None."""
    if exchange.truncated and needs_body:
        return f"body larger than {MAX_BODY_BYTES // 1024} KiB (not read further); [BODY] conditions not checked"
    failed = [(c, o) for c, o in ((c, c.evaluate(obs)) for c in conditions) if not o.passed]
    if not failed:
        return None
    condition, first = failed[0]
    text = first.reason or f"{condition.source}: failed"
    if first.kind == "not_json":
        text = f"body not JSON ({_describe_body(exchange)}): {condition.source}"
    elif first.kind == "latency":
        text = f"latency over budget: {first.reason}"
    if len(failed) > 1:
        text += f" (and {len(failed) - 1} more condition{'s' * (len(failed) > 2)} failed)"
    return text


def _describe_body(exchange: Exchange) -> str:
    obs = exchange.observation
    kind = exchange.content_type.split(";")[0].strip() or "no content type"
    if obs is None or not obs.body:
        return f"{kind}, empty"
    start = obs.body[:40].decode("utf-8", "replace").strip().replace("\n", " ")
    return f"{kind}, starts {json.dumps(start, ensure_ascii=False)}"


# --- smoke steps ------------------------------------------------------------------------

async def _run_step(client: httpx.AsyncClient, check: SmokeCheck, step: SmokeStep, values: dict[str, Any],
                    timeout_s: float) -> tuple[dict[str, Any], str | None]:
    url = _fill(step.url, values, url=True)
    headers = {**check.headers, **step.headers}
    headers = {k: _fill(v, values) for k, v in headers.items()}
    json_body = _fill_json(step.json_body, values) if step.json_body is not None else None
    body = _fill(step.body, values) if step.body is not None else None
    needs_body = bool(step.capture) or any(c.placeholder == "BODY" for c in step.conditions)
    try:
        exchange = await _exchange(client, step.method, url, headers, json_body, body, timeout_s=timeout_s,
                                   verify=check.verify_tls)
    except Exception as exc:  # a bug here must not end the cleanup of the others
        reason = f"internal error: {type(exc).__name__}: {exc}"
        return _step_record(step, url, check.secrets, state="error", reason=reason), reason
    obs = exchange.observation
    status = obs.status if obs else None
    latency = obs.response_time_ms if obs else None
    reason = exchange.failure
    if reason is None and obs is not None:
        reason = _judge(step.conditions, obs, exchange, needs_body)
        if reason is None:
            reason = _capture(step, obs, values)
    excerpt = _excerpt(obs.body, exchange.content_type, check.secrets) if (reason and obs and obs.body) else None
    state = "ok" if reason is None else "failing"
    record = _step_record(step, url, check.secrets, state=state, reason=reason, status_code=status,
                          latency_ms=latency, excerpt=excerpt)
    return record, (record["reason"] if reason else None)


def _capture(step: SmokeStep, obs: Observation, values: dict[str, Any]) -> str | None:
    if not step.capture:
        return None
    try:
        data = obs.json()
    except ValueError:
        return f"capture {next(iter(step.capture))}: body not JSON"
    for name, expr in step.capture.items():
        value = walk_path(data, expr.path)
        if value is MISSING or value is None or isinstance(value, (dict, list)):
            return f"capture {name}: {expr.source.removesuffix(' == x')} is not a value in the body"
        values[name] = value
    return None


def _step_record(step: SmokeStep, url: str, secrets: Sequence[str], *, state: str, reason: str | None,
                 status_code: int | None = None, latency_ms: float | None = None,
                 excerpt: str | None = None) -> dict[str, Any]:
    return {"method": step.method, "url": _scrub(mask_url(url), secrets), "status_code": status_code,
            "latency_ms": None if latency_ms is None else round(latency_ms, 1), "state": state,
            "reason": _scrub(reason, secrets) if reason else None, "excerpt": excerpt}


def _names(step: SmokeStep) -> list[str]:
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            found.extend(_TEMPLATE.findall(v))
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk([step.url, step.headers, step.json_body, step.body])
    return list(dict.fromkeys(found))


def _fill(text: str, values: dict[str, Any], *, url: bool = False) -> str:
    """Put run_id and captured values into a template; unknown names stay as written."""
    def one(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            return m.group(0)
        value = str(values[m.group(1)])
        return quote(value, safe="") if url else value
    return _TEMPLATE.sub(one, text)


def _fill_json(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _TEMPLATE.fullmatch(value)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]  # keep a captured number a number
        return _fill(value, values)
    if isinstance(value, dict):
        return {k: _fill_json(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_json(v, values) for v in value]
    return value


# --- scrubbing and small helpers ----------------------------------------------------------

def _excerpt(body: bytes, content_type: str, secrets: Sequence[str]) -> str:
    """The first EXCERPT_CHARS of a failing response, secrets scrubbed (JSON: by key too)."""
    from ..history.records import scrub_json

    text = body[: EXCERPT_CHARS * 4].decode("utf-8", "replace")
    try:
        data = json.loads(body.decode("utf-8"))
        text = json.dumps(scrub_json(data), ensure_ascii=False, separators=(",", ":"))
    except (UnicodeDecodeError, ValueError):
        pass
    text = _scrub(text, secrets)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _scrub(text: str, secrets: Sequence[str]) -> str:
    from ..history.records import scrub_text

    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
            bare = secret.split(" ", 1)[1] if secret.lower().startswith(("bearer ", "basic ", "token ")) else ""
            if len(bare) >= 4:
                text = text.replace(bare, "***")
    text = re.sub(r"(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}", r"\1***", text, flags=re.IGNORECASE)
    return scrub_text(text)


def _unobservable(kind: str, check: HealthCheck | SmokeCheck, started: datetime, detail: dict[str, Any]) -> CheckResult:
    problem = check.problems[0].message
    more = f" (and {len(check.problems) - 1} more)" if len(check.problems) > 1 else ""
    return CheckResult(kind, check.name, "error", f"not checked: {problem}{more}", started, None, detail)


def _short(url: str) -> str:
    """`…/projects`: the tail of a URL, enough to tell the steps apart in one line."""
    path = urlsplit(url).path.rstrip("/")
    tail = path.rsplit("/", 1)[-1] if path else ""
    return f"…/{tail}" if tail else url


def _seconds(value: float) -> str:
    """`5`, `0.5`, `12.3`: a timeout as a person would write it."""
    return f"{value:g}" if round(value, 1) == value else f"{value:.1f}"


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000

