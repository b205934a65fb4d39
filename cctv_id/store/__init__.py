"""Persistence: SQLAlchemy models, Alembic migrations and the repository.

The :class:`Repository` is the only holder of a database session; everything else talks to
it with plain records.
"""

from cctv_id.store.records import Checkpoint, HitRecord, TrackRecord, WatchlistData
from cctv_id.store.repository import Repository

__all__ = ["Checkpoint", "HitRecord", "Repository", "TrackRecord", "WatchlistData"]
