"""HTML pages of the web application (being built: issue 8)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
