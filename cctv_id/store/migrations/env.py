"""Alembic environment for cctv-id.

Two ways in:
- programmatic (``cctv_id.store.migrate``): an open SQLAlchemy ``Connection`` is passed in
  ``config.attributes["connection"]`` and used as is (the caller owns its transaction);
- the alembic CLI: the database URL comes from ``-x url=...``, else the ``sqlalchemy.url``
  option of the ini file, else the ``CCTV_ID_DB_URL`` environment variable. ``--sql``
  (offline mode) is supported.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

from cctv_id.store.models import Base

config = context.config
target_metadata = Base.metadata

if (
    config.config_file_name is not None
    and config.attributes.get("connection") is None
    and config.file_config.has_section("formatters")  # the ini carries a logging setup
):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("CCTV_ID_DB_URL")
    )
    if not url:
        raise RuntimeError(
            "no database URL: pass -x url=..., set sqlalchemy.url, or set CCTV_ID_DB_URL"
        )
    return url


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copes
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    section = dict(config.get_section(config.config_ini_section) or {})
    section["sqlalchemy.url"] = _url()
    engine = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as conn:
        _configure(connection=conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
