"""Shared fixtures: where the real development data lives, and skips when it is absent."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

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


# ---------------------------------------------------------------- PostgreSQL
# One fresh database per test session (``cctvid_test_<random>``, dropped at the end) on the
# server at 127.0.0.1:5432 (trust auth); ``CCTV_ID_TEST_PG_URL`` overrides the admin URL.
# Unreachable server: the PostgreSQL cases skip with the reason.

_ADMIN_URLS = (
    [os.environ["CCTV_ID_TEST_PG_URL"]]
    if os.environ.get("CCTV_ID_TEST_PG_URL")
    else [
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        "postgresql+psycopg://root@127.0.0.1:5432/postgres",
    ]
)


def _admin_engine():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')")
    errors = []
    for url in _ADMIN_URLS:
        engine = create_engine(
            url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return engine
        except Exception as e:  # noqa: BLE001 - any failure means "no server for us"
            engine.dispose()
            errors.append(f"{make_url(url).render_as_string(hide_password=True)}: "
                          f"{str(getattr(e, 'orig', e)).strip().splitlines()[0]}")
    pytest.skip("PostgreSQL server unreachable: " + "; ".join(errors))


@pytest.fixture(scope="session")
def pg_database_url():
    """URL of a fresh PostgreSQL database for this test session (dropped afterwards)."""
    admin = _admin_engine()
    name = f"cctvid_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name)
    schema_engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        yield url, schema_engine
    finally:
        schema_engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()





# ---------------------------------------------------------------- investigation world
# A processed street clip (tests/helpers/investigation.py), built once per session and
# copied for every test that asks for ``world``.


@pytest.fixture(scope="session")
def investigation_template(tmp_path_factory, celeba_dir, vtest_path):
    import investigation

    return investigation.build_world(tmp_path_factory.mktemp("world"), celeba_dir, vtest_path)


@pytest.fixture
def world(investigation_template, tmp_path):
    import investigation

    return investigation.copy_world(investigation_template, tmp_path / "world")
