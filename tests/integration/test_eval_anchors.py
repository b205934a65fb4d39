"""The data README's dlib anchors, reproduced by the evaluation protocols (slow, real data).

The figures were measured with dlib's own face chips (``shape_predictor_5`` on the HOG box, or
on the whole image for Yale B's tight crops, then ``get_face_chip(150, padding=0.25)``) and
dlib's native metric (Euclidean distance of raw descriptors): ``alignment="dlib-chip"``,
``score="euclidean"``. Uses the PyTorch engine ``dlib-torch`` (same weights, parity >= 0.9999,
several times faster) when it is registered, else dlib itself (then expect ~10 minutes).
A private cache, so every run measures afresh: ~2 minutes on two CPU cores with dlib-torch.
"""

from __future__ import annotations

import pytest

pytest.importorskip("dlib")

from cctv_id.evaluate.protocols import verification, yaleb_hard_light  # noqa: E402
from cctv_id.evaluate.recognizers import build_recognizer  # noqa: E402

CELEBA_ANCHORS = {0: 96.94, 16: 93.33, 12: 87.72}  # first 3 folds, hr-lr, percent
YALEB_ANCHORS = {0: 58.3, 24: 40.8, 16: 21.2, 12: 12.5}  # hard light, rank-1, percent
TOLERANCE = 0.5  # percentage points


def _engine() -> str:
    from cctv_id import registry

    if "dlib-torch" in registry.names("recognizer"):
        try:
            registry.resolve("recognizer", "dlib-torch")
            return "dlib-torch"
        except Exception:  # noqa: BLE001 - not importable here (no torch): fall back to dlib
            pass
    return "dlib"


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("CCTV_ID_CACHE", str(tmp_path_factory.mktemp("anchor-cache")))
    yield build_recognizer(_engine(), batch_size=64)
    mp.undo()


@pytest.mark.slow
def test_celeba_pairs_anchor(recognizer, celeba_dir):
    got = {}
    for size in CELEBA_ANCHORS:
        r = verification(celeba_dir / "pairs.txt", celeba_dir, size, "hr-lr", recognizer, "full", "1-3",
                         alignment="dlib-chip", score="euclidean")
        assert r["n_pairs"] == 1800 and r["folds"] == [1, 2, 3] and r["threshold_from"] == "other folds"
        got[size] = round(100 * r["accuracy"], 2)
    print(f"{recognizer.gallery!r}: CelebA hr-lr accuracy {got} (anchors {CELEBA_ANCHORS})")
    for size, anchor in CELEBA_ANCHORS.items():
        assert abs(got[size] - anchor) <= TOLERANCE, (size, got, CELEBA_ANCHORS)


@pytest.mark.slow
def test_yaleb_hard_light_anchor(recognizer, shared_data):
    got = {}
    for size in YALEB_ANCHORS:
        r = yaleb_hard_light(shared_data / "faces" / "yaleb", size, recognizer, "full",
                             alignment="dlib-chip", score="euclidean")
        assert (r["n_probes"], r["n_people"]) == (664, 28)
        got[size] = round(100 * r["rank1"], 1)
    print(f"{recognizer.gallery!r}: Yale B hard-light rank-1 {got} (anchors {YALEB_ANCHORS})")
    for size, anchor in YALEB_ANCHORS.items():
        assert abs(got[size] - anchor) <= TOLERANCE, (size, got, YALEB_ANCHORS)
