"""Ignore masks of a live camera: faces centred inside a polygon are dropped."""

from __future__ import annotations

import numpy as np

from cctv_id.daemon.camera import IgnoreMask
from cctv_id.types import FaceDetections


def test_faces_centred_in_a_mask_are_dropped_others_kept():
    boxes = np.array([[10, 10, 20, 22], [100, 50, 112, 64], [58, 8, 70, 20]], np.float32)
    dets = FaceDetections(3, boxes, np.array([0.9, 0.8, 0.7]), np.zeros((3, 5, 2)))
    mask = IgnoreMask([[(0, 0), (40, 0), (40, 40), (0, 40)],  # square over the first face
                       [(60, 0), (80, 30), (40, 30)]])  # triangle over the third
    kept = mask.filter(dets, 120, 160)
    assert kept.frame_index == 3
    np.testing.assert_array_equal(kept.boxes, boxes[[1]])
    np.testing.assert_allclose(kept.scores, [0.8])
    assert len(IgnoreMask([]).filter(dets, 120, 160)) == 3
