"""Evaluation tests use a private on-disk cache (never the user's ~/.cache/cctv-id)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    folder = tmp_path_factory.getbasetemp() / "eval-cache"
    monkeypatch.setenv("CCTV_ID_CACHE", str(folder))
    return folder
