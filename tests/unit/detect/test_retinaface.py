"""RetinaFace-MobileNet0.25 backend on real photos (insightface's sample group photo)."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from cctv_id.config import DetectorConfig
from cctv_id.errors import ConfigError
from cctv_id.types import FaceDetections


@pytest.fixture(scope="module")
def retina():
    from cctv_id.detect.backends.retinaface import RetinaFaceDetector

    return RetinaFaceDetector(DetectorConfig(threads=2))


@pytest.fixture(scope="module")
def group_photo(insightface_images):
    img = cv2.imread(str(insightface_images / "t1.jpg"))
    if img is None:
        pytest.skip("insightface sample photo t1.jpg is missing")
    return img


def test_group_photo_six_faces_with_landmarks_in_order(retina, group_photo):
    det = retina.detect(group_photo, frame_index=7)
    assert isinstance(det, FaceDetections)
    assert det.frame_index == 7
    assert len(det) == 6
    assert det.boxes.dtype == np.float32 and det.landmarks.shape == (6, 5, 2)
    assert (det.scores > 0.9).all()
    # float coordinates, not rounded to whole pixels
    assert not np.allclose(det.boxes, np.round(det.boxes))
    # faces of ~100-150 px in this photo
    assert ((det.heights > 80) & (det.heights < 200)).all()
    for box, lm in zip(det.boxes, det.landmarks):
        x1, y1, x2, y2 = box
        assert ((lm[:, 0] >= x1) & (lm[:, 0] <= x2) & (lm[:, 1] >= y1) & (lm[:, 1] <= y2)).all()
        # insightface order: image-left eye, image-right eye, nose, left mouth, right mouth
        assert lm[0, 0] < lm[1, 0]
        assert lm[3, 0] < lm[4, 0]
        assert max(lm[0, 1], lm[1, 1]) < min(lm[3, 1], lm[4, 1])  # eyes above the mouth


def test_batch_equals_single_calls(retina, group_photo):
    other = cv2.flip(group_photo, 1)
    single = [retina.detect(group_photo, 0), retina.detect(other, 1)]
    batch = retina.detect_batch([group_photo, other], [0, 1])
    assert [d.frame_index for d in batch] == [0, 1]
    for s, b in zip(single, batch):
        assert len(s) == len(b)
        np.testing.assert_allclose(s.boxes, b.boxes, atol=1e-2)
        np.testing.assert_allclose(s.scores, b.scores, atol=1e-4)
        np.testing.assert_allclose(s.landmarks, b.landmarks, atol=1e-2)


def test_mixed_sizes_in_one_batch(retina, group_photo):
    small = cv2.resize(group_photo, (640, 443))
    res = retina.detect_batch([group_photo, small, group_photo])
    assert [len(r) for r in res] == [6, len(res[1]), 6]
    assert len(res[1]) >= 5


def test_flip_moves_left_eye(retina, group_photo):
    """The first landmark is the eye on the image's left in the flipped photo too."""
    w = group_photo.shape[1]
    a = retina.detect(group_photo)
    b = retina.detect(cv2.flip(group_photo, 1))
    for lm in b.landmarks:
        assert lm[0, 0] < lm[1, 0]
    # mirrored boxes match the originals
    mirrored = b.boxes[:, [2, 1, 0, 3]] * np.array([-1, 1, -1, 1], np.float32) + np.array([w, 0, w, 0])
    from cctv_id.detect.boxes import iou_matrix

    assert (iou_matrix(a.boxes, mirrored).max(axis=1) > 0.8).all()


def test_provenance_and_empty_image(retina):
    from retinaface.weights import WEIGHTS

    assert retina.model_sha256 == hashlib.sha256(bytes(WEIGHTS)).hexdigest()
    empty = retina.detect(np.zeros((120, 90, 3), np.uint8))
    assert len(empty) == 0 and empty.boxes.shape == (0, 4)


def test_unknown_option_rejected():
    from cctv_id.detect.backends.retinaface import RetinaFaceDetector

    with pytest.raises(ConfigError, match="unknown option"):
        RetinaFaceDetector(DetectorConfig(options={"nope": 1}))


def test_bad_image_rejected(retina):
    with pytest.raises(ValueError):
        retina.detect(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(ValueError):
        retina.detect(np.zeros((10, 10, 3), np.float32))


@pytest.mark.parametrize("pad", [False, True])
def test_input_blob_is_bgr_minus_mean_in_nchw(retina, group_photo, pad):
    """The model input equals the plain definition (float BGR - mean, channels first), also
    when images are zero-padded to a larger input size."""
    crops = [group_photo[:96, :128], group_photo[40:136, 60:188]]
    h, w = (112, 160) if pad else (96, 128)
    blob = retina._blob(crops, h, w)
    want = np.zeros((2, 3, h, w), np.float32)
    for i, c in enumerate(crops):
        want[i, :, :96, :128] = (c.astype(np.float32) - np.float32(retina.opts.mean)).transpose(2, 0, 1)
    np.testing.assert_array_equal(blob, want)
