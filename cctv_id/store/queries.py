"""Tracks and hits: saving a run's results and querying them.

Owns the one-transaction save of a batch of tracks and their hits together with the run's
checkpoint and progress, the crop-path bookkeeping (list, forget), the hit and track queries
that return plain dicts, with offsets and counts for pages (hits; tracks filtered by camera, time, person, run, unknown-only; a
person's timeline; the candidate track ids of a search; a person's enrolled photos), and the row count helper for tests
and admin tools. "Rejected" hits (a reviewer said no) never name a track or join a timeline.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, or_, select, union, update
from sqlalchemy.orm import Session

from cctv_id.errors import NotFoundError
from cctv_id.store.encoding import _bbox, _blob, _unblob
from cctv_id.store.models import (
    HIT_ORIGINS,
    TABLES,
    TRACK_STATUSES,
    Camera,
    Enrolment,
    HitRow,
    Person,
    Run,
    Source,
    TrackRow,
    to_utc,
    utcnow,
)
from cctv_id.store.persons import PersonsMixin
from cctv_id.store.records import Checkpoint, HitRecord, TrackRecord
from cctv_id.store.runs import RunsMixin
from cctv_id.store.track_index import TrackIndexMixin


def _not_rejected():
    """Hits that no reviewer rejected (unreviewed or confirmed)."""
    return or_(HitRow.review_status.is_(None), HitRow.review_status != "rejected")


class TracksHitsMixin(RunsMixin, PersonsMixin, TrackIndexMixin):
    """Saving and querying tracks and hits (part of :class:`Repository`).

    Builds on the runs part (progress and checkpoint saved with the results) and the persons
    part (the "unknown person" message).
    """

    # ------------------------------------------------------------------ tracks & hits

    def save_track_results(
        self,
        run_id: int,
        camera_id: int,
        records: list[TrackRecord],
        checkpoint: Checkpoint | None = None,
        progress: tuple[int, int] | None = None,
        update_existing: bool = False,
    ) -> None:
        """Store a batch of finished tracks and their hits in ONE transaction, together with
        the run's ``checkpoint`` (replacing the previous one) and ``progress``
        (frames_processed, last_frame_index) when given, and a heartbeat: either all of it is
        stored or none of it, so a checkpoint never runs ahead of or behind the results.

        Idempotent: a (run_id, track_key) already stored is kept as it is (not updated), and
        a (run_id, track, person) hit already stored is skipped. With ``update_existing``
        (live tracks stored while they go on, then again when they end) a stored track is
        updated with the new values instead, and a stored hit too (keeping when it was first
        seen and created).
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
                    "crop_landmarks": None if r.crop_landmarks is None
                    else [[float(x), float(y)] for x, y in r.crop_landmarks],
                    "context_path": r.context_path,
                    "trajectory": None if r.trajectory is None
                    else [[float(v) for v in p] for p in r.trajectory],
                    "index_seq": None,
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
            # search index order: numbers taken here follow commit order (track_index.py);
            # a retried attempt takes new ones
            embedded = [row for row in track_rows if row["embedding"] is not None]
            for row, seq in zip(embedded, self._take_index_seqs(s, len(embedded))):
                row["index_seq"] = seq
            if update_existing:
                self._upsert(s, TrackRow, track_rows, ["run_id", "track_key"],
                             keep=("first_frame", "first_pts_s", "first_seen_at", "created_at"))
            else:
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
            if update_existing:
                self._upsert(s, HitRow, hit_rows, ["run_id", "track_id", "person_id"],
                             keep=("first_frame", "first_pts_s", "first_seen_at", "created_at"))
            else:
                self._insert_ignore(s, HitRow, hit_rows, ["run_id", "track_id", "person_id"])
            self._apply_reviews(s, run_id, list(ids.values()))  # reviews survive re-processing

        self._transact(body, write=True)

    def track_crop_paths(self, run_id: int | None = None) -> list[str]:
        """Every evidence file path (best-shot crops and context frames) that tracks or hits
        reference (of one run, or of all), sorted and distinct: for a checker that matches
        the database against the files under data_dir."""
        parts = [select(col).where(col.is_not(None)) for col in
                 (TrackRow.crop_path, TrackRow.context_path, HitRow.crop_path, HitRow.context_path)]
        if run_id is not None:
            parts = [q.where((TrackRow if i < 2 else HitRow).run_id == run_id)
                     for i, q in enumerate(parts)]
        q = union(*parts)
        return sorted(self._transact(lambda s: list(s.execute(q).scalars())))

    def clear_crop_path(self, crop_path: str) -> int:
        """Forget an evidence file (e.g. found missing): set crop_path or context_path to NULL
        on every track and hit that references it, in one transaction. Returns the number
        of references cleared."""

        def body(s: Session) -> int:
            n = 0
            for table in (TrackRow, HitRow):
                for col in ("crop_path", "context_path"):
                    column = getattr(table, col)
                    n += s.execute(update(table).where(column == crop_path)
                                   .values({col: None})).rowcount or 0
            return int(n)

        return self._transact(body, write=True)

    @staticmethod
    def _hit_row(run_id: int, h: HitRecord) -> dict:
        if h.origin not in HIT_ORIGINS:
            raise ValueError(f"hit of person {h.person_id}: unknown origin {h.origin!r}")
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
            "context_path": h.context_path,
            "origin": h.origin,
        }

    def query_hits(
        self,
        person: str | None = None,
        camera: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        min_score: float | None = None,
        limit: int | None = None,
        exclude_rejected: bool = False,
        offset: int | None = None,
    ) -> list[dict]:
        """Hits, oldest first (hits without a wall-clock time last).

        ``since``/``until`` keep hits whose [first_seen_at, last_seen_at] overlaps the interval;
        hits with no wall-clock time are excluded when either is given. ``exclude_rejected``
        leaves out hits a reviewer rejected. Unknown person or camera: :class:`NotFoundError`
        naming the known ones. ``offset`` skips that many hits of this order (pages; see
        :meth:`count_hits` for the total).
        """
        q = self._hits_filter(
            select(HitRow, Person.name, Camera.name, TrackRow.track_key, Source.path),
            person, camera, since, until, min_score, exclude_rejected)
        q = q.order_by(
            case((HitRow.first_seen_at.is_(None), 1), else_=0),
            HitRow.first_seen_at,
            HitRow.run_id,
            HitRow.first_pts_s,
            HitRow.id,
        )
        if limit is not None:
            q = q.limit(int(limit))
        if offset:
            q = q.offset(int(offset))

        def body(s: Session):
            self._check_names(s, person=person, camera=camera)
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
                    "context_path": h.context_path,
                    "origin": h.origin,
                    "review_status": h.review_status,
                    "reviewed_by": h.reviewed_by,
                    "reviewed_at": h.reviewed_at,
                    "source_path": source_path,
                    "created_at": h.created_at,
                }
            )
        return out

    @staticmethod
    def _hits_filter(q, person=None, camera=None, since=None, until=None, min_score=None,
                     exclude_rejected=False):
        """``q`` (over hits) joined to person, track, camera, run and source, filtered."""
        since, until = to_utc(since, "since"), to_utc(until, "until")
        q = (q.join(Person, Person.id == HitRow.person_id)
             .join(TrackRow, TrackRow.id == HitRow.track_id)
             .join(Camera, Camera.id == TrackRow.camera_id)
             .join(Run, Run.id == HitRow.run_id)
             .join(Source, Source.id == Run.source_id))
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
        if exclude_rejected:
            q = q.where(_not_rejected())
        return q

    def count_hits(self, person: str | None = None, camera: str | None = None,
                   since: datetime | None = None, until: datetime | None = None,
                   min_score: float | None = None, exclude_rejected: bool = False) -> int:
        """How many hits :meth:`query_hits` returns with these filters and no limit."""
        q = self._hits_filter(select(func.count(HitRow.id)).select_from(HitRow), person, camera,
                              since, until, min_score, exclude_rejected)

        def body(s: Session) -> int:
            self._check_names(s, person=person, camera=camera)
            return int(s.execute(q).scalar_one())

        return self._transact(body)

    def count_tracks(self, camera: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, unknown: bool = False,
                     person: str | None = None, run_id: int | None = None) -> int:
        """How many tracks :meth:`query_tracks` returns with these filters and no limit."""
        q = self._track_filter(select(func.count(TrackRow.id)).select_from(TrackRow), camera,
                               since, until, unknown, person, run_id)

        def body(s: Session) -> int:
            self._check_names(s, person=person, camera=camera, run_id=run_id)
            return int(s.execute(q).scalar_one())

        return self._transact(body)

    def person_enrolments(self, person: str) -> list[dict]:
        """A person's enrolled photos (one per photo, whatever the models), oldest first:
        photo_sha256, photo_path (where it was enrolled from), stored_photo (its copy under
        data_dir, or None), face_px, models, created_at. Unknown person: NotFoundError."""
        q = (select(Enrolment).join(Person, Person.id == Enrolment.person_id)
             .where(Person.name == person).order_by(Enrolment.created_at, Enrolment.id))

        def body(s: Session) -> list[dict]:
            self._check_names(s, person=person)
            out: dict[str, dict] = {}
            for e in s.execute(q).scalars():
                d = out.setdefault(e.photo_sha256, {
                    "photo_sha256": e.photo_sha256, "photo_path": e.photo_path,
                    "stored_photo": e.stored_photo, "face_px": e.face_px, "models": [],
                    "created_at": e.created_at})
                d["models"].append(e.model)
                d["stored_photo"] = d["stored_photo"] or e.stored_photo
            return list(out.values())

        return self._transact(body)

    def _check_names(self, s: Session, person: str | None = None, camera: str | None = None,
                     run_id: int | None = None) -> None:
        """:class:`NotFoundError` naming the known ones for an unknown person, camera or run."""
        if person is not None and not s.execute(select(Person.id).where(Person.name == person)).first():
            raise self._unknown_person(s, person)
        if camera is not None and not s.execute(select(Camera.id).where(Camera.name == camera)).first():
            names = list(s.execute(select(Camera.name).order_by(Camera.name)).scalars())
            raise NotFoundError(f"unknown camera {camera!r}; known: {self._names_list(names)}")
        if run_id is not None and not s.get(Run, int(run_id)):
            raise NotFoundError(f"unknown run {run_id}")

    def timeline(self, person: str, since: datetime | None = None,
                 until: datetime | None = None) -> list[dict]:
        """Where and when ``person`` was seen: their hits that no reviewer rejected (any
        origin: auto, retro, manual), in time order across cameras (the keys of
        :meth:`query_hits`). Unknown person: :class:`NotFoundError`."""
        return self.query_hits(person=person, since=since, until=until, exclude_rejected=True)

    def _track_filter(self, q, camera=None, since=None, until=None, unknown=False, person=None,
                      run_id=None, model=None, ids=None):
        since, until = to_utc(since, "since"), to_utc(until, "until")
        if camera is not None:
            q = q.where(TrackRow.camera_id == select(Camera.id).where(Camera.name == camera)
                        .scalar_subquery())
        if since is not None:
            q = q.where(TrackRow.last_seen_at >= since)
        if until is not None:
            q = q.where(TrackRow.first_seen_at <= until)
        if run_id is not None:
            q = q.where(TrackRow.run_id == int(run_id))
        if model is not None:
            q = q.where(TrackRow.model == model, TrackRow.embedding.is_not(None))
        if ids is not None:
            q = q.where(TrackRow.id.in_([int(i) for i in ids]))
        named = select(HitRow.id).where(HitRow.track_id == TrackRow.id, _not_rejected())
        if unknown:
            q = q.where(~named.exists())
        if person is not None:
            q = q.where(named.where(HitRow.person_id == select(Person.id).where(
                Person.name == person).scalar_subquery()).exists())
        return q

    def track_ids(self, model: str | None = None, camera: str | None = None,
                  since: datetime | None = None, until: datetime | None = None,
                  unknown: bool = False, person: str | None = None,
                  run_id: int | None = None) -> list[int]:
        """Ids of the tracks that pass the filters of :meth:`query_tracks` (with ``model``:
        only that model's tracks that have an embedding), e.g. a search's candidate set."""
        q = self._track_filter(select(TrackRow.id), camera, since, until, unknown, person,
                               run_id, model).order_by(TrackRow.id)

        def body(s: Session):
            self._check_names(s, person=person, camera=camera, run_id=run_id)
            return [int(i) for i in s.execute(q).scalars()]

        return self._transact(body)

    def query_tracks(self, camera: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, unknown: bool = False,
                     person: str | None = None, run_id: int | None = None,
                     limit: int | None = None, ids: list[int] | None = None,
                     model: str | None = None, offset: int | None = None) -> list[dict]:
        """Tracks in time order (without wall-clock time last), without their embeddings.

        ``since``/``until``: the track's [first_seen_at, last_seen_at] overlaps the interval;
        ``unknown``: no hit that a reviewer did not reject; ``person``: a non-rejected hit of
        that person; ``ids``: only these tracks. Each dict has the keys of :meth:`list_tracks`
        (``embedding`` excepted) plus ``person`` and ``person_score`` (the non-rejected hit
        with the best score, else None), ``source_path`` and ``n_hits``. Unknown camera,
        person or run: :class:`NotFoundError` naming the known ones.
        """
        q = (select(TrackRow, Camera.name, Source.path)
             .join(Camera, Camera.id == TrackRow.camera_id)
             .join(Run, Run.id == TrackRow.run_id)
             .join(Source, Source.id == Run.source_id))
        q = self._track_filter(q, camera, since, until, unknown, person, run_id, model, ids)
        q = q.order_by(case((TrackRow.first_seen_at.is_(None), 1), else_=0), TrackRow.first_seen_at,
                       TrackRow.run_id, TrackRow.first_pts_s, TrackRow.id)
        if limit is not None:
            q = q.limit(int(limit))
        if offset:
            q = q.offset(int(offset))

        def body(s: Session):
            self._check_names(s, person=person, camera=camera, run_id=run_id)
            rows = s.execute(q).all()
            track_ids = [t.id for t, _, _ in rows]
            hits: dict[int, list] = {}
            for i in range(0, len(track_ids), 500):
                for tid, name, score in s.execute(
                        select(HitRow.track_id, Person.name, HitRow.score)
                        .join(Person, Person.id == HitRow.person_id)
                        .where(HitRow.track_id.in_(track_ids[i:i + 500]), _not_rejected())):
                    hits.setdefault(tid, []).append((score, name))
            return rows, hits

        rows, hits = self._transact(body)
        out = []
        for t, camera_name, source_path in rows:
            d = self._track_dict(t, camera_name, with_embedding=False)
            named = sorted(hits.get(t.id, []), key=lambda h: (-h[0], h[1]))
            d["person"], d["person_score"] = (named[0][1], named[0][0]) if named else (None, None)
            d["n_hits"] = len(named)
            d["source_path"] = source_path
            out.append(d)
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

        return [self._track_dict(t, camera_name) for t, camera_name in self._transact(body)]

    @staticmethod
    def _track_dict(t: TrackRow, camera_name: str, with_embedding: bool = True) -> dict:
        bbox = None if t.bbox_x1 is None else [t.bbox_x1, t.bbox_y1, t.bbox_x2, t.bbox_y2]
        d = {
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
            "embedding": _unblob(t.embedding, t.dim) if with_embedding else None,
            "dim": t.dim,
            "best_score": t.best_score,
            "best_person": t.best_person,
            "best_shot_frame": t.best_shot_frame,
            "best_shot_s": t.best_shot_pts_s,
            "best_shot_at": t.best_shot_at,
            "best_shot_bbox": bbox,
            "crop_path": t.crop_path,
            "crop_landmarks": t.crop_landmarks,
            "context_path": t.context_path,
            "trajectory": t.trajectory,
            "index_seq": t.index_seq,
            "cluster_id": t.cluster_id,
        }
        if not with_embedding:
            del d["embedding"]
        return d

    # ------------------------------------------------------------------ helpers for tests/admin

    def count(self, table_name: str) -> int:
        table = TABLES.get(table_name)
        if table is None:
            raise ValueError(f"unknown table {table_name!r}; one of {', '.join(sorted(TABLES))}")

        def body(s: Session):
            return int(s.execute(select(func.count()).select_from(table)).scalar_one())

        return self._transact(body)
