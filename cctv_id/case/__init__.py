"""Evidence case files: ``export_case`` (hits, crops, context frames, clips and a manifest
of sha256s for one person) and ``verify_case`` (recompute the sha256s later).

``manifest`` owns hashing and verification, ``clips`` the re-decoded video clips with the
face boxed, ``export`` the query, the layout and the all-or-nothing placement of the case.
"""

from __future__ import annotations

from .export import ExportResult, export_case
from .manifest import VerifyReport, verify_case

__all__ = ["ExportResult", "VerifyReport", "export_case", "verify_case"]
