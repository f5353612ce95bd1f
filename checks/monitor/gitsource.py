"""The schema and migrations as they are at the deployed commit, read from a local clone.

    source_at_commit(repo, commit=SHA|None, ref="main", schema="prisma/schema.prisma",
                     migrations="prisma/migrations", fetch=False) -> SchemaSource

The database must be compared with the schema of the code that runs, not with whatever the
clone has checked out. `git archive` copies just those paths at that commit into a cache
folder keyed by the commit (the working tree is never touched, and a second call for the
same commit reads nothing from git but one `cat-file`). When no deployed commit is known, or
the clone does not have it (after a `git fetch` when `fetch` is set), `ref` is used instead
and `fallback_reason` says why, so a result can never silently describe other code.

Errors are `UsageError`, one line naming the repository and the path: not a git repository,
git missing, a ref that does not resolve, a path that does not exist at that commit.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError

__all__ = ["SchemaSource", "source_at_commit"]

GIT_TIMEOUT_S = 30.0
KEEP_COPIES = 32  # per repository: a copy is a schema and its migrations, a few hundred KB at most
FETCH_TIMEOUT_S = 120.0
_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class SchemaSource:
    """A materialized copy of the schema (and migrations) at one commit."""

    schema: Path  # file or folder, inside the cache copy
    migrations: Path | None
    commit: str  # the 40-hex commit the files were read at
    ref: str | None  # the ref used when falling back, else None
    requested_commit: str | None  # what the deployment reported (None when unknown)
    fallback_reason: str | None  # why `commit` is not `requested_commit`; None when it is
    repo: str
    schema_in_repo: str = ""  # the configured paths, as the people reading a result know them
    migrations_in_repo: str | None = None

    @property
    def short(self) -> str:
        return self.commit[:7]

    def to_json(self) -> dict[str, Any]:
        return {"schema_commit": self.commit, "schema_ref": self.ref, "requested_commit": self.requested_commit,
                "fallback_reason": self.fallback_reason, "repo": self.repo}


def source_at_commit(
    repo: str | os.PathLike[str],
    *,
    commit: str | None,
    ref: str,
    schema: str,
    migrations: str | None,
    fetch: bool,
    no_commit_reason: str | None = None,
    cache_root: str | os.PathLike[str] | None = None,
) -> SchemaSource:
    """Copy `schema` and `migrations` (paths inside the repository) as they are at `commit`.

    Falls back to `ref` when `commit` is None or not a SHA (Coolify says `HEAD` until a build
    resolves it) or not in the clone; ``no_commit_reason`` is the caller's word for why there
    is no commit (e.g. "the deployment check failed: …"). With ``fetch`` the clone runs
    `git fetch` once before giving up on a commit, and before resolving `ref`.
    """
    root = Path(repo).expanduser()
    shown = str(repo)
    if not root.exists():
        raise UsageError(f"git repository {shown} does not exist")
    git_dir = _git(root, shown, "rev-parse", "--absolute-git-dir", what="read").strip()
    wanted = commit.strip().lower() if isinstance(commit, str) and commit.strip() else None
    reason: str | None = None
    resolved: str | None = None
    fetched = False
    fetch_error: str | None = None
    if wanted is None:
        reason = no_commit_reason or "no deployed commit is known"
    elif not _SHA.fullmatch(wanted):
        reason = f"the deployed commit {commit!r} is not a SHA"
    else:
        resolved = _has_commit(root, shown, wanted)
        if resolved is None and fetch:
            fetch_error = _fetch(root, shown)
            fetched = True
            resolved = _has_commit(root, shown, wanted)
        if resolved is None:
            if fetch_error:
                after = f" ({fetch_error})"
            elif fetched:
                after = " even after git fetch"
            else:
                after = " (set fetch = true to fetch it)"
            reason = f"deployed commit {wanted[:7]} is not in the clone at {shown}{after}"
    used_ref: str | None = None
    if resolved is None:
        if fetch and not fetched:
            fetch_error = _fetch(root, shown)
            if fetch_error:
                reason = f"{reason} ({fetch_error})"
        resolved = _resolve_ref(root, shown, ref)
        used_ref = ref
        reason = f"{reason}; compared with {ref} ({resolved[:7]}) instead"
    paths = [p for p in (schema, migrations) if p]
    copy = _materialize(root, shown, git_dir, resolved, paths, cache_root)
    return SchemaSource(
        schema=copy / _clean(schema, shown),
        migrations=(copy / _clean(migrations, shown)) if migrations else None,
        commit=resolved,
        ref=used_ref,
        requested_commit=wanted,
        fallback_reason=reason,
        repo=shown,
        schema_in_repo=_clean(schema, shown),
        migrations_in_repo=_clean(migrations, shown) if migrations else None,
    )


def _git(root: Path, shown: str, *args: str, what: str, timeout: float = GIT_TIMEOUT_S,
         check: bool = True) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise UsageError("git is not installed (needed to read the schema at the deployed commit)") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"git {args[0]} in {shown} took longer than {timeout:g} s") from None
    if check and done.returncode != 0:
        message = _first_line(done.stderr)
        if "not a git repository" in message.lower():
            raise UsageError(f"{shown} is not a git repository")
        raise UsageError(f"cannot {what} in git repository {shown}: {message}")
    return done.stdout.decode("utf-8", errors="replace")


def _first_line(data: bytes) -> str:
    for line in data.decode("utf-8", errors="replace").splitlines():
        line = line.strip()
        if line:
            return re.sub(r"^(fatal|error):\s*", "", line)[:300]
    return "git failed"


def _has_commit(root: Path, shown: str, sha: str) -> str | None:
    out = _git(root, shown, "rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}", what="look up", check=False)
    out = out.strip()
    return out if _SHA.fullmatch(out) else None


def _resolve_ref(root: Path, shown: str, ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise UsageError(f"no usable ref to fall back to in {shown} (got {ref!r})")
    for candidate in (ref, f"origin/{ref}"):
        out = _git(root, shown, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", what="look up",
                   check=False).strip()
        if _SHA.fullmatch(out):
            return out
    raise UsageError(f"ref {ref!r} does not name a commit in git repository {shown}")


def _fetch(root: Path, shown: str) -> str | None:
    """`git fetch` (all remotes' default refspecs). A failure (offline, no remote) is said in
    the fallback reason, not raised: the clone may still hold what is needed."""
    try:
        _git(root, shown, "fetch", "--quiet", "--all", "--prune", what="fetch", timeout=FETCH_TIMEOUT_S)
    except UsageError as exc:
        return str(exc)
    return None


def _clean(path: str, shown: str) -> str:
    p = path.replace("\\", "/").strip("/")
    while p.startswith("./"):
        p = p[2:]
    if not p or p == "." or ".." in p.split("/"):
        raise UsageError(f"path {path!r} must be a path inside the repository {shown}")
    return p


def _cache_root(cache_root: str | os.PathLike[str] | None) -> Path:
    if cache_root is not None:
        return Path(cache_root)
    from ..cache import cache_dir

    return cache_dir() / "git"


def _materialize(root: Path, shown: str, git_dir: str, sha: str, paths: list[str],
                 cache_root: str | os.PathLike[str] | None) -> Path:
    """`<cache>/<repo key>/<sha>-<paths key>/`: the paths at that commit, written once, atomically."""
    cleaned = [_clean(p, shown) for p in paths]
    repo_key = hashlib.sha256(os.path.realpath(git_dir).encode()).hexdigest()[:16]
    paths_key = hashlib.sha256("\0".join(cleaned).encode()).hexdigest()[:12]
    target = _cache_root(cache_root) / repo_key / f"{sha}-{paths_key}"
    if (target / ".complete").is_file():
        return target
    for p in cleaned:
        listed = _git(root, shown, "ls-tree", "--name-only", sha, "--", p, what="list files").strip()
        if not listed:
            raise UsageError(f"{p} does not exist at commit {sha[:7]} in git repository {shown}")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=target.parent))
    try:
        archive = tmp / ".archive.tar"
        _git(root, shown, "archive", "--format=tar", f"--output={archive}", sha, "--", *cleaned,
             what=f"read {', '.join(cleaned)} at commit {sha[:7]}")
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        archive.unlink()
        (tmp / ".complete").write_text(sha + "\n")
        try:
            tmp.rename(target)
        except OSError:  # another process materialized it first: theirs is as good
            if not (target / ".complete").is_file():
                raise
    except (OSError, tarfile.TarError) as exc:
        raise UsageError(f"cannot copy {', '.join(cleaned)} at commit {sha[:7]} from {shown}: {exc}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _prune(target.parent, keep=target)
    return target


def _prune(folder: Path, *, keep: Path) -> None:
    """Keep the KEEP_COPIES most recently made copies of this repository (a poller lives for
    months; every deployment adds one). Best effort: a copy in use elsewhere is only a re-read."""
    try:
        copies = sorted((p.stat().st_mtime, p) for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    for _, path in copies[:-KEEP_COPIES]:
        if path != keep:
            shutil.rmtree(path, ignore_errors=True)
