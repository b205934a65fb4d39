"""Read-only JSON API routes (filled in below)."""
from fastapi import APIRouter

router = APIRouter()
