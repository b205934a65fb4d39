"""CCTV degradations: reproducible, really small, really compressed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cctv_id.distill.degrade import DegradeSettings, degrade_to_chip, h264_roundtrip, jpeg_roundtrip
from cctv_id.recognize.dlib_resnet import DLIB_150

SPEC = DLIB_150.scaled(48)


@pytest.fixture(scope="module")
def face(celeba_dir):
    from cctv_id.evaluate.annotate import annotate

    path = sorted(next(p for p in sorted(celeba_dir.iterdir()) if p.is_dir()).glob("*.jpg"))[0]
    note = annotate([path], tight=False)[0]
    assert note.found
    return cv2.imread(str(path)), note.landmarks, note.face_px


def test_same_seed_same_chip_other_seed_other_chip(face):
    image, lms, px = face
    a = degrade_to_chip(image, lms, px, SPEC, np.random.default_rng([1, 2]))
    b = degrade_to_chip(image, lms, px, SPEC, np.random.default_rng([1, 2]))
    c = degrade_to_chip(image, lms, px, SPEC, np.random.default_rng([1, 3]))
    assert a.shape == (48, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_smaller_faces_lose_detail(face):
    image, lms, px = face
    plain = DegradeSettings(blur_prob=0, noise_prob=0, jpeg_prob=0, h264_prob=0, restore_prob=0,
                            landmark_jitter=0, grey_prob=0, interpolations=("area",))
    sharpness = []
    for target in (40, 16, 10):
        chip = degrade_to_chip(image, lms, px, SPEC, np.random.default_rng(0), plain, target_px=target)
        sharpness.append(cv2.Laplacian(cv2.cvtColor(chip, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())
    assert sharpness[0] > sharpness[1] > sharpness[2]


def test_codecs_change_the_image_but_keep_its_content(face):
    image = cv2.resize(face[0], (60, 60), interpolation=cv2.INTER_AREA)
    for out in (h264_roundtrip(image, 40), jpeg_roundtrip(image, 20)):
        assert out.shape == image.shape
        diff = np.abs(out.astype(int) - image.astype(int)).mean()
        assert 0.5 < diff < 25
    assert h264_roundtrip(image[:31, :33], 30).shape == (31, 33, 3)  # odd sizes are padded and cropped
