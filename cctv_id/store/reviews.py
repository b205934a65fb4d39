"""Reviewers' decisions (confirm, reject, name, merge) and retro-matching hits.

(Being built: see issue 7.)
"""

from __future__ import annotations

from cctv_id.store.queries import TracksHitsMixin


class ReviewsMixin(TracksHitsMixin):
    """Reviews and retro hits (part of :class:`Repository`)."""
