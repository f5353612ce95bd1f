"""Start a real, private PostgreSQL for the demo, the tests and the benchmark.

Two sources, one interface: the `pgserver` wheel (PostgreSQL 16, nothing to install
on the system; the default) and the system's own binaries found through `pg_ctl`
(PostgreSQL 15 on Debian). CI runs the test suite on both so two major versions
are always exercised. Nothing here is used against a user's database.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from .errors import DatabaseError

# Durability is worthless for throwaway clusters; speed is not.
_FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


@dataclass
class LocalPostgres:
    url: str  # URL of the "postgres" maintenance database
    kind: str  # "pgserver" | "system"
    datadir: Path
    _stop: Callable[[], None] = field(repr=False, default=lambda: None)

    def url_for(self, database: str) -> str:
        """The same server, another database."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path="/" + database))

    def stop(self) -> None:
        self._stop()


def find_pg_ctl() -> str | None:
    """The system's pg_ctl: on PATH, else the newest Debian-style install."""
    found = shutil.which("pg_ctl")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return candidates[-1] if candidates else None


def start_pgserver(datadir: Path) -> LocalPostgres:
    """PostgreSQL from the pgserver wheel, listening on a Unix socket in its data dir."""
    try:
        import pgserver
    except ImportError:  # pragma: no cover - depends on the environment
        raise DatabaseError("the pgserver package is not installed: pip install -r requirements.txt") from None
    datadir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(datadir), cleanup_mode="stop")
    for key, value in _FAST_SETTINGS.items():
        if key != "max_connections":
            server.psql(f"ALTER SYSTEM SET {key} = '{value}';")
    server.psql("SELECT pg_reload_conf();")
    return LocalPostgres(url=server.get_uri(), kind="pgserver", datadir=datadir, _stop=server.cleanup)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_system(datadir: Path, pg_ctl: str | None = None, password: str | None = None) -> LocalPostgres:
    """PostgreSQL from the system's binaries, on a free TCP port of 127.0.0.1.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres`
    system user (Debian's packages create it) and commands run through `runuser`.
    With `password`, TCP connections need it (scram); the socket stays trusted.
    """
    pg_ctl = pg_ctl or find_pg_ctl()
    if not pg_ctl:
        raise DatabaseError("no system PostgreSQL found (pg_ctl is not on PATH)")
    bindir = Path(os.path.realpath(pg_ctl)).parent
    datadir.mkdir(parents=True, exist_ok=True)
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            subprocess.run(["useradd", "-r", "-s", "/bin/sh", "postgres"], check=True, capture_output=True)
            owner = pwd.getpwnam("postgres")
        for p in [datadir, *datadir.parents]:
            if p == Path("/"):
                break
            os.chmod(p, os.stat(p).st_mode | 0o011)  # let the owner traverse
        os.chown(datadir, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = datadir / "data"
    port = _free_port()
    run = lambda *args: subprocess.run(  # noqa: E731
        [*prefix, *args], check=True, capture_output=True, text=True, timeout=120
    )
    try:
        if not (data / "PG_VERSION").exists():
            auth = ["--auth=trust"]
            if password:
                pwfile = datadir / "pwfile"
                pwfile.write_text(password + "\n")
                os.chmod(pwfile, 0o644)
                auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
            run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", *auth, "-E", "UTF8")
        opts = f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 " + " ".join(
            f"-c {k}={v}" for k, v in _FAST_SETTINGS.items()
        )
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(datadir / "log"), "-w", "start")
    except subprocess.CalledProcessError as exc:
        raise DatabaseError(f"could not start the system PostgreSQL: {(exc.stderr or exc.stdout).strip()}") from None

    def stop() -> None:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)

    url = f"postgresql://postgres{':' + password if password else ''}@127.0.0.1:{port}/postgres"
    _wait_ready(url)
    return LocalPostgres(url=url, kind="system", datadir=datadir, _stop=stop)


def _wait_ready(url: str, timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start(kind: str, datadir: Path) -> LocalPostgres:
    """Start a server of the given kind ("pgserver" or "system")."""
    if kind == "system":
        return start_system(datadir)
    if kind == "pgserver":
        return start_pgserver(datadir)
    raise DatabaseError(f"unknown PostgreSQL kind {kind!r}: expected pgserver or system")
