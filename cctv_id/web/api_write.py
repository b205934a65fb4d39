"""Review and admin JSON API routes (filled in below)."""
from fastapi import APIRouter

router = APIRouter()
