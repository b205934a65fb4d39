"""Embeddings under degradation: the full-size cache, detected landmarks, flips, dlib's chip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("dlib")

from cctv_id.evaluate import features as F  # noqa: E402
from cctv_id.evaluate.annotate import annotate, read_image  # noqa: E402
from cctv_id.evaluate.cache import DiskCache  # noqa: E402
from cctv_id.evaluate.recognizers import build_recognizer  # noqa: E402


@pytest.fixture(scope="module")
def encoder():
    return build_recognizer("dlib").gallery


@pytest.fixture(scope="module")
def anns(celeba_dir):
    return annotate(sorted((celeba_dir / "7202").glob("*.jpg"))[:3], tight=False, cache=DiskCache(None))


class Counting:
    """Wraps an encoder and counts the chips it embeds."""

    def __init__(self, enc):
        self.enc, self.n = enc, 0
        for attr in ("name", "dim", "align_spec", "model_sha256", "batch_size"):
            setattr(self, attr, getattr(enc, attr))

    def embed_chips(self, chips):
        self.n += len(chips)
        return self.enc.embed_chips(chips)

    def _forward(self, chips):
        self.n += len(chips)
        return self.enc._forward(chips)

    def align(self, image, landmarks):
        return self.enc.align(image, landmarks)


def test_full_size_embeddings_are_cached(encoder, anns, tmp_path):
    cache = DiskCache(tmp_path / "c")
    enc = Counting(encoder)
    first = F.embed_images(enc, anns, 0, cache=cache)
    assert enc.n == 3 and first.detected.all()
    again = F.embed_images(enc, anns, 0, cache=DiskCache(tmp_path / "c"))
    assert enc.n == 3 and np.array_equal(first.vectors, again.vectors)
    F.embed_images(enc, anns, 0, flip=True, cache=cache)  # flipped: another key
    assert enc.n == 9
    shrunk = F.embed_images(enc, anns, 16, cache=cache)  # degraded images are never cached
    F.embed_images(enc, anns, 16, cache=cache)
    assert enc.n == 15
    cos = (first.vectors * shrunk.vectors).sum(1)
    assert np.all(cos < 0.999) and np.all(cos > 0.7)
    # a size not below the face is "unchanged"
    big = F.embed_images(enc, anns, 1000, cache=cache)
    assert np.array_equal(big.vectors, first.vectors) and enc.n == 15


def test_flip_averages_the_mirror(encoder, anns):
    image = read_image(anns[0].path)
    chip = encoder.align(image, anns[0].landmarks[None])
    v = encoder.embed_chips(chip).vectors[0] + encoder.embed_chips(chip[:, :, ::-1].copy()).vectors[0]
    got = F.embed_images(encoder, anns[:1], 0, flip=True, cache=DiskCache(None)).vectors[0]
    assert np.allclose(got, v / np.linalg.norm(v), atol=1e-6)


def test_raw_descriptors(encoder, anns):
    unit = F.embed_images(encoder, anns[:2], 0, cache=DiskCache(None)).vectors
    raw = F.embed_images(encoder, anns[:2], 0, raw=True, cache=DiskCache(None)).vectors
    norms = np.linalg.norm(raw, axis=1)
    assert np.all(np.abs(norms - 1) > 0.05)  # dlib's raw descriptors are not unit length
    assert np.allclose(raw / norms[:, None], unit, atol=1e-5)


def test_detected_landmarks_map_back(anns):
    a = anns[0]
    image = read_image(a.path)
    lm = F.detect_landmarks_small(image, F.shrink_factor(a.face_px, 24))
    assert lm is not None
    err = np.abs(lm - a.landmarks) / a.face_px  # found on a 24 px face: within ~2 of its pixels
    assert err.mean() < 0.05 and err.max() < 0.12, err
    assert F.detect_landmarks_small(np.full((250, 250, 3), 90, np.uint8), 0.2) is None


def test_undetected_probe_is_a_zero_vector(encoder, anns, tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((250, 250, 3), 90, np.uint8))
    mixed = list(anns[:1]) + annotate([blank], tight=False, cache=DiskCache(None))
    e = F.embed_images(encoder, mixed, 16, "detected", cache=DiskCache(None))
    assert e.n_undetected == 1 and not e.detected[1] and not e.vectors[1].any()


def test_dlib_chip_is_dlibs_own(encoder, anns):
    import dlib

    a = anns[0]
    image = read_image(a.path)
    rgb = np.ascontiguousarray(image[..., ::-1])
    det = max(dlib.get_frontal_face_detector()(rgb, 1), key=lambda d: d.area())
    from cctv_id.evaluate.annotate import _sp5

    theirs = dlib.get_face_chip(rgb, _sp5()(rgb, det), size=150, padding=0.25)[..., ::-1]
    assert np.array_equal(F.dlib_chip(image, a.dlib_shape, 150), theirs)
    with pytest.raises(ValueError, match="landmarks 'full' only"):
        F.embed_images(encoder, anns, 16, "detected", alignment="dlib-chip", cache=DiskCache(None))
