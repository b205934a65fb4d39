"""dlib ResNet encoder on real CelebA faces (skips when ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")

from cctv_id.config import RecognizerConfig  # noqa: E402
from cctv_id.errors import ModelError  # noqa: E402
from cctv_id.recognize.base import build_encoder  # noqa: E402
from cctv_id.recognize.dlib_resnet import DLIB_150, DlibResNetEncoder  # noqa: E402
from cctv_id.recognize.offline_landmarks import detect_landmarks  # noqa: E402


@pytest.fixture(scope="module")
def encoder():
    return build_encoder(RecognizerConfig(backend="dlib", batch_size=4))


def _path(root: Path, person: str, n: str) -> Path:
    return root / person / f"{person}_{int(n):04d}.jpg"


def _pairs(celeba_dir: Path, n_each: int = 6):
    lines = (celeba_dir / "pairs.txt").read_text().split("\n")[1:]
    matched = [ln.split() for ln in lines[:n_each]]
    mismatched = [ln.split() for ln in lines[300 : 300 + n_each]]
    same = [(_path(celeba_dir, p, a), _path(celeba_dir, p, b)) for p, a, b in matched]
    diff = [(_path(celeba_dir, p, a), _path(celeba_dir, q, b)) for p, a, q, b in mismatched]
    return same, diff


def _embed_path(encoder, path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    assert img is not None, path
    _, _, lms = detect_landmarks(img)
    assert len(lms), f"no face in {path}"
    return encoder.embed_faces(img, lms[:1]).vectors[0]


def test_identity(encoder):
    assert isinstance(encoder, DlibResNetEncoder)
    assert encoder.name == "dlib-resnet-v1" and encoder.dim == 128
    assert encoder.align_spec is DLIB_150 and encoder.align_spec.size == 150
    assert len(encoder.model_sha256) == 64


def test_same_person_scores_higher(encoder, celeba_dir):
    same, diff = _pairs(celeba_dir)
    cache: dict[Path, np.ndarray] = {}

    def emb(p):
        if p not in cache:
            cache[p] = _embed_path(encoder, p)
        return cache[p]

    gen = np.array([emb(a) @ emb(b) for a, b in same])
    imp = np.array([emb(a) @ emb(b) for a, b in diff])
    # dlib cosines are compressed (impostors ~0.83, genuine ~0.96 on CelebA)
    assert gen.mean() > imp.mean() + 0.05, (gen, imp)
    ordered = (gen[:, None] > imp[None, :]).mean()
    assert ordered >= 0.95, (gen, imp)


def test_batch_equals_single(encoder, celeba_dir):
    same, _ = _pairs(celeba_dir, 3)
    paths = [p for pair in same for p in pair]
    chips = []
    for p in paths:
        img = cv2.imread(str(p))
        _, _, lms = detect_landmarks(img)
        chips.append(encoder.align(img, lms[:1])[0])
    chips = np.stack(chips)
    batch = encoder.embed_chips(chips).vectors  # batch_size 4 -> two calls, one partial
    singles = np.stack([encoder.embed_chips(c[None]).vectors[0] for c in chips])
    assert batch.shape == (len(paths), 128) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batch, singles, atol=1e-5)


def test_our_alignment_matches_dlibs_own(encoder, celeba_dir):
    import dlib
    import face_recognition_models as frm

    detector = dlib.get_frontal_face_detector()
    sp5 = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    people = sorted(p for p in celeba_dir.iterdir() if p.is_dir())[:8]
    cos = []
    for person in people:
        path = sorted(person.glob("*.jpg"))[0]
        img = cv2.imread(str(path))
        rgb = np.ascontiguousarray(img[..., ::-1])
        dets = detector(rgb, 1)
        _, _, lms = detect_landmarks(img)
        if len(dets) == 0 or len(lms) == 0:
            continue
        chip = dlib.get_face_chip(rgb, sp5(rgb, dets[0]), size=150, padding=0.25)
        theirs = encoder.embed_chips(np.ascontiguousarray(chip[None, ..., ::-1])).vectors[0]
        ours = encoder.embed_faces(img, lms[:1]).vectors[0]
        cos.append(float(ours @ theirs))
    assert len(cos) >= 6
    assert np.mean(cos) >= 0.95, cos


def test_missing_weights_is_model_error(tmp_path):
    with pytest.raises(ModelError):
        DlibResNetEncoder(RecognizerConfig(backend="dlib", model_path=str(tmp_path / "nope.dat")))


def test_wrong_chip_shape_rejected(encoder):
    with pytest.raises(ValueError):
        encoder.embed_chips(np.zeros((1, 112, 112, 3), np.uint8))
