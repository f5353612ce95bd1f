"""A Coolify-compatible API for tests and the demo: applications, deployments, faults.

    server = CoolifyServer(token="t0ken").start()          # 127.0.0.1, a free port
    app = server.add_application(name="avatar-studio", post_deployment_command=None)
    dep = server.add_deployment(app, commit=SHA, status="in_progress")
    server.set_deployment_status(dep, "finished")           # moves on during a test
    server.fault = Fault("rate_limited", retry_after=2)     # 401, 403, 404, 429, 5xx HTML, hang
    ...; server.stop()

    python -m examples.services.coolify --port 8000 --state coolify-state.json [--token-env NAME]

It answers the read side Driftwatch uses, shaped as Coolify 4.3 answers it (not only as its
OpenAPI file says; ../shared/coolify/README.md): `GET /api/health`, `/api/v1/health`,
`/api/v1/version` (text/html), `/api/v1/applications[?tag=]`, `/api/v1/applications/{uuid}`
(with `settings`), `/api/v1/deployments` (queued and in_progress only),
`/api/v1/deployments/{uuid}`, `/api/v1/deployments/applications/{uuid}?skip&take`
(`{count, deployments}`, newest first), and 405 for a GET on `/deploy`. Authentication is a
bearer token (401 `Unauthenticated.` otherwise); errors are JSON when the request accepts JSON,
an HTML page otherwise, as Laravel does.

Every answer is recorded in `server.exchanges` so that tests can validate each one against
the spec subset (tests/fixtures/coolify/openapi-subset.yaml).

With `--state FILE` the applications and deployments come from a JSON file (written by
`CoolifyServer.save_state`, or by hand), read again whenever it changes, so a demo can move a
deployment on, or inject a fault, by rewriting the file:

    {"token": "…",                                   # $COOLIFY_TOKEN (--token-env) wins when set
     "applications": [{"uuid": "sos80kw4koscosckww0wc4co", "name": "avatar-studio",
                       "post_deployment_command": null}],
     "deployments": [{"application": "sos80kw4koscosckww0wc4co", "commit": "<40-hex>",
                      "status": "finished", "created_at": "2025-10-12T08:33:57.000000Z",
                      "finished_at": "2025-10-12T08:36:40.000000Z"}],
     "fault": {"kind": "rate_limited", "retry_after": "30"},        # optional, see FAULTS
     "list_shape": "count_deployments"}                            # or bare_array, object_keyed
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import string
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .background import BackgroundServer, quiet, serve_until_stopped

__all__ = ["CoolifyServer", "Exchange", "Fault", "FAULTS", "coolify_time", "main"]

VERSION = "4.3.11"
FAULTS = ("unauthorized", "invalid_token", "missing_ability", "api_disabled", "ip_not_allowed", "not_found",
          "rate_limited", "html_500", "html_502", "json_500", "hang")
# Shapes of the per-application deployment list: what every release sends, what the spec
# says, and a quirk of Coolify's JSON encoder (an object keyed by position).
LIST_SHAPES = ("count_deployments", "bare_array", "object_keyed")


def coolify_time(when: datetime | None = None) -> str:
    """Laravel's timestamp format: ISO 8601 in UTC with microseconds."""
    when = when or datetime.now(timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_uuid() -> str:
    """24 lowercase letters and digits, as current Coolify releases make them."""
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(24))


@dataclass
class Fault:
    """Make the server misbehave: `kind` is one of FAULTS; `path` limits it to request paths
    containing that text; `retry_after` is the 429's header; `hang_s` how long `hang` holds."""

    kind: str
    path: str | None = None
    retry_after: str = "60"
    hang_s: float = 30.0

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise ValueError(f"unknown fault {self.kind!r}; expected one of {', '.join(FAULTS)}")


@dataclass(frozen=True)
class Exchange:
    """One answer the server sent: enough to validate it against the spec."""

    method: str
    path: str  # as requested, without the query
    route: str | None  # the spec's path template (`/deployments/{uuid}`), None when unknown
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str]


