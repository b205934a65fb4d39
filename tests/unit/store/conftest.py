"""Store fixtures: every repository test runs on SQLite (a tmp file) and on PostgreSQL.

PostgreSQL: one fresh database per test session (``cctvid_test_<random>``, dropped at the
end) and one fresh schema per test (selected with ``search_path`` in the URL), so nothing
else on the server can interfere. The server defaults to 127.0.0.1:5432 with trust auth;
``CCTV_ID_TEST_PG_URL`` overrides the admin URL. Unreachable server: the PostgreSQL
parameters skip with the reason.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cctv_id.store import Repository

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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A database URL with an empty database behind it (SQLite file or PostgreSQL schema)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nested' / 'cctv.db'}"
    url, schema_engine = request.getfixturevalue("pg_database_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with schema_engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture
def repo(db_url):
    r = Repository(db_url)
    try:
        yield r
    finally:
        r.close()
