"""Connecting to PostgreSQL, and saying why it failed without leaking a password.

Every connection Driftwatch opens goes through `connect`, so that timeouts, the
application name (visible in pg_stat_activity during an incident) and the error
wording are the same for the CLI, the dashboard and the tests.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .errors import DatabaseError, UsageError

if TYPE_CHECKING:
    import psycopg

APPLICATION_NAME = "driftwatch"
_SCHEMES = ("postgresql", "postgres")
# Query parameters Prisma's connection strings carry that libpq does not know.
PRISMA_ONLY_PARAMS = frozenset({
    "schema", "connection_limit", "pool_timeout", "pgbouncer", "statement_cache_size", "socket_timeout",
    "sslaccept", "sslidentity", "max_connection_lifetime", "max_idle_connection_lifetime",
    "single_use_connections",
})



def redact(url: str) -> str:
    """Return `postgresql://user@host:port/db`: the URL a human may see.

    Passwords (in the userinfo or as a `password=` query parameter) and every
    other query parameter are dropped; a socket directory passed as `host=` is kept
    because it says where we connected.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable database URL>"
    if parts.scheme.split("+")[0] not in _SCHEMES:
        return "<database URL>"
    user = unquote(parts.username) if parts.username else ""
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    query = dict(parse_qsl(parts.query))
    if not host and query.get("host"):
        host = query["host"]
    netloc = (f"{user}@" if user else "") + host + (f":{port}" if port else "")
    return f"postgresql://{netloc}{parts.path or '/'}"


def scrub(text: str, url: str | None = None) -> str:
    """Remove any password from a message (a driver error may quote the DSN)."""
    if url:
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            text = text.replace(password, "***")
            text = text.replace(unquote(password), "***")
    text = re.sub(r"((?:postgres(?:ql)?|sqlite|mysql)(?:\+\w+)?://[^:/@\s]*):[^@\s]*@", r"\1:***@", text)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.IGNORECASE)


def split_prisma_url(url: str) -> tuple[str, str]:
    """Return (URL libpq accepts, schema): Prisma's `?schema=` (default public) and its
    other Prisma-only parameters are taken out of the query string."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, "public"
    if not parts.query:
        return url, "public"
    params = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in params if k == "schema"), "") or "public"
    kept = [(k, v) for k, v in params if k not in PRISMA_ONLY_PARAMS]
    if len(kept) == len(params):
        return url, schema
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


def validate_url(url: str) -> None:
    """Reject what is not a PostgreSQL URL before a driver tries to make sense of it."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(f"malformed database URL {redact(url)}: {exc}") from None
    if parts.scheme not in _SCHEMES:
        shown = parts.scheme + "://…" if parts.scheme else repr(url[:20] + ("…" if len(url) > 20 else ""))
        if "@" in url or ":" in url[len(parts.scheme) + 3 :]:
            shown = f"{parts.scheme}://…" if parts.scheme else "<redacted>"
        raise UsageError(
            f"malformed database URL {shown}: expected postgresql://user:password@host:port/database"
        )


def explain_connect_error(exc: Exception, url: str) -> str:
    """Turn a libpq message into the one line an on-call engineer needs."""
    raw = scrub(str(exc).strip(), url)
    low = raw.lower()
    target = redact(url)
    if "password authentication failed" in low or "authentication failed" in low:
        return f"cannot connect to {target}: authentication failed (wrong user or password)"
    if "does not exist" in low and "database" in low:
        return f"cannot connect to {target}: the database does not exist"
    if "connection refused" in low:
        return f"cannot connect to {target}: connection refused (is PostgreSQL running and listening on that port?)"
    if "timeout" in low or "timed out" in low:
        return f"cannot connect to {target}: timed out (host unreachable or firewalled)"
    if "could not translate host name" in low or "name or service not known" in low or "nodename nor servname" in low:
        return f"cannot connect to {target}: unknown host"
    if "no such file or directory" in low and "socket" in low:
        return f"cannot connect to {target}: no PostgreSQL socket there"
    first = raw.splitlines()[0] if raw else type(exc).__name__
    return f"cannot connect to {target}: {first}"


def connect(
    url: str,
    *,
    connect_timeout: float = 10,
    autocommit: bool = True,
    application_name: str = APPLICATION_NAME,
) -> "psycopg.Connection":
    """Open a connection with a bounded wait; raise DatabaseError with a redacted message."""
    import psycopg

    validate_url(url)
    libpq_url, _ = split_prisma_url(url)
    try:
        return psycopg.connect(
            libpq_url,
            connect_timeout=max(1, int(connect_timeout)),
            autocommit=autocommit,
            application_name=application_name,
        )
    except psycopg.Error as exc:
        raise DatabaseError(explain_connect_error(exc, url)) from None
    except (ValueError, UnicodeError) as exc:
        raise UsageError(f"malformed database URL {redact(url)}: {scrub(str(exc), url)}") from None