def application_record(uuid: str, name: str, *, status: str = "running:healthy", git_branch: str = "main",
                       git_repository: str = "acme/avatar-studio", fqdn: str | None = None,
                       post_deployment_command: str | None = None,
                       pre_deployment_command: str | None = None, **extra: Any) -> dict[str, Any]:
    """An Application as `GET /applications/{uuid}` returns it (a realistic subset of fields)."""
    now = coolify_time()
    record: dict[str, Any] = {
        "uuid": uuid, "name": name, "description": None, "repository_project_id": None, "fqdn": fqdn,
        "config_hash": secrets.token_hex(16), "git_repository": git_repository, "git_branch": git_branch,
        "git_commit_sha": "HEAD", "git_full_url": None, "docker_registry_image_name": None,
        "docker_registry_image_tag": None, "build_pack": "nixpacks", "static_image": "nginx:alpine",
        "install_command": None, "build_command": None, "start_command": None, "ports_exposes": "3001",
        "ports_mappings": None, "base_directory": "/", "publish_directory": "/", "health_check_enabled": True,
        "health_check_path": "/health", "health_check_port": None, "health_check_host": "localhost",
        "health_check_method": "GET", "health_check_return_code": 200, "health_check_scheme": "http",
        "health_check_response_text": None, "health_check_interval": 5, "health_check_timeout": 5,
        "health_check_retries": 10, "health_check_start_period": 5, "limits_memory": "0",
        "limits_memory_swap": "0", "limits_memory_swappiness": 60, "limits_memory_reservation": "0",
        "limits_cpus": "0", "limits_cpuset": None, "limits_cpu_shares": 1024, "status": status,
        "preview_url_template": "{{pr_id}}.{{domain}}", "max_restart_count": 10,
        "destination_type": "App\\Models\\StandaloneDocker", "destination_id": 1, "source_id": 1,
        "environment_id": 1, "dockerfile_location": "/Dockerfile", "dockerfile_target_build": None,
        "docker_compose_location": "/docker-compose.yaml", "docker_compose_domains": None,
        "docker_compose_custom_start_command": None, "docker_compose_custom_build_command": None,
        "swarm_replicas": 1, "swarm_placement_constraints": None, "custom_docker_run_options": None,
        "post_deployment_command": post_deployment_command, "post_deployment_command_container": None,
        "pre_deployment_command": pre_deployment_command, "pre_deployment_command_container": None,
        "watch_paths": None, "custom_healthcheck_found": False, "redirect": "both", "created_at": now,
        "updated_at": now, "deleted_at": None, "compose_parsing_version": "3", "custom_nginx_configuration": None,
        "is_http_basic_auth_enabled": False, "http_basic_auth_username": None,
    }
    record.update(extra)
    return record


def deployment_record(row_id: int, application: str, application_name: str, *, uuid: str, commit: str = "HEAD",
                      status: str = "queued", created_at: str | None = None, finished_at: str | None = None,
                      pull_request_id: int = 0, is_webhook: bool = True, **extra: Any) -> dict[str, Any]:
    """An ApplicationDeploymentQueue row as Coolify returns it (plus `_application`, ours, never sent)."""
    created = created_at or coolify_time()
    return {
        "id": row_id, "application_id": str(row_id + 10), "deployment_uuid": uuid,
        "pull_request_id": pull_request_id, "docker_registry_image_tag": None, "configuration_hash": None,
        "force_rebuild": False, "commit": commit, "status": status, "is_webhook": is_webhook,
        "is_api": not is_webhook, "created_at": created, "updated_at": finished_at or created,
        "current_process_id": None, "restart_only": False, "git_type": None, "server_id": 0,
        "application_name": application_name, "server_name": "localhost",
        "deployment_url": f"/project/{new_uuid()}/environment/{new_uuid()}/application/{application}/deployment/{uuid}",
        "destination_id": "0", "only_this_server": False, "rollback": False, "commit_message": None,
        "finished_at": finished_at, "_application": application, **extra,
    }


_SETTINGS = {
    "is_static": False, "is_git_submodules_enabled": True, "is_git_lfs_enabled": True,
    "is_auto_deploy_enabled": True, "is_force_https_enabled": True, "is_debug_enabled": False,
    "is_preview_deployments_enabled": False, "is_log_drain_enabled": False, "is_gpu_enabled": False,
    "gpu_driver": "nvidia", "gpu_count": None, "gpu_device_ids": None, "gpu_options": None,
    "is_include_timestamps": False, "is_swarm_only_worker_nodes": True, "is_raw_compose_deployment_enabled": False,
    "is_build_server_enabled": False, "is_consistent_container_name_enabled": False, "is_gzip_enabled": True,
    "is_stripprefix_enabled": True, "connect_to_docker_network": False, "custom_internal_name": None,
    "is_container_label_escape_enabled": True, "is_env_sorting_enabled": False,
    "is_container_label_readonly_enabled": True, "is_preserve_repository_enabled": False,
    "disable_build_cache": False, "is_spa": False, "is_git_shallow_clone_enabled": True,
    "is_pr_deployments_public_enabled": False, "use_build_secrets": False,
    "inject_build_args_to_dockerfile": True, "include_source_commit_in_build": False,
    "docker_images_to_keep": 2, "stop_grace_period": None,
}


