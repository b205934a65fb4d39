"""Reviews (confirm, reject, name, merge), retro-matching and decisions surviving
re-processing, each on SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from cctv_id.config import DecisionConfig
from cctv_id.errors import InputError, NotFoundError
from cctv_id.recognize.manifest import Band
from cctv_id.store import HitRecord, Repository, TrackRecord
from cctv_id.store.reviews import place_distance, span_overlap
from cctv_id.watchlist.retro import retro_match

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
D = 32
BANDS = [Band("small", 0.0, 16.0, 0.8), Band("large", 16.0, float("inf"), 0.6)]


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(D).astype(np.float32)
    return v / np.linalg.norm(v)


def _near(target: np.ndarray, cos: float, seed: int) -> np.ndarray:
    """A unit vector whose cosine to the unit ``target`` is exactly ``cos``."""
    o = _vec(seed)
    o = o - (o @ target) * target
    o /= np.linalg.norm(o)
    return (cos * target + np.sqrt(1 - cos * cos) * o).astype(np.float32)


def _traj(f0: int, f1: int, x0: float, y: float, px: float = 30.0, vx: float = 2.0):
    return tuple((float(f), x0 + vx * (f - f0), y, x0 + vx * (f - f0) + px, y + px)
                 for f in range(f0, f1 + 1, 5))


def _track(key: int, f0: int = 10, f1: int = 60, status: str = "unknown", emb=None, hits=(),
           px: float = 30.0, x: float = 100.0, y: float = 100.0, **kw) -> TrackRecord:
    traj = _traj(f0, f1, x, y, px)
    fields = dict(
        track_key=key, status=status, first_frame=f0, last_frame=f1,
        first_pts_s=f0 / 10, last_pts_s=f1 / 10,
        first_seen_at=T0 + timedelta(seconds=f0 / 10), last_seen_at=T0 + timedelta(seconds=f1 / 10),
        n_detections=f1 - f0 + 1, max_face_px=px, quality=0.6, model="m1", embedding=emb,
        best_score=0.3, best_person=None, best_shot_frame=f0, best_shot_pts_s=f0 / 10,
        best_shot_at=T0 + timedelta(seconds=f0 / 10), best_shot_bbox=tuple(traj[0][1:]),
        crop_path=f"crops/t{key}.jpg", hits=tuple(hits), trajectory=traj,
    )
    fields.update(kw)
    return TrackRecord(**fields)


def _hit(person_id: int, rec: TrackRecord, score: float = 0.9) -> HitRecord:
    return HitRecord(
        person_id=person_id, score=score, threshold=0.6, face_px=rec.max_face_px, quality=0.6,
        first_frame=rec.first_frame, last_frame=rec.last_frame, first_pts_s=rec.first_pts_s,
        last_pts_s=rec.last_pts_s, first_seen_at=rec.first_seen_at, last_seen_at=rec.last_seen_at,
        best_shot_frame=rec.best_shot_frame, best_shot_pts_s=rec.best_shot_pts_s,
        best_shot_at=rec.best_shot_at, best_shot_bbox=rec.best_shot_bbox, crop_path=rec.crop_path)


def _matched(key: int, person_id: int, **kw) -> TrackRecord:
    rec = _track(key, status="matched", **kw)
    return TrackRecord(**{**rec.__dict__, "hits": (_hit(person_id, rec),)})


def _run(repo: Repository, camera: str = "cam1", sha: str = "a" * 64) -> tuple[int, int]:
    cam = repo.get_or_create_camera(camera)
    src = repo.get_or_create_source(f"/videos/{camera}.mp4", sha, 1234, 60.0)
    return repo.start_run(src, cam, {"det": "d" * 64}, {}, "0.1.0", T0), cam


def _enrol(repo: Repository, name: str, *vectors: np.ndarray, model: str = "m1") -> int:
    for i, v in enumerate(vectors):
        repo.add_enrolment(name, f"/p/{name}{i}.jpg", f"{name}{i}".ljust(64, "0"), model, v, 120.0)
    return repo.add_person(name)


def _tracks(repo: Repository, run: int | None = None) -> dict[int, dict]:
    return {t["track_key"]: t for t in repo.list_tracks(run_id=run)}


def _hits(repo: Repository) -> list[dict]:
    return repo.query_hits()


def _audit_kinds(repo: Repository) -> list[str]:
    return [e["params"]["kind"] for e in repo.list_audit(action="review")]


# ------------------------------------------------------------------ pure helpers


def test_span_overlap_and_place_distance():
    assert span_overlap(0, 9, 5, 100) == pytest.approx(0.5)  # 5 of the shorter 10 frames
    assert span_overlap(0, 9, 10, 20) == 0.0
    a = [list(p) for p in _traj(0, 50, 100, 100)]
    assert place_distance(a, [list(p) for p in _traj(10, 60, 125, 100)]) == pytest.approx(5 / 30)
    assert place_distance(a, [list(p) for p in _traj(0, 50, 400, 100)]) == pytest.approx(10.0)
    assert place_distance(a, [list(p) for p in _traj(70, 90, 100, 100)]) == float("inf")
    assert place_distance(a, [[25.0, 150.0, 100.0, 180.0, 130.0]]) == pytest.approx(0.0)


# ------------------------------------------------------------------ retro-matching


def test_retro_match_names_the_unknown_track_once(repo):
    bob_e = _vec(1)
    bob = _enrol(repo, "bob", bob_e, _near(bob_e, 0.9, 2))
    alice = _enrol(repo, "alice", _vec(3))
    run, cam = _run(repo)
    repo.save_track_results(run, cam, [
        _track(1, emb=_near(bob_e, 0.8, 10)),  # bob, unknown at the time
        _track(2, emb=_vec(11)),  # a stranger
        _matched(3, alice, emb=_near(bob_e, 0.95, 12)),  # already someone's: left alone
        _track(4, status="too_small", emb=_near(bob_e, 0.95, 13), px=9.0),
        _track(5, emb=None),
    ])
    new = retro_match(repo, "m1", BANDS, DecisionConfig(), ["bob"])
    tracks = _tracks(repo)
    assert [(h["track_id"], h["person"], h["origin"]) for h in new] == [(tracks[1]["track_id"], "bob", "retro")]
    assert new[0]["score"] == pytest.approx(0.8, abs=1e-5) and new[0]["threshold"] == 0.6
    assert tracks[1]["status"] == "matched" and tracks[1]["best_person"] == "bob"
    assert tracks[1]["best_score"] == pytest.approx(0.8, abs=1e-5)
    stored = {h["hit_id"]: h for h in _hits(repo)}[new[0]["hit_id"]]
    assert stored["origin"] == "retro" and stored["run_id"] == run and stored["review_status"] is None
    assert (stored["first_frame"], stored["last_frame"], stored["crop_path"]) == (10, 60, "crops/t1.jpg")
    assert stored["best_shot_bbox"] == list(tracks[1]["best_shot_bbox"])
    assert [t["status"] for k, t in sorted(tracks.items())] == ["matched", "unknown", "matched", "too_small",
                                                                "unknown"]
    assert retro_match(repo, "m1", BANDS, DecisionConfig(), ["bob"]) == []  # idempotent
    assert repo.count("hits") == 2 and bob in {h["person_id"] for h in _hits(repo)}


def test_retro_match_uses_the_band_threshold_and_the_pipeline_rule(repo):
    face = _vec(7)
    bob_e, carol_e = _near(face, 0.75, 8), _near(face, 0.9, 9)
    _enrol(repo, "bob", bob_e)
    _enrol(repo, "carol", carol_e)
    run, cam = _run(repo)
    # same score 0.7: the 14 px track is in the "small" band (threshold 0.8), the 30 px one passes
    t1, t2 = _near(bob_e, 0.7, 3), _near(bob_e, 0.7, 4)
    assert max(t1 @ carol_e, t2 @ carol_e) < 0.6  # carol is no rival there
    repo.save_track_results(run, cam, [
        _track(1, emb=t1, px=14.0),
        _track(2, emb=t2, px=30.0),
        _track(3, emb=face),  # bob clears the threshold (0.75) but carol is the best (0.9)
    ])
    tracks = _tracks(repo)
    new = retro_match(repo, "m1", BANDS, DecisionConfig(), ["bob"])
    assert [h["track_id"] for h in new] == [tracks[2]["track_id"]]
    # with a margin the pipeline would not name a close call either
    strict = DecisionConfig(margin=0.5)
    assert retro_match(repo, "m1", BANDS, strict, ["carol"]) == []
    new = retro_match(repo, "m1", BANDS, DecisionConfig(), [])  # everyone enrolled
    assert [(h["track_id"], h["person"]) for h in new] == [(tracks[3]["track_id"], "carol")]


def test_retro_match_never_recreates_a_rejected_pair(repo):
    bob_e = _vec(1)
    bob = _enrol(repo, "bob", bob_e)
    _enrol(repo, "carol", _near(bob_e, 0.85, 2))
    run, cam = _run(repo)
    emb = _near(bob_e, 0.95, 3)  # bob first, carol a close second (above threshold)
    assert 0.6 < emb @ _near(bob_e, 0.85, 2) < 0.95
    repo.save_track_results(run, cam, [_matched(1, bob, emb=emb)])
    (hit,) = _hits(repo)
    repo.reject_hit(hit["hit_id"], "rev")
    assert _tracks(repo)[1]["status"] == "unknown"
    assert retro_match(repo, "m1", BANDS, DecisionConfig(), ["bob"]) == []
    new = retro_match(repo, "m1", BANDS, DecisionConfig(), ["carol"])  # bob is out of the race
    assert [h["person"] for h in new] == ["carol"]
    rows = {(h["person"], h["origin"], h["review_status"]) for h in _hits(repo)}
    assert rows == {("bob", "auto", "rejected"), ("carol", "retro", None)}


def test_retro_match_bad_persons(repo):
    _enrol(repo, "bob", _vec(1))
    _enrol(repo, "eve", _vec(2), model="other-model")
    with pytest.raises(NotFoundError, match="unknown person 'zed'.*bob"):
        retro_match(repo, "m1", BANDS, DecisionConfig(), ["zed"])
    with pytest.raises(InputError, match="'eve' has no enrolment for recogniser 'm1'"):
        retro_match(repo, "m1", BANDS, DecisionConfig(), ["bob", "eve"])


# ------------------------------------------------------------------ confirm / reject


def test_confirm_and_reject_are_recorded_and_audited(repo):
    bob = repo.add_person("bob")
    run, cam = _run(repo)
    repo.save_track_results(run, cam, [_matched(1, bob), _matched(2, bob, f0=70, f1=90)])
    h1, h2 = sorted(_hits(repo), key=lambda h: h["first_frame"])
    out = repo.confirm_hit(h1["hit_id"], "ann", note="seen him")
    assert (out["review_status"], out["person"], out["operator"]) == ("confirmed", "bob", "ann")
    out = repo.reject_hit(h2["hit_id"], "ben")
    assert out["track_status"] == "unknown"
    hits = {h["hit_id"]: h for h in _hits(repo)}
    assert (hits[h1["hit_id"]]["review_status"], hits[h1["hit_id"]]["reviewed_by"]) == ("confirmed", "ann")
    assert (hits[h2["hit_id"]]["review_status"], hits[h2["hit_id"]]["reviewed_by"]) == ("rejected", "ben")
    assert hits[h2["hit_id"]]["reviewed_at"] is not None
    tracks = _tracks(repo)
    assert (tracks[1]["status"], tracks[2]["status"]) == ("matched", "unknown")
    reviews = repo.list_reviews()
    assert [(r["kind"], r["track_id"], r["camera"], r["first_frame"], r["last_frame"], r["person"], r["note"])
            for r in reviews] == [("confirm", tracks[1]["track_id"], "cam1", 10, 60, "bob", "seen him"),
                                  ("reject", tracks[2]["track_id"], "cam1", 70, 90, "bob", None)]
    assert _audit_kinds(repo) == ["confirm", "reject"]
    # changing one's mind: the rejected hit confirmed makes the track matched again
    repo.confirm_hit(h2["hit_id"], "ben")
    assert _tracks(repo)[2]["status"] == "matched"
    with pytest.raises(NotFoundError, match="unknown hit 999"):
        repo.reject_hit(999, "ben")
    assert repo.count("reviews") == 3 and len(_audit_kinds(repo)) == 3  # nothing for the failure


# ------------------------------------------------------------------ name / merge


def test_name_track(repo):
    bob_e = _vec(1)
    bob = _enrol(repo, "bob", bob_e)
    run, cam = _run(repo)
    repo.save_track_results(run, cam, [_track(1, emb=_near(bob_e, 0.5, 2)), _matched(2, bob),
                                       _track(3, status="too_small", px=8.0)])
    t = _tracks(repo)
    out = repo.name_track(t[1]["track_id"], "bob", "ann")
    (hit,) = [h for h in _hits(repo) if h["track_id"] == t[1]["track_id"]]
    assert hit["hit_id"] == out["hit_id"]
    assert (hit["origin"], hit["review_status"], hit["reviewed_by"]) == ("manual", "confirmed", "ann")
    assert hit["score"] == pytest.approx(0.5, abs=1e-5) and hit["threshold"] == 0.0
    assert _tracks(repo)[1]["status"] == "matched"
    with pytest.raises(NotFoundError, match=r"unknown person 'zed'; known: bob .*--create"):
        repo.name_track(t[3]["track_id"], "zed", "ann")
    with pytest.raises(InputError, match="already named bob"):
        repo.name_track(t[2]["track_id"], "carol", "ann", create=True)
    with pytest.raises(InputError, match="already has hit"):
        repo.name_track(t[1]["track_id"], "bob", "ann")
    with pytest.raises(NotFoundError, match="unknown track 999"):
        repo.name_track(999, "bob", "ann")
    assert not repo.person_exists("carol")  # the failed --create left nothing behind
    out = repo.name_track(t[3]["track_id"], "zed", "ann", create=True)  # no embedding: score 0
    assert repo.person_exists("zed") and repo.watchlist("m1").names == ["bob"]
    assert {h["person"]: h["score"] for h in _hits(repo)}["zed"] == 0.0
    assert _audit_kinds(repo) == ["name", "name"] and repo.count("reviews") == 2


def test_merge_tracks(repo):
    bob = repo.add_person("bob")
    carol = repo.add_person("carol")
    run, cam = _run(repo)
    repo.save_track_results(run, cam, [_track(1), _matched(2, bob, f0=70, f1=90), _track(3, f0=100, f1=120),
                                       _matched(4, carol, f0=130, f1=150), _track(5, f0=160, f1=170)])
    t = {k: v["track_id"] for k, v in _tracks(repo).items()}
    with pytest.raises(InputError, match="different people: bob .*carol"):
        repo.merge_tracks([t[1], t[2], t[4]], "ann")
    with pytest.raises(NotFoundError, match="unknown track 998"):
        repo.merge_tracks([t[1], 998], "ann")
    with pytest.raises(InputError, match="at least two"):
        repo.merge_tracks([t[1], t[1]], "ann")
    assert all(v["cluster_id"] is None for v in _tracks(repo).values()) and repo.count("reviews") == 0
    out = repo.merge_tracks([t[3], t[2], t[1]], "ann")
    assert out["cluster_id"] == t[1] and out["person"] == "bob" and len(out["new_hit_ids"]) == 2
    tracks = _tracks(repo)
    assert [tracks[k]["cluster_id"] for k in (1, 2, 3, 4, 5)] == [t[1], t[1], t[1], None, None]
    assert {(h["track_id"], h["origin"]) for h in _hits(repo) if h["person"] == "bob"} == {
        (t[1], "manual"), (t[2], "auto"), (t[3], "manual")}
    assert tracks[3]["status"] == "matched"
    # a track merged with one member joins the whole cluster
    repo.merge_tracks([t[5], t[3]], "ann")
    assert _tracks(repo)[5]["cluster_id"] == t[1]
    assert _audit_kinds(repo) == ["merge", "merge"]
    assert [r["group_key"] for r in repo.list_reviews(kind="merge")] == [t[1]] * 7


# ------------------------------------------------------------------ re-processing


def test_decisions_come_back_when_tracks_are_stored_again(repo):
    bob = repo.add_person("bob")
    run, cam = _run(repo)
    other_cam = repo.get_or_create_camera("cam2")

    def records():  # what processing the footage gives, every time
        return [
            _matched(1, bob, f0=10, f1=60, x=100),  # bob, to be rejected
            _track(2, f0=12, f1=58, x=600),  # same frames, elsewhere in the picture: to be named
            _track(3, f0=14, f1=62, x=300),  # same frames again, a third place: not touched
            _track(4, f0=200, f1=260, x=100),  # merged with 5 ...
            _track(5, f0=300, f1=380, x=400),
            _matched(6, bob, f0=400, f1=450),  # confirmed
        ]

    repo.save_track_results(run, cam, records())
    t = {k: v["track_id"] for k, v in _tracks(repo).items()}
    hits = {h["track_id"]: h["hit_id"] for h in _hits(repo)}
    repo.reject_hit(hits[t[1]], "ann")
    repo.name_track(t[2], "carol", "ann", create=True)
    repo.merge_tracks([t[4], t[5]], "ann")
    repo.confirm_hit(hits[t[6]], "ben")

    repo.reset_run(run)  # process --restart: the rows are gone ...
    assert repo.count("tracks") == 0 and repo.count("reviews") == 5
    # ... and come again, track by track in separate batches, split track 5 in two
    recs = records()
    parts = [recs[0], recs[1], recs[2], recs[3],
             _track(5, f0=300, f1=340, x=400), _track(7, f0=341, f1=380, x=482), recs[5]]
    for rec in parts:
        repo.save_track_results(run, cam, [rec])
    # the same tracks from another camera get none of it
    run2 = repo.start_run(repo.get_or_create_source("/videos/cam1.mp4", "a" * 64, 1234, 60.0),
                          other_cam, {"det": "d" * 64}, {"x": 1}, "0.1.0", T0)
    repo.save_track_results(run2, other_cam, records())

    new = _tracks(repo, run)
    by_track = {}
    for h in _hits(repo):
        by_track.setdefault(h["track_id"], []).append(h)
    (h1,) = by_track[new[1]["track_id"]]
    assert (h1["person"], h1["origin"], h1["review_status"], h1["reviewed_by"]) == ("bob", "auto", "rejected", "ann")
    assert new[1]["status"] == "unknown"
    (h2,) = by_track[new[2]["track_id"]]
    assert (h2["person"], h2["origin"], h2["review_status"]) == ("carol", "manual", "confirmed")
    assert new[2]["status"] == "matched"
    assert new[3]["track_id"] not in by_track and new[3]["status"] == "unknown"
    assert new[4]["cluster_id"] == new[5]["cluster_id"] == new[7]["cluster_id"] == t[4]
    assert new[1]["cluster_id"] is None and new[3]["cluster_id"] is None
    (h6,) = by_track[new[6]["track_id"]]
    assert (h6["review_status"], h6["reviewed_by"]) == ("confirmed", "ben")
    other = _tracks(repo, run2)
    assert all(v["cluster_id"] is None for v in other.values())
    assert [h["review_status"] for h in _hits(repo) if h["run_id"] == run2] == [None, None]
    assert len(_audit_kinds(repo)) == 4  # re-applying is not an operator's action


def test_retro_match_honours_a_rejection_made_before_the_track_was_stored_again(repo):
    bob_e = _vec(1)
    bob = _enrol(repo, "bob", bob_e)
    run, cam = _run(repo)
    emb = _near(bob_e, 0.9, 2)
    repo.save_track_results(run, cam, [_matched(1, bob, emb=emb, x=100)])
    (hit,) = _hits(repo)
    repo.reject_hit(hit["hit_id"], "ann")
    repo.reset_run(run)
    # stored again as unknown (no hit to re-reject), beside someone else seen at the same time
    repo.save_track_results(run, cam, [_track(1, emb=emb, x=100), _track(2, emb=emb, x=500)])
    new = retro_match(repo, "m1", BANDS, DecisionConfig(), ["bob"])
    assert [h["track_id"] for h in new] == [_tracks(repo)[2]["track_id"]]
