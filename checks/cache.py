"""A content-addressed cache of compiled catalogs, so that `driftwatch check` on an
unchanged schema skips parsing and compiling it.

    key = catalog_key(files)          # sha256 of the schema's bytes and of the compiler
    catalog = load_catalog(key)       # None on a miss, or if the entry is unusable
    store_catalog(key, catalog)

The key covers every schema file's bytes (and, for a folder, each file's path inside
it, which decides the order), the driftwatch version, the Python version and the
source of every file of the package (the parser, its grammar and tables, the
compiler, the catalog classes... and the rest, to be safe): an edit to any of them is
a different key, never a stale catalog. Only catalogs that compiled are
stored; a schema error is found again on every run.

Entries live in ``$XDG_CACHE_HOME/driftwatch`` (default ``~/.cache/driftwatch``), one
pickle per key, written to a temporary file and renamed into place (atomic), with a
header holding the key and a sha256 of the payload. An entry that is truncated,
corrupt, of another format, not owned by the user or writable by others is ignored
(and replaced by the next store). At most `MAX_ENTRIES` are kept (least recently used
go first). Set ``DRIFTWATCH_NO_CACHE=1`` to neither read nor write the cache. A cache
that cannot be written (read-only home) is silently skipped: it is only ever a speed-up.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from .catalog import Catalog

__all__ = ["ENV_DISABLE", "MAX_ENTRIES", "cache_dir", "enabled", "catalog_key", "load_catalog",
           "store_catalog"]

ENV_DISABLE = "DRIFTWATCH_NO_CACHE"
MAX_ENTRIES = 16
_MAGIC = b"driftwatch-catalog-1\n"
_PREFIX, _SUFFIX = "catalog-", ".pickle"

_PACKAGE = Path(__file__).resolve().parent


def enabled() -> bool:
    return os.environ.get(ENV_DISABLE, "").strip().lower() in ("", "0", "false", "no")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"  # XDG: ignore a relative path
    return root / "driftwatch"


def _code_fingerprint() -> bytes:
    """The versions, and every source file of the package (.py, the grammar): ~50 files,
    ~1.5 ms. Wider than the modules the compiler imports today, so that no future import
    can make a stale entry look valid."""
    from . import __version__

    h = hashlib.sha256()
    h.update(f"driftwatch {__version__}\0{sys.version}\0{sys.implementation.cache_tag}\0".encode())
    for dirpath, dirs, files in os.walk(_PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".lark")):
                path = os.path.join(dirpath, name)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    data = b"\xff(unreadable)"
                rel = os.path.relpath(path, _PACKAGE)
                h.update(rel.encode("utf-8", "surrogatepass") + b"\0" + len(data).to_bytes(8, "big") + data)
    return h.digest()


def catalog_key(files: Sequence[tuple[str, bytes]], root: str | None = None) -> str:
    """The cache key of a schema made of ``files`` ([(path, bytes)], in parse order).

    ``root`` is the folder the files were found in (their paths under it are part of the
    key: they decide the order of the blocks), or None for a single file (its name is not).
    """
    h = hashlib.sha256(_MAGIC)
    h.update(_code_fingerprint())
    h.update(len(files).to_bytes(8, "big"))
    for path, data in files:
        name = os.path.relpath(path, root) if root is not None else ""
        h.update(name.encode("utf-8", "surrogatepass") + b"\0")
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def _entry(key: str) -> Path:
    return cache_dir() / f"{_PREFIX}{key}{_SUFFIX}"


def load_catalog(key: str) -> "Catalog | None":
    """The catalog stored under ``key``, or None (a miss, the cache disabled, or an entry
    that cannot be trusted or read back)."""
    if not enabled():
        return None
    path = _entry(key)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o022:  # only our own, private entries
                return None
            data = f.read()
    except (OSError, AttributeError):  # AttributeError: no os.getuid (Windows)
        return None
    head = len(_MAGIC) + 64 + 32
    if len(data) < head or not data.startswith(_MAGIC):
        return None
    stored_key = data[len(_MAGIC):len(_MAGIC) + 64]
    digest = data[len(_MAGIC) + 64:head]
    payload = data[head:]
    if stored_key != key.encode() or hashlib.sha256(payload).digest() != digest:
        return None
    try:
        import pickle

        from .catalog import Catalog

        catalog = pickle.loads(payload)
    except Exception:  # noqa: BLE001 - a damaged entry is a miss, whatever broke
        return None
    if not isinstance(catalog, Catalog):
        return None
    try:
        os.utime(path)  # most recently used: pruned last
    except OSError:
        pass
    return catalog


def store_catalog(key: str, catalog: "Catalog") -> None:
    """Store ``catalog`` under ``key`` (atomically); never raises for an unwritable cache."""
    if not enabled():
        return
    import pickle

    try:
        payload = pickle.dumps(catalog, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - not worth failing a check over
        return
    data = _MAGIC + key.encode() + hashlib.sha256(payload).digest() + payload
    directory = cache_dir()
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = directory / f".tmp-{os.getpid()}-{os.urandom(6).hex()}{_SUFFIX}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, _entry(key))
        tmp = None
        _prune(directory)
    except OSError:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _prune(directory: Path) -> None:
    entries = []
    for p in directory.glob(f"{_PREFIX}*{_SUFFIX}"):
        try:
            entries.append((p.stat().st_mtime_ns, p))
        except OSError:
            continue
    entries.sort()
    for _, p in entries[:-MAX_ENTRIES]:
        try:
            p.unlink()
        except OSError:
            pass
