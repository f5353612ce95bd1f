"""The database probe: drift and migration history against the schema of the deployed commit.

    drift, migrations = check_database(database_url, source)      # source: SchemaSource or a path
    drift, migrations = check_database(url, "prisma/schema.prisma", "prisma/migrations")

The same engine as `driftwatch check` (compile, inspect, diff; `migrations.summarize`),
turned into two `CheckResult`s for the poller. Its `detail` holds what `check --format json`
holds (summary, findings) plus which commit's schema was compared (`schema_commit`) and, when
it is not the deployed one, why (`fallback_reason`).

A resident poller checks the same schema every minute: the compiled expectation is kept in
memory, keyed by the schema's bytes (`Expectations`), so a re-check of an unchanged schema
costs one read of the files and one catalog read of the database — not a parse and compile —
and that read runs on the connection kept from the last check (`checks.monitor.connections`:
no connect, a warm backend, the catalog queries already prepared).

Nothing here raises for what the database or the schema does: an unreachable database or an
unreadable schema is a result in state `error` with one line saying why — never a stale `ok`.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from ..errors import DriftwatchError
from .gitsource import SchemaSource
from .results import CheckResult

if TYPE_CHECKING:
    from ..catalog import Catalog

__all__ = ["Expectations", "check_database", "check_database_at_commit", "drift_detail_keys", "EXPECTATIONS"]

drift_detail_keys = ("schema_commit", "schema_source", "schema_ref", "requested_commit", "fallback_reason",
                     "schema", "in_sync", "summary", "findings")
MIGRATION_STATES = ("applied", "pending", "failed", "rolled_back", "edited", "missing_locally")


class Expectations:
    """Compiled catalogs of the schemas seen lately, in memory, keyed by their bytes.

    The key is a sha256 of every schema file's bytes (and, for a folder, its path inside it,
    which decides the order), so two commits with the same schema share one entry and an edit
    is a new one. At most `max_entries` are kept (least recently used dropped). On a miss the
    on-disk cache of `checks.cache` is tried before compiling (a restarted poller)."""

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], Catalog] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(read: tuple[str, bool, list[tuple[str, bytes, str]]]) -> str:
        name, is_folder, files = read
        h = hashlib.sha256(b"driftwatch-expectation-1\0")
        for path, data, _ in files:
            rel = os.path.relpath(path, name) if is_folder else ""
            h.update(rel.encode("utf-8", "surrogatepass") + b"\0" + len(data).to_bytes(8, "big") + data)
        return h.hexdigest()

    def catalog(self, schema_path: str | os.PathLike[str], app_schema: str) -> Catalog:
        """The expected catalog of the schema at `schema_path`, moved to `app_schema`
        (SchemaError when it cannot be read or compiled)."""
        from ..check import expected_catalog
        from ..psl.files import read_schema_files

        read = read_schema_files(schema_path)
        k = (self.key(read), app_schema)
        with self._lock:
            hit = self._entries.get(k)
            if hit is not None:
                self._entries.move_to_end(k)
                self.hits += 1
                return hit
        from ..catalog import in_schema

        # A miss reads the files again: harmless, the copy of a commit never changes.
        compiled = in_schema(expected_catalog(schema_path, cache=True), app_schema)
        with self._lock:
            self.misses += 1
            self._entries[k] = compiled
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return compiled


EXPECTATIONS = Expectations()


class _LastReports:
    """The last drift report per database URL with the two catalogs it compared. The diff is a
    pure function of them, and on an unchanged schema and database both are the very objects of
    the last check (`Expectations`, `checks.inspect.live.BuildMemo`): then the report is too."""

    def __init__(self, max_entries: int = 16) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[Any, Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str, expected: Catalog, actual: Catalog) -> Any:
        with self._lock:
            last = self._entries.get(url)
        if last is not None and last[0] is expected and last[1] is actual:
            return last[2]
        return None

    def put(self, url: str, expected: Catalog, actual: Catalog, report: Any) -> None:
        with self._lock:
            self._entries[url] = (expected, actual, report)
            self._entries.move_to_end(url)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


_LAST_REPORTS = _LastReports()

Source = Union[SchemaSource, str, "os.PathLike[str]"]


def check_database(
    database_url: str,
    source: Source,
    migrations: str | os.PathLike[str] | None = None,
    *,
    expectations: Expectations | None = None,
) -> tuple[CheckResult, CheckResult]:
    """(drift, migrations) of the database at `database_url` against `source`.

    `source` is a `SchemaSource` (the schema and migrations at the deployed commit, see
    `checks.monitor.gitsource`) or a schema path; `migrations` overrides the source's
    migrations folder (None: the source's, or nothing for a plain path). The compiled schema
    is reused from `expectations` (default: this process's `EXPECTATIONS`) when its bytes did
    not change.
    """
    expectations = expectations or EXPECTATIONS
    if isinstance(source, SchemaSource):
        schema_path: Path = source.schema
        folder = Path(migrations) if migrations is not None else source.migrations
        origin: dict[str, Any] = {"schema_commit": source.commit, "schema_source": "git", "schema_ref": source.ref,
                                  "requested_commit": source.requested_commit,
                                  "fallback_reason": source.fallback_reason, "schema": source.schema_in_repo,
                                  "migrations_path": str(migrations) if migrations is not None
                                  else source.migrations_in_repo}
        known = _as_known(source, migrations)
        label = f"the schema of {source.short}"
        if source.ref is not None:
            label = f"the schema of {source.ref} ({source.short}), not of the deployed commit"
    else:
        schema_path = Path(source)
        folder = Path(migrations) if migrations is not None else None
        origin = {"schema_commit": None, "schema_source": "file", "schema_ref": None, "requested_commit": None,
                  "fallback_reason": None, "schema": str(schema_path),
                  "migrations_path": str(folder) if folder is not None else None}
        label = f"{schema_path}"
        known = _Known(str(schema_path), str(folder) if folder is not None else None, None)
    kept: dict[str, Any] = {}
    drift = _drift(database_url, schema_path, origin, label, expectations, kept)
    return drift, _advised(_migrations(database_url, folder, origin, kept), kept, known)


class _Known(NamedTuple):
    """The paths the next step's commands name, as the person running them knows them, and
    the commit whose version of those files was compared (None: the files as they are)."""

    schema: str | None
    migrations: str | None
    commit: str | None


def _as_known(source: SchemaSource, migrations: str | os.PathLike[str] | None) -> _Known:
    """A git source's paths as the repository path joined with the configured ones: the
    materialized copy under the cache is an implementation detail an on-call engineer can
    neither find nor should edit. The commit says which version of them was compared."""
    repo = str(source.repo).rstrip("/\\") or str(source.repo)
    join = lambda inside: f"{repo}/{inside}" if inside else None  # noqa: E731
    folder = str(migrations) if migrations is not None else join(source.migrations_in_repo)
    return _Known(join(source.schema_in_repo), folder, source.short)


def _advised(migrations: CheckResult, kept: dict[str, Any], known: _Known) -> CheckResult:
    """The migrations result with the next step (`checks.operations.next_step`, judged with
    the drift when it could be checked) in `detail["next_step"]` — the advice the CLI and the
    dashboard give — and, where the plain history would mislead (a pending migration whose
    objects already exist, a failed one in a database now in sync), in its reason too.
    The commands name `known`'s paths; for a git source each step naming one says which
    commit's version of the files it means."""
    summary = kept.get("summary")
    if summary is None:
        return migrations
    from ..operations.next_step import next_steps

    if known.migrations is not None:
        summary = replace(summary, directory=known.migrations)
    advice = next_steps(kept.get("report"), summary, schema=known.schema)
    if known.commit is not None:
        advice = _as_of(advice, known)
    migrations.detail["next_step"] = advice.to_json()
    if advice.state in ("pending_collides", "pending_in_sync", "failed_in_sync") and advice.first is not None:
        return migrations.with_state(migrations.state, _one_line(f"{advice.headline} Next: {advice.first.text}"))
    return migrations


def _as_of(advice: Any, known: _Known) -> Any:
    """`advice` with "(as of commit abc1234)" after the reason of each step whose command names
    a path of the repository: those files are compared at that commit, not as checked out."""
    paths = [p for p in (known.schema, known.migrations) if p]

    def said(step: Any) -> Any:
        if step.command and any(p in step.command for p in paths):
            return replace(step, say=f"{step.say} (as of commit {known.commit})")
        return step

    return replace(advice, steps=tuple(said(s) for s in advice.steps),
                   alternative=tuple(said(s) for s in advice.alternative))


def check_database_at_commit(
    database_url: str,
    *,
    repo: str | os.PathLike[str],
    commit: str | None,
    ref: str,
    schema: str,
    migrations: str | None,
    fetch: bool = False,
    no_commit_reason: str | None = None,
    expectations: Expectations | None = None,
) -> tuple[CheckResult, CheckResult]:
    """`source_at_commit` then `check_database`, for a poller: a git problem (not a repository,
    the schema missing at that commit, an unknown ref) becomes both results in state `error`
    with its one-line reason, instead of an exception. ``commit`` is the deployment check's
    `detail["commit"]` (None when unknown; say why in ``no_commit_reason``)."""
    from .gitsource import source_at_commit

    started = time.monotonic()
    try:
        source = source_at_commit(repo, commit=commit, ref=ref, schema=schema, migrations=migrations, fetch=fetch,
                                  no_commit_reason=no_commit_reason)
    except DriftwatchError as exc:
        reason = _one_line(f"cannot read the schema at the deployed commit: {exc}")
        origin = {"schema_commit": None, "schema_source": "git", "schema_ref": None, "requested_commit": commit,
                  "fallback_reason": None, "schema": schema}
        latency = (time.monotonic() - started) * 1000.0
        drift = CheckResult("drift", "drift", "error", reason, latency_ms=latency,
                            detail={**origin, "in_sync": None, "summary": None, "findings": []})
        mig_detail: dict[str, Any] = {"schema_commit": None, "directory": migrations, "managed": None,
                                      "up_to_date": None, **{s: [] for s in MIGRATION_STATES if s != "applied"},
                                      "applied_count": 0}
        return drift, CheckResult("migrations", "migrations", "error", reason, latency_ms=latency, detail=mig_detail)
    return check_database(database_url, source, expectations=expectations)


def _drift(url: str, schema_path: Path, origin: dict[str, Any], label: str,
           expectations: Expectations, kept: dict[str, Any] | None = None) -> CheckResult:
    from ..db import split_prisma_url

    started = time.monotonic()
    detail: dict[str, Any] = {k: v for k, v in origin.items() if k != "migrations_path"}
    detail.update({"in_sync": None, "summary": None, "findings": []})

    def result(state: str, reason: str | None) -> CheckResult:
        return CheckResult("drift", "drift", state, reason, latency_ms=(time.monotonic() - started) * 1000.0,
                           detail=detail)

    try:
        expected = expectations.catalog(schema_path, split_prisma_url(url)[1])
        from ..diff import diff
        from .connections import CONNECTIONS

        # on the connection kept from the last check of this database: warm and prepared
        actual = CONNECTIONS.inspect(url, expected.schemas)
        report = _LAST_REPORTS.get(url, expected, actual)
        if report is None:
            report = diff(expected, actual)
            _LAST_REPORTS.put(url, expected, actual, report)
        if kept is not None:
            kept["report"] = report
    except DriftwatchError as exc:
        return result("error", _one_line(f"cannot check drift against {label}: {exc}"))
    except Exception as exc:  # noqa: BLE001 - a probe reports, the poller must go on
        return result("error", _one_line(f"cannot check drift against {label}: {type(exc).__name__}: {exc}", url))
    detail.update(report.to_json())
    if report.in_sync():
        return result("ok", None)
    summary = report.summary
    first = min((f for f in report.findings if f.severity != "info"), key=lambda f: f.sort_key)
    counts = ", ".join(f"{summary[s]} {s}" for s in ("critical", "warning") if summary[s])
    state = "failing" if summary["critical"] else "warning"
    return result(state, _one_line(f"{first.message} ({counts} against {label})"))


def _migrations(url: str, folder: Path | None, origin: dict[str, Any],
                kept: dict[str, Any] | None = None) -> CheckResult:
    started = time.monotonic()
    detail: dict[str, Any] = {"schema_commit": origin["schema_commit"], "directory": origin["migrations_path"],
                              "managed": None, "up_to_date": None}
    detail.update({state: [] for state in MIGRATION_STATES if state != "applied"})
    detail["applied_count"] = 0

    def result(state: str, reason: str | None) -> CheckResult:
        return CheckResult("migrations", "migrations", state, reason,
                           latency_ms=(time.monotonic() - started) * 1000.0, detail=detail)

    if folder is None:
        return result("unknown", "no migrations folder configured")
    from ..migrations import summarize

    try:
        summary = summarize(url, folder)
    except Exception as exc:  # noqa: BLE001 - summarize only promises DriftwatchError
        return result("error", _one_line(f"cannot read the migration history: {type(exc).__name__}: {exc}", url))
    if summary.error is not None:
        return result("error", _one_line(f"cannot read the migration history: {summary.error}"))
    if kept is not None:
        kept["summary"] = summary
    detail.update(managed=summary.managed, up_to_date=summary.up_to_date)
    for state in MIGRATION_STATES:
        if state != "applied":
            detail[state] = summary.names(state)
    detail["applied_count"] = len(summary.names("applied"))
    full = summary.to_json(full=True)  # the rest of the summary, so a stored result can be judged again
    detail.update({key: full[key] for key in ("local", "existing", "empty", "created_tables")})
    if not summary.managed:
        return result("warning", "the database has no _prisma_migrations table: Prisma Migrate never ran here "
                                 "(baseline it with driftwatch migrate resolve --applied)")
    if detail["failed"]:
        return result("failing", f"migration {detail['failed'][0]} failed: deploys stop until it is resolved (P3009)")
    if detail["pending"]:
        names = detail["pending"]
        more = f" and {len(names) - 1} more" if len(names) > 1 else ""
        return result("failing", f"migration {names[0]}{more} pending: apply with driftwatch migrate deploy")
    problems = [f"{len(detail[s])} {s.replace('_', ' ')}" for s in ("rolled_back", "edited", "missing_locally")
                if detail[s]]
    if problems:
        return result("warning", "migration history: " + ", ".join(problems))
    return result("ok", None)


def _one_line(text: str, url: str | None = None) -> str:
    from ..db import scrub

    line = " ".join(str(text).split())
    return scrub(line, url)[:500]
