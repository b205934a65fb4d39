"""Repository behaviour, each test on SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from cctv_id.errors import NotFoundError, StoreError
from cctv_id.store import HitRecord, Repository, TrackRecord
from cctv_id.store.models import HitRow, utcnow
from cctv_id.types import FaceSample, Hit, Track, TrackDecision, TrackIdentity

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
SHA_A = "a" * 64
SHA_B = "b" * 64


def _hit(person_id: int, score: float, t0: datetime | None, dur_s: float = 2.0, **kw) -> HitRecord:
    fields = dict(
        person_id=person_id,
        score=score,
        threshold=0.4,
        face_px=14.5,
        quality=0.7,
        first_frame=10,
        last_frame=60,
        first_pts_s=0.4,
        last_pts_s=0.4 + dur_s,
        first_seen_at=t0,
        last_seen_at=None if t0 is None else t0 + timedelta(seconds=dur_s),
        best_shot_frame=30,
        best_shot_pts_s=1.2,
        best_shot_at=None if t0 is None else t0 + timedelta(seconds=0.8),
        best_shot_bbox=(1.5, 2.5, 11.5, 16.0),
        crop_path=f"crops/{person_id}.jpg",
    )
    fields.update(kw)
    return HitRecord(**fields)


def _track(key: int, status: str = "unknown", hits=(), t0: datetime | None = T0, emb=None, **kw) -> TrackRecord:
    fields = dict(
        track_key=key,
        status=status,
        first_frame=10,
        last_frame=60,
        first_pts_s=0.4,
        last_pts_s=2.4,
        first_seen_at=t0,
        last_seen_at=None if t0 is None else t0 + timedelta(seconds=2),
        n_detections=12,
        max_face_px=16.0,
        quality=0.6,
        model="m1",
        embedding=emb,
        best_score=0.3,
        best_person="alice",
        best_shot_frame=30,
        best_shot_pts_s=1.2,
        best_shot_at=None if t0 is None else t0 + timedelta(seconds=0.8),
        best_shot_bbox=(1.0, 2.0, 11.0, 16.0),
        crop_path=f"crops/t{key}.jpg",
        hits=tuple(hits),
    )
    fields.update(kw)
    return TrackRecord(**fields)


def _run(repo: Repository, camera: str = "cam1", sha: str = SHA_A) -> tuple[int, int]:
    cam = repo.get_or_create_camera(camera)
    src = repo.get_or_create_source(f"/videos/{camera}.mp4", sha, 1234, 60.0)
    run = repo.start_run(src, cam, {"det": "d" * 64}, {"threshold": 0.4}, "0.1.0", T0)
    return run, cam


def _unit(rng, n, d=128) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# ------------------------------------------------------------------ cameras, sources, runs


def test_get_or_create_is_idempotent(repo):
    assert repo.get_or_create_camera("gate") == repo.get_or_create_camera("gate")
    assert repo.get_or_create_camera("hall") != repo.get_or_create_camera("gate")
    s1 = repo.get_or_create_source("/a.mp4", SHA_A, 10, None)
    assert repo.get_or_create_source("/moved/a.mp4", SHA_A.upper(), 10, None) == s1
    assert repo.count("cameras") == 2 and repo.count("sources") == 1
    with pytest.raises(ValueError):
        repo.get_or_create_source("/x.mp4", "abc", 1)


def test_run_lifecycle_and_provenance(repo):
    run, cam = _run(repo)
    r = repo.get_run(run)
    assert r["status"] == "running" and r["finished_at"] is None and r["last_frame_index"] is None
    assert r["model_sha256s"] == {"det": "d" * 64} and r["config"] == {"threshold": 0.4}
    assert r["camera"] == "cam1" and r["source_sha256"] == SHA_A and r["start_time"] == T0
    repo.update_run_progress(run, 500, 499)
    repo.finish_run(run, "completed")
    r = repo.get_run(run)
    assert (r["status"], r["frames_processed"], r["last_frame_index"]) == ("completed", 500, 499)
    assert r["finished_at"].tzinfo is not None and r["finished_at"] >= r["started_at"]
    assert [x["id"] for x in repo.list_runs(status="completed")] == [run]
    with pytest.raises(NotFoundError):
        repo.get_run(run + 100)
    with pytest.raises(NotFoundError):
        repo.finish_run(run + 100, "failed")
    with pytest.raises(ValueError):
        repo.finish_run(run, "running")


def test_failed_run_keeps_earlier_hits(repo):
    run, cam = _run(repo)
    alice = repo.add_person("alice")
    repo.save_track_results(run, cam, [_track(1, "matched", [_hit(alice, 0.8, T0)])])
    repo.update_run_progress(run, 100, 99)
    repo.finish_run(run, "failed", "decoder crashed: bad packet")
    r = repo.get_run(run)
    assert r["status"] == "failed" and r["error"] == "decoder crashed: bad packet"
    hits = repo.query_hits(person="alice")
    assert len(hits) == 1 and hits[0]["run_id"] == run


# ------------------------------------------------------------------ enrolment and watchlist


def test_enrol_and_watchlist_round_trip_float32(repo):
    rng = np.random.default_rng(0)
    emb = _unit(rng, 3)
    repo.add_enrolment("bob", "/p/b1.jpg", "1" * 64, "m1", emb[0], 120.0)
    repo.add_enrolment("alice", "/p/a1.jpg", "2" * 64, "m1", emb[1], 90.0)
    repo.add_enrolment("alice", "/p/a2.jpg", "3" * 64, "m1", emb[2], 80.0)
    repo.add_enrolment("alice", "/p/a1.jpg", "2" * 64, "m2", np.ones(512, np.float32), 90.0)
    wl = repo.watchlist("m1")
    assert wl.embeddings.dtype == np.float32 and wl.embeddings.shape == (3, 128)
    assert wl.person_ids.dtype == np.int64 and len(wl) == 3 and wl.dim == 128
    by_name = {}
    for pid, name, vec in zip(wl.person_ids, wl.names, wl.embeddings):
        by_name.setdefault(name, []).append(vec)
    assert np.array_equal(by_name["bob"][0], emb[0])  # bit-exact
    assert np.array_equal(np.stack(by_name["alice"]), emb[1:])
    assert len(set(wl.person_ids[np.array(wl.names) == "alice"])) == 1
    assert repo.watchlist("m2").embeddings.shape == (1, 512)
    empty = repo.watchlist("nothing")
    assert empty.embeddings.shape == (0, 0) and empty.person_ids.dtype == np.int64 and not empty.names
    with pytest.raises(ValueError):
        repo.add_enrolment("bob", "/p/x.jpg", "4" * 64, "m1", np.zeros((2, 3)), 10.0)


def test_generation_bumps_only_on_new_enrolments(repo):
    g0 = repo.watchlist_generation()
    repo.add_person("carol")
    assert repo.watchlist_generation() == g0
    e1 = repo.add_enrolment("carol", "/c.jpg", SHA_A, "m1", np.ones(4), 50.0)
    assert repo.watchlist_generation() == g0 + 1
    assert repo.add_enrolment("carol", "/elsewhere/c.jpg", SHA_A, "m1", np.ones(4), 50.0) == e1
    assert repo.watchlist_generation() == g0 + 1 and repo.count("enrolments") == 1
    repo.add_enrolment("carol", "/c.jpg", SHA_A, "m2", np.ones(4), 50.0)
    repo.add_enrolment("dave", "/c.jpg", SHA_A, "m1", np.ones(4), 50.0)  # same photo, other person
    assert repo.watchlist_generation() == g0 + 3
    assert repo.watchlist("m1").generation == g0 + 3


def test_persons_listing(repo):
    run, cam = _run(repo)
    alice = repo.add_person("alice")
    assert repo.add_person("alice") == alice
    repo.add_enrolment("alice", "/a.jpg", SHA_A, "m1", np.ones(4), 50.0)
    repo.add_enrolment("alice", "/a.jpg", SHA_A, "m2", np.ones(4), 50.0)  # same photo, 2 models
    repo.add_enrolment("alice", "/b.jpg", SHA_B, "m1", np.ones(4), 50.0)
    repo.add_person("zed")
    repo.save_track_results(run, cam, [_track(1, "matched", [_hit(alice, 0.9, T0)])])
    persons = repo.list_persons()
    assert [p["name"] for p in persons] == ["alice", "zed"]
    assert (persons[0]["n_photos"], persons[0]["n_hits"]) == (2, 1)
    assert (persons[1]["n_photos"], persons[1]["n_hits"]) == (0, 0)
    assert persons[0]["created_at"].tzinfo == timezone.utc
    assert repo.person_exists("alice") and not repo.person_exists("nobody")
    with pytest.raises(ValueError):
        repo.add_person("  ")


# ------------------------------------------------------------------ tracks and hits


def test_save_track_results_is_idempotent(repo):
    run, cam = _run(repo)
    alice, bob = repo.add_person("alice"), repo.add_person("bob")
    rng = np.random.default_rng(1)
    batch = [
        _track(1, "matched", [_hit(alice, 0.8, T0), _hit(bob, 0.5, T0)], emb=_unit(rng, 1)[0]),
        _track(2, "unknown", emb=_unit(rng, 1)[0]),
        _track(3, "too_small", t0=None),
    ]
    repo.save_track_results(run, cam, batch)
    counts = (repo.count("tracks"), repo.count("hits"))
    assert counts == (3, 2)
    repo.save_track_results(run, cam, batch)
    assert (repo.count("tracks"), repo.count("hits")) == counts
    # overlapping batch: only the new track and the new hit are added
    repo.save_track_results(run, cam, [batch[0], _track(4, "matched", [_hit(alice, 0.7, T0)])])
    assert (repo.count("tracks"), repo.count("hits")) == (4, 3)
    # the same track key in another run is a different track
    run2 = repo.start_run(repo.get_or_create_source("/v.mp4", SHA_B, 1, None), cam, {}, {}, "0.1.0")
    repo.save_track_results(run2, cam, [batch[0]])
    assert (repo.count("tracks"), repo.count("hits")) == (5, 5)
    repo.save_track_results(run, cam, [])  # nothing to do


def test_live_tracks_are_updated_in_place_with_update_existing(repo):
    run, cam = _run(repo)
    alice, bob = repo.add_person("alice"), repo.add_person("bob")
    # a long live track stored while it goes on ...
    repo.save_track_results(run, cam, [_track(7, "matched", [_hit(alice, 0.8, T0)], last_frame=60)],
                            update_existing=True)
    # ... and again when it ends: same row, later end, and a second person's hit added
    later = T0 + timedelta(seconds=30)
    repo.save_track_results(run, cam, [_track(7, "matched", [_hit(alice, 0.9, T0, dur_s=30.0,
                                                                   last_frame=400),
                                                              _hit(bob, 0.85, T0)],
                                              last_frame=400, last_pts_s=30.4, last_seen_at=later,
                                              n_detections=80, first_frame=99)],
                            update_existing=True)
    assert (repo.count("tracks"), repo.count("hits")) == (1, 2)
    track = repo.list_tracks()[0]
    assert track["last_frame"] == 400 and track["n_detections"] == 80
    assert track["first_frame"] == 10  # when it was first seen is kept
    hits = {h["person"]: h for h in repo.query_hits()}
    assert set(hits) == {"alice", "bob"}
    assert hits["alice"]["last_frame"] == 400 and hits["alice"]["score"] == pytest.approx(0.9)
    # without the flag a stored track is left as it is
    repo.save_track_results(run, cam, [_track(7, "unknown", last_frame=999)])
    assert repo.list_tracks()[0]["last_frame"] == 400


def test_batch_is_one_transaction(repo):
    run, cam = _run(repo)
    alice = repo.add_person("alice")
    batch = [_track(1, "matched", [_hit(alice, 0.8, T0)]), _track(2, "matched", [_hit(9999, 0.8, T0)])]
    with pytest.raises(StoreError):  # unknown person id: foreign key violation
        repo.save_track_results(run, cam, batch)
    assert (repo.count("tracks"), repo.count("hits")) == (0, 0)
    with pytest.raises(ValueError):
        repo.save_track_results(run, cam, [_track(1), _track(1)])
    with pytest.raises(ValueError):
        repo.save_track_results(run, cam, [_track(1, status="maybe")])


def test_unique_constraints_hold_in_the_database(repo):
    run, cam = _run(repo)
    alice = repo.add_person("alice")
    repo.save_track_results(run, cam, [_track(1, "matched", [_hit(alice, 0.8, T0)])])
    track_id = repo.list_tracks(run_id=run)[0]["track_id"]
    row = dict(
        run_id=run, track_id=track_id, person_id=alice, score=0.1, threshold=0.4, face_px=1.0,
        quality=0.1, first_frame=0, last_frame=0, first_pts_s=0.0, last_pts_s=0.0,
        best_shot_frame=0, best_shot_pts_s=0.0, bbox_x1=0.0, bbox_y1=0.0, bbox_x2=1.0,
        bbox_y2=1.0, created_at=utcnow(),
    )
    with pytest.raises(IntegrityError):
        with repo.engine.begin() as conn:
            conn.execute(insert(HitRow.__table__).values(**row))
    assert repo.count("hits") == 1


def test_list_tracks(repo):
    run, cam = _run(repo)
    emb = _unit(np.random.default_rng(2), 1)[0]
    repo.save_track_results(
        run, cam, [_track(7, "unknown", emb=emb), _track(3, "too_short", t0=None, best_shot_bbox=None)]
    )
    tracks = repo.list_tracks(run_id=run)
    assert [t["track_key"] for t in tracks] == [3, 7]
    assert tracks[0]["embedding"] is None and tracks[0]["best_shot_bbox"] is None
    assert tracks[0]["first_seen_at"] is None
    assert np.array_equal(tracks[1]["embedding"], emb) and tracks[1]["dim"] == 128
    assert tracks[1]["best_shot_bbox"] == [1.0, 2.0, 11.0, 16.0] and tracks[1]["camera"] == "cam1"
    assert [t["track_key"] for t in repo.list_tracks(status="unknown")] == [7]
    assert repo.list_tracks(run_id=run + 1) == []


def _populate_for_queries(repo):
    run1, cam1 = _run(repo, "gate", SHA_A)
    run2, cam2 = _run(repo, "hall", SHA_B)
    alice, bob = repo.add_person("alice"), repo.add_person("bob")
    repo.save_track_results(run1, cam1, [
        _track(1, "matched", [_hit(alice, 0.9, T0)]),
        _track(2, "matched", [_hit(alice, 0.5, T0 + timedelta(hours=1)), _hit(bob, 0.45, T0 + timedelta(hours=1))]),
        _track(3, "matched", [_hit(bob, 0.6, None)], t0=None),
    ])
    repo.save_track_results(run2, cam2, [
        _track(1, "matched", [_hit(alice, 0.7, T0 + timedelta(hours=2))]),
    ])
    return run1, run2


def test_query_hits_fields(repo):
    run1, _ = _populate_for_queries(repo)
    hits = repo.query_hits(person="alice", camera="gate")
    assert len(hits) == 2
    h = hits[0]
    expected = {
        "run_id": run1, "person": "alice", "camera": "gate", "track_key": 1, "score": 0.9,
        "threshold": 0.4, "face_px": 14.5, "quality": 0.7, "first_seen_s": 0.4,
        "last_seen_s": 2.4, "first_seen_at": T0, "last_seen_at": T0 + timedelta(seconds=2),
        "first_frame": 10, "last_frame": 60, "best_shot_s": 1.2,
        "best_shot_at": T0 + timedelta(seconds=0.8), "best_shot_frame": 30,
        "best_shot_bbox": [1.5, 2.5, 11.5, 16.0], "crop_path": f"crops/{h['person_id']}.jpg",
        "source_path": "/videos/gate.mp4",
    }
    assert {k: h[k] for k in expected} == expected
    assert isinstance(h["hit_id"], int)
    assert h["track_id"] == repo.list_tracks(run_id=run1)[0]["track_id"]


def test_query_hits_filters(repo):
    _populate_for_queries(repo)
    assert len(repo.query_hits()) == 5
    # chronological, hits without wall-clock time last
    assert [h["score"] for h in repo.query_hits()] == [0.9, 0.5, 0.45, 0.7, 0.6]
    assert [h["score"] for h in repo.query_hits(person="alice")] == [0.9, 0.5, 0.7]
    assert [h["person"] for h in repo.query_hits(camera="hall")] == ["alice"]
    assert [h["score"] for h in repo.query_hits(min_score=0.6)] == [0.9, 0.7, 0.6]
    assert len(repo.query_hits(limit=2)) == 2
    # time overlap: a hit lasting 2 s from T0 overlaps [T0+1s, ...]
    since = repo.query_hits(since=T0 + timedelta(seconds=1))
    assert [h["score"] for h in since] == [0.9, 0.5, 0.45, 0.7]
    assert [h["score"] for h in repo.query_hits(since=T0 + timedelta(seconds=3))] == [0.5, 0.45, 0.7]
    window = repo.query_hits(since=T0 + timedelta(minutes=30), until=T0 + timedelta(minutes=90))
    assert sorted(h["person"] for h in window) == ["alice", "bob"]
    assert repo.query_hits(until=T0 - timedelta(seconds=1)) == []
    # a non-UTC bound means the same instant
    paris = timezone(timedelta(hours=1))
    assert len(repo.query_hits(until=(T0 + timedelta(seconds=1)).astimezone(paris))) == 1
    with pytest.raises(ValueError):
        repo.query_hits(since=datetime(2024, 1, 1))  # naive


def test_query_hits_unknown_names(repo):
    _populate_for_queries(repo)
    with pytest.raises(NotFoundError) as err:
        repo.query_hits(person="mallory")
    assert str(err.value) == "unknown person 'mallory'; enrolled: alice, bob"
    with pytest.raises(NotFoundError, match="unknown camera 'roof'; known: gate, hall"):
        repo.query_hits(camera="roof")


def test_datetimes_round_trip_aware_utc(repo):
    run, cam = _run(repo)
    tz = timezone(timedelta(hours=-5, minutes=-30))
    t = datetime(2023, 12, 31, 23, 59, 59, 123456, tzinfo=tz)
    alice = repo.add_person("alice")
    repo.save_track_results(run, cam, [_track(1, "matched", [_hit(alice, 0.9, t)], t0=t)])
    h = repo.query_hits()[0]
    assert h["first_seen_at"] == t and h["first_seen_at"].tzinfo == timezone.utc
    assert h["first_seen_at"] == datetime(2024, 1, 1, 5, 29, 59, 123456, tzinfo=timezone.utc)
    assert h["best_shot_at"] == t + timedelta(seconds=0.8)
    tr = repo.list_tracks()[0]
    assert tr["last_seen_at"] == t + timedelta(seconds=2) and tr["last_seen_at"].tzinfo == timezone.utc
    run2 = repo.start_run(repo.get_or_create_source("/v", SHA_B, 1), cam, {}, {}, "x", start_time=t)
    assert repo.get_run(run2)["start_time"] == t
    assert repo.get_run(run2)["started_at"].tzinfo == timezone.utc
    with pytest.raises(ValueError, match="naive"):
        repo.save_track_results(run, cam, [_track(2, t0=datetime(2024, 1, 1))])
    with pytest.raises(ValueError, match="naive"):
        repo.start_run(1, cam, {}, {}, "x", start_time=datetime(2024, 1, 1))


def test_track_record_from_decision(repo):
    run, cam = _run(repo)
    alice = repo.add_person("alice")
    box = np.array([4, 5, 14, 20], np.float32)
    sample = FaceSample(40, 1.6, T0, box, np.zeros((5, 2), np.float32), 0.9, 15.0, 0.8,
                        np.zeros((8, 8, 3), np.uint8), (0, 0))
    track = Track(11, "cam1", 30, 90, 1.2, 3.6, T0, T0 + timedelta(seconds=2.4), 20, 18.0, (sample,))
    ident = TrackIdentity(track, np.ones(4, np.float32) / 2, "m1", 0.75)
    hit = Hit(11, alice, "alice", 0.81, 0.4, 15.0, 0.8, 30, 90, 1.2, 3.6, T0,
              T0 + timedelta(seconds=2.4), 40, 1.6, T0, (4.0, 5.0, 14.0, 20.0))
    rec = TrackRecord.from_decision(TrackDecision(ident, "matched", (hit,), 0.81, "alice"), "c/11.jpg")
    assert rec.best_shot_bbox == (4.0, 5.0, 14.0, 20.0) and rec.hits[0].crop_path == "c/11.jpg"
    repo.save_track_results(run, cam, [rec])
    h = repo.query_hits(person="alice")[0]
    assert (h["track_key"], h["score"], h["best_shot_frame"]) == (11, 0.81, 40)
    t = repo.list_tracks(run_id=run)[0]
    assert t["best_person"] == "alice" and t["n_detections"] == 20 and t["quality"] == 0.75


def test_count_rejects_unknown_table(repo):
    with pytest.raises(ValueError, match="unknown table"):
        repo.count("users; DROP TABLE hits")


# ------------------------------------------------------------------ connection errors


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://spy:s3cretpw@127.0.0.1:1/nodb",  # nothing listens on port 1
        "postgresql+psycopg://postgres:s3cretpw@127.0.0.1:5432/cctvid_no_such_db",
        "sqlite:////proc/no/such/folder/here.db",
        "not a url s3cretpw",
    ],
)
def test_bad_url_gives_store_error_without_password(url):
    with pytest.raises(StoreError) as err:
        Repository(url, retry_seconds=1)
    msg = str(err.value)
    assert "s3cretpw" not in msg
    assert "\n" not in msg and msg


def test_concurrent_writers(db_url):
    """Several writers (threads, each with its own Repository, as separate processes would
    have) interleave enrolments and track batches without lock errors or lost updates."""
    import threading

    repos = [Repository(db_url) for _ in range(3)]
    run, cam = _run(repos[0])
    errors: list[BaseException] = []

    def work(i: int, r: Repository) -> None:
        try:
            for j in range(5):
                r.add_enrolment(f"p{i}", f"/{j}.jpg", f"{i}{j}".ljust(64, "0"), "m1", np.ones(8), 20.0)
                r.save_track_results(run, cam, [_track(100 * i + j)])
                r.save_track_results(run, cam, [_track(100 * i + j)])  # repeated: skipped
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, r)) for i, r in enumerate(repos)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert repos[0].count("tracks") == 15 and repos[0].count("enrolments") == 15
    assert repos[0].watchlist_generation() == 15  # no lost increments
    for r in repos:
        r.close()


def test_batch_enrolment_and_removal(repo):
    g0 = repo.watchlist_generation()
    items = [
        dict(person_name=n, photo_path=f"/{n}{i}.jpg", photo_sha256=f"{n}{i}".ljust(64, "0"),
             model="m1", embedding=np.full(4, i, np.float32), face_px=40.0)
        for n in ("ann", "ben") for i in (1, 2)
    ]
    ids = repo.add_enrolments(items)
    assert len(set(ids)) == 4 and repo.watchlist_generation() == g0 + 1
    assert repo.add_enrolments(items) == ids and repo.watchlist_generation() == g0 + 1
    bad = items + [dict(items[0], person_name="cy", embedding=np.zeros((0,)))]
    with pytest.raises(ValueError):
        repo.add_enrolments(bad)
    assert not repo.person_exists("cy")
    run, cam = _run(repo)
    ann = repo.add_person("ann")
    repo.save_track_results(run, cam, [_track(1, "matched", [_hit(ann, 0.9, T0)])])
    assert repo.remove_enrolments("ann") == 2 and repo.watchlist_generation() == g0 + 2
    assert repo.watchlist("m1").names == ["ben", "ben"]
    assert repo.remove_enrolments("ann") == 0 and repo.watchlist_generation() == g0 + 2
    assert len(repo.query_hits(person="ann")) == 1  # evidence stays
    with pytest.raises(NotFoundError):
        repo.remove_enrolments("nobody")
