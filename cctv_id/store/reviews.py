"""Reviewers' decisions (confirm, reject, name, merge) and re-applying them to tracks
stored again (retro-matching hits: :mod:`cctv_id.store.retro`).

Owns:
- the review actions, each ONE transaction that changes the rows, writes one ``reviews`` row
  per affected track and one audit entry (action "review");
- :meth:`ReviewsMixin._apply_reviews`, called by ``save_track_results`` in its transaction:
  reviews are keyed by what was seen (source, camera, frame span), so tracks stored again
  (``process --restart``) get the same decisions back.

Invariant kept here: a track's status is "matched" while it has a hit that is not rejected;
a track whose only hits were rejected becomes "unknown" again (searchable, retro-matchable).
Manual hits (a reviewer named the track) are "confirmed" from the start; their ``score`` is
the track's best cosine to the person's enrolments of the track's model (0.0 when either
side has no embedding) and their ``threshold`` is 0.0: no threshold was applied.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from cctv_id.errors import InputError, NotFoundError
from cctv_id.store.encoding import _unblob
from cctv_id.store.models import (
    REVIEW_KINDS,
    Camera,
    Enrolment,
    HitRow,
    Person,
    Review,
    Run,
    TrackRow,
    utcnow,
)
from cctv_id.store.queries import TracksHitsMixin

MIN_SPAN_OVERLAP = 0.5  # a review applies to a track overlapping >= this of the shorter span
MAX_PLACE_DISTANCE = 1.0  # ... whose face was within this many face heights (median) of it
SPAN_IOU_WITHOUT_PLACE = 0.9  # ... or, when either side has no positions, spans this alike


def span_overlap(a0: int, a1: int, b0: int, b1: int) -> float:
    """Overlap of two inclusive frame spans as a fraction of the shorter one (0..1)."""
    inter = min(a1, b1) - max(a0, b0) + 1
    if inter <= 0:
        return 0.0
    return inter / float(min(a1 - a0 + 1, b1 - b0 + 1))


def _span_iou(a0: int, a1: int, b0: int, b1: int) -> float:
    inter = min(a1, b1) - max(a0, b0) + 1
    if inter <= 0:
        return 0.0
    return inter / float(max(a1, b1) - min(a0, b0) + 1)


def _positions(track: TrackRow) -> list | None:
    """Where the track's face was: its trajectory, else its best shot, else None."""
    if track.trajectory:
        return [[float(v) for v in p[:5]] for p in track.trajectory]
    if track.bbox_x1 is not None and track.best_shot_frame is not None:
        return [[float(track.best_shot_frame), track.bbox_x1, track.bbox_y1, track.bbox_x2, track.bbox_y2]]
    return None


