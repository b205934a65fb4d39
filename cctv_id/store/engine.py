"""Engine and transactions: the base of :class:`~cctv_id.store.repository.Repository`.

Owns engine creation (SQLite folder creation, pragmas and ``BEGIN IMMEDIATE`` for writes;
PostgreSQL connect timeout), the retry-with-backoff transaction runner
(:meth:`RepositoryBase._transact`), the translation of database errors into one-line
:class:`StoreError` messages that never contain the password, the portable
``INSERT ... ON CONFLICT DO NOTHING`` helper and the repository's lifecycle (close, context
manager).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self, TypeVar

from alembic.util import CommandError
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from cctv_id.errors import StoreError
from cctv_id.store import migrate

# the logger keeps the name it had before the repository was split into modules
log = logging.getLogger("cctv_id.store.repository")

T = TypeVar("T")

DEFAULT_RETRY_SECONDS = 30.0
DEFAULT_BUSY_TIMEOUT_S = 10.0
_BACKOFF_FIRST_S = 0.2
_BACKOFF_MAX_S = 5.0
_PG_CONNECT_TIMEOUT_MAX_S = 10
_KIND_TEXT = {
    "locked": "database is locked by another process",
    "unreachable": "database unreachable",
    "busy": "database busy",
}

# PostgreSQL SQLSTATEs worth another try: connection exceptions (08), the server shutting
# down or starting (57P), serialization failure / deadlock (40), too many connections and
# other shortages (53), lock not available (55P03).
_PG_UNREACHABLE_SQLSTATES = ("08", "57P")
_PG_BUSY_SQLSTATES = ("40", "53", "55P03")
# A server-reported FATAL at connect is permanent (unknown database, role, bad password)
# except for these passing states.
_PG_TRANSIENT_FATAL = (
    "starting up",
    "shutting down",
    "recovery mode",
    "not yet accepting connections",
    "too many",
    "terminating connection",
)


def _first_line(text: str) -> str:
    text = str(text).strip()
    return text.splitlines()[0].strip() if text else ""


class RepositoryBase:
    """Engine, retrying transactions and lifecycle shared by the repository's parts.

    See :class:`~cctv_id.store.repository.Repository` for the arguments.
    """

    def __init__(
        self,
        url: str,
        *,
        migrate_schema: bool = True,
        echo: bool = False,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        if not (retry_seconds >= 0 and math.isfinite(retry_seconds)):
            raise ValueError(f"retry_seconds must be a finite number >= 0, got {retry_seconds!r}")
        if not (busy_timeout_s >= 0 and math.isfinite(busy_timeout_s)):
            raise ValueError(f"busy_timeout_s must be a finite number >= 0, got {busy_timeout_s!r}")
        self.retry_seconds = float(retry_seconds)
        self.busy_timeout_s = float(busy_timeout_s)
        try:
            self._url: URL = make_url(url)
        except (ArgumentError, ValueError) as e:
            raise StoreError(f"invalid database URL: {_first_line(str(e))}") from None
        self.safe_url = self._url.render_as_string(hide_password=True)
        self._password = self._url.password if isinstance(self._url.password, str) else None
        self._engine = self._create_engine(echo)
        # SQLite only: write transactions start with BEGIN IMMEDIATE (take the write lock up
        # front, so busy_timeout applies instead of a deadlock-style SQLITE_BUSY).
        self._write_engine = self._engine.execution_options(cctv_write=True)
        if migrate_schema:
            try:
                self._retrying(
                    lambda: migrate.upgrade(self._engine),
                    fail=lambda e: f"cannot open database {self.safe_url}: {self._describe(e)}",
                )
            except StoreError:
                self._engine.dispose()
                raise
            except CommandError as e:
                self._engine.dispose()
                raise StoreError(f"cannot open database {self.safe_url}: {self._describe(e)}") from None

    # ------------------------------------------------------------------ engine & transactions

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @property
    def engine(self) -> Engine:
        """For tests and admin tools; application code goes through the methods."""
        return self._engine

    def _create_engine(self, echo: bool) -> Engine:
        url = self._url
        kwargs: dict[str, Any] = {"echo": echo}
        is_sqlite = url.get_backend_name() == "sqlite"
        if is_sqlite:
            db = url.database or ""
            in_memory = db in ("", ":memory:") or db.startswith("file::memory:")
            kwargs["connect_args"] = {"check_same_thread": False}
            if in_memory:
                kwargs["poolclass"] = StaticPool
            elif not db.startswith("file:"):
                try:
                    Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise StoreError(
                        f"cannot create the folder of SQLite database {db}: {e.strerror}"
                    ) from None
        else:
            kwargs["pool_pre_ping"] = True
            if url.get_backend_name() == "postgresql" and url.get_driver_name() in (
                "psycopg",
                "psycopg2",
            ) and "connect_timeout" not in url.query:
                # libpq waits for the OS's TCP timeout (minutes) on a silent host; the retry
                # loop, not one connect, should spend the budget
                kwargs["connect_args"] = {
                    "connect_timeout": max(2, min(_PG_CONNECT_TIMEOUT_MAX_S, math.ceil(self.retry_seconds)))
                }
        try:
            engine = create_engine(url, **kwargs)
        except NoSuchModuleError:
            hint = " (pip install 'cctv-id[postgres]')" if url.get_backend_name() == "postgresql" else ""
            raise StoreError(f"no database driver for {self.safe_url}{hint}") from None
        except (ArgumentError, ImportError, TypeError) as e:
            raise StoreError(f"cannot use database URL {self.safe_url}: {_first_line(str(e))}") from None
        if is_sqlite:
            in_memory = kwargs.get("poolclass") is StaticPool
            busy_ms = int(round(self.busy_timeout_s * 1000))

            @event.listens_for(engine, "connect")
            def _sqlite_connect(dbapi_conn, _record) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute(f"PRAGMA busy_timeout={busy_ms}")
                if not in_memory:
                    cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn) -> None:
                write = conn.get_execution_options().get("cctv_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _describe(self, e: BaseException) -> str:
        if isinstance(e, DBAPIError) and e.orig is not None:
            msg = _first_line(str(e.orig)) or type(e.orig).__name__
        else:
            msg = _first_line(str(e)) or type(e).__name__
        if self._password:
            msg = msg.replace(self._password, "***")
        return msg

    def _transact(self, body: Callable[[Session], T], write: bool = False) -> T:
        """Run ``body(session)`` in ONE transaction and commit; return what it returns.

        Transient failures roll back and run ``body`` again from scratch (see
        :meth:`_retrying`), so ``body`` must not change anything outside its session (it may
        read the enclosing method's arguments). Other database errors: :class:`StoreError`.
        Exceptions that ``body`` raises itself (NotFoundError, ValueError) roll back and pass.
        """
        engine = self._write_engine if write else self._engine

        def attempt() -> T:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                return body(session)

        return self._retrying(attempt)

    def _retrying(self, attempt: Callable[[], T], fail: Callable[[SQLAlchemyError], str] | None = None) -> T:
        """``attempt()``, repeated on transient database errors with exponential backoff
        (0.2 s doubling up to 5 s, with jitter) until ``retry_seconds`` have passed.

        Gives up with a one-line :class:`StoreError` ("database is locked by another process
        (gave up after 30 s): URL", "database unreachable (gave up after 30 s): URL — reason").
        A non-transient error raises at once: ``fail(e)`` or "database error (URL): reason".
        """
        start = time.monotonic()
        delay = _BACKOFF_FIRST_S
        attempts = 0
        while True:
            attempts += 1
            try:
                return attempt()
            except SQLAlchemyError as e:
                kind = self._transient_kind(e)
                if kind is None:
                    msg = fail(e) if fail else f"database error ({self.safe_url}): {self._describe(e)}"
                    raise StoreError(msg) from e
                remaining = self.retry_seconds - (time.monotonic() - start)
                if remaining <= 0:
                    raise StoreError(self._gave_up(kind, e)) from e
                if attempts == 1:
                    log.warning(
                        "%s: %s (%s); retrying for up to %g s",
                        _KIND_TEXT[kind], self.safe_url, self._describe(e), self.retry_seconds,
                    )
                else:
                    log.debug("attempt %d failed (%s): %s", attempts, kind, self._describe(e))
                time.sleep(min(remaining, delay * random.uniform(0.5, 1.0)))
                delay = min(delay * 2, _BACKOFF_MAX_S)

    def _transient_kind(self, e: SQLAlchemyError) -> str | None:
        """"locked" (SQLite), "unreachable" / "busy" (server), or None: not worth retrying."""
        if isinstance(e, DisconnectionError):
            return "unreachable"
        if not isinstance(e, DBAPIError):
            return None
        msg = str(e.orig if e.orig is not None else e).lower()
        if self.dialect == "sqlite":
            if isinstance(e, OperationalError) and ("locked" in msg or "busy" in msg):
                return "locked"
            return None
        if e.connection_invalidated:
            return "unreachable"
        if not isinstance(e, (OperationalError, InterfaceError)):
            return None
        code = getattr(e.orig, "sqlstate", None) or getattr(e.orig, "pgcode", None)
        if code:
            if code.startswith(_PG_UNREACHABLE_SQLSTATES):
                return "unreachable"
            if code.startswith(_PG_BUSY_SQLSTATES):
                return "busy"
            return None
        if "fatal:" in msg and not any(p in msg for p in _PG_TRANSIENT_FATAL):
            return None  # e.g. unknown database or role, failed authentication
        return "unreachable"

    def _gave_up(self, kind: str, e: BaseException) -> str:
        head = f"{_KIND_TEXT[kind]} (gave up after {self.retry_seconds:g} s): {self.safe_url}"
        return head if kind == "locked" else f"{head} — {self._describe(e)}"

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Repository({self.safe_url!r})"

    # ------------------------------------------------------------------ portable upsert helper

    _INSERT_CHUNK = 200  # rows per multi-row INSERT (well under SQLite's variable limit)

    def _insert_ignore(self, session: Session, model, values: list[dict] | dict, conflict: list[str]) -> int:
        """INSERT rows, skipping those that collide on the unique columns ``conflict``.

        Returns the number of rows actually inserted (counted with RETURNING, which both
        SQLite >= 3.35 and PostgreSQL support; rowcount is not reliable here).
        """
        rows = [values] if isinstance(values, dict) else list(values)
        if not rows:
            return 0
        table = model.__table__
        pk = list(table.primary_key.columns)[0]
        name = session.get_bind().dialect.name
        if name in ("sqlite", "postgresql"):
            if name == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            total = 0
            for i in range(0, len(rows), self._INSERT_CHUNK):
                stmt = (
                    dialect_insert(table)
                    .values(rows[i : i + self._INSERT_CHUNK])
                    .on_conflict_do_nothing(index_elements=conflict)
                    .returning(pk)
                )
                total += len(session.execute(stmt).all())
            return total
        # other dialects: check, then insert, inside this transaction
        total = 0
        for row in rows:
            q = select(func.count()).select_from(table)
            for col in conflict:
                q = q.where(table.c[col] == row[col])
            if not session.execute(q).scalar_one():
                session.execute(table.insert().values(**row))
                total += 1
        return total

    def _upsert(self, session: Session, model, rows: list[dict], conflict: list[str],
                keep: tuple[str, ...] = ()) -> None:
        """INSERT rows; a row colliding on the unique columns ``conflict`` is updated with
        the new values instead, except for the columns in ``keep`` (and ``conflict``)."""
        if not rows:
            return
        table = model.__table__
        name = session.get_bind().dialect.name
        fixed = set(conflict) | set(keep)
        if name in ("sqlite", "postgresql"):
            if name == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            for i in range(0, len(rows), self._INSERT_CHUNK):
                stmt = dialect_insert(table).values(rows[i : i + self._INSERT_CHUNK])
                changes = {c: stmt.excluded[c] for c in rows[0] if c not in fixed}
                session.execute(stmt.on_conflict_do_update(index_elements=conflict, set_=changes))
            return
        for row in rows:  # other dialects: update, else insert, inside this transaction
            cond = [table.c[col] == row[col] for col in conflict]
            changes = {c: v for c, v in row.items() if c not in fixed}
            if not session.execute(table.update().where(*cond).values(**changes)).rowcount:
                session.execute(table.insert().values(**row))

    # ------------------------------------------------------------------ shared validation

    @staticmethod
    def _name(name: str, what: str) -> str:
        name = (name or "").strip()
        if not name:
            raise ValueError(f"{what} name must not be empty")
        return name
