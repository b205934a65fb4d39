"""The repository: the only holder of a database Session in cctv-id.

Every public method is one short transaction and returns plain values (ints, dicts,
dataclasses, numpy arrays), never ORM objects. SQLite and PostgreSQL behave the same:
idempotent writes use the dialect's ``INSERT ... ON CONFLICT DO NOTHING``; datetimes go in
and come out as timezone-aware UTC.

Transient failures are retried: a SQLite database locked by another process, a PostgreSQL
server that is unreachable, restarting or dropped the connection. Each transaction is a
function of its session (``body(s)``) that :meth:`Repository._transact` runs again from
scratch, with exponential backoff, until it commits or the ``retry_seconds`` budget is spent.

The class is composed of parts, each in its own module:

- :mod:`cctv_id.store.engine`: engine, SQLite pragmas, retrying transactions, error messages;
- :mod:`cctv_id.store.runs`: cameras, sources, runs and checkpoints;
- :mod:`cctv_id.store.persons`: persons, enrolments and the watchlist;
- :mod:`cctv_id.store.queries`: saving and querying tracks and hits;
- :mod:`cctv_id.store.alerts`: the webhook alert outbox;
- :mod:`cctv_id.store.track_index`: sequence numbers keeping the track search index in step;
- :mod:`cctv_id.store.audit`: the append-only audit log;
- :mod:`cctv_id.store.reviews`: reviewers' decisions, applied again to tracks stored again;
- :mod:`cctv_id.store.retro`: retro-matching hits;
- :mod:`cctv_id.store.retention`: removing people, purging old data, re-embedding;
- :mod:`cctv_id.store.users`: web users, password hashes, sessions and API tokens.
"""

from __future__ import annotations

from cctv_id.store.alerts import AlertsMixin
from cctv_id.store.audit import AuditMixin
from cctv_id.store.engine import DEFAULT_BUSY_TIMEOUT_S, DEFAULT_RETRY_SECONDS
from cctv_id.store.persons import PersonsMixin
from cctv_id.store.queries import TracksHitsMixin
from cctv_id.store.retention import RetentionMixin
from cctv_id.store.retro import RetroMixin
from cctv_id.store.runs import RESUMABLE_STATUSES, RunsMixin
from cctv_id.store.users import UsersMixin

__all__ = ["DEFAULT_BUSY_TIMEOUT_S", "DEFAULT_RETRY_SECONDS", "RESUMABLE_STATUSES", "Repository"]


class Repository(RetroMixin, RetentionMixin, TracksHitsMixin, RunsMixin, PersonsMixin,
                 AlertsMixin, AuditMixin, UsersMixin):
    """Access to the cctv-id database at ``url`` (SQLAlchemy URL; SQLite or PostgreSQL).

    Opening creates the SQLite file's folder if needed and migrates the schema to the latest
    revision. Failures to reach or use the database raise :class:`StoreError` with a one-line
    message that never contains the password.

    ``retry_seconds``: how long a transaction (and the opening migration) keeps retrying
    transient failures (SQLite locked by another process, PostgreSQL unreachable or dropping
    the connection), with exponential backoff from 0.2 s, before giving up; 0 = never retry.
    ``busy_timeout_s``: SQLite's own wait for a lock within one attempt (``PRAGMA busy_timeout``).
    """
