"""Governance of the stored biometric data: removing people, retention purges, durations.

Owns the library functions behind ``cctv-id remove-person`` and ``cctv-id purge`` (the web
UI calls the same): the database change happens in one audited transaction
(:mod:`cctv_id.store.retention`); only after it commits are the files it orphaned deleted
(stored enrolment photos, crops, context frames) and the FAISS caches under
``data_dir/index`` brought in step, so that no index file keeps a removed vector: stale
watchlist caches are deleted, track indexes are synced or deleted
(:func:`cctv_id.watchlist.track_index.refresh_track_indexes`). Also parses retention
durations ("30d", "12h", "90m", "2w").
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .errors import InputError

log = logging.getLogger(__name__)

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(text: str, what: str = "duration") -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` -> timedelta; anything else: InputError."""
    m = _DURATION.match(str(text or ""))
    if not m:
        raise InputError(f"invalid {what} {text!r}: use a number and a unit s/m/h/d/w, e.g. 30d, 12h")
    value = float(m.group(1))
    if value <= 0:
        raise InputError(f"invalid {what} {text!r}: must be more than zero")
    return timedelta(**{_UNITS[m.group(2).lower()]: value})


def delete_files(data_dir: Path, rels) -> int:
    """Delete files named relative to ``data_dir`` (missing ones are fine); the count deleted."""
    root = Path(data_dir).resolve()
    n = 0
    for rel in rels:
        path = (root / rel).resolve()
        if root not in path.parents:  # never outside the data folder
            log.warning("not deleting %s: outside %s", rel, root)
            continue
        try:
            path.unlink()
            n += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not delete %s: %s", path, exc.strerror or exc)
            continue
        try:
            path.parent.rmdir()  # an emptied per-person / per-run folder
        except OSError:
            pass
    return n


def delete_stale_watchlist_caches(data_dir: Path, generation: int) -> int:
    """Delete watchlist FAISS caches not of the current ``generation`` (they may hold the
    vectors of removed enrolments); a fresh one is built from the database when needed."""
    cache_dir = Path(data_dir) / "index"
    n = 0
    for path in sorted(cache_dir.glob("watchlist-*-gen*.faiss")) if cache_dir.is_dir() else []:
        if path.stem.rsplit("-gen", 1)[-1] != str(int(generation)):
            path.unlink(missing_ok=True)
            n += 1
    return n


def refresh_indexes(repo, data_dir: Path) -> dict:
    """Bring every FAISS cache under ``data_dir/index`` in step with the database."""
    from .watchlist.track_index import refresh_track_indexes

    n = delete_stale_watchlist_caches(data_dir, repo.watchlist_generation())
    return {"watchlist_caches_deleted": n, "track_indexes": refresh_track_indexes(repo, data_dir)}


def remove_person(repo, data_dir: Path, name: str, operator: str,
                  purge_hits: bool = False) -> dict:
    """Take ``name`` off the watchlist (and with ``purge_hits`` erase their hits and tracks)."""
    if not str(name or "").strip():
        raise InputError("person name must not be empty")
    out = repo.remove_person(name, operator, purge_hits=purge_hits)
    out["n_photo_files_deleted"] = delete_files(data_dir, out["stored_photos"])
    out["n_files_deleted"] = delete_files(data_dir, out["files"])
    out["indexes"] = refresh_indexes(repo, data_dir)
    return out


def purge(repo, data_dir: Path, operator: str, unknown_older_than: str | None = None,
          hits_older_than: str | None = None, dry_run: bool = False,
          now: datetime | None = None) -> dict:
    """Retention: delete unknown tracks and hits older than the given durations, with their
    crops, context frames and index entries. At least one rule is required."""
    if unknown_older_than is None and hits_older_than is None:
        raise InputError("say what to purge: --unknown-older-than DURATION and/or "
                         "--hits-older-than DURATION (e.g. 30d)")
    now = now or datetime.now(timezone.utc)
    unknown_before = hits_before = None
    if unknown_older_than is not None:
        unknown_before = now - parse_duration(unknown_older_than, "--unknown-older-than")
    if hits_older_than is not None:
        hits_before = now - parse_duration(hits_older_than, "--hits-older-than")
    out = repo.purge(operator, unknown_before=unknown_before, hits_before=hits_before,
                     dry_run=dry_run,
                     params={"unknown_older_than": unknown_older_than,
                             "hits_older_than": hits_older_than})
    out.update(unknown_before=unknown_before, hits_before=hits_before)
    if dry_run:
        out.update(n_files_deleted=0, n_files=len(out["files"]))
        return out
    out["n_files_deleted"] = delete_files(data_dir, out["files"])
    out["indexes"] = refresh_indexes(repo, data_dir)
    return out
