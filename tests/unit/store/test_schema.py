"""Migrations create exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from cctv_id.store import Repository
from cctv_id.store import migrate
from cctv_id.store.models import Base


def _diffs(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def test_migrated_schema_matches_models(repo):
    assert _diffs(repo.engine) == []
    with repo.engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision() == "0005_web_users"
    names = set(inspect(repo.engine).get_table_names())
    assert set(Base.metadata.tables) <= names
    assert repo.watchlist_generation() == 0  # seeded by the migration


def test_reopen_is_a_noop_and_downgrade_upgrade_round_trips(db_url):
    Repository(db_url).close()
    repo = Repository(db_url)  # already at head: nothing to do
    repo.get_or_create_camera("cam")
    with repo.engine.begin() as conn:
        cfg = migrate.alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert not set(Base.metadata.tables) & set(inspect(repo.engine).get_table_names())
    migrate.upgrade(repo.engine)
    assert _diffs(repo.engine) == []
    assert repo.count("cameras") == 0
    repo.close()


def test_sqlite_pragmas_and_parent_folder(tmp_path: Path):
    path = tmp_path / "a" / "b" / "cctv.db"
    repo = Repository(f"sqlite:///{path}")
    assert path.exists()
    with repo.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    repo.close()


def test_in_memory_sqlite_works():
    repo = Repository("sqlite://")
    assert repo.get_or_create_camera("x") == 1
    assert repo.count("cameras") == 1
    repo.close()


def test_offline_sql_generation_for_both_dialects(capsys):
    for url in ("sqlite://", "postgresql+psycopg://u@h/db"):
        command.upgrade(migrate.alembic_config(url), "head", sql=True)
        out = capsys.readouterr().out
        assert "CREATE TABLE hits" in out and "watchlist_generation" in out


def test_alembic_cli_env_uses_url_option(tmp_path: Path):
    """The env.py path that opens its own engine (as the alembic CLI does)."""
    path = tmp_path / "cli.db"
    cfg = migrate.alembic_config(f"sqlite:///{path}")
    command.upgrade(cfg, "head")
    repo = Repository(f"sqlite:///{path}")
    assert _diffs(repo.engine) == []
    with repo.engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM meta")).scalar() == "0"
    repo.close()
