"""Retro-matching hits: people enrolled after footage was processed, found among the
unknown tracks already stored.

Owns the one-transaction store side (:meth:`RetroMixin.record_retro_hits`): read the
model's enrolments and the unknown tracks with an embedding, let the caller's chooser decide
(:mod:`cctv_id.watchlist.retro` holds the pipeline's decision rule), store each choice as a
hit with origin "retro" and mark its track "matched". Pairs a reviewer rejected never come
back (the review part's bookkeeping, :mod:`cctv_id.store.reviews`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from cctv_id.errors import InputError
from cctv_id.store.encoding import _unblob
from cctv_id.store.models import Enrolment, HitRow, Person, TrackRow, utcnow
from cctv_id.store.reviews import ReviewsMixin


@dataclass(frozen=True)
class RetroCandidates:
    """What a retro-matching chooser decides on (one consistent read, model ``model``)."""

    model: str
    track_ids: np.ndarray  # (N,) int64: unknown tracks with an embedding
    max_face_px: np.ndarray  # (N,) float64
    vectors: np.ndarray  # (N, D) float32
    person_ids: np.ndarray  # (M,) int64: every enrolment of the model, one row each
    names: list[str]  # (M,)
    enrolments: np.ndarray  # (M, D) float32
    targets: frozenset[int]  # person ids that may get retro hits
    rejected: frozenset[tuple[int, int]]  # (track_id, person_id) a reviewer rejected


@dataclass(frozen=True)
class RetroChoice:
    track_id: int
    person_id: int
    score: float
    threshold: float


class RetroMixin(ReviewsMixin):
    """Retro-matching hits (part of :class:`Repository`)."""

    def record_retro_hits(self, model: str, persons: list[str] | None,
                          choose: Callable[[RetroCandidates], list[RetroChoice]]) -> list[dict]:
        """Retro-matching in ONE transaction: read ``model``'s enrolments and its unknown
        tracks with an embedding (no non-rejected hit), let ``choose`` decide, store each
        choice as a hit with origin "retro" (times, frames, box and crop from the track) and
        mark the track "matched" with that best person and score. Returns the new hits.

        ``persons``: who may get retro hits (None or empty: everyone enrolled for ``model``);
        an unknown name → NotFoundError, a person not enrolled for ``model`` → InputError.
        Choices for (track, person) pairs a reviewer rejected, or for other tracks or people,
        are refused (ValueError: a chooser bug).
        """
        wanted = [self._name(p, "person") for p in (persons or [])]

        def body(s: Session) -> list[dict]:
            enrol = s.execute(
                select(Enrolment.person_id, Person.name, Enrolment.embedding, Enrolment.dim)
                .join(Person, Person.id == Enrolment.person_id)
                .where(Enrolment.model == model).order_by(Enrolment.person_id, Enrolment.id)).all()
            enrolled = {r.name: int(r.person_id) for r in enrol}
            for name in wanted:
                if name not in enrolled:
                    if s.execute(select(Person.id).where(Person.name == name)).first() is None:
                        raise self._unknown_person(s, name)
                    raise InputError(f"person {name!r} has no enrolment for recogniser {model!r}; "
                                     f"enrol a photo first")
            targets = frozenset(enrolled[n] for n in wanted) if wanted else frozenset(enrolled.values())
            if not enrol:
                return []
            live_hit = exists().where(HitRow.track_id == TrackRow.id,
                                      or_(HitRow.review_status.is_(None), HitRow.review_status != "rejected"))
            # only the columns the decision needs (no trajectories) for every candidate
            rows = s.execute(select(TrackRow.id, TrackRow.max_face_px, TrackRow.embedding, TrackRow.dim)
                             .where(TrackRow.model == model, TrackRow.embedding.is_not(None),
                                    TrackRow.status.in_(("unknown", "matched")), ~live_hit)
                             .order_by(TrackRow.id)).all()
            if not rows:
                return []
            cands = RetroCandidates(
                model=model,
                track_ids=np.array([r.id for r in rows], np.int64),
                max_face_px=np.array([r.max_face_px for r in rows], np.float64),
                vectors=np.stack([_unblob(r.embedding, r.dim) for r in rows]).astype(np.float32),
                person_ids=np.array([r.person_id for r in enrol], np.int64),
                names=[r.name for r in enrol],
                enrolments=np.stack([_unblob(r.embedding, r.dim) for r in enrol]).astype(np.float32),
                targets=targets,
                rejected=frozenset(self._rejected_pairs(s, {int(r.id) for r in rows})),
            )
            names = {int(r.person_id): r.name for r in enrol}
            candidate_ids = set(cands.track_ids.tolist())
            now = utcnow()
            out = []
            for c in choose(cands):
                if int(c.track_id) not in candidate_ids or int(c.person_id) not in targets \
                        or (int(c.track_id), int(c.person_id)) in cands.rejected:
                    raise ValueError(f"retro chooser picked a pair it may not: {c}")
                track = s.get(TrackRow, int(c.track_id))
                hit_id = self._insert_track_hit(s, track, c.person_id, "retro", c.score, c.threshold, now)
                if hit_id is None:
                    continue
                track.status, track.best_person, track.best_score = "matched", names[int(c.person_id)], float(c.score)
                out.append({"hit_id": hit_id, "run_id": track.run_id, "track_id": track.id,
                            "person": names[int(c.person_id)], "score": float(c.score),
                            "threshold": float(c.threshold), "face_px": float(track.max_face_px),
                            "first_seen_s": track.first_pts_s, "last_seen_s": track.last_pts_s,
                            "first_seen_at": track.first_seen_at, "last_seen_at": track.last_seen_at,
                            "first_frame": track.first_frame, "last_frame": track.last_frame,
                            "crop_path": track.crop_path, "origin": "retro"})
            s.flush()
            return out

        return self._transact(body, write=True)
