"""Store fixtures: every repository test runs on SQLite (a tmp file) and on PostgreSQL.

PostgreSQL: the session database of ``tests/conftest.py`` (``pg_database_url``) and one
fresh schema per test (selected with ``search_path`` in the URL), so nothing else on the
server can interfere.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from cctv_id.store import Repository

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
