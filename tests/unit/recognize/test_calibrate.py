from __future__ import annotations

import numpy as np

from cctv_id.recognize.calibrate import BANDS, pair_scores, threshold_at_fmr


def test_threshold_at_fmr_bounds_false_matches():
    rng = np.random.default_rng(0)
    imp = rng.normal(0.8, 0.03, 20_000)
    for fmr in (1e-3, 1e-2):
        t = threshold_at_fmr(imp, fmr)
        assert np.mean(imp >= t) <= fmr
        assert np.mean(imp >= t - 2e-4) > fmr * 0.5  # and it is not needlessly strict
        assert round(t, 4) == t


def test_pair_scores_split():
    g = np.eye(4, dtype=np.float32)
    gen, imp = pair_scores(g, g, ["a", "a", "b", "b"])
    assert len(gen) == 4 and len(imp) == 8  # same image excluded


def test_bands_contiguous():
    for a, b in zip(BANDS, BANDS[1:]):
        assert a.max_px == b.min_px and a.min_px <= a.rep_px < a.max_px
