"""Track listing, candidate ids and timelines in the repository (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import update

from cctv_id.errors import NotFoundError
from cctv_id.store import HitRecord, TrackRecord
from cctv_id.store.models import HitRow

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def _hit(pid, score, t0, origin="auto"):
    return HitRecord(person_id=pid, score=score, threshold=0.4, face_px=20.0, quality=0.5,
                     first_frame=0, last_frame=10, first_pts_s=0.0, last_pts_s=1.0,
                     first_seen_at=t0, last_seen_at=t0 + timedelta(seconds=10), best_shot_frame=5,
                     best_shot_pts_s=0.5, best_shot_at=t0, best_shot_bbox=(1, 2, 3, 4),
                     origin=origin)


def _track(key, t0, hits=(), model="m1", emb=True, status="unknown"):
    vec = np.ones(8, np.float32) / np.sqrt(8) if emb else None
    return TrackRecord(track_key=key, status=status, first_frame=key * 10, last_frame=key * 10 + 9,
                       first_pts_s=float(key), last_pts_s=float(key) + 10, first_seen_at=t0,
                       last_seen_at=None if t0 is None else t0 + timedelta(seconds=10),
                       n_detections=9, max_face_px=20.0, quality=0.5, model=model,
                       embedding=vec, hits=tuple(hits))


@pytest.fixture
def stored(repo):
    """Two cameras; alice on both (one hit later rejected), bob once, three unknown tracks."""
    alice, bob = repo.add_person("alice"), repo.add_person("bob")
    ids = {}
    for cam_name, sha, tracks in [
        ("gate", "a" * 64, [(1, T0 + timedelta(minutes=30), [(alice, 0.7, "auto")]),
                            (2, T0, [(bob, 0.6, "auto"), (alice, 0.65, "retro")]),
                            (3, T0 + timedelta(minutes=5), []),
                            (4, None, [])]),
        ("hall", "b" * 64, [(1, T0 + timedelta(minutes=10), [(alice, 0.8, "manual")]),
                            (2, T0 + timedelta(minutes=20), [(bob, 0.5, "auto")]),
                            (3, T0 + timedelta(minutes=40), [])]),
    ]:
        cam = repo.get_or_create_camera(cam_name)
        run = repo.start_run(repo.get_or_create_source(f"/{cam_name}.mp4", sha, 1), cam, {}, {}, "x", T0)
        repo.save_track_results(run, cam, [
            _track(k, t0, [_hit(p, sc, t0 or T0, o) for p, sc, o in hits], model="m2" if k == 3 and cam_name == "hall" else "m1")
            for k, t0, hits in tracks])
        for t in repo.list_tracks(run_id=run):
            ids[(cam_name, t["track_key"])] = t["track_id"]
    return repo, ids


def test_query_tracks_orders_by_time_and_names_the_best_unrejected_hit(stored):
    repo, ids = stored
    rows = repo.query_tracks()
    assert [r["track_id"] for r in rows] == [ids[k] for k in [("gate", 2), ("gate", 3), ("hall", 1),
                                                            ("hall", 2), ("gate", 1), ("hall", 3),
                                                            ("gate", 4)]]
    by = {r["track_id"]: r for r in rows}
    assert by[ids[("gate", 2)]]["person"] == "alice" and by[ids[("gate", 2)]]["person_score"] == 0.65
    assert by[ids[("gate", 2)]]["n_hits"] == 2 and "embedding" not in by[ids[("gate", 2)]]
    assert by[ids[("gate", 3)]]["person"] is None and by[ids[("gate", 3)]]["source_path"] == "/gate.mp4"
    # a reviewer rejects alice on gate/2: bob names it now; rejecting bob too makes it unknown
    def reject(person_id):
        repo._transact(lambda s: s.execute(update(HitRow).where(
            HitRow.track_id == ids[("gate", 2)], HitRow.person_id == person_id)
            .values(review_status="rejected")), write=True)
    reject(next(h["person_id"] for h in repo.query_hits(person="alice")))
    assert repo.query_tracks(ids=[ids[("gate", 2)]])[0]["person"] == "bob"
    assert ids[("gate", 2)] not in [r["track_id"] for r in repo.query_tracks(person="alice")]
    reject(next(h["person_id"] for h in repo.query_hits(person="bob")))
    unknown = [r["track_id"] for r in repo.query_tracks(unknown=True)]
    assert unknown == [ids[k] for k in [("gate", 2), ("gate", 3), ("hall", 3), ("gate", 4)]]


def test_query_tracks_filters(stored):
    repo, ids = stored
    gate = [r["track_id"] for r in repo.query_tracks(camera="gate")]
    assert sorted(gate) == sorted(v for (c, _), v in ids.items() if c == "gate")
    # overlap of [first_seen_at, last_seen_at] with [since, until]; no wall clock: left out
    window = repo.query_tracks(since=T0 + timedelta(minutes=10, seconds=5),
                               until=T0 + timedelta(minutes=30))
    assert [r["track_id"] for r in window] == [ids[("hall", 1)], ids[("hall", 2)], ids[("gate", 1)]]
    # a track with a hit of bob, named by its best hit (alice on gate/2)
    assert [(r["track_id"], r["person"]) for r in repo.query_tracks(person="bob")] == \
        [(ids[("gate", 2)], "alice"), (ids[("hall", 2)], "bob")]
    assert len(repo.query_tracks(limit=3)) == 3
    run_hall = repo.query_tracks(camera="hall")[0]["run_id"]
    assert {r["camera"] for r in repo.query_tracks(run_id=run_hall)} == {"hall"}
    # candidate ids of a search: one model's tracks with an embedding
    assert repo.track_ids(model="m2") == [ids[("hall", 3)]]
    assert ids[("hall", 3)] not in repo.track_ids(model="m1")
    assert repo.track_ids(model="m1", camera="hall", since=T0 + timedelta(minutes=15)) == [ids[("hall", 2)]]
    with pytest.raises(NotFoundError, match="unknown camera 'roof'; known: gate, hall"):
        repo.query_tracks(camera="roof")
    with pytest.raises(NotFoundError, match="unknown person 'carol'"):
        repo.query_tracks(person="carol")
    with pytest.raises(NotFoundError, match="unknown run 999"):
        repo.track_ids(run_id=999)


def test_timeline_across_cameras_in_time_order_without_rejected(stored):
    repo, ids = stored
    line = repo.timeline("alice")
    assert [(h["camera"], h["origin"]) for h in line] == [("gate", "retro"), ("hall", "manual"),
                                                          ("gate", "auto")]
    assert [h["first_seen_at"] for h in line] == sorted(h["first_seen_at"] for h in line)
    repo._transact(lambda s: s.execute(update(HitRow).where(HitRow.id == line[1]["hit_id"])
                                       .values(review_status="rejected")), write=True)
    assert [h["hit_id"] for h in repo.timeline("alice")] == [line[0]["hit_id"], line[2]["hit_id"]]
    assert len(repo.query_hits(person="alice")) == 3  # query_hits still lists every hit
    assert [h["camera"] for h in repo.timeline("alice", since=T0 + timedelta(minutes=15))] == ["gate"]
    with pytest.raises(NotFoundError, match="unknown person 'carol'; enrolled: alice, bob"):
        repo.timeline("carol")
