"""The repository: the only holder of a database Session in cctv-id.

Every public method is one short transaction and returns plain values (ints, dicts,
dataclasses, numpy arrays), never ORM objects. SQLite and PostgreSQL behave the same:
idempotent writes use the dialect's ``INSERT ... ON CONFLICT DO NOTHING``; datetimes go in
and come out as timezone-aware UTC.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

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
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
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
    Source,
    TrackRow,
    to_utc,
    utcnow,
)
from cctv_id.store.records import HitRecord, TrackRecord, WatchlistData

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000
_MAX_NAMES_IN_MESSAGE = 20


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
    """

    def __init__(self, url: str, *, migrate_schema: bool = True, echo: bool = False) -> None:
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
                migrate.upgrade(self._engine)
            except (SQLAlchemyError, CommandError) as e:
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
        try:
            engine = create_engine(url, **kwargs)
        except NoSuchModuleError:
            hint = " (pip install 'cctv-id[postgres]')" if url.get_backend_name() == "postgresql" else ""
            raise StoreError(f"no database driver for {self.safe_url}{hint}") from None
        except (ArgumentError, ImportError, TypeError) as e:
            raise StoreError(f"cannot use database URL {self.safe_url}: {_first_line(str(e))}") from None
        if is_sqlite:
            in_memory = kwargs.get("poolclass") is StaticPool

            @event.listens_for(engine, "connect")
            def _sqlite_connect(dbapi_conn, _record) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
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

    @contextmanager
    def _tx(self, write: bool = False) -> Iterator[Session]:
        engine = self._write_engine if write else self._engine
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                yield session
        except SQLAlchemyError as e:
            raise StoreError(f"database error ({self.safe_url}): {self._describe(e)}") from e

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
        with self._tx(write=True) as s:
            self._insert_ignore(s, Camera, {"name": name, "created_at": utcnow()}, ["name"])
            return s.execute(select(Camera.id).where(Camera.name == name)).scalar_one()

    def get_or_create_source(
        self, path: str, sha256: str, size_bytes: int, duration_s: float | None = None
    ) -> int:
        """The source with this content hash; a known file that moved gets its new path."""
        sha256 = sha256.strip().lower()
        if len(sha256) != 64:
            raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
        with self._tx(write=True) as s:
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

    def start_run(
        self,
        source_id: int,
        camera_id: int,
        model_sha256s: dict,
        config: dict,
        tool_version: str,
        start_time: datetime | None = None,
    ) -> int:
        start_time = to_utc(start_time, "start_time")
        with self._tx(write=True) as s:
            run = Run(
                source_id=source_id,
                camera_id=camera_id,
                started_at=utcnow(),
                status="running",
                frames_processed=0,
                last_frame_index=None,
                model_sha256s=dict(model_sha256s),
                config=dict(config),
                tool_version=str(tool_version),
                start_time=start_time,
            )
            s.add(run)
            s.flush()
            return run.id

    def update_run_progress(self, run_id: int, frames_processed: int, last_frame_index: int) -> None:
        with self._tx(write=True) as s:
            res = s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(frames_processed=int(frames_processed), last_frame_index=int(last_frame_index))
            )
            if res.rowcount == 0:
                raise NotFoundError(f"unknown run {run_id}")

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        """Close a run as "completed", "failed" or "interrupted". Saved tracks and hits stay."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"finish_run: status must be completed, failed or interrupted, not {status!r}")
        with self._tx(write=True) as s:
            res = s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status=status, error=error, finished_at=utcnow())
            )
            if res.rowcount == 0:
                raise NotFoundError(f"unknown run {run_id}")

    def get_run(self, run_id: int) -> dict:
        with self._tx() as s:
            row = s.execute(self._runs_query().where(Run.id == run_id)).one_or_none()
            if row is None:
                raise NotFoundError(f"unknown run {run_id}")
            return self._run_dict(row)

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
        with self._tx() as s:
            return [self._run_dict(r) for r in s.execute(q.order_by(Run.id.desc()))]

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
            "tool_version": run.tool_version,
            "start_time": run.start_time,
        }

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
        with self._tx(write=True) as s:
            return self._person_id(s, name)

    def _person_id(self, s: Session, name: str) -> int:
        self._insert_ignore(s, Person, {"name": name, "created_at": utcnow()}, ["name"])
        return s.execute(select(Person.id).where(Person.name == name)).scalar_one()

    def person_exists(self, name: str) -> bool:
        with self._tx() as s:
            return s.execute(select(Person.id).where(Person.name == name.strip())).first() is not None

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
        ids = []
        with self._tx(write=True) as s:
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

    def remove_enrolments(self, person_name: str, model: str | None = None) -> int:
        """Take a person off the watchlist (for ``model``, or for every model).

        The person and their past hits stay (evidence is never erased by this). Returns the
        number of enrolments removed; bumps the generation when that is not zero.
        """
        with self._tx(write=True) as s:
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
        with self._tx() as s:
            return self._generation(s)

    def watchlist(self, model: str) -> WatchlistData:
        """All enrolments for ``model`` (one row per enrolment, ordered by person then id)."""
        with self._tx() as s:
            generation = self._generation(s)
            rows = s.execute(
                select(Enrolment.person_id, Person.name, Enrolment.embedding, Enrolment.dim)
                .join(Person, Person.id == Enrolment.person_id)
                .where(Enrolment.model == model)
                .order_by(Enrolment.person_id, Enrolment.id)
            ).all()
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
        with self._tx() as s:
            return [
                {"name": r[0], "n_photos": int(r[1]), "n_hits": int(r[2]), "created_at": r[3]}
                for r in s.execute(q)
            ]

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

    def save_track_results(self, run_id: int, camera_id: int, records: list[TrackRecord]) -> None:
        """Store a batch of finished tracks and their hits in ONE transaction.

        Idempotent: a (run_id, track_key) already stored is kept as it is (not updated), and
        a (run_id, track, person) hit already stored is skipped.
        """
        records = list(records)
        if not records:
            return
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
        with self._tx(write=True) as s:
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
        with self._tx() as s:
            if person is not None and not s.execute(
                select(Person.id).where(Person.name == person)
            ).first():
                raise self._unknown_person(s, person)
            if camera is not None and not s.execute(
                select(Camera.id).where(Camera.name == camera)
            ).first():
                names = list(s.execute(select(Camera.name).order_by(Camera.name)).scalars())
                raise NotFoundError(f"unknown camera {camera!r}; known: {self._names_list(names)}")
            rows = s.execute(q).all()
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
        with self._tx() as s:
            rows = s.execute(q).all()
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
        with self._tx() as s:
            return int(s.execute(select(func.count()).select_from(table)).scalar_one())
