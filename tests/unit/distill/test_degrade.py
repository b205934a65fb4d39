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


def test_relight_darkens_one_side_of_the_face_and_is_off_by_default(face):
    from cctv_id.distill.degrade import relight

    image, lms, px = face
    s = DegradeSettings(relight_prob=1.0, relight_ambient=(0.05, 0.05), relight_sharpness=(12.0, 12.0))
    lit = relight(image, lms, px, np.random.default_rng(7), s)
    assert lit.shape == image.shape and lit.dtype == np.uint8
    # the face (between the landmarks' extremes) split along the light direction: one half keeps
    # its light, the other falls towards the ambient share
    grey_in = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(float) + 1.0
    ratio = cv2.cvtColor(lit, cv2.COLOR_BGR2GRAY).astype(float) / grey_in
    x0, y0 = np.floor(lms.min(axis=0)).astype(int)
    x1, y1 = np.ceil(lms.max(axis=0)).astype(int)
    face_ratio = ratio[y0:y1, x0:x1]
    assert np.percentile(face_ratio, 10) < 0.25 and np.percentile(face_ratio, 90) > 0.9
    # with relight_prob 0 (the default) the chip is exactly what it was without the option
    plain = DegradeSettings()
    a = degrade_to_chip(image, lms, px, SPEC, np.random.default_rng([4, 4]), plain)
    b = degrade_to_chip(image, lms, px, SPEC, np.random.default_rng([4, 4]), DegradeSettings(relight_prob=0.0))
    c = degrade_to_chip(image, lms, px, SPEC, np.random.default_rng([4, 4]), DegradeSettings(relight_prob=1.0))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
