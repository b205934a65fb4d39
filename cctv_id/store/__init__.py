"""Persistence: SQLAlchemy models, Alembic migrations and the repository.

The :class:`Repository` is the only holder of a database session; everything else talks to
it with plain records.
"""

from cctv_id.store.records import HitRecord, TrackRecord, WatchlistData
from cctv_id.store.repository import Repository

__all__ = ["HitRecord", "Repository", "TrackRecord", "WatchlistData"]
