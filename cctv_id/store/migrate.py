"""Alembic, configured in code: no ``alembic.ini`` is needed at run time."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# pg_advisory_xact_lock key: serialises concurrent first-time migrations of one database.
_PG_LOCK_KEY = 0x0CC7_1D00


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` pointing at this package's migrations.

    ``url`` is only needed for commands that open their own connection (e.g. ``command.check``);
    :func:`upgrade` passes an open connection instead.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


class SchemaTooNew(CommandError):
    """The database was migrated by a newer cctv-id: this code does not know its revision."""


def check_known(current: str | None) -> None:
    """Refuse a database at a revision this code does not have (a newer cctv-id's)."""
    if current is None:
        return
    script = ScriptDirectory.from_config(alembic_config())
    try:
        known = script.get_revision(current) is not None
    except CommandError:
        known = False
    if not known:
        raise SchemaTooNew(
            f"its schema is at revision {current}, which this cctv-id does not know (newest "
            f"here: {head_revision()}); it was upgraded by a newer cctv-id — upgrade cctv-id")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` in one transaction (a no-op when already there).

    A database at a revision unknown here (migrated by a newer version) raises
    :class:`SchemaTooNew` and is left untouched.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        current = current_revision(conn)
        if revision == "head" and current == head_revision():
            return
        check_known(current)
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
