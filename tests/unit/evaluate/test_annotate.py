"""Per-image annotations: RetinaFace landmarks, HOG face size, the cache, the fall-backs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("dlib")

from cctv_id.errors import InputError  # noqa: E402
from cctv_id.evaluate import annotate as A  # noqa: E402
from cctv_id.evaluate.cache import DiskCache  # noqa: E402


@pytest.fixture
def photos(celeba_dir):
    return sorted((celeba_dir / "7201").glob("*.jpg"))[:3]


def test_celeba_annotations(photos, tmp_path):
    cache = DiskCache(tmp_path / "c")
    anns = A.annotate(photos, tight=False, cache=cache)
    for a in anns:
        assert a.found and a.landmark_source == "retinaface" and a.face_px_source == "hog"
        assert a.landmarks.shape == (5, 2) and a.landmarks.dtype == np.float32
        assert (a.width, a.height) == (250, 250)
        assert 80 < a.face_px < 160 and a.face_px == pytest.approx(a.hog_box[3] - a.hog_box[1])
        # the eyes sit inside dlib's box, image-left eye first
        assert a.hog_box[0] < a.landmarks[0, 0] < a.landmarks[1, 0] < a.hog_box[2]
    assert A.fallback_counts(anns) == {"n_landmark_fallback": 0, "n_face_px_fallback": 0}


def test_cache_is_used_and_keyed_by_mtime(photos, tmp_path, monkeypatch):
    cache = DiskCache(tmp_path / "c")
    first = A.annotate(photos[:2], tight=False, cache=cache)
    calls = []
    real = A._detect_raw
    monkeypatch.setattr(A, "_detect_raw", lambda image, tight: calls.append(1) or real(image, tight))
    again = A.annotate(photos[:2], tight=False, cache=DiskCache(tmp_path / "c"))  # a fresh connection
    assert calls == []
    assert all(np.array_equal(x.landmarks, y.landmarks) and x.face_px == y.face_px for x, y in zip(first, again))
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(photos[0].read_bytes())
    A.annotate([copy], tight=False, cache=cache)
    assert len(calls) == 1
    import os

    st = copy.stat()
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: looked up afresh
    A.annotate([copy], tight=False, cache=cache)
    assert len(calls) == 2
    A.annotate([copy], tight=True, cache=cache)  # tight is part of the key
    assert len(calls) == 3


def test_tight_crops_and_mean_layout_fallback(shared_data, tmp_path):
    att = sorted((shared_data / "faces" / "att" / "s1").glob("*.pgm"))[:3]
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((28, 23), 128, np.uint8))
    anns = A.annotate([*att, blank], tight=True, cache=DiskCache(None))
    for a in anns[:3]:  # 23x28 faces: found on the enlarged copy, mapped back
        assert a.found and a.face_px == 28.0 and a.face_px_source == "image-height"
        assert 0 <= a.landmarks[:, 0].min() and a.landmarks[:, 0].max() <= 23
    b = anns[3]
    assert not b.found and b.landmark_source == "mean-layout"
    rel = np.mean([a.landmarks / [a.width, a.height] for a in anns[:3]], axis=0)
    assert np.allclose(b.landmarks, rel * [23, 28], atol=1e-4)
    assert A.fallback_counts(anns)["n_landmark_fallback"] == 1
    only_blank = A.annotate([blank], tight=True, cache=DiskCache(None))[0]
    assert only_blank.landmark_source == "default-layout"


def test_non_tight_without_hog_box_estimates_face_size(photos, monkeypatch):
    real = A._hog_box
    calls = iter([True, True, False])  # the third image: HOG finds nothing
    monkeypatch.setattr(A, "_hog_box", lambda image: real(image) if next(calls) else None)
    anns = A.annotate(photos, tight=False, cache=DiskCache(None))
    s = anns[-1]
    assert s.hog_box is None and s.found and s.face_px_source == "retinaface"
    ratio = np.median([(a.hog_box[3] - a.hog_box[1]) / (a.box[3] - a.box[1]) for a in anns[:2]])
    assert s.face_px == pytest.approx((s.box[3] - s.box[1]) * ratio)
    assert A.fallback_counts(anns)["n_face_px_fallback"] == 1


def test_corrupt_and_missing_images(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(InputError, match="corrupt or unsupported image: .*bad.jpg"):
        A.annotate([bad], tight=False, cache=DiskCache(None))
    with pytest.raises(InputError, match="absent.jpg"):
        A.annotate([tmp_path / "absent.jpg"], tight=False, cache=DiskCache(None))