class CoolifyServer(BackgroundServer):
    """The API on a background thread; everything about it can be changed while it runs."""

    thread_name = "coolify-api"

    def __init__(self, token: str = "", *, host: str = "127.0.0.1", port: int = 0,
                 state_file: str | os.PathLike[str] | None = None) -> None:
        super().__init__(host=host, port=port)
        self.token = token
        self._token_fixed = bool(token)  # a token given here wins over the state file's
        self.applications: dict[str, dict[str, Any]] = {}
        self.deployments: list[dict[str, Any]] = []
        self.fault: Fault | None = None
        self.list_shape = "count_deployments"
        self.exchanges: list[Exchange] = []
        self.requests = 0
        self.state_file = Path(state_file) if state_file else None
        self._state_mtime: float | None = None
        self._lock = threading.RLock()
        self._next_id = 1
        self._stop_event = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"api": self})

    def _starting(self) -> None:
        self._reload_state()

    def _stopping(self) -> None:
        self._stop_event.set()

    # -- state ------------------------------------------------------------------------------

    def add_application(self, uuid: str | None = None, name: str = "avatar-studio", **fields: Any) -> str:
        uuid = uuid or new_uuid()
        with self._lock:
            self.applications[uuid] = application_record(uuid, name, **fields)
        return uuid

    def update_application(self, uuid: str, **fields: Any) -> None:
        with self._lock:
            self.applications[uuid].update(fields, updated_at=coolify_time())

    def add_deployment(self, application: str, *, commit: str = "HEAD", status: str = "queued",
                       pull_request_id: int = 0, commit_message: str | None = None,
                       created_at: datetime | None = None, finished_at: datetime | None = None,
                       restart_only: bool = False, is_webhook: bool = True, uuid: str | None = None,
                       **extra: Any) -> str:
        """A deployment of `application`; `finished_at` is set for terminal statuses unless given."""
        with self._lock:
            app = self.applications[application]
            row_id = self._next_id
            self._next_id += 1
            uuid = uuid or new_uuid()
            ended = None
            if status in ("finished", "failed", "cancelled-by-user"):
                ended = coolify_time(finished_at)
            self.deployments.append(deployment_record(
                row_id, application, app["name"], uuid=uuid, commit=commit, status=status,
                pull_request_id=pull_request_id, commit_message=commit_message, created_at=coolify_time(created_at),
                finished_at=ended, restart_only=restart_only, is_webhook=is_webhook, **extra))
        return uuid

    def set_deployment_status(self, uuid: str, status: str, *, commit: str | None = None,
                              commit_message: str | None = None) -> None:
        """Move a deployment on (queued → in_progress → finished/failed), as Coolify would."""
        with self._lock:
            row = self._deployment(uuid)
            if row is None:
                raise KeyError(uuid)
            row["status"] = status
            now = coolify_time()
            row["updated_at"] = now
            if commit is not None:
                row["commit"] = commit
            if commit_message is not None:
                row["commit_message"] = commit_message
            if status in ("finished", "failed", "cancelled-by-user"):
                row["finished_at"] = now

    def save_state(self, path: str | os.PathLike[str]) -> None:
        """Write applications, deployments and the fault as the JSON `--state` reads."""
        with self._lock:
            data: dict[str, Any] = {"token": self.token, "applications": list(self.applications.values()),
                                    "deployments": self.deployments, "list_shape": self.list_shape}
            if self.fault is not None:
                data["fault"] = dict(vars(self.fault))
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)

    def _reload_state(self) -> None:
        if self.state_file is None:
            return
        try:
            mtime = self.state_file.stat().st_mtime
        except OSError:
            return
        if mtime == self._state_mtime:
            return
        data = json.loads(self.state_file.read_text())
        with self._lock:
            self._state_mtime = mtime
            if data.get("token") and not self._token_fixed:
                self.token = data["token"]
            self.applications = {a["uuid"]: {**application_record(a["uuid"], a.get("name", "app")), **a}
                                 for a in data.get("applications", [])}
            # A hand-written file may give only what matters (application, commit, status, times).
            self.deployments = []
            for i, d in enumerate(data.get("deployments", []), start=1):
                app = d.get("_application") or d.get("application") or next(iter(self.applications), "")
                name = self.applications.get(app, {}).get("name", "app")
                template = deployment_record(int(d.get("id", i)), app, name, uuid=d.get("deployment_uuid") or new_uuid())
                self.deployments.append({**template, **{k: v for k, v in d.items() if k != "application"}})
            self._next_id = max([int(d.get("id", 0)) for d in self.deployments] + [0]) + 1
            fault = data.get("fault")
            self.fault = Fault(**fault) if isinstance(fault, dict) else None
            self.list_shape = data.get("list_shape", "count_deployments")

    def _deployment(self, uuid: str) -> dict[str, Any] | None:
        return next((d for d in self.deployments if d["deployment_uuid"] == uuid), None)

    # -- answering --------------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes, str | None]:
        """(status, headers, body, spec route) for one request; the handler only sends it."""
        self._reload_state()
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        wants_json = "json" in headers.get("accept", "").lower()
        route = _route(path)

        fault = self.fault
        if fault is not None and (fault.path is None or fault.path in path):
            answered = self._fault(fault, wants_json)
            if answered is not None:
                return (*answered, route)

        if path in ("/api/health", "/api/v1/health") and method == "GET":
            return 200, {"Content-Type": "text/html; charset=UTF-8"}, b"OK", route
        if not path.startswith("/api/v1/"):
            return (*_error(404, "Not Found", wants_json), route)
        if method == "GET" and (path == "/api/v1/deploy" or re.fullmatch(r"/api/v1/applications/[^/]+/(start|restart|stop)", path)):
            status, hdrs, body = _json(405, {"message": "This endpoint has changed to a POST request."})
            return status, {**hdrs, "Allow": "POST"}, body, route

        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not self.token or not secrets.compare_digest(auth[7:].strip(), self.token):
            return (*_json(401, {"message": "Unauthenticated."}), route)
        if method != "GET":
            return (*_error(405, "Method Not Allowed", wants_json), route)
        with self._lock:
            return (*self._get(path, query), route)

    def _get(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if path == "/api/v1/version":
            return 200, {"Content-Type": "text/html; charset=UTF-8"}, VERSION.encode()
        if path == "/api/v1/applications":
            apps = [_public(a, with_settings=False) for a in self.applications.values()
                    if not query.get("tag") or query["tag"] in a.get("tags", [])]
            return _json(200, apps)
        m = re.fullmatch(r"/api/v1/applications/([^/]+)", path)
        if m:
            app = self.applications.get(m.group(1))
            if app is None:
                return _json(404, {"message": "Application not found."})
            return _json(200, _public(app, with_settings=True))
        if path == "/api/v1/deployments":
            active = sorted((d for d in self.deployments if d["status"] in ("queued", "in_progress")),
                            key=lambda d: d["id"])
            rows = [_public(d) for d in active]
            if self.list_shape == "object_keyed" and len(rows) > 1:
                return _json(200, {str(i): r for i, r in reversed(list(enumerate(rows)))})
            return _json(200, rows)
        m = re.fullmatch(r"/api/v1/deployments/applications/([^/]+)", path)
        if m:
            if m.group(1) not in self.applications:
                return _json(404, {"message": "Application not found"})
            try:
                skip, take = int(query.get("skip", "0")), int(query.get("take", "10"))
            except ValueError:
                return _json(422, {"message": "The given data was invalid.", "errors": {"take": ["The take field must be an integer."]}})
            if take < 1:
                return _json(422, {"message": "The take field must be at least 1.",
                                   "errors": {"take": ["The take field must be at least 1."]}})
            mine = [d for d in self.deployments if d.get("_application") == m.group(1)
                    or (d.get("_application") is None and d.get("application_name") == self.applications[m.group(1)]["name"])]
            mine.sort(key=lambda d: (d["created_at"], d["id"]), reverse=True)
            page = [_public(d) for d in mine[max(skip, 0):max(skip, 0) + take]]
            if self.list_shape == "bare_array":
                return _json(200, page)
            if self.list_shape == "object_keyed":
                return _json(200, {"count": len(mine), "deployments": {str(i): r for i, r in reversed(list(enumerate(page)))}})
            return _json(200, {"count": len(mine), "deployments": page})
        m = re.fullmatch(r"/api/v1/deployments/([^/]+)", path)
        if m:
            row = self._deployment(m.group(1))
            if row is None:
                return _json(404, {"message": "Deployment not found."})
            return _json(200, _public(row))
        return _json(404, {"message": "Not found."})

    def _fault(self, fault: Fault, wants_json: bool) -> tuple[int, dict[str, str], bytes] | None:
        kind = fault.kind
        if kind == "hang":
            self._stop_event.wait(fault.hang_s)
            return _error(504, "Gateway Timeout", False)
        if kind == "unauthorized":
            return _json(401, {"message": "Unauthenticated."})
        if kind == "invalid_token":
            return _json(400, {"message": "Invalid token.", "docs": "https://coolify.io/docs/api-reference/authorization"})
        if kind == "missing_ability":
            return _json(403, {"message": "Missing required permissions: read"})
        if kind == "api_disabled":
            return _json(403, {"success": True, "message": "API is disabled."})
        if kind == "ip_not_allowed":
            return _json(403, {"message": "You are not allowed to access the API."})
        if kind == "not_found":
            return _json(404, {"message": "Application not found."})
        if kind == "rate_limited":
            status, headers, body = _error(429, "Too Many Attempts.", wants_json)
            return status, {**headers, "Retry-After": fault.retry_after, "X-RateLimit-Limit": "200",
                            "X-RateLimit-Remaining": "0"}, body
        if kind == "html_500":
            return _error(500, "Server Error", False)
        if kind == "json_500":
            return _json(500, {"message": "Server Error"})
        if kind == "html_502":
            return 502, {"Content-Type": "text/html"}, (b"<html><head><title>502 Bad Gateway</title></head><body>"
                                                      b"<center><h1>502 Bad Gateway</h1></center></body></html>")
        return None


def _route(path: str) -> str | None:
    """The spec's path template for a request path (relative to /api/v1)."""
    if path == "/api/health":
        return "/health"
    if not path.startswith("/api/v1"):
        return None
    rel = path[len("/api/v1"):] or "/"
    for pattern, template in (
        (r"/version", "/version"), (r"/health", "/health"), (r"/applications", "/applications"),
        (r"/applications/[^/]+", "/applications/{uuid}"), (r"/deployments", "/deployments"),
        (r"/deployments/applications/[^/]+", "/deployments/applications/{uuid}"),
        (r"/deployments/[^/]+", "/deployments/{uuid}"), (r"/deploy", "/deploy"),
        (r"/applications/[^/]+/start", "/applications/{uuid}/start"),
        (r"/applications/[^/]+/restart", "/applications/{uuid}/restart"),
    ):
        if re.fullmatch(pattern, rel):
            return template
    return None


def _public(row: dict[str, Any], *, with_settings: bool = False) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if not k.startswith("_") and k != "tags"}
    if with_settings:
        out["settings"] = dict(_SETTINGS)
    return out


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    # Laravel escapes slashes; clients must parse JSON, never match raw bodies.
    body = json.dumps(payload).replace("/", "\\/").encode()
    return status, {"Content-Type": "application/json"}, body


