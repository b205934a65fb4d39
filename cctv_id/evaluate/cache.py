"""The on-disk evaluation cache: per-image annotations and full-size embeddings.

One SQLite file, ``$CCTV_ID_CACHE/eval-cache.sqlite`` (default ``~/.cache/cctv-id/``), two
key -> value tables. Keys name everything the value depends on: an image is keyed by its
resolved path, byte size and mtime (``image_key``), so an edited image is looked up afresh;
callers add model hashes, alignment and landmarks. Several processes may share the file
(WAL journal, generous lock timeout). A cache that cannot be opened or written is a
warning, never a failure: the work is simply redone. ``CCTV_ID_CACHE=off`` disables it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

TABLES = ("annotations", "embeddings")


def cache_dir() -> Path | None:
    """``$CCTV_ID_CACHE`` or ``~/.cache/cctv-id``; None when set to ``off``."""
    value = os.environ.get("CCTV_ID_CACHE")
    if value is not None and value.strip().lower() in ("off", "none", "0", "false"):
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "cctv-id"


def image_key(path: str | Path) -> str:
    """Resolved path, size and mtime of an image file (an ``InputError`` if it is missing)."""
    from ..errors import InputError

    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise InputError(f"cannot read image {p}: {exc.strerror or exc}") from None
    return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"


class DiskCache:
    """Key -> bytes tables in one SQLite file; ``enabled`` False makes every call a no-op."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._conn: sqlite3.Connection | None = None
        self.enabled = folder is not None

    def _connect(self) -> sqlite3.Connection | None:
        if not self.enabled:
            return None
        if self._conn is None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(str(self.folder / "eval-cache.sqlite"), timeout=60.0,
                                       check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                for table in TABLES:
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value BLOB)")
                conn.commit()
                self._conn = conn
            except (OSError, sqlite3.Error) as exc:
                log.warning("evaluation cache disabled (%s: %s)", self.folder, exc)
                self.enabled = False
                return None
        return self._conn

    def get_many(self, table: str, keys: Iterable[str]) -> dict[str, bytes]:
        conn = self._connect()
        keys = list(keys)
        if conn is None or not keys:
            return {}
        out: dict[str, bytes] = {}
        try:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, value in conn.execute(f"SELECT key, value FROM {table} WHERE key IN ({marks})", chunk):
                    out[key] = bytes(value)
        except sqlite3.Error as exc:
            log.warning("evaluation cache read failed (%s); recomputing", exc)
            return {}
        return out

    def put_many(self, table: str, items: dict[str, bytes]) -> None:
        conn = self._connect()
        if conn is None or not items:
            return
        try:
            with conn:
                conn.executemany(f"INSERT OR REPLACE INTO {table} (key, value) VALUES (?, ?)",
                                 list(items.items()))
        except sqlite3.Error as exc:
            log.warning("evaluation cache write failed (%s)", exc)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_CACHES: dict[str, DiskCache] = {}


def default_cache() -> DiskCache:
    """The process-wide cache for the current ``$CCTV_ID_CACHE`` (re-read on every call)."""
    folder = cache_dir()
    key = str(folder)
    if key not in _CACHES:
        _CACHES[key] = DiskCache(folder)
    return _CACHES[key]
