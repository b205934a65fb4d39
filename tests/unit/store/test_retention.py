"""Governance in the repository (SQLite and PostgreSQL): re-enrolment, remove-person, purge,
re-embedding bookkeeping and the append-only audit log."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cctv_id.errors import NotFoundError
from cctv_id.store import HitRecord, TrackRecord
from cctv_id.store.models import utcnow

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
SHA_A, SHA_B = "a" * 64, "b" * 64


def _seen(t0, dur_s=2.0):
    return dict(first_seen_at=t0, last_seen_at=None if t0 is None else t0 + timedelta(seconds=dur_s),
                best_shot_at=t0)


def _hit(person_id, score, t0, **kw) -> HitRecord:
    fields = dict(person_id=person_id, score=score, threshold=0.4, face_px=14.5, quality=0.7,
                  first_frame=10, last_frame=60, first_pts_s=0.4, last_pts_s=2.4,
                  best_shot_frame=30, best_shot_pts_s=1.2, best_shot_bbox=(1.5, 2.5, 11.5, 16.0),
                  crop_path=None, **_seen(t0))
    return HitRecord(**(fields | kw))


def _track(key, status="unknown", hits=(), t0=T0, emb=None, **kw) -> TrackRecord:
    fields = dict(track_key=key, status=status, first_frame=10, last_frame=60, first_pts_s=0.4,
                  last_pts_s=2.4, n_detections=12, max_face_px=16.0, quality=0.6, model="m1",
                  embedding=emb, best_score=0.3, best_person="ann", best_shot_frame=30,
                  best_shot_pts_s=1.2, best_shot_bbox=(1.0, 2.0, 11.0, 16.0),
                  crop_path=f"crops/t{key}.jpg", hits=tuple(hits), **_seen(t0))
    return TrackRecord(**(fields | kw))


def _run(repo):
    cam = repo.get_or_create_camera("cam1")
    src = repo.get_or_create_source("/videos/cam1.mp4", SHA_A, 1234, 60.0)
    return repo.start_run(src, cam, {"det": "d" * 64}, {}, "0.1.0", T0), cam


def _unit(rng, n, d=128):
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _enrol(repo, person, sha, model="m1", vec=None, stored=None, **kw):
    vec = np.ones(4, np.float32) if vec is None else vec
    return repo.enrol([dict(person_name=person, photo_path=f"/p/{sha[:4]}.jpg", photo_sha256=sha,
                            model=model, embedding=vec, face_px=50.0, stored_photo=stored)], **kw)


def test_enrol_is_audited_in_its_transaction_and_replace_swaps_enrolments(repo):
    first = _enrol(repo, "ann", SHA_A, stored="enrolments/1/a.jpg", operator="olga")
    _enrol(repo, "ann", SHA_A, model="m2", stored="enrolments/1/a.jpg")
    _enrol(repo, "ann", SHA_B, stored="enrolments/1/b.jpg")
    assert first["n_new"] == 1 and first["orphaned_photos"] == []
    g0 = repo.watchlist_generation()
    out = repo.enrol([dict(person_name="ann", photo_path="/p/c.jpg", photo_sha256="c" * 64,
                           model="m1", embedding=np.full(4, 2.0, np.float32), face_px=60.0,
                           stored_photo="enrolments/1/c.jpg"),
                      dict(person_name="ann", photo_path="/p/a.jpg", photo_sha256=SHA_A,
                           model="m1", embedding=np.ones(4, np.float32), face_px=50.0,
                           stored_photo="enrolments/1/a.jpg")],
                     operator="olga", replace=True)
    # every old row (both models) went; photo a was enrolled again so its file stays
    assert out["n_replaced"] == 3 and out["n_new"] == 2
    assert out["orphaned_photos"] == ["enrolments/1/b.jpg"]
    assert repo.watchlist_generation() == g0 + 1
    assert repo.stored_photos() == {"enrolments/1/a.jpg", "enrolments/1/c.jpg"}
    assert repo.watchlist("m2").embeddings.shape[0] == 0
    assert len(repo.watchlist("m1").names) == 2
    entries = repo.list_audit(action="enrol")
    assert [e["operator"] for e in entries] == ["olga", "olga"]  # unaudited calls wrote nothing
    assert entries[1]["params"]["replace"] is True
    assert entries[1]["params"]["photo_sha256s"] == sorted(["c" * 64, SHA_A])
    assert entries[1]["outcome"]["enrolment_ids"] == out["enrolment_ids"]
    persons = repo.list_persons()
    assert persons[0]["models"] == ["m1"] and persons[0]["n_photos"] == 2


def test_failed_enrolment_writes_no_audit_entry(repo):
    with pytest.raises(ValueError):
        repo.enrol([dict(person_name="ann", photo_path="/p", photo_sha256=SHA_A, model="m1",
                         embedding=np.zeros((2, 2)), face_px=1.0)], operator="olga")
    with pytest.raises(ValueError):  # an empty operator is refused before anything commits
        _enrol(repo, "ann", SHA_A, operator=" ")
    assert repo.count("audit_log") == 0 and repo.count("enrolments") == 0


def test_remove_person_keeps_hits_unless_purged(repo):
    run, cam = _run(repo)
    _enrol(repo, "ann", SHA_A, stored="enrolments/1/a.jpg")
    _enrol(repo, "ann", SHA_A, model="m2", stored="enrolments/1/a.jpg")
    _enrol(repo, "bob", SHA_B, stored="enrolments/2/b.jpg")
    ann, bob = repo.add_person("ann"), repo.add_person("bob")
    rng = np.random.default_rng(1)
    repo.save_track_results(run, cam, [
        _track(1, "matched", [_hit(ann, 0.8, T0, crop_path="crops/h1.jpg")], emb=_unit(rng, 1)[0]),
        _track(2, "matched", [_hit(ann, 0.7, T0), _hit(bob, 0.75, T0)], emb=_unit(rng, 1)[0]),
        _track(3, "unknown", emb=_unit(rng, 1)[0], best_person="ann"),
    ])
    g0 = repo.watchlist_generation()
    out = repo.remove_person("ann", "olga")
    assert (out["n_enrolments"], out["models"], out["n_hits"]) == (2, ["m1", "m2"], 0)
    assert out["stored_photos"] == ["enrolments/1/a.jpg"] and out["files"] == []
    assert repo.watchlist_generation() == g0 + 1
    assert repo.watchlist("m1").names == ["bob"] and repo.watchlist("m2").names == []
    assert len(repo.query_hits(person="ann")) == 2 and repo.person_exists("ann")

    epoch0, _ = repo.track_index_state()
    out = repo.remove_person("ann", "olga", purge_hits=True)
    assert (out["n_enrolments"], out["n_hits"], out["n_tracks"]) == (0, 2, 1)
    assert out["tracks_kept"] != [] and out["person_deleted"]
    assert out["files"] == ["crops/h1.jpg", "crops/t1.jpg"]  # t2's crop: track 2 stays (bob)
    assert not repo.person_exists("ann") and repo.query_hits(person="bob")
    assert repo.track_index_state()[0] == epoch0 + 1
    assert sorted(t["track_key"] for t in repo.list_tracks()) == [2, 3]
    assert [t["best_person"] for t in repo.list_tracks() if t["track_key"] == 3] == [None]
    entries = repo.list_audit(action="remove-person")
    assert [(e["operator"], e["params"]["purge_hits"]) for e in entries] == \
        [("olga", False), ("olga", True)]
    assert entries[1]["outcome"]["n_hits"] == 2


def test_remove_unknown_person_changes_nothing(repo):
    _enrol(repo, "ann", SHA_A)
    g0 = repo.watchlist_generation()
    with pytest.raises(NotFoundError, match="unknown person 'zed'; enrolled: ann"):
        repo.remove_person("zed", "olga")
    assert repo.count("audit_log") == 0 and repo.watchlist_generation() == g0


def test_purge_by_age_with_created_at_fallback_and_dry_run(repo):
    run, cam = _run(repo)
    ann = repo.add_person("ann")
    old, recent = T0, utcnow() - timedelta(hours=1)
    rng = np.random.default_rng(2)
    repo.save_track_results(run, cam, [
        _track(1, "unknown", t0=old, emb=_unit(rng, 1)[0], context_path="context/t1.jpg"),
        _track(2, "unknown", t0=recent),
        _track(3, "unknown", t0=None),  # no wall clock: created now -> kept
        _track(4, "matched", [_hit(ann, 0.8, old, crop_path="crops/h4.jpg")], t0=old),
        _track(5, "matched", [_hit(ann, 0.8, recent, crop_path="crops/h5.jpg")], t0=old),
    ])
    before = {t: repo.count(t) for t in ("tracks", "hits")}
    cutoff = utcnow() - timedelta(days=30)
    dry = repo.purge("olga", unknown_before=cutoff, hits_before=cutoff, dry_run=True)
    assert (dry["n_hits"], dry["n_tracks"], dry["n_unknown_tracks"]) == (1, 2, 1)
    assert {t: repo.count(t) for t in ("tracks", "hits")} == before
    assert repo.count("audit_log") == 0

    repo.record_audit("olga", "search", {"q": 1})
    epoch0, _ = repo.track_index_state()
    out = repo.purge("olga", unknown_before=cutoff, hits_before=cutoff)
    assert (out["n_hits"], out["n_tracks"], out["n_unknown_tracks"]) == (1, 2, 1)
    assert out["files"] == ["context/t1.jpg", "crops/h4.jpg", "crops/t1.jpg", "crops/t4.jpg"]
    assert sorted(t["track_key"] for t in repo.list_tracks()) == [2, 3, 5]
    assert [h["crop_path"] for h in repo.query_hits()] == ["crops/h5.jpg"]
    assert repo.track_index_state()[0] == epoch0 + 1  # track 1 had an embedding
    entries = repo.list_audit()
    assert [e["action"] for e in entries] == ["search", "purge"]  # the log is never purged
    assert entries[1]["outcome"]["n_tracks"] == 2
    assert entries[1]["params"]["unknown_before"] == cutoff.isoformat()
    with pytest.raises(ValueError):
        repo.purge("olga")


def test_purge_keeps_reviews_of_deleted_tracks(repo):
    run, cam = _run(repo)
    repo.save_track_results(run, cam, [_track(1, "unknown", t0=T0)])
    track_id = repo.list_tracks()[0]["track_id"]
    repo.name_track(track_id, "ann", "olga", create=True)  # a manual hit, seen at T0
    out = repo.purge("olga", hits_before=utcnow() - timedelta(days=1))
    assert (out["n_hits"], out["n_tracks"]) == (1, 1) and repo.count("tracks") == 0
    reviews = repo.list_reviews()
    assert len(reviews) == 1 and reviews[0].get("track_id") is None


def test_reembed_bookkeeping(repo):
    run, cam = _run(repo)
    rng = np.random.default_rng(3)
    repo.save_track_results(run, cam, [_track(k, "unknown", emb=_unit(rng, 1)[0]) for k in (1, 2, 3)])
    _enrol(repo, "ann", SHA_A, stored="enrolments/1/a.jpg")
    _enrol(repo, "ann", SHA_B, stored=None)
    _enrol(repo, "ann", SHA_B, model="m2")  # already has the new model's row
    todo = repo.tracks_to_reembed("m2")
    assert [t["id"] for t in todo] == sorted(t["track_id"] for t in repo.list_tracks())
    assert repo.tracks_to_reembed("m1") == []
    assert len(repo.tracks_to_reembed("m2", limit=2, after_id=todo[0]["id"])) == 2
    epoch0, seq0 = repo.track_index_state()
    new = _unit(rng, 2, d=64)
    repo.set_track_embeddings("m2", [(todo[0]["id"], new[0]), (todo[1]["id"], None)])
    epoch1, seq1 = repo.track_index_state()
    assert epoch1 == epoch0 + 1 and seq1 == seq0 + 1
    got = repo.track_embeddings("m2")
    assert got.track_ids.tolist() == [todo[0]["id"]] and got.seqs.tolist() == [seq1]
    np.testing.assert_allclose(got.vectors[0], new[0], rtol=1e-6)
    assert [t["id"] for t in repo.tracks_to_reembed("m2")] == [todo[2]["id"]]
    assert repo.embedding_models()["tracks"] == {"m1": 1, "m2": 1}

    entries = repo.enrolments_to_reembed("m2")
    assert [(e["photo_sha256"], e["stored_photo"]) for e in entries] == [(SHA_A, "enrolments/1/a.jpg")]
    g0 = repo.watchlist_generation()
    done = repo.replace_enrolment_models("m2", [{**entries[0], "embedding": np.full(4, 3.0)}])
    assert done == {"n_new": 1, "n_old_removed": 1}
    assert repo.watchlist_generation() == g0 + 1
    assert repo.embedding_models()["enrolments"] == {"m1": 1, "m2": 2}  # SHA_B m1 row stays
    assert repo.enrolments_to_reembed("m2") == []


def test_audit_log_refuses_update_and_delete(repo):
    repo.record_audit("olga", "export", {"case": "x"}, {"n": 1})
    for statement in ("UPDATE audit_log SET operator = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError):
            with repo.engine.begin() as conn:
                conn.execute(text(statement))
    entries = repo.list_audit()
    assert [(e["operator"], e["action"], e["params"]) for e in entries] == \
        [("olga", "export", {"case": "x"})]

