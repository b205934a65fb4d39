"""``cctv-id`` search --photo, tracks, timeline: find people in everything stored.

(Being built: see issue 7.)
"""

from __future__ import annotations

COMMANDS: list = []
