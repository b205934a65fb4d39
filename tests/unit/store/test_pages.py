"""Pages of hits and tracks for the web API (``offset`` + ``count_hits`` / ``count_tracks``)
and a person's enrolled photos, on SQLite and PostgreSQL: every window of a filtered query
is the same slice of the unpaged query, and the counts match it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import update

from cctv_id.errors import NotFoundError
from cctv_id.store import HitRecord, TrackRecord
from cctv_id.store.models import HitRow

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def _record(key: int, t0: datetime | None, hits: list[tuple[int, float]]) -> TrackRecord:
    def hit(pid, score):
        when = t0 or T0
        return HitRecord(person_id=pid, score=score, threshold=0.4, face_px=20.0, quality=0.5,
                         first_frame=key, last_frame=key + 5, first_pts_s=float(key),
                         last_pts_s=key + 1.0, first_seen_at=t0,
                         last_seen_at=None if t0 is None else t0 + timedelta(seconds=5),
                         best_shot_frame=key, best_shot_pts_s=float(key), best_shot_at=when,
                         best_shot_bbox=(1, 2, 3, 4))

    return TrackRecord(track_key=key, status="matched" if hits else "unknown", first_frame=key,
                       last_frame=key + 5, first_pts_s=float(key), last_pts_s=key + 1.0,
                       first_seen_at=t0,
                       last_seen_at=None if t0 is None else t0 + timedelta(seconds=5),
                       n_detections=5, max_face_px=20.0, quality=0.5, model="m1",
                       embedding=np.ones(4, np.float32) / 2, hits=tuple(hit(p, s) for p, s in hits))


@pytest.fixture
def stored(repo):
    alice, bob = repo.add_person("alice"), repo.add_person("bob")
    for cam_name, sha in (("gate", "a" * 64), ("hall", "b" * 64)):
        cam = repo.get_or_create_camera(cam_name)
        run = repo.start_run(repo.get_or_create_source(f"/{cam_name}.mp4", sha, 1), cam, {}, {},
                             "x", T0)
        records = []
        for k in range(1, 12):
            t0 = None if k == 11 else T0 + timedelta(minutes=k * (1 if cam_name == "gate" else 2))
            hits = [(alice, 0.4 + k / 100)] if k % 2 else ([(bob, 0.6)] if k % 4 == 0 else [])
            records.append(_record(k, t0, hits))
        repo.save_track_results(run, cam, records)
    return repo


def _windows(fetch, size: int, total: int) -> list:
    out = []
    for offset in range(0, total + size, size):
        page = fetch(limit=size, offset=offset)
        assert len(page) <= size
        out += page
    return out


@pytest.mark.parametrize("filters", [{}, {"person": "alice"}, {"camera": "hall"},
                                     {"min_score": 0.45},
                                     {"since": T0 + timedelta(minutes=5),
                                      "until": T0 + timedelta(minutes=12)}])
def test_hit_pages_are_slices_of_the_whole_query(stored, filters):
    repo = stored
    whole = [h["hit_id"] for h in repo.query_hits(**filters)]
    assert repo.count_hits(**filters) == len(whole) > 0
    paged = _windows(lambda **kw: repo.query_hits(**filters, **kw), 3, len(whole))
    assert [h["hit_id"] for h in paged] == whole


def test_hit_counts_without_rejected(stored):
    repo = stored
    first = repo.query_hits(person="alice")[0]
    repo._transact(lambda s: s.execute(update(HitRow).where(HitRow.id == first["hit_id"])
                                       .values(review_status="rejected")), write=True)
    assert repo.count_hits(person="alice", exclude_rejected=True) == \
        repo.count_hits(person="alice") - 1 == len(repo.query_hits(person="alice",
                                                                   exclude_rejected=True))
    with pytest.raises(NotFoundError, match="unknown person"):
        repo.count_hits(person="carol")
    with pytest.raises(NotFoundError, match="unknown camera"):
        repo.count_hits(camera="roof")


@pytest.mark.parametrize("filters", [{}, {"unknown": True}, {"person": "bob"},
                                     {"camera": "gate"}, {"since": T0 + timedelta(minutes=15)}])
def test_track_pages_are_slices_of_the_whole_query(stored, filters):
    repo = stored
    whole = [t["track_id"] for t in repo.query_tracks(**filters)]
    assert repo.count_tracks(**filters) == len(whole) > 0
    paged = _windows(lambda **kw: repo.query_tracks(**filters, **kw), 4, len(whole))
    assert [t["track_id"] for t in paged] == whole
    with pytest.raises(NotFoundError, match="unknown run"):
        repo.count_tracks(run_id=999)


def test_person_enrolments_one_row_per_photo(repo):
    vec = np.ones(4, np.float32) / 2
    repo.enrol([dict(person_name="alice", photo_path="/p/a1.jpg", photo_sha256="1" * 64,
                     model=m, embedding=vec, face_px=80.0, stored_photo="enrolments/1/a.jpg")
                for m in ("m1", "m2")]
               + [dict(person_name="alice", photo_path="/p/a2.jpg", photo_sha256="2" * 64,
                       model="m1", embedding=vec, face_px=60.0)])
    rows = repo.person_enrolments("alice")
    assert [(r["photo_sha256"][0], sorted(r["models"]), r["stored_photo"]) for r in rows] == [
        ("1", ["m1", "m2"], "enrolments/1/a.jpg"), ("2", ["m1"], None)]
    with pytest.raises(NotFoundError, match="unknown person"):
        repo.person_enrolments("bob")
