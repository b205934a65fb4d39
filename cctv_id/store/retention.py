"""Removing people, purging old data by retention rules, and re-embedding stored faces.

(Being built: see issue 7.)
"""

from __future__ import annotations

from cctv_id.store.audit import AuditMixin
from cctv_id.store.queries import TracksHitsMixin


class RetentionMixin(TracksHitsMixin, AuditMixin):
    """Removal, purge and re-embedding (part of :class:`Repository`)."""