def _error(status: int, message: str, wants_json: bool) -> tuple[int, dict[str, str], bytes]:
    """A framework error: JSON when the request accepts JSON, else Laravel's HTML page."""
    if wants_json:
        return _json(status, {"message": message})
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><title>{message}</title></head>"
            f"<body><div class=\"code\">{status}</div><div class=\"message\">{message}</div></body></html>")
    return status, {"Content-Type": "text/html; charset=UTF-8"}, page.encode()


class _Handler(BaseHTTPRequestHandler):
    api: CoolifyServer
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.api._lock:
            self.api.requests += 1
        status, extra, body, route = self.api.answer(method, self.path, headers)
        extra = {"Content-Length": str(len(body)), **extra}
        with self.api._lock:
            self.api.exchanges.append(Exchange(method, urlsplit(self.path).path, route, status,
                                               extra.get("Content-Type", ""), body, dict(extra)))
        try:
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    log_message = quiet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.services.coolify", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state", metavar="FILE", help="applications and deployments (JSON), re-read when changed")
    parser.add_argument("--token-env", metavar="NAME", default="COOLIFY_TOKEN",
                        help="environment variable holding the accepted API token (default COOLIFY_TOKEN; "
                             "the state file's token otherwise)")
    args = parser.parse_args(argv)
    server = CoolifyServer(os.environ.get(args.token_env, ""), host=args.host, port=args.port,
                           state_file=args.state)
    return serve_until_stopped(server, "coolify")


if __name__ == "__main__":
    raise SystemExit(main())
