"""Alignment: exact similarity recovery, chip geometry, empty input, degradation helpers."""

from __future__ import annotations

import numpy as np
import pytest

from cctv_id.align import (
    ARCFACE_112,
    AlignSpec,
    align_faces,
    shrink_and_restore,
    similarity_matrix,
    transform_points,
)


def _moved(template: np.ndarray, angle: float, scale: float, shift) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    centre = template.mean(axis=0)
    return ((template - centre) @ rot.T * scale + centre + np.asarray(shift)).astype(np.float32)


@pytest.mark.parametrize("angle,scale", [(0.0, 1.0), (0.4, 3.2), (-1.2, 0.35), (2.5, 7.0)])
def test_synthetic_landmarks_map_exactly_onto_template(angle, scale):
    src = _moved(ARCFACE_112.template, angle, scale, (300.0, 211.0))
    m = similarity_matrix(src, ARCFACE_112.template)
    assert m.shape == (2, 3)
    residual = np.abs(transform_points(src, m) - ARCFACE_112.template).max()
    assert residual < 1e-3
    # the matrix is a similarity: equal singular values, the inverse of the scale applied
    sv = np.linalg.svd(m[:, :2], compute_uv=False)
    assert sv[0] == pytest.approx(sv[1], rel=1e-6)
    assert sv[0] == pytest.approx(1.0 / scale, rel=1e-5)


def test_warp_puts_landmark_pixels_on_template():
    # Draw five bright dots at moved landmark positions; after alignment they must sit on the template.
    spec = ARCFACE_112
    src = _moved(spec.template, 0.3, 2.0, (150.0, 120.0))
    img = np.zeros((400, 400, 3), np.uint8)
    for x, y in np.round(src).astype(int):
        img[y - 2 : y + 3, x - 2 : x + 3] = 255
    src_round = np.round(src).astype(np.float32)
    chip = align_faces(img, src_round[None], spec)[0]
    assert chip.shape == (112, 112, 3) and chip.dtype == np.uint8
    for tx, ty in spec.template:
        x, y = int(round(tx)), int(round(ty))
        assert chip[y, x, 0] > 200, (tx, ty)


def test_chip_sizes_and_batch():
    img = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    lms = np.stack([_moved(ARCFACE_112.template, a, 1.1, (100, 60)) for a in (0.0, 0.2, -0.2)])
    spec = AlignSpec(150, ARCFACE_112.template * 150 / 112)
    chips = align_faces(img, lms, spec)
    assert chips.shape == (3, 150, 150, 3)
    assert np.array_equal(align_faces(img, lms[1:2], spec)[0], chips[1])
    assert ARCFACE_112.scaled(224).size == 224
    np.testing.assert_allclose(ARCFACE_112.scaled(224).template, ARCFACE_112.template * 2)


def test_zero_faces():
    img = np.zeros((50, 60, 3), np.uint8)
    out = align_faces(img, np.zeros((0, 5, 2), np.float32), ARCFACE_112)
    assert out.shape == (0, 112, 112, 3) and out.dtype == np.uint8


def test_outside_image_is_black_or_replicated():
    img = np.full((100, 100, 3), 200, np.uint8)
    # face far in the corner, chip mostly outside the image
    src = _moved(ARCFACE_112.template, 0.0, 1.0, (-50.0, -50.0))
    black = align_faces(img, src[None], ARCFACE_112)[0]
    rep = align_faces(img, src[None], AlignSpec(112, ARCFACE_112.template, border="replicate"))[0]
    assert black[0, 0].tolist() == [0, 0, 0]
    assert rep[0, 0].tolist() == [200, 200, 200]


def test_large_face_is_antialiased():
    # A fine checkerboard face at 8x the chip scale: a plain bilinear warp aliases it into
    # high-contrast noise; the pre-shrink averages it to grey.
    img = np.indices((1200, 1200)).sum(axis=0) % 2 * 255
    img = np.repeat(img[..., None], 3, axis=2).astype(np.uint8)
    src = _moved(ARCFACE_112.template, 0.0, 8.0, (600 - 56, 600 - 56))
    chip = align_faces(img, src[None], ARCFACE_112)[0]
    assert abs(float(chip.mean()) - 127.5) < 10
    assert float(chip.std()) < 20


def test_shrink_and_restore():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (250, 250, 3), dtype=np.uint8)
    out = shrink_and_restore(img, face_px=125, target_px=12)
    assert out.shape == img.shape and out.dtype == np.uint8
    # detail is gone: much smoother than the noise input
    assert np.abs(np.diff(out.astype(int), axis=1)).mean() < 0.3 * np.abs(np.diff(img.astype(int), axis=1)).mean()
    assert np.array_equal(shrink_and_restore(img, 1.0), img)
    with pytest.raises(ValueError):
        shrink_and_restore(img)