def place_distance(a: list, b: list) -> float:
    """Median distance between two trajectories' face centres over the frames both cover
    (positions interpolated between points), in face heights; inf if they share no frame."""
    pa, pb = np.asarray(a, np.float64), np.asarray(b, np.float64)
    pa, pb = pa[np.argsort(pa[:, 0], kind="stable")], pb[np.argsort(pb[:, 0], kind="stable")]
    lo, hi = max(pa[0, 0], pb[0, 0]), min(pa[-1, 0], pb[-1, 0])
    if len(pa) == 1 or len(pb) == 1:  # a single point: compare there
        single = pa if len(pa) == 1 else pb
        frames = single[:, 0]
        other = pb if single is pa else pa
        if not other[0, 0] - 1 <= frames[0] <= other[-1, 0] + 1:
            return float("inf")
    elif hi < lo:
        return float("inf")
    else:
        frames = np.linspace(lo, hi, num=min(25, int(hi - lo) + 1))

    def at(p):
        cx = np.interp(frames, p[:, 0], (p[:, 1] + p[:, 3]) / 2)
        cy = np.interp(frames, p[:, 0], (p[:, 2] + p[:, 4]) / 2)
        h = np.interp(frames, p[:, 0], np.abs(p[:, 4] - p[:, 2]))
        return cx, cy, h

    (ax, ay, ah), (bx, by, bh) = at(pa), at(pb)
    d = np.hypot(ax - bx, ay - by) / np.maximum(np.maximum(ah, bh), 1.0)
    return float(np.median(d))


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class ReviewsMixin(TracksHitsMixin):
    """Reviews (part of :class:`Repository`)."""

    # ------------------------------------------------------------------ lookups

    def _hit_or_fail(self, s: Session, hit_id: int) -> HitRow:
        hit = s.get(HitRow, int(hit_id))
        if hit is None:
            raise NotFoundError(f"unknown hit {hit_id}; see `cctv-id hits` for hit ids")
        return hit

    def _tracks_or_fail(self, s: Session, track_ids: list[int]) -> list[TrackRow]:
        rows = {t.id: t for t in s.execute(select(TrackRow).where(TrackRow.id.in_(track_ids))).scalars()}
        missing = [t for t in track_ids if t not in rows]
        if missing:
            which = "track" if len(missing) == 1 else "tracks"
            raise NotFoundError(f"unknown {which} {', '.join(map(str, missing))}; "
                                f"see `cctv-id hits` or `cctv-id search` for track ids")
        return [rows[t] for t in track_ids]

    @staticmethod
    def _source_of(s: Session, run_id: int) -> int:
        return s.execute(select(Run.source_id).where(Run.id == run_id)).scalar_one()

    @staticmethod
    def _person_names(s: Session, ids) -> dict[int, str]:
        ids = list({int(i) for i in ids if i is not None})
        if not ids:
            return {}
        return dict(s.execute(select(Person.id, Person.name).where(Person.id.in_(ids))).all())

    def _add_review(self, s: Session, kind: str, track: TrackRow, operator: str, now: datetime,
                    person_id: int | None = None, group_key: int | None = None,
                    note: str | None = None) -> int:
        assert kind in REVIEW_KINDS
        row = Review(kind=kind, source_id=self._source_of(s, track.run_id), camera_id=track.camera_id,
                     first_frame=track.first_frame, last_frame=track.last_frame, person_id=person_id,
                     group_key=group_key, track_id=track.id, operator=operator, note=note,
                     created_at=now, trajectory=_positions(track))
        s.add(row)
        s.flush()
        return int(row.id)

    @staticmethod
    def _live_hits(s: Session, track_id: int) -> list[HitRow]:
        """The track's hits that are not rejected."""
        return list(s.execute(select(HitRow).where(
            HitRow.track_id == track_id,
            or_(HitRow.review_status.is_(None), HitRow.review_status != "rejected"))
            .order_by(HitRow.id)).scalars())

    def _sync_track_status(self, s: Session, track: TrackRow) -> None:
        """"matched" while a non-rejected hit remains, else a matched track is "unknown"."""
        if self._live_hits(s, track.id):
            track.status = "matched"
        elif track.status == "matched":
            track.status = "unknown"

    @staticmethod
    def _manual_score(s: Session, track: TrackRow, person_id: int) -> float:
        if track.embedding is None:
            return 0.0
        rows = s.execute(select(Enrolment.embedding, Enrolment.dim).where(
            Enrolment.person_id == person_id, Enrolment.model == track.model)).all()
        if not rows:
            return 0.0
        vec = _unit_rows(_unblob(track.embedding, track.dim)[None, :])[0]
        enr = _unit_rows(np.stack([_unblob(r.embedding, r.dim) for r in rows]))
        return float((enr @ vec).max())

    def _insert_track_hit(self, s: Session, track: TrackRow, person_id: int, origin: str,
                          score: float, threshold: float, now: datetime,
                          reviewed_by: str | None = None, reviewed_at: datetime | None = None) -> int | None:
        """A hit of ``person_id`` built from the track row; None if the track already has one."""
        bbox = ((track.bbox_x1, track.bbox_y1, track.bbox_x2, track.bbox_y2)
                if track.bbox_x1 is not None else (0.0, 0.0, 0.0, 0.0))
        shot_frame = track.best_shot_frame if track.best_shot_frame is not None else track.first_frame
        shot_pts = track.best_shot_pts_s if track.best_shot_pts_s is not None else track.first_pts_s
        row = {
            "run_id": track.run_id, "track_id": track.id, "person_id": int(person_id),
            "score": float(score), "threshold": float(threshold),
            "face_px": float(track.max_face_px), "quality": float(track.quality),
            "first_frame": track.first_frame, "last_frame": track.last_frame,
            "first_pts_s": track.first_pts_s, "last_pts_s": track.last_pts_s,
            "first_seen_at": track.first_seen_at, "last_seen_at": track.last_seen_at,
            "best_shot_frame": shot_frame, "best_shot_pts_s": shot_pts,
            "best_shot_at": track.best_shot_at if track.best_shot_frame is not None else track.first_seen_at,
            "bbox_x1": bbox[0], "bbox_y1": bbox[1], "bbox_x2": bbox[2], "bbox_y2": bbox[3],
            "crop_path": track.crop_path, "context_path": track.context_path, "created_at": now,
            "origin": origin,
            "review_status": "confirmed" if origin == "manual" else None,
            "reviewed_by": reviewed_by, "reviewed_at": reviewed_at,
        }
        if not self._insert_ignore(s, HitRow, row, ["run_id", "track_id", "person_id"]):
            return None
        return s.execute(select(HitRow.id).where(HitRow.track_id == track.id,
                                                 HitRow.person_id == int(person_id))).scalar_one()

    def _resolve_person(self, s: Session, person: str, create: bool) -> int:
        name = self._name(person, "person")
        pid = s.execute(select(Person.id).where(Person.name == name)).scalar()
        if pid is None:
            if not create:
                names = list(s.execute(select(Person.name).order_by(Person.name)).scalars())
                raise NotFoundError(f"unknown person {name!r}; known: {self._names_list(names)} "
                                    f"(use --create to add a person who is not enrolled)")
            pid = self._person_id(s, name)
        return int(pid)

    # ------------------------------------------------------------------ confirm / reject

    def confirm_hit(self, hit_id: int, operator: str, note: str | None = None) -> dict:
        """Mark a hit confirmed (also one rejected before); one transaction, audited."""
        return self._review_hit(hit_id, operator, note, "confirm")

    def reject_hit(self, hit_id: int, operator: str, note: str | None = None) -> dict:
        """Mark a hit rejected: it stays in ``hits`` with review_status "rejected" (views and
        search leave it out) and the track is "unknown" again if no other hit remains."""
        return self._review_hit(hit_id, operator, note, "reject")

    def _review_hit(self, hit_id: int, operator: str, note: str | None, kind: str) -> dict:
        operator = self._name(operator, "operator")
        status = "confirmed" if kind == "confirm" else "rejected"

        def body(s: Session) -> dict:
            now = utcnow()
            hit = self._hit_or_fail(s, hit_id)
            track = s.get(TrackRow, hit.track_id)
            before = hit.review_status
            hit.review_status, hit.reviewed_by, hit.reviewed_at = status, operator, now
            s.flush()
            self._sync_track_status(s, track)
            review_id = self._add_review(s, kind, track, operator, now, person_id=hit.person_id, note=note)
            person = self._person_names(s, [hit.person_id])[hit.person_id]
            out = {"review_id": review_id, "kind": kind, "hit_id": hit.id, "track_id": track.id,
                   "run_id": hit.run_id, "person": person, "origin": hit.origin,
                   "review_status": status, "previous_status": before,
                   "track_status": track.status, "operator": operator, "note": note}
            self._audit(s, operator, "review", {"kind": kind, "hit_id": int(hit_id), "note": note},
                        {"review_id": review_id, "person": person, "track_id": track.id,
                         "review_status": status, "previous_status": before})
            return out

        return self._transact(body, write=True)

    # ------------------------------------------------------------------ name / merge

    def name_track(self, track_id: int, person: str, operator: str, note: str | None = None,
                   create: bool = False) -> dict:
        """Name a track that has no (non-rejected) hit: a "manual" hit of ``person``,
        confirmed by ``operator``. The person must exist (NotFoundError naming the known ones)
        unless ``create``, which adds them (not enrolled: the watchlist does not change).

        A track already named (a non-rejected hit) → InputError; a track whose hit of this
        person was rejected → InputError pointing at ``review confirm``.
        """
        operator = self._name(operator, "operator")

        def body(s: Session) -> dict:
            now = utcnow()
            (track,) = self._tracks_or_fail(s, [int(track_id)])
            person_id = self._resolve_person(s, person, create)
            self._check_nameable(s, track, person_id)
            hit_id = self._insert_track_hit(s, track, person_id, "manual",
                                            self._manual_score(s, track, person_id), 0.0, now,
                                            reviewed_by=operator, reviewed_at=now)
            name = self._person_names(s, [person_id])[person_id]
            track.best_person = name
            self._sync_track_status(s, track)
            review_id = self._add_review(s, "name", track, operator, now, person_id=person_id, note=note)
            out = {"review_id": review_id, "kind": "name", "track_id": track.id, "hit_id": hit_id,
                   "person": name, "track_status": track.status, "operator": operator, "note": note}
            self._audit(s, operator, "review",
                        {"kind": "name", "track_id": int(track_id), "person": name, "create": bool(create),
                         "note": note},
                        {"review_id": review_id, "hit_id": hit_id})
            return out

        return self._transact(body, write=True)

    def _check_nameable(self, s: Session, track: TrackRow, person_id: int) -> None:
        for hit in s.execute(select(HitRow).where(HitRow.track_id == track.id)).scalars():
            name = self._person_names(s, [hit.person_id])[hit.person_id]
            if hit.person_id == person_id:
                raise InputError(f"track {track.id} already has hit {hit.id} of {name} "
                                 f"({hit.review_status or 'not reviewed'}); use `cctv-id review "
                                 f"confirm {hit.id}` instead")
            if hit.review_status != "rejected":
                raise InputError(f"track {track.id} is already named {name} (hit {hit.id}); "
                                 f"reject that hit first")

    def merge_tracks(self, track_ids: list[int], operator: str, note: str | None = None) -> dict:
        """Tracks of one person: they (and the clusters they already belong to) get one
        ``cluster_id``, the smallest track id among them. If exactly one person is named
        among them (non-rejected hits), the unnamed ones get confirmed "manual" hits of that
        person; two different persons → InputError (nothing changes)."""
        operator = self._name(operator, "operator")
        ids = list(dict.fromkeys(int(t) for t in track_ids))
        if len(ids) < 2:
            raise InputError("merge needs at least two different track ids")

        def body(s: Session) -> dict:
            now = utcnow()
            tracks = self._tracks_or_fail(s, ids)
            clusters = {t.cluster_id for t in tracks if t.cluster_id is not None}
            members = {t.id: t for t in tracks}
            if clusters:
                for t in s.execute(select(TrackRow).where(TrackRow.cluster_id.in_(clusters))).scalars():
                    members.setdefault(t.id, t)
            named: dict[int, list[int]] = {}
            for t in members.values():
                for h in self._live_hits(s, t.id):
                    named.setdefault(h.person_id, []).append(t.id)
            if len(named) > 1:
                names = self._person_names(s, named)
                said = "; ".join(f"{names[p]} (track {', '.join(map(str, sorted(ts)))})"
                                 for p, ts in sorted(named.items(), key=lambda kv: names[kv[0]]))
                raise InputError(f"cannot merge tracks of different people: {said}; "
                                 f"reject the wrong hit first")
            cluster_id = self._free_cluster_id(s, min(set(members) | clusters), set(members), clusters)
            person_id = next(iter(named)) if named else None
            new_hits = []
            for t in sorted(members.values(), key=lambda t: t.id):
                t.cluster_id = cluster_id
                got_hit = None
                if person_id is not None and t.id not in named[person_id]:
                    got_hit = self._insert_track_hit(s, t, person_id, "manual",
                                                     self._manual_score(s, t, person_id), 0.0, now,
                                                     reviewed_by=operator, reviewed_at=now)
                    if got_hit is not None:
                        new_hits.append(got_hit)
                        t.best_person = self._person_names(s, [person_id])[person_id]
                    self._sync_track_status(s, t)
                self._add_review(s, "merge", t, operator, now, group_key=cluster_id,
                                 person_id=person_id if got_hit is not None else None, note=note)
            s.flush()
            person = self._person_names(s, [person_id]).get(person_id) if person_id else None
            out = {"kind": "merge", "cluster_id": cluster_id, "track_ids": sorted(members),
                   "person": person, "new_hit_ids": new_hits, "operator": operator, "note": note}
            self._audit(s, operator, "review", {"kind": "merge", "track_ids": ids, "note": note},
                        {"cluster_id": cluster_id, "track_ids": sorted(members), "person": person,
                         "new_hit_ids": new_hits})
            return out

        return self._transact(body, write=True)

    @staticmethod
    def _free_cluster_id(s: Session, wanted: int, members: set[int], clusters: set[int]) -> int:
        """``wanted`` unless another cluster already carries it as its label (labels outlive
        the track they came from, when tracks are stored again): then a fresh label."""
        taken = s.execute(select(TrackRow.id).where(TrackRow.cluster_id == wanted,
                                                    TrackRow.id.not_in(members)).limit(1)).first()
        if taken is None or wanted in clusters:
            return wanted
        top = max(s.execute(select(TrackRow.id).order_by(TrackRow.id.desc()).limit(1)).scalar() or 0,
                  s.execute(select(TrackRow.cluster_id).order_by(TrackRow.cluster_id.desc())
                            .limit(1)).scalar() or 0)
        return int(top) + 1

    # ------------------------------------------------------------------ listing

    def list_reviews(self, kind: str | None = None, person: str | None = None,
                     track_id: int | None = None, limit: int | None = None) -> list[dict]:
        """Reviews, oldest first, with camera and person names."""
        if kind is not None and kind not in REVIEW_KINDS:
            raise InputError(f"unknown review kind {kind!r}; one of {', '.join(REVIEW_KINDS)}")
        q = (select(Review, Camera.name, Person.name)
             .join(Camera, Camera.id == Review.camera_id)
             .outerjoin(Person, Person.id == Review.person_id)
             .order_by(Review.id))
        if kind is not None:
            q = q.where(Review.kind == kind)
        if person is not None:
            q = q.where(Person.name == person)
        if track_id is not None:
            q = q.where(Review.track_id == int(track_id))
        if limit is not None:
            q = q.limit(int(limit))

        def body(s: Session):
            if person is not None and not s.execute(select(Person.id).where(Person.name == person)).first():
                raise self._unknown_person(s, person)
            return s.execute(q).all()

        return [{"review_id": r.id, "kind": r.kind, "created_at": r.created_at, "operator": r.operator,
                 "track_id": r.track_id, "source_id": r.source_id, "camera": cam,
                 "first_frame": r.first_frame, "last_frame": r.last_frame, "person": name,
                 "group_key": r.group_key, "note": r.note}
                for r, cam, name in self._transact(body)]

    # ------------------------------------------------------------------ retro-matching

    def _rejected_pairs(self, s: Session, track_ids: set[int]) -> set[tuple[int, int]]:
        """(track id, person id) pairs among ``track_ids`` that a reviewer rejected: rejected
        hits, and reject reviews (e.g. made before the track was stored again) matching them.
        Rejections are few: they are read first, and only tracks they may concern are loaded."""
        pairs = {(int(a), int(b)) for a, b in s.execute(
            select(HitRow.track_id, HitRow.person_id).where(HitRow.review_status == "rejected")).all()
            if int(a) in track_ids}
        spans = s.execute(select(Review.source_id, Review.camera_id, Review.first_frame, Review.last_frame)
                          .where(Review.kind == "reject")).all()
        if not spans:
            return pairs
        near = or_(*[and_(Run.source_id == r.source_id, TrackRow.camera_id == r.camera_id,
                          TrackRow.last_frame >= r.first_frame, TrackRow.first_frame <= r.last_frame)
                     for r in spans[:200]]) if len(spans) <= 200 else None
        q = select(TrackRow).join(Run, Run.id == TrackRow.run_id)
        if near is not None:
            q = q.where(near)
        tracks = [t for t in s.execute(q).scalars() if t.id in track_ids]
        for track, review in self._matching_reviews(s, tracks, kinds=("reject",)):
            pairs.add((track.id, int(review.person_id)))
        return pairs

    # ------------------------------------------------------------------ re-processing

    def _matching_reviews(self, s: Session, tracks: list[TrackRow], kinds=REVIEW_KINDS):
        """(track, review) pairs where the review was made on the same source and camera, its
        frame span overlaps the track's by >= MIN_SPAN_OVERLAP of the shorter span and the
        face was in the same place (median centre distance <= MAX_PLACE_DISTANCE face heights
        over the shared frames; where either side has no positions, spans alike by IoU >=
        SPAN_IOU_WITHOUT_PLACE); reviews in the order they were made."""
        if not tracks:
            return []
        runs = {t.run_id for t in tracks}
        source_of = dict(s.execute(select(Run.id, Run.source_id).where(Run.id.in_(runs))).all())
        by_key: dict[tuple[int, int], list[TrackRow]] = {}
        for t in tracks:
            by_key.setdefault((source_of[t.run_id], t.camera_id), []).append(t)
        pairs = []
        for (source_id, camera_id), group in by_key.items():
            lo = min(t.first_frame for t in group)
            hi = max(t.last_frame for t in group)
            reviews = s.execute(select(Review).where(
                Review.source_id == source_id, Review.camera_id == camera_id,
                Review.kind.in_(kinds), Review.last_frame >= lo, Review.first_frame <= hi)
                .order_by(Review.id)).scalars()
            places = {t.id: _positions(t) for t in group}
            for r in reviews:
                for t in group:
                    if span_overlap(t.first_frame, t.last_frame, r.first_frame, r.last_frame) < MIN_SPAN_OVERLAP:
                        continue
                    if r.trajectory and places[t.id]:
                        same = place_distance(r.trajectory, places[t.id]) <= MAX_PLACE_DISTANCE
                    else:
                        same = _span_iou(t.first_frame, t.last_frame, r.first_frame,
                                         r.last_frame) >= SPAN_IOU_WITHOUT_PLACE
                    if same:
                        pairs.append((t, r))
        pairs.sort(key=lambda p: (p[1].id, p[0].id))
        return pairs

    def _apply_reviews(self, s: Session, run_id: int, track_ids: list[int]) -> int:
        """Re-apply reviewers' decisions to tracks just stored (inside ``save_track_results``'s
        transaction). Returns how many decisions changed something.

        reject / confirm: the track's hit of that person gets the review status (no hit: nothing);
        name: a manual hit of the person unless the track has one of them (an existing one is
        confirmed unless rejected later); merge: the track joins the cluster labelled by the
        review's group key (a label that stays once given). A track split in two when stored
        again gets the decision on both parts.
        """
        if not track_ids:
            return 0
        tracks = list(s.execute(select(TrackRow).where(TrackRow.run_id == run_id,
                                                       TrackRow.id.in_(list(track_ids)))).scalars())
        pairs = self._matching_reviews(s, tracks)
        if not pairs:
            return 0
        changed = 0
        touched: dict[int, TrackRow] = {}
        for t, r in pairs:
            changed += self._apply_review(s, t, r)
            touched[t.id] = t
        s.flush()
        for t in touched.values():
            self._sync_track_status(s, t)
        return changed

    def _apply_review(self, s: Session, t: TrackRow, r: Review) -> int:
        if r.kind in ("reject", "confirm"):
            status = "rejected" if r.kind == "reject" else "confirmed"
            res = s.execute(update(HitRow).where(
                HitRow.track_id == t.id, HitRow.person_id == r.person_id,
                or_(HitRow.review_status.is_(None), HitRow.review_status != status))
                .values(review_status=status, reviewed_by=r.operator, reviewed_at=r.created_at))
            return int(res.rowcount or 0)
        if r.kind == "name" or (r.kind == "merge" and r.person_id is not None):
            n = 0
            if r.kind == "merge" and t.cluster_id != r.group_key:
                t.cluster_id, n = r.group_key, 1
            existing = s.execute(select(HitRow).where(HitRow.track_id == t.id,
                                                      HitRow.person_id == r.person_id)).scalar()
            if existing is None:
                self._insert_track_hit(s, t, r.person_id, "manual", self._manual_score(s, t, r.person_id),
                                       0.0, utcnow(), reviewed_by=r.operator, reviewed_at=r.created_at)
                t.best_person = self._person_names(s, [r.person_id])[r.person_id]
                return n + 1
            if existing.review_status is None:
                existing.review_status, existing.reviewed_by, existing.reviewed_at = \
                    "confirmed", r.operator, r.created_at
                return n + 1
            return n
        if r.kind == "merge" and t.cluster_id != r.group_key:
            t.cluster_id = r.group_key
            return 1
        return 0


__all__ = ["MIN_SPAN_OVERLAP", "ReviewsMixin", "span_overlap"]
