"""``cctv-id`` persons management, remove-person, purge, audit, reembed.

(Being built: see issue 7.)
"""

from __future__ import annotations

COMMANDS: list = []
