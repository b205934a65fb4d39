"""Evidence paths in the store (SQLite and PostgreSQL): context frames, crop landmarks and
trajectories round trip; fsck finds missing, orphan and unpublished context frames and
repairs them; ``reset_run`` (``--restart``) returns context paths too and bumps the track
search index's epoch."""

from __future__ import annotations

from evidence_samples import T0
from evidence_samples import decision as _decision
from evidence_samples import track as _track

from cctv_id.fsck import check
from cctv_id.pipeline.evidence import EvidenceWriter, TrackEvidence
from cctv_id.pipeline.persist import decisions_to_records


def test_stored_context_paths_round_trip_and_fsck_knows_them(repo, tmp_path):
    cam = repo.get_or_create_camera("cam")
    src = repo.get_or_create_source("/v.mp4", "a" * 64, 10, 1.0)
    person = repo.add_person("7")
    run = repo.start_run(src, cam, {"rec": "b" * 64}, {}, "0.1", T0, config_sha256="c" * 64)
    data = tmp_path / "data"
    ev = EvidenceWriter(data)
    records, written = [], []
    for tid in (1, 2, 3):
        track = _track(track_id=tid)
        out = ev.write_pending(run, track)
        written.append(out)
        records += decisions_to_records([_decision(track, persons=(person,))], {tid: out})
    repo.save_track_results(run, cam, records)
    ev.publish([f for out in written for f in out.files])
    stored = {t["track_key"]: t for t in repo.list_tracks(run)}
    assert stored[2]["context_path"] == "crops/run%06d/track000002.ctx.jpg" % run
    assert [list(p) for p in stored[2]["crop_landmarks"]] == [[20, 25], [40, 25], [30, 32], [22, 40], [38, 40]]
    assert stored[2]["trajectory"][0] == [10, 60, 40, 96, 76]
    assert {h["context_path"] for h in repo.query_hits()} == {out.context for out in written}
    assert set(repo.track_crop_paths(run)) == {f for out in written for f in out.files}
    assert check(repo, data).clean

    # a missing context frame, an orphan one, and a committed one left pending
    (data / written[0].context).unlink()
    orphan = data / f"crops/run{run:06d}/track000099.ctx.jpg"
    orphan.write_bytes(b"x")
    pending = data / written[1].context
    pending.rename(pending.with_name(pending.name + ".pending"))
    report = check(repo, data)
    assert sorted(report.problems) == sorted([
        f"context frame {written[0].context} is referenced but missing",
        f"context frame crops/run{run:06d}/track000099.ctx.jpg is not referenced by the database",
        f"context frame {written[1].context} committed but not published",
    ])
    check(repo, data, repair=True)
    assert check(repo, data).clean
    assert not orphan.exists() and (data / written[1].context).is_file()
    stored = {t["track_key"]: t for t in repo.list_tracks(run)}
    assert stored[1]["context_path"] is None and stored[1]["crop_path"] == written[0].crop
    assert stored[2]["context_path"] == written[1].context


def test_reset_run_returns_context_paths_and_bumps_the_index_epoch(repo):
    cam = repo.get_or_create_camera("cam")
    src = repo.get_or_create_source("/v.mp4", "a" * 64, 10, 1.0)
    run = repo.start_run(src, cam, {"rec": "b" * 64}, {}, "0.1", T0, config_sha256="c" * 64)
    person = repo.add_person("7")
    track = _track(track_id=1)
    ev = TrackEvidence("crops/t1.jpg", "crops/t1.ctx.jpg")
    repo.save_track_results(run, cam, decisions_to_records([_decision(track, (person,))], {1: ev}))
    epoch, _ = repo.track_index_state()
    assert repo.reset_run(run) == ["crops/t1.ctx.jpg", "crops/t1.jpg"]
    assert repo.track_index_state()[0] == epoch + 1
    assert repo.list_tracks(run) == []
