"""The repository: the only holder of a database Session in cctv-id.

Every public method is one short transaction and returns plain values (ints, dicts,
dataclasses, numpy arrays), never ORM objects. SQLite and PostgreSQL behave the same:
idempotent writes use the dialect's ``INSERT ... ON CONFLICT DO NOTHING``; datetimes go in
and come out as timezone-aware UTC.

Transient failures are retried: a SQLite database locked by another process, a PostgreSQL
server that is unreachable, restarting or dropped the connection. Each transaction is a
function of its session (``body(s)``) that :meth:`Repository._transact` runs again from
scratch, with exponential backoff, until it commits or the ``retry_seconds`` budget is spent.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from alembic.util import CommandError
from sqlalchemy import (
    Integer,
    String,
    case,
    cast,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
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

from cctv_id.errors import NotFoundError, StoreError
from cctv_id.store import migrate
from cctv_id.store.models import (
    RUN_STATUSES,
    TABLES,
    TRACK_STATUSES,
    WATCHLIST_GENERATION_KEY,
    Camera,
    Enrolment,
    HitRow,
    Meta,
    Person,
    Run,
    RunCheckpoint,
    Source,
    TrackRow,
    to_utc,
    utcnow,
)
from cctv_id.store.records import Checkpoint, HitRecord, TrackRecord, WatchlistData

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RETRY_SECONDS = 30.0
DEFAULT_BUSY_TIMEOUT_S = 10.0
_BACKOFF_FIRST_S = 0.2
_BACKOFF_MAX_S = 5.0
_PG_CONNECT_TIMEOUT_MAX_S = 10
_MAX_NAMES_IN_MESSAGE = 20
RESUMABLE_STATUSES = ("running", "interrupted", "failed")
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


def _blob(vector: Any, what: str) -> tuple[bytes, int]:
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what}: expected a 1-D embedding, got shape {np.shape(vector)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: embedding has non-finite values")
    return arr.astype("<f4").tobytes(), int(arr.size)


def _unblob(data: bytes | None, dim: int | None) -> np.ndarray | None:
    if data is None:
        return None
    arr = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if dim is not None and arr.size != dim:
        raise StoreError(f"stored embedding has {arr.size} values, expected {dim}")
    return arr


def _sha256_or_none(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    value = str(value).strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"{what} must be 64 hex digits, got {value!r}")
    return value


def _bbox(b) -> tuple[float, float, float, float] | None:
    if b is None:
        return None
    vals = [float(v) for v in b]
    if len(vals) != 4:
        raise ValueError(f"bbox must have 4 values, got {len(vals)}")
    return vals[0], vals[1], vals[2], vals[3]


class Repository:
    """Access to the cctv-id database at ``url`` (SQLAlchemy URL; SQLite or PostgreSQL).

    Opening creates the SQLite file's folder if needed and migrates the schema to the latest
    revision. Failures to reach or use the database raise :class:`StoreError` with a one-line
    message that never contains the password.

    ``retry_seconds``: how long a transaction (and the opening migration) keeps retrying
    transient failures (SQLite locked by another process, PostgreSQL unreachable or dropping
    the connection), with exponential backoff from 0.2 s, before giving up; 0 = never retry.
    ``busy_timeout_s``: SQLite's own wait for a lock within one attempt (``PRAGMA busy_timeout``).
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

    def __enter__(self) -> Repository:
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

    # ------------------------------------------------------------------ cameras, sources, runs

    def get_or_create_camera(self, name: str) -> int:
        name = self._name(name, "camera")

        def body(s: Session):
            self._insert_ignore(s, Camera, {"name": name, "created_at": utcnow()}, ["name"])
            return s.execute(select(Camera.id).where(Camera.name == name)).scalar_one()

        return self._transact(body, write=True)

    def get_or_create_source(
        self, path: str, sha256: str, size_bytes: int, duration_s: float | None = None
    ) -> int:
        """The source with this content hash; a known file that moved gets its new path."""
        sha256 = sha256.strip().lower()
        if len(sha256) != 64:
            raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")

        def body(s: Session):
            self._insert_ignore(
                s,
                Source,
                {
                    "path": str(path),
                    "sha256": sha256,
                    "size_bytes": int(size_bytes),
                    "duration_s": None if duration_s is None else float(duration_s),
                    "created_at": utcnow(),
                },
                ["sha256"],
            )
            row = s.execute(select(Source.id, Source.path).where(Source.sha256 == sha256)).one()
            if row.path != str(path):
                s.execute(update(Source).where(Source.id == row.id).values(path=str(path)))
            return row.id

        return self._transact(body, write=True)

    def start_run(
        self,
        source_id: int,
        camera_id: int,
        model_sha256s: dict,
        config: dict,
        tool_version: str,
        start_time: datetime | None = None,
        config_sha256: str | None = None,
    ) -> int:
        """A new run, status "running", owned by this process (``pid``, ``heartbeat_at``).

        ``config_sha256``: hash of the resolved config; with the source, camera and
        ``model_sha256s`` it is the key :meth:`find_resumable_run` looks runs up by.
        """
        start_time = to_utc(start_time, "start_time")
        config_sha256 = _sha256_or_none(config_sha256, "config_sha256")

        def body(s: Session) -> int:
            now = utcnow()
            run = Run(
                source_id=source_id,
                camera_id=camera_id,
                started_at=now,
                status="running",
                frames_processed=0,
                last_frame_index=None,
                model_sha256s=dict(model_sha256s),
                config=dict(config),
                tool_version=str(tool_version),
                start_time=start_time,
                config_sha256=config_sha256,
                pid=os.getpid(),
                heartbeat_at=now,
            )
            s.add(run)
            s.flush()
            return run.id

        return self._transact(body, write=True)

    def update_run_progress(self, run_id: int, frames_processed: int, last_frame_index: int) -> None:
        """Record progress (and a heartbeat: the run's process is alive)."""
        self._transact(
            lambda s: self._set_progress(s, run_id, (frames_processed, last_frame_index)), write=True
        )

    @staticmethod
    def _set_progress(s: Session, run_id: int, progress: tuple[int, int] | None) -> None:
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if progress is not None:
            frames_processed, last_frame_index = progress
            values["frames_processed"] = int(frames_processed)
            values["last_frame_index"] = None if last_frame_index is None else int(last_frame_index)
        res = s.execute(update(Run).where(Run.id == run_id).values(**values))
        if res.rowcount == 0:
            raise NotFoundError(f"unknown run {run_id}")

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        """Close a run as "completed", "failed" or "interrupted". Saved tracks and hits stay."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"finish_run: status must be completed, failed or interrupted, not {status!r}")

        def body(s: Session) -> None:
            res = s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status=status, error=error, finished_at=utcnow())
            )
            if res.rowcount == 0:
                raise NotFoundError(f"unknown run {run_id}")

        self._transact(body, write=True)

    def mark_running(self, run_id: int) -> None:
        """Take an unfinished run over to resume it: status "running", no error, not finished,
        owned by this process (``pid``) with a fresh heartbeat. Its results stay."""

        def body(s: Session) -> None:
            res = s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status="running", error=None, finished_at=None, pid=os.getpid(), heartbeat_at=utcnow())
            )
            if res.rowcount == 0:
                raise NotFoundError(f"unknown run {run_id}")

        self._transact(body, write=True)

    def reset_run(self, run_id: int) -> list[str]:
        """Start a run again from nothing (``--restart``), in ONE transaction: its hits, tracks
        and checkpoint are deleted and it becomes "running" (no error, no progress, started
        now, owned by this process). The run keeps its id and provenance.

        Returns the crop paths the deleted rows referenced (sorted, distinct), so the caller
        can remove the files once this has committed.
        """

        def body(s: Session) -> list[str]:
            now = utcnow()
            res = s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    status="running",
                    error=None,
                    frames_processed=0,
                    last_frame_index=None,
                    started_at=now,
                    finished_at=None,
                    pid=os.getpid(),
                    heartbeat_at=now,
                )
            )
            if res.rowcount == 0:
                raise NotFoundError(f"unknown run {run_id}")
            crops = set(
                s.execute(
                    select(TrackRow.crop_path).where(TrackRow.run_id == run_id, TrackRow.crop_path.is_not(None))
                ).scalars()
            )
            crops.update(
                s.execute(
                    select(HitRow.crop_path).where(HitRow.run_id == run_id, HitRow.crop_path.is_not(None))
                ).scalars()
            )
            s.execute(delete(HitRow).where(HitRow.run_id == run_id))
            s.execute(delete(TrackRow).where(TrackRow.run_id == run_id))
            s.execute(delete(RunCheckpoint).where(RunCheckpoint.run_id == run_id))
            return sorted(crops)

        return self._transact(body, write=True)

    def get_run(self, run_id: int) -> dict:

        def body(s: Session) -> dict:
            row = s.execute(self._runs_query().where(Run.id == run_id)).one_or_none()
            if row is None:
                raise NotFoundError(f"unknown run {run_id}")
            return self._run_dict(row)

        return self._transact(body)

    def list_runs(
        self, source_id: int | None = None, camera: str | None = None, status: str | None = None
    ) -> list[dict]:
        """Runs, newest first (e.g. to find an interrupted run of a source to resume)."""
        q = self._runs_query()
        if source_id is not None:
            q = q.where(Run.source_id == source_id)
        if camera is not None:
            q = q.where(Camera.name == camera)
        if status is not None:
            q = q.where(Run.status == status)
        return self._transact(lambda s: [self._run_dict(r) for r in s.execute(q.order_by(Run.id.desc()))])

    def find_resumable_run(
        self, source_sha256: str, camera: str, model_sha256s: dict, config_sha256: str
    ) -> dict | None:
        """The newest unfinished run ("running", "interrupted" or "failed") of this source
        and camera with the same model hashes and config hash (as :meth:`get_run`), or None.

        A "running" run may still be alive in another process: compare its ``pid`` and
        ``heartbeat_at`` before taking it over.
        """
        return self._find_run(source_sha256, camera, model_sha256s, config_sha256, RESUMABLE_STATUSES)

    def find_completed_run(
        self, source_sha256: str, camera: str, model_sha256s: dict, config_sha256: str
    ) -> dict | None:
        """The newest "completed" run with the same key as :meth:`find_resumable_run`, or None."""
        return self._find_run(source_sha256, camera, model_sha256s, config_sha256, ("completed",))

    def _find_run(
        self,
        source_sha256: str,
        camera: str,
        model_sha256s: dict,
        config_sha256: str,
        statuses: tuple[str, ...],
    ) -> dict | None:
        source_sha256 = str(source_sha256).strip().lower()
        config_sha256 = _sha256_or_none(config_sha256, "config_sha256")
        if config_sha256 is None:
            raise ValueError("config_sha256 is required to find a run")
        wanted = dict(model_sha256s)
        q = (
            self._runs_query()
            .where(
                Source.sha256 == source_sha256,
                Camera.name == camera,
                Run.config_sha256 == config_sha256,
                Run.status.in_(statuses),
            )
            .order_by(Run.id.desc())
        )

        def body(s: Session) -> dict | None:
            # model hashes are JSON: compared here, portably, on the few runs of that key
            for row in s.execute(q):
                run = self._run_dict(row)
                if run["model_sha256s"] == wanted:
                    return run
            return None

        return self._transact(body)

    @staticmethod
    def _runs_query():
        return (
            select(Run, Source.path, Source.sha256, Camera.name)
            .join(Source, Source.id == Run.source_id)
            .join(Camera, Camera.id == Run.camera_id)
        )

    @staticmethod
    def _run_dict(row) -> dict:
        run: Run = row[0]
        return {
            "id": run.id,
            "source_id": run.source_id,
            "source_path": row[1],
            "source_sha256": row[2],
            "camera_id": run.camera_id,
            "camera": row[3],
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "status": run.status,
            "error": run.error,
            "frames_processed": run.frames_processed,
            "last_frame_index": run.last_frame_index,
            "model_sha256s": dict(run.model_sha256s or {}),
            "config": dict(run.config or {}),
            "config_sha256": run.config_sha256,
            "tool_version": run.tool_version,
            "start_time": run.start_time,
            "pid": run.pid,
            "heartbeat_at": run.heartbeat_at,
        }

    # ------------------------------------------------------------------ checkpoints

    def get_checkpoint(self, run_id: int) -> Checkpoint | None:
        """The run's checkpoint (saved by :meth:`save_track_results`), or None.

        The state's sha256 is verified: a mismatch raises :class:`StoreError`.
        """

        def body(s: Session):
            return s.execute(
                select(
                    RunCheckpoint.frame_index,
                    RunCheckpoint.pts_s,
                    RunCheckpoint.state,
                    RunCheckpoint.state_sha256,
                ).where(RunCheckpoint.run_id == run_id)
            ).one_or_none()

        row = self._transact(body)
        if row is None:
            return None
        state = bytes(row.state)
        if hashlib.sha256(state).hexdigest() != row.state_sha256:
            raise StoreError(f"checkpoint of run {run_id} is corrupt (state sha256 mismatch)")
        return Checkpoint(frame_index=int(row.frame_index), pts_s=float(row.pts_s), state=state)

    def _upsert_checkpoint(self, s: Session, run_id: int, cp: Checkpoint) -> None:
        state = bytes(cp.state)
        values = {
            "frame_index": int(cp.frame_index),
            "pts_s": float(cp.pts_s),
            "state": state,
            "state_sha256": hashlib.sha256(state).hexdigest(),
            "updated_at": utcnow(),
        }
        name = s.get_bind().dialect.name
        if name in ("sqlite", "postgresql"):
            if name == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            stmt = dialect_insert(RunCheckpoint.__table__).values(run_id=run_id, **values)
            s.execute(stmt.on_conflict_do_update(index_elements=["run_id"], set_=values))
            return
        res = s.execute(update(RunCheckpoint).where(RunCheckpoint.run_id == run_id).values(**values))
        if res.rowcount == 0:
            s.execute(RunCheckpoint.__table__.insert().values(run_id=run_id, **values))

    # ------------------------------------------------------------------ persons & watchlist

    @staticmethod
    def _name(name: str, what: str) -> str:
        name = (name or "").strip()
        if not name:
            raise ValueError(f"{what} name must not be empty")
        return name

    def add_person(self, name: str) -> int:
        """Get or create a person; adding a person alone does not change the watchlist."""
        name = self._name(name, "person")

        def body(s: Session):
            return self._person_id(s, name)

        return self._transact(body, write=True)

    def _person_id(self, s: Session, name: str) -> int:
        self._insert_ignore(s, Person, {"name": name, "created_at": utcnow()}, ["name"])
        return s.execute(select(Person.id).where(Person.name == name)).scalar_one()

    def person_exists(self, name: str) -> bool:

        def body(s: Session):
            return s.execute(select(Person.id).where(Person.name == name.strip())).first() is not None

        return self._transact(body)

    def add_enrolment(
        self,
        person_name: str,
        photo_path: str,
        photo_sha256: str,
        model: str,
        embedding: np.ndarray,
        face_px: float,
    ) -> int:
        """Enrol one photo's embedding; idempotent on (person, photo_sha256, model).

        A new enrolment bumps the watchlist generation in the same transaction.
        """
        return self.add_enrolments(
            [
                dict(
                    person_name=person_name,
                    photo_path=photo_path,
                    photo_sha256=photo_sha256,
                    model=model,
                    embedding=embedding,
                    face_px=face_px,
                )
            ]
        )[0]

    def add_enrolments(self, items: list[dict]) -> list[int]:
        """Several :meth:`add_enrolment` calls (dicts of its keyword arguments) in ONE
        transaction: all or nothing, one generation bump if anything new was enrolled."""
        prepared = []
        for it in items:
            name = self._name(it["person_name"], "person")
            blob, dim = _blob(it["embedding"], f"enrolment of {name}")
            prepared.append((name, it, blob, dim))

        def body(s: Session) -> list[int]:
            ids = []  # inside: a retried transaction starts again from scratch
            any_new = False
            for name, it, blob, dim in prepared:
                person_id = self._person_id(s, name)
                key = (str(it["photo_sha256"]), str(it["model"]))
                any_new |= bool(
                    self._insert_ignore(
                        s,
                        Enrolment,
                        {
                            "person_id": person_id,
                            "photo_path": str(it["photo_path"]),
                            "photo_sha256": key[0],
                            "model": key[1],
                            "embedding": blob,
                            "dim": dim,
                            "face_px": float(it["face_px"]),
                            "created_at": utcnow(),
                        },
                        ["person_id", "photo_sha256", "model"],
                    )
                )
                ids.append(
                    s.execute(
                        select(Enrolment.id).where(
                            Enrolment.person_id == person_id,
                            Enrolment.photo_sha256 == key[0],
                            Enrolment.model == key[1],
                        )
                    ).scalar_one()
                )
            if any_new:
                self._bump_generation(s)
            return ids

        return self._transact(body, write=True)

    def remove_enrolments(self, person_name: str, model: str | None = None) -> int:
        """Take a person off the watchlist (for ``model``, or for every model).

        The person and their past hits stay (evidence is never erased by this). Returns the
        number of enrolments removed; bumps the generation when that is not zero.
        """
        def body(s: Session):
            person_id = s.execute(select(Person.id).where(Person.name == person_name)).scalar()
            if person_id is None:
                raise self._unknown_person(s, person_name)
            q = delete(Enrolment).where(Enrolment.person_id == person_id)
            if model is not None:
                q = q.where(Enrolment.model == model)
            n = s.execute(q).rowcount or 0
            if n:
                self._bump_generation(s)
            return n

        return self._transact(body, write=True)

    @staticmethod
    def _bump_generation(s: Session) -> None:
        res = s.execute(
            update(Meta)
            .where(Meta.key == WATCHLIST_GENERATION_KEY)
            .values(value=cast(cast(Meta.value, Integer) + 1, String))
        )
        if res.rowcount == 0:
            s.add(Meta(key=WATCHLIST_GENERATION_KEY, value="1"))
            s.flush()

    @staticmethod
    def _generation(s: Session) -> int:
        value = s.execute(select(Meta.value).where(Meta.key == WATCHLIST_GENERATION_KEY)).scalar()
        return int(value) if value is not None else 0

    def watchlist_generation(self) -> int:

        def body(s: Session):
            return self._generation(s)

        return self._transact(body)

    def watchlist(self, model: str) -> WatchlistData:
        """All enrolments for ``model`` (one row per enrolment, ordered by person then id)."""
        def body(s: Session):
            generation = self._generation(s)
            rows = s.execute(
                select(Enrolment.person_id, Person.name, Enrolment.embedding, Enrolment.dim)
                .join(Person, Person.id == Enrolment.person_id)
                .where(Enrolment.model == model)
                .order_by(Enrolment.person_id, Enrolment.id)
            ).all()
            return generation, rows

        generation, rows = self._transact(body)
        if not rows:
            return WatchlistData(generation, np.zeros((0,), np.int64), [], np.zeros((0, 0), np.float32))
        dims = {r.dim for r in rows}
        if len(dims) != 1:
            raise StoreError(f"enrolments for model {model!r} have mixed dimensions {sorted(dims)}")
        embeddings = np.stack([_unblob(r.embedding, r.dim) for r in rows]).astype(np.float32)
        return WatchlistData(
            generation=generation,
            person_ids=np.array([r.person_id for r in rows], dtype=np.int64),
            names=[r.name for r in rows],
            embeddings=embeddings,
        )

    def list_persons(self) -> list[dict]:
        """Every person with their number of enrolled photos and of hits, by name."""
        photos = (
            select(Enrolment.person_id, func.count(func.distinct(Enrolment.photo_sha256)).label("n"))
            .group_by(Enrolment.person_id)
            .subquery()
        )
        hits = (
            select(HitRow.person_id, func.count().label("n")).group_by(HitRow.person_id).subquery()
        )
        q = (
            select(
                Person.name,
                func.coalesce(photos.c.n, 0),
                func.coalesce(hits.c.n, 0),
                Person.created_at,
            )
            .outerjoin(photos, photos.c.person_id == Person.id)
            .outerjoin(hits, hits.c.person_id == Person.id)
            .order_by(Person.name)
        )

        def body(s: Session):
            return [
                {"name": r[0], "n_photos": int(r[1]), "n_hits": int(r[2]), "created_at": r[3]}
                for r in s.execute(q)
            ]

        return self._transact(body)

    def _unknown_person(self, s: Session, name: str) -> NotFoundError:
        names = list(s.execute(select(Person.name).order_by(Person.name)).scalars())
        return NotFoundError(f"unknown person {name!r}; enrolled: {self._names_list(names)}")

    @staticmethod
    def _names_list(names: list[str]) -> str:
        if not names:
            return "(none)"
        shown = ", ".join(names[:_MAX_NAMES_IN_MESSAGE])
        return shown + (f", … ({len(names)} in all)" if len(names) > _MAX_NAMES_IN_MESSAGE else "")

    # ------------------------------------------------------------------ tracks & hits

    def save_track_results(
        self,
        run_id: int,
        camera_id: int,
        records: list[TrackRecord],
        checkpoint: Checkpoint | None = None,
        progress: tuple[int, int] | None = None,
    ) -> None:
        """Store a batch of finished tracks and their hits in ONE transaction, together with
        the run's ``checkpoint`` (replacing the previous one) and ``progress``
        (frames_processed, last_frame_index) when given, and a heartbeat: either all of it is
        stored or none of it, so a checkpoint never runs ahead of or behind the results.

        Idempotent: a (run_id, track_key) already stored is kept as it is (not updated), and
        a (run_id, track, person) hit already stored is skipped.
        """
        records = list(records)
        if not records and checkpoint is None and progress is None:
            return
        if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
            raise TypeError(f"checkpoint must be a Checkpoint, got {type(checkpoint).__name__}")
        track_rows = []
        keys = set()
        for r in records:
            if r.status not in TRACK_STATUSES:
                raise ValueError(f"track {r.track_key}: unknown status {r.status!r}")
            if r.track_key in keys:
                raise ValueError(f"track_key {r.track_key} appears twice in one batch")
            keys.add(r.track_key)
            blob, dim = (None, None) if r.embedding is None else _blob(r.embedding, f"track {r.track_key}")
            bbox = _bbox(r.best_shot_bbox) or (None, None, None, None)
            track_rows.append(
                {
                    "run_id": run_id,
                    "track_key": int(r.track_key),
                    "camera_id": camera_id,
                    "status": r.status,
                    "first_frame": int(r.first_frame),
                    "last_frame": int(r.last_frame),
                    "first_pts_s": float(r.first_pts_s),
                    "last_pts_s": float(r.last_pts_s),
                    "first_seen_at": to_utc(r.first_seen_at, "first_seen_at"),
                    "last_seen_at": to_utc(r.last_seen_at, "last_seen_at"),
                    "n_detections": int(r.n_detections),
                    "max_face_px": float(r.max_face_px),
                    "quality": float(r.quality),
                    "model": r.model,
                    "embedding": blob,
                    "dim": dim,
                    "best_score": None if r.best_score is None else float(r.best_score),
                    "best_person": r.best_person,
                    "best_shot_frame": None if r.best_shot_frame is None else int(r.best_shot_frame),
                    "best_shot_pts_s": None if r.best_shot_pts_s is None else float(r.best_shot_pts_s),
                    "best_shot_at": to_utc(r.best_shot_at, "best_shot_at"),
                    "bbox_x1": bbox[0],
                    "bbox_y1": bbox[1],
                    "bbox_x2": bbox[2],
                    "bbox_y2": bbox[3],
                    "crop_path": r.crop_path,
                    "created_at": utcnow(),
                }
            )
        hit_rows_by_key = {r.track_key: [self._hit_row(run_id, h) for h in r.hits] for r in records}

        def body(s: Session) -> None:
            if checkpoint is not None or progress is not None:
                self._set_progress(s, run_id, progress)  # NotFoundError for an unknown run
            if checkpoint is not None:
                self._upsert_checkpoint(s, run_id, checkpoint)
            if not track_rows:
                return
            self._insert_ignore(s, TrackRow, track_rows, ["run_id", "track_key"])
            ids = dict(
                s.execute(
                    select(TrackRow.track_key, TrackRow.id).where(
                        TrackRow.run_id == run_id, TrackRow.track_key.in_(list(keys))
                    )
                ).all()
            )
            hit_rows = []
            for key, rows in hit_rows_by_key.items():
                for row in rows:
                    row["track_id"] = ids[key]
                    hit_rows.append(row)
            self._insert_ignore(s, HitRow, hit_rows, ["run_id", "track_id", "person_id"])

        self._transact(body, write=True)

    def track_crop_paths(self, run_id: int | None = None) -> list[str]:
        """Every crop path that tracks or hits reference (of one run, or of all), sorted and
        distinct: for a checker that matches the database against the crop files."""
        tq = select(TrackRow.crop_path).where(TrackRow.crop_path.is_not(None))
        hq = select(HitRow.crop_path).where(HitRow.crop_path.is_not(None))
        if run_id is not None:
            tq = tq.where(TrackRow.run_id == run_id)
            hq = hq.where(HitRow.run_id == run_id)
        q = tq.union(hq)
        return sorted(self._transact(lambda s: list(s.execute(q).scalars())))

    def clear_crop_path(self, crop_path: str) -> int:
        """Forget a crop file (e.g. found missing): set crop_path to NULL on every track and
        hit that references it, in one transaction. Returns the number of rows changed."""

        def body(s: Session) -> int:
            n = s.execute(update(TrackRow).where(TrackRow.crop_path == crop_path).values(crop_path=None)).rowcount
            n += s.execute(update(HitRow).where(HitRow.crop_path == crop_path).values(crop_path=None)).rowcount
            return int(n or 0)

        return self._transact(body, write=True)

    @staticmethod
    def _hit_row(run_id: int, h: HitRecord) -> dict:
        bbox = _bbox(h.best_shot_bbox)
        assert bbox is not None
        return {
            "run_id": run_id,
            "person_id": int(h.person_id),
            "score": float(h.score),
            "threshold": float(h.threshold),
            "face_px": float(h.face_px),
            "quality": float(h.quality),
            "first_frame": int(h.first_frame),
            "last_frame": int(h.last_frame),
            "first_pts_s": float(h.first_pts_s),
            "last_pts_s": float(h.last_pts_s),
            "first_seen_at": to_utc(h.first_seen_at, "first_seen_at"),
            "last_seen_at": to_utc(h.last_seen_at, "last_seen_at"),
            "best_shot_frame": int(h.best_shot_frame),
            "best_shot_pts_s": float(h.best_shot_pts_s),
            "best_shot_at": to_utc(h.best_shot_at, "best_shot_at"),
            "bbox_x1": bbox[0],
            "bbox_y1": bbox[1],
            "bbox_x2": bbox[2],
            "bbox_y2": bbox[3],
            "crop_path": h.crop_path,
            "created_at": utcnow(),
        }

    def query_hits(
        self,
        person: str | None = None,
        camera: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        min_score: float | None = None,
        limit: int | None = None,
    ) -> list[dict]:
        """Hits, oldest first (hits without a wall-clock time last).

        ``since``/``until`` keep hits whose [first_seen_at, last_seen_at] overlaps the interval;
        hits with no wall-clock time are excluded when either is given. Unknown person or
        camera: :class:`NotFoundError` naming the known ones.
        """
        since = to_utc(since, "since")
        until = to_utc(until, "until")
        q = (
            select(
                HitRow,
                Person.name,
                Camera.name,
                TrackRow.track_key,
                Source.path,
            )
            .join(Person, Person.id == HitRow.person_id)
            .join(TrackRow, TrackRow.id == HitRow.track_id)
            .join(Camera, Camera.id == TrackRow.camera_id)
            .join(Run, Run.id == HitRow.run_id)
            .join(Source, Source.id == Run.source_id)
        )
        if person is not None:
            q = q.where(Person.name == person)
        if camera is not None:
            q = q.where(Camera.name == camera)
        if since is not None:
            q = q.where(HitRow.last_seen_at >= since)
        if until is not None:
            q = q.where(HitRow.first_seen_at <= until)
        if min_score is not None:
            q = q.where(HitRow.score >= float(min_score))
        q = q.order_by(
            case((HitRow.first_seen_at.is_(None), 1), else_=0),
            HitRow.first_seen_at,
            HitRow.run_id,
            HitRow.first_pts_s,
            HitRow.id,
        )
        if limit is not None:
            q = q.limit(int(limit))

        def body(s: Session):
            if person is not None and not s.execute(
                select(Person.id).where(Person.name == person)
            ).first():
                raise self._unknown_person(s, person)
            if camera is not None and not s.execute(
                select(Camera.id).where(Camera.name == camera)
            ).first():
                names = list(s.execute(select(Camera.name).order_by(Camera.name)).scalars())
                raise NotFoundError(f"unknown camera {camera!r}; known: {self._names_list(names)}")
            return s.execute(q).all()

        rows = self._transact(body)
        out = []
        for h, person_name, camera_name, track_key, source_path in rows:
            out.append(
                {
                    "hit_id": h.id,
                    "run_id": h.run_id,
                    "person_id": h.person_id,
                    "person": person_name,
                    "camera": camera_name,
                    "track_id": h.track_id,
                    "track_key": track_key,
                    "score": h.score,
                    "threshold": h.threshold,
                    "face_px": h.face_px,
                    "quality": h.quality,
                    "first_seen_s": h.first_pts_s,
                    "last_seen_s": h.last_pts_s,
                    "first_seen_at": h.first_seen_at,
                    "last_seen_at": h.last_seen_at,
                    "first_frame": h.first_frame,
                    "last_frame": h.last_frame,
                    "best_shot_s": h.best_shot_pts_s,
                    "best_shot_at": h.best_shot_at,
                    "best_shot_frame": h.best_shot_frame,
                    "best_shot_bbox": [h.bbox_x1, h.bbox_y1, h.bbox_x2, h.bbox_y2],
                    "crop_path": h.crop_path,
                    "source_path": source_path,
                    "created_at": h.created_at,
                }
            )
        return out

    def list_tracks(self, run_id: int | None = None, status: str | None = None) -> list[dict]:
        """Tracks (with their embedding as float32 array or None), by run then track_key."""
        q = select(TrackRow, Camera.name).join(Camera, Camera.id == TrackRow.camera_id)
        if run_id is not None:
            q = q.where(TrackRow.run_id == run_id)
        if status is not None:
            if status not in TRACK_STATUSES:
                raise ValueError(f"unknown track status {status!r}; one of {', '.join(TRACK_STATUSES)}")
            q = q.where(TrackRow.status == status)
        q = q.order_by(TrackRow.run_id, TrackRow.track_key)

        def body(s: Session):
            return s.execute(q).all()

        rows = self._transact(body)
        out = []
        for t, camera_name in rows:
            bbox = None if t.bbox_x1 is None else [t.bbox_x1, t.bbox_y1, t.bbox_x2, t.bbox_y2]
            out.append(
                {
                    "track_id": t.id,
                    "run_id": t.run_id,
                    "track_key": t.track_key,
                    "camera_id": t.camera_id,
                    "camera": camera_name,
                    "status": t.status,
                    "first_frame": t.first_frame,
                    "last_frame": t.last_frame,
                    "first_seen_s": t.first_pts_s,
                    "last_seen_s": t.last_pts_s,
                    "first_seen_at": t.first_seen_at,
                    "last_seen_at": t.last_seen_at,
                    "n_detections": t.n_detections,
                    "max_face_px": t.max_face_px,
                    "quality": t.quality,
                    "model": t.model,
                    "embedding": _unblob(t.embedding, t.dim),
                    "dim": t.dim,
                    "best_score": t.best_score,
                    "best_person": t.best_person,
                    "best_shot_frame": t.best_shot_frame,
                    "best_shot_s": t.best_shot_pts_s,
                    "best_shot_at": t.best_shot_at,
                    "best_shot_bbox": bbox,
                    "crop_path": t.crop_path,
                }
            )
        return out

    # ------------------------------------------------------------------ helpers for tests/admin

    def count(self, table_name: str) -> int:
        table = TABLES.get(table_name)
        if table is None:
            raise ValueError(f"unknown table {table_name!r}; one of {', '.join(sorted(TABLES))}")

        def body(s: Session):
            return int(s.execute(select(func.count()).select_from(table)).scalar_one())

        return self._transact(body)
