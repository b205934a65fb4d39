"""``cctv-id`` review: confirm / reject hits, name unknown tracks, merge tracks.

(Being built: see issue 7.)
"""

from __future__ import annotations

COMMANDS: list = []
