"""Evidence writer and records: best-shot crop + context frame written pending, published
after the commit or discarded, nothing left on a failed write; records carry the crop's
landmarks, the context path (track and hits) and the trajectory."""

from __future__ import annotations

import cv2
import pytest
from evidence_samples import decision as _decision
from evidence_samples import track as _track

from cctv_id.errors import CctvIdError
from cctv_id.pipeline.evidence import EvidenceWriter, TrackEvidence
from cctv_id.pipeline.persist import decisions_to_records


def test_crop_and_context_are_pending_until_published(tmp_path):
    ev = EvidenceWriter(tmp_path)
    out = ev.write_pending(3, _track())
    assert out == TrackEvidence("crops/run000003/track000004.jpg",
                                "crops/run000003/track000004.ctx.jpg")
    assert not any((tmp_path / rel).exists() for rel in out.files)
    assert sorted(p.name for p in ev.pending_files(3)) == ["track000004.ctx.jpg.pending",
                                                          "track000004.jpg.pending"]
    ev.publish(out.files)
    assert ev.pending_files() == []
    ctx = cv2.imread(str(tmp_path / out.context))
    assert ctx.shape == (120, 160, 3)
    assert abs(int(ctx[60, 80, 1]) - 200) < 10  # the whole frame, nothing drawn on it
    crop = cv2.imread(str(tmp_path / out.crop))
    assert crop.shape == (60, 60, 3)


def test_discard_and_failed_writes_leave_nothing(tmp_path):
    ev = EvidenceWriter(tmp_path)
    out = ev.write_pending(1, _track())
    ev.discard_pending(out.files)
    assert ev.pending_files() == [] and not (tmp_path / out.crop).exists()
    (tmp_path / "crops").mkdir(exist_ok=True)
    (tmp_path / "crops" / "run000002").write_bytes(b"a file where the folder should be")
    with pytest.raises(CctvIdError, match="cannot write evidence crop"):
        ev.write_pending(2, _track())
    assert ev.pending_files() == []


def test_no_context_file_when_the_context_is_not_the_best_shot(tmp_path):
    ev = EvidenceWriter(tmp_path)
    assert ev.write_pending(1, _track(context=False)).context is None
    assert ev.write_pending(1, _track(track_id=5, context_frame=11)).context is None


def test_records_carry_landmarks_context_and_trajectory():
    track = _track()
    ev = TrackEvidence("crops/a.jpg", "crops/a.ctx.jpg")
    (rec,) = decisions_to_records([_decision(track, persons=(7, 8))], {4: ev})
    assert rec.crop_path == "crops/a.jpg" and rec.context_path == "crops/a.ctx.jpg"
    # landmarks in the crop's coordinates: frame landmarks minus the patch origin (50, 30)
    assert rec.crop_landmarks == ((20.0, 25.0), (40.0, 25.0), (30.0, 32.0), (22.0, 40.0), (38.0, 40.0))
    assert rec.trajectory == ((10.0, 60.0, 40.0, 96.0, 76.0), (12.0, 62.0, 42.0, 98.0, 78.0),
                              (14.0, 64.0, 44.0, 100.0, 80.0))
    assert [(h.person_id, h.crop_path, h.context_path) for h in rec.hits] == [
        (7, "crops/a.jpg", "crops/a.ctx.jpg"), (8, "crops/a.jpg", "crops/a.ctx.jpg")]
    (bare,) = decisions_to_records([_decision(track, persons=())], {})
    assert bare.crop_path is None and bare.crop_landmarks is None and bare.context_path is None
