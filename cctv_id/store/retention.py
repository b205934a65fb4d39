"""Removing people, purging old data by retention rules, and re-embedding stored faces.

Owns the database side of governance, each change in ONE transaction together with its
audit entry:

- :meth:`RetentionMixin.remove_person`: a person's enrolments (every model) go, the watchlist
  generation moves; with ``purge_hits`` also their hits, the tracks left without a hit, their
  alerts and finally the person row (the track index epoch moves);
- :meth:`RetentionMixin.purge`: unknown tracks and hits older than cutoffs, with the tracks
  left without a hit;
- re-embedding: which tracks and enrolments another model made, and writing their new
  embeddings (new index sequence numbers, epoch bump; one generation bump for enrolments).

Files (photos, crops, context frames) are never touched here: every method returns the
relative paths that no row references any more, for the caller to delete after the commit.
The audit log itself is never purged.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cctv_id.store.audit import AuditMixin
from cctv_id.store.encoding import _blob
from cctv_id.store.models import (
    AlertOutbox,
    Enrolment,
    HitRow,
    Person,
    TrackRow,
    to_utc,
    utcnow,
)
from cctv_id.store.queries import TracksHitsMixin

_CHUNK = 500  # ids per IN (...) clause


class _RolledBack(Exception):
    """Raised out of a transaction body to roll it back while handing back its result."""

    def __init__(self, result: dict):
        super().__init__("rolled back")
        self.result = result


def _chunks(ids: list[int]):
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]


class RetentionMixin(TracksHitsMixin, AuditMixin):
    """Removal, purge and re-embedding (part of :class:`Repository`)."""

    # ------------------------------------------------------------------ shared helpers
    def _file_paths(self, s: Session, track_ids: list[int], hit_ids: list[int]) -> set[str]:
        paths: set[str] = set()
        for part in _chunks(track_ids):
            for crop, ctx in s.execute(select(TrackRow.crop_path, TrackRow.context_path)
                                       .where(TrackRow.id.in_(part))):
                paths |= {p for p in (crop, ctx) if p}
        for part in _chunks(hit_ids):
            for crop, ctx in s.execute(select(HitRow.crop_path, HitRow.context_path)
                                       .where(HitRow.id.in_(part))):
                paths |= {p for p in (crop, ctx) if p}
        return paths

    @staticmethod
    def _still_referenced(s: Session, paths: set[str]) -> set[str]:
        if not paths:
            return set()
        found: set[str] = set()
        ordered = sorted(paths)
        for i in range(0, len(ordered), _CHUNK):
            part = ordered[i:i + _CHUNK]
            for col in (TrackRow.crop_path, TrackRow.context_path, HitRow.crop_path,
                        HitRow.context_path):
                found |= set(s.execute(select(col).where(col.in_(part))).scalars())
        return found

    def _delete_hits_and_bare_tracks(self, s: Session, hit_ids: list[int],
                                     extra_track_ids: list[int] = ()) -> dict:
        """Delete ``hits`` and then every track (of theirs, or in ``extra_track_ids``) that no
        hit references any more; returns ids and the files no row references now."""
        track_ids: set[int] = set(extra_track_ids)
        for part in _chunks(hit_ids):
            track_ids |= set(s.execute(select(HitRow.track_id).where(HitRow.id.in_(part))).scalars())
        paths = self._file_paths(s, [], hit_ids)
        for part in _chunks(hit_ids):
            s.execute(delete(HitRow).where(HitRow.id.in_(part)))
        candidates = sorted(track_ids)
        kept: set[int] = set()
        for part in _chunks(candidates):
            kept |= set(s.execute(select(HitRow.track_id).where(HitRow.track_id.in_(part))).scalars())
        bare = [t for t in candidates if t not in kept]
        paths |= self._file_paths(s, bare, [])
        n_embedded = 0
        for part in _chunks(bare):
            n_embedded += s.execute(select(func.count()).select_from(TrackRow).where(
                TrackRow.id.in_(part), TrackRow.embedding.is_not(None))).scalar_one()
            s.execute(delete(TrackRow).where(TrackRow.id.in_(part)))
        if n_embedded:
            self._bump_index_epoch(s)
        files = sorted(paths - self._still_referenced(s, paths))
        return {"hit_ids": sorted(hit_ids), "track_ids": bare,
                "tracks_kept": sorted(kept), "files": files}

    # ------------------------------------------------------------------ remove-person
    def remove_person(self, name: str, operator: str, purge_hits: bool = False) -> dict:
        """Take ``name`` off the watchlist (enrolments of every model), audited.

        Past hits stay as evidence unless ``purge_hits``: then the person's hits, the tracks
        they were on (unless another person's hit is on them too), the person's webhook
        alerts and the person row go as well. Returns counts plus "stored_photos" and
        "files" (relative paths under data_dir to delete after this commit).
        """
        name = str(name).strip()

        def body(s: Session) -> dict:
            person_id = s.execute(select(Person.id).where(Person.name == name)).scalar()
            if person_id is None:
                raise self._unknown_person(s, name)
            photos = {p for p in s.execute(select(Enrolment.stored_photo).where(
                Enrolment.person_id == person_id)).scalars() if p}
            models = sorted(set(s.execute(select(Enrolment.model).where(
                Enrolment.person_id == person_id)).scalars()))
            n_enrol = s.execute(delete(Enrolment).where(Enrolment.person_id == person_id)).rowcount or 0
            if n_enrol:
                self._bump_generation(s)
            out = {"person": name, "n_enrolments": n_enrol, "models": models,
                   "stored_photos": sorted(photos - self._referenced_photos(s, photos)),
                   "purge_hits": bool(purge_hits), "n_hits": 0, "n_tracks": 0,
                   "tracks_kept": [], "n_alerts": 0, "files": [], "person_deleted": False}
            if purge_hits:
                hit_ids = list(s.execute(select(HitRow.id).where(
                    HitRow.person_id == person_id)).scalars())
                done = self._delete_hits_and_bare_tracks(s, hit_ids)
                out["n_alerts"] = s.execute(delete(AlertOutbox).where(
                    AlertOutbox.person == name)).rowcount or 0
                s.execute(update(TrackRow).where(TrackRow.best_person == name)
                          .values(best_person=None))
                s.execute(delete(Person).where(Person.id == person_id))
                out.update(n_hits=len(done["hit_ids"]), n_tracks=len(done["track_ids"]),
                           tracks_kept=done["tracks_kept"], files=done["files"],
                           person_deleted=True)
            self._audit(s, operator, "remove-person",
                        params={"person": name, "purge_hits": bool(purge_hits)},
                        outcome={k: out[k] for k in ("n_enrolments", "models", "n_hits",
                                                     "n_tracks", "n_alerts", "person_deleted")}
                        | {"n_photos": len(out["stored_photos"]), "n_files": len(out["files"])})
            return out

        return self._transact(body, write=True)

    # ------------------------------------------------------------------ purge
    def purge(self, operator: str, unknown_before: datetime | None = None,
              hits_before: datetime | None = None, dry_run: bool = False,
              params: dict | None = None) -> dict:
        """Delete unknown tracks (no hit) last seen before ``unknown_before`` and hits last
        seen before ``hits_before`` (with their tracks once no hit is left on them).

        "Seen" is the wall-clock ``last_seen_at``, or ``created_at`` for footage without a
        start time. ``dry_run`` does the same in a transaction that is rolled back (exact counts, nothing
        changed, not audited). Returns counts, ids and
        "files" to delete after this commit. The audit log is never purged.
        """
        unknown_before = to_utc(unknown_before, "unknown_before")
        hits_before = to_utc(hits_before, "hits_before")
        if unknown_before is None and hits_before is None:
            raise ValueError("purge needs at least one cutoff")

        def body(s: Session) -> dict:
            hit_ids: list[int] = []
            unknown: list[int] = []
            if hits_before is not None:
                seen = func.coalesce(HitRow.last_seen_at, HitRow.created_at)
                hit_ids = list(s.execute(select(HitRow.id).where(seen < hits_before)
                                         .order_by(HitRow.id)).scalars())
            if unknown_before is not None:
                seen = func.coalesce(TrackRow.last_seen_at, TrackRow.created_at)
                unknown = list(s.execute(
                    select(TrackRow.id).where(seen < unknown_before, ~select(HitRow.id).where(
                        HitRow.track_id == TrackRow.id).exists()).order_by(TrackRow.id)).scalars())
            done = self._delete_hits_and_bare_tracks(s, hit_ids, unknown)
            out = {"dry_run": bool(dry_run), "n_hits": len(done["hit_ids"]),
                   "n_unknown_tracks": len(unknown), "n_tracks": len(done["track_ids"]),
                   "hit_ids": done["hit_ids"], "track_ids": done["track_ids"],
                   "files": done["files"]}
            if dry_run:
                raise _RolledBack(out)  # the same deletions, counted, then rolled back
            self._audit(s, operator, "purge",
                        params=(params or {}) | {
                            "unknown_before": unknown_before, "hits_before": hits_before},
                        outcome={"n_hits": out["n_hits"], "n_tracks": out["n_tracks"],
                                 "n_unknown_tracks": out["n_unknown_tracks"],
                                 "n_files": len(out["files"])})
            return out

        try:
            return self._transact(body, write=True)
        except _RolledBack as done:
            return done.result

    # ------------------------------------------------------------------ re-embedding
    def tracks_to_reembed(self, model: str, limit: int | None = None, after_id: int = 0
                          ) -> list[dict]:
        """Tracks whose stored embedding (or lack of one) was made by another model, by id
        (above ``after_id``); "embedded": whether they have an embedding (the pipeline stores
        none for faces too small to identify)."""
        q = (select(TrackRow.id, TrackRow.model, TrackRow.crop_path, TrackRow.crop_landmarks,
                    TrackRow.max_face_px, TrackRow.embedding.is_not(None).label("embedded")).where(TrackRow.model != model, TrackRow.id > int(after_id))
             .order_by(TrackRow.id))
        if limit is not None:
            q = q.limit(int(limit))

        def body(s: Session) -> list[dict]:
            return [{"id": r.id, "model": r.model, "crop_path": r.crop_path,
                     "crop_landmarks": r.crop_landmarks, "max_face_px": float(r.max_face_px),
                     "embedded": bool(r.embedded)}
                    for r in s.execute(q)]

        return self._transact(body)

    def set_track_embeddings(self, model: str, updates: list[tuple[int, np.ndarray | None]]) -> int:
        """Store re-computed embeddings of ``model`` (None: could not be re-embedded, the
        old embedding goes) in one transaction; bumps the track index epoch."""
        prepared = []
        for track_id, vector in updates:
            if vector is None:
                prepared.append((int(track_id), None, None))
            else:
                blob, dim = _blob(vector, f"track {track_id}")
                prepared.append((int(track_id), blob, dim))

        def body(s: Session) -> int:
            seqs = iter(self._take_index_seqs(s, sum(b is not None for _, b, _ in prepared)))
            n = 0
            for track_id, blob, dim in prepared:
                n += s.execute(update(TrackRow).where(TrackRow.id == track_id).values(
                    model=model, embedding=blob, dim=dim,
                    index_seq=None if blob is None else next(seqs))).rowcount or 0
            if prepared:
                self._bump_index_epoch(s)
            return n

        return self._transact(body, write=True)

    def enrolments_to_reembed(self, model: str) -> list[dict]:
        """One entry per (person, photo) that has enrolments of other models but none of
        ``model``: where to read the photo again."""

        def body(s: Session) -> list[dict]:
            have = set(s.execute(select(Enrolment.person_id, Enrolment.photo_sha256)
                                 .where(Enrolment.model == model)).all())
            out: dict[tuple, dict] = {}
            for r in s.execute(select(Enrolment.person_id, Person.name, Enrolment.photo_sha256,
                                      Enrolment.photo_path, Enrolment.stored_photo,
                                      Enrolment.model, Enrolment.face_px)
                               .join(Person, Person.id == Enrolment.person_id)
                               .where(Enrolment.model != model)
                               .order_by(Enrolment.person_id, Enrolment.id)):
                key = (r.person_id, r.photo_sha256)
                if key in have:
                    continue
                entry = out.setdefault(key, {
                    "person": r.name, "person_id": r.person_id, "photo_sha256": r.photo_sha256,
                    "photo_path": r.photo_path, "stored_photo": r.stored_photo,
                    "face_px": float(r.face_px), "models": []})
                entry["stored_photo"] = entry["stored_photo"] or r.stored_photo
                entry["models"].append(r.model)
            return list(out.values())

        return self._transact(body)

    def replace_enrolment_models(self, model: str, items: list[dict]) -> dict:
        """Write ``model``'s embedding for each (person_id, photo_sha256) in ``items`` and delete
        that photo's rows of other models, in ONE transaction with one generation bump.
        Photos not in ``items`` keep their old-model rows."""
        prepared = []
        for it in items:
            blob, dim = _blob(it["embedding"], f"enrolment of {it['person']}")
            prepared.append((it, blob, dim))

        def body(s: Session) -> dict:
            n_new = n_old = 0
            for it, blob, dim in prepared:
                n_new += self._insert_ignore(s, Enrolment, {
                    "person_id": int(it["person_id"]), "photo_path": str(it["photo_path"]),
                    "photo_sha256": str(it["photo_sha256"]), "model": model, "embedding": blob,
                    "dim": dim, "face_px": float(it["face_px"]), "created_at": utcnow(),
                    "stored_photo": it.get("stored_photo")}, ["person_id", "photo_sha256", "model"])
                n_old += s.execute(delete(Enrolment).where(
                    Enrolment.person_id == int(it["person_id"]),
                    Enrolment.photo_sha256 == str(it["photo_sha256"]),
                    Enrolment.model != model)).rowcount or 0
            if n_new or n_old:
                self._bump_generation(s)
            return {"n_new": int(n_new), "n_old_removed": int(n_old)}

        return self._transact(body, write=True)

    def embedding_models(self) -> dict[str, dict[str, int]]:
        """{"tracks": {model: n with an embedding}, "enrolments": {model: n}}."""

        def body(s: Session):
            tracks = dict(s.execute(select(TrackRow.model, func.count()).where(
                TrackRow.embedding.is_not(None)).group_by(TrackRow.model)).all())
            enrol = dict(s.execute(select(Enrolment.model, func.count())
                                   .group_by(Enrolment.model)).all())
            return {"tracks": {k: int(v) for k, v in tracks.items()},
                    "enrolments": {k: int(v) for k, v in enrol.items()}}

        return self._transact(body)

