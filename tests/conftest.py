"""Shared fixtures: where the real development data lives, and skips when it is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))

SHARED_DATA = Path(os.environ.get("CCTV_ID_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real test data not found at {path} (../shared/data is absent on this machine)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def celeba_dir(shared_data) -> Path:
    return _require(shared_data / "faces" / "celeba")


@pytest.fixture(scope="session")
def vtest_path(shared_data) -> Path:
    return _require(shared_data / "video" / "vtest.avi")


@pytest.fixture(scope="session")
def damaged_video_path(shared_data) -> Path:
    return _require(shared_data / "video" / "Megamind_bugy.avi")


@pytest.fixture(scope="session")
def insightface_images() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        pytest.skip("insightface is not installed")
    return Path(spec.origin).parent / "data" / "images"
