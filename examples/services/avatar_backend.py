"""The sample app's backend, small but real: what the incident's users hit.

    python -m examples.services.avatar_backend --database-url URL --port 3001 --token-env AVATAR_API_TOKEN

    GET    /health                                   200 {"status": "ok"}, always (as in the incident)
    GET    /api/apps/avatar-creator/projects         the demo user's projects
    POST   /api/apps/avatar-creator/projects         {"name", "description"?} → 201 with the row;
                                                     400 while table avatar_projects is missing
    DELETE /api/apps/avatar-creator/projects/{id}    200, 404 when there is no such project

The /api routes need `Authorization: Bearer <token>` (401 otherwise); the token is read from the
environment variable named by --token-env and never printed. Every request runs real SQL on the
sample app's database (psycopg): the 400 is PostgreSQL's "relation does not exist", answered the
way the Bun + Prisma backend of the incident answered it (Prisma's P2021 in the body), and it
turns into 201 by itself once `migrate deploy` (or the fix) has created the table. Projects
belong to one demo user, created on first use.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import string
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any

from .background import BackgroundServer, quiet, serve_until_stopped

__all__ = ["AvatarBackend", "main"]

PROJECTS = "/api/apps/avatar-creator/projects"
DEMO_EMAIL = "demo@avatar-studio.local"


def cuid() -> str:
    """An id shaped like Prisma's cuid(): `c` and 24 lowercase letters and digits."""
    return "c" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(24))


class AvatarBackend(BackgroundServer):
    """The backend on a background thread (tests), or in the foreground through `main`."""

    thread_name = "avatar-backend"

    def __init__(self, database_url: str, token: str, *, host: str = "127.0.0.1", port: int = 0,
                 user_email: str = DEMO_EMAIL) -> None:
        if not token:
            raise ValueError("the backend needs an API token")
        from checks.db import split_prisma_url

        self._dsn, self._schema = split_prisma_url(database_url)
        super().__init__(host=host, port=port)
        self.token = token
        self.user_email = user_email

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"app": self})

    # -- the application --------------------------------------------------------------------

    def _connect(self):
        import psycopg

        conn = psycopg.connect(self._dsn, connect_timeout=5, autocommit=True, application_name="avatar-backend")
        conn.execute(f"SET search_path TO {_ident(self._schema)}")
        return conn

    def _user_id(self, conn) -> str:
        conn.execute('INSERT INTO users (id, email, name, password, "updatedAt") VALUES (%s, %s, %s, %s, now()) '
                     'ON CONFLICT (email) DO NOTHING', (cuid(), self.user_email, "Demo user", "!"))
        return conn.execute("SELECT id FROM users WHERE email = %s", (self.user_email,)).fetchone()[0]

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if path == "/health" and method == "GET":
            return 200, {"status": "ok"}
        if not path.startswith(PROJECTS):
            return 404, {"success": False, "error": "Not found"}
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not secrets.compare_digest(auth[7:].strip(), self.token):
            return 401, {"success": False, "error": "Unauthorized"}
        import psycopg
        from psycopg import errors

        try:
            with self._connect() as conn:
                if path == PROJECTS and method == "POST":
                    return self._create(conn, body)
                if path == PROJECTS and method == "GET":
                    with conn.transaction():
                        user = self._user_id(conn)
                        rows = conn.execute('SELECT id, "userId", name, description, "createdAt", "updatedAt" '
                                            'FROM avatar_projects WHERE "userId" = %s ORDER BY "createdAt" DESC',
                                            (user,)).fetchall()
                    return 200, {"success": True, "projects": [_project(r) for r in rows]}
                m = re.fullmatch(re.escape(PROJECTS) + r"/([A-Za-z0-9_-]+)", path)
                if m and method == "DELETE":
                    with conn.transaction():
                        gone = conn.execute("DELETE FROM avatar_projects WHERE id = %s", (m.group(1),)).rowcount
                    if not gone:
                        return 404, {"success": False, "error": "Project not found"}
                    return 200, {"success": True, "message": "Project deleted successfully"}
                return 405 if m or path == PROJECTS else 404, {"success": False, "error": "Not found"}
        except (errors.UndefinedTable, errors.UndefinedColumn) as exc:
            # What Prisma says when its query meets a table the migration never created.
            table = "avatar_projects" if "avatar_projects" in str(exc) else "?"
            return 400, {"success": False, "error": "Failed to create project" if method == "POST" else "Bad request",
                         "code": "P2021",
                         "message": f"The table `{self._schema}.{table}` does not exist in the current database."}
        except psycopg.OperationalError:
            return 500, {"success": False, "error": "Internal server error"}

    def _create(self, conn, body: bytes) -> tuple[int, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return 400, {"success": False, "error": "Invalid JSON body"}
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name.strip():
            return 400, {"success": False, "error": "Validation failed", "message": "name is required"}
        description = data.get("description") if isinstance(data.get("description"), str) else None
        with conn.transaction():
            user = self._user_id(conn)
            row = conn.execute(
                'INSERT INTO avatar_projects (id, "userId", name, description, "updatedAt") '
                'VALUES (%s, %s, %s, %s, now()) RETURNING id, "userId", name, description, "createdAt", "updatedAt"',
                (cuid(), user, name.strip()[:200], description)).fetchone()
        project = {**_project(row), "avatars": []}
        return 201, {"success": True, "id": project["id"], "project": project,
                     "message": "Project created successfully"}


def _project(row: tuple) -> dict[str, Any]:
    def iso(t: datetime) -> str:
        t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
        return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return {"id": row[0], "userId": row[1], "name": row[2], "description": row[3],
            "createdAt": iso(row[4]), "updatedAt": iso(row[5])}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Handler(BaseHTTPRequestHandler):
    app: AvatarBackend
    protocol_version = "HTTP/1.1"
    server_version = "avatar-backend"
    sys_version = ""

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20)) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        status, payload = self.app.handle(method, path, headers, body)
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    log_message = quiet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.services.avatar_backend",
                                     description="The sample app's backend on its database.")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="the sample app's database (default $DATABASE_URL)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--token-env", metavar="NAME", default="AVATAR_API_TOKEN",
                        help="environment variable holding the bearer token the API accepts")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or $DATABASE_URL) is required")
    token = os.environ.get(args.token_env, "")
    if not token:
        parser.error(f"set the API token in ${args.token_env} (or name another variable with --token-env)")
    return serve_until_stopped(AvatarBackend(args.database_url, token, host=args.host, port=args.port), "backend")


if __name__ == "__main__":
    raise SystemExit(main())
