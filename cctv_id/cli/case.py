"""``cctv-id`` export-case, verify-case: evidence case files.

(Being built: see issue 7.)
"""

from __future__ import annotations

COMMANDS: list = []
