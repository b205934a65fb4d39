"""Ranks, the k-fold verification threshold and TAR at FAR on synthetic scores."""

from __future__ import annotations

import numpy as np
import pytest

from cctv_id.evaluate.metrics import best_threshold, gallery_ranks, kfold_accuracy, rank_k, tar_at_far


def test_best_threshold_is_exact_and_central():
    scores = np.array([0.2, 0.3, 0.8, 0.9])
    same = np.array([False, False, True, True])
    t, acc = best_threshold(scores, same)
    assert acc == 1.0 and t == pytest.approx(0.55)
    # all genuine: any threshold below everything is perfect
    t, acc = best_threshold(np.array([0.5, 0.6]), np.array([True, True]))
    assert acc == 1.0 and t < 0.5


def test_kfold_threshold_comes_from_the_other_folds():
    # fold 0 is separable at 0.55; fold 1 overlaps (impostor 0.65 among genuine 0.6 / 0.7)
    scores = np.array([0.8, 0.9, 0.2, 0.3, 0.6, 0.7, 0.1, 0.65])
    same = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    r = kfold_accuracy(scores, same, folds)
    # fold 1 judged at fold 0's threshold 0.55: impostor 0.65 accepted -> 3/4
    # fold 0 judged at fold 1's best (0.35 and 0.675 tie at 3/4; the middle candidate, 0.675) -> 4/4
    assert r["thresholds"] == pytest.approx([0.675, 0.55])
    assert r["fold_accuracies"] == pytest.approx([1.0, 0.75])
    assert r["accuracy"] == pytest.approx(0.875) and r["std"] == pytest.approx(0.125)
    assert r["threshold_from"] == "other folds"


def test_kfold_ten_folds_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    n = 10 * 60
    same = np.tile(np.r_[np.ones(30, bool), np.zeros(30, bool)], 10)
    folds = np.repeat(np.arange(10), 60)
    scores = np.where(same, rng.normal(0.7, 0.1, n), rng.normal(0.4, 0.1, n))
    r = kfold_accuracy(scores, same, folds)
    for f in range(10):
        t, _ = best_threshold(scores[folds != f], same[folds != f])
        assert r["thresholds"][f] == pytest.approx(t)
        assert r["fold_accuracies"][f] == pytest.approx(np.mean((scores[folds == f] > t) == same[folds == f]))
    assert 0.85 < r["accuracy"] < 0.99
    # the threshold is never fitted on the fold it judges: it differs from the in-fold best
    in_fold = [best_threshold(scores[folds == f], same[folds == f])[0] for f in range(10)]
    assert not np.allclose(in_fold, r["thresholds"])


def test_single_fold_uses_itself():
    scores = np.array([0.8, 0.9, 0.2, 0.3])
    r = kfold_accuracy(scores, np.array([1, 1, 0, 0], bool), np.zeros(4, int))
    assert r["accuracy"] == 1.0 and r["std"] == 0.0 and "same fold" in r["threshold_from"]


def test_unscored_pairs_at_minus_one_count_as_rejections():
    scores = np.array([0.9, -1.0, 0.1, 0.2])
    same = np.array([True, True, False, False])
    t, acc = best_threshold(scores, same)
    assert acc == 0.75  # the -1 genuine pair is always wrong at any sensible threshold


def test_tar_at_far():
    imp = np.arange(1000) / 1000.0
    gen = np.array([0.9985, 0.9995, 0.5])
    scores = np.r_[gen, imp]
    same = np.r_[np.ones(3, bool), np.zeros(1000, bool)]
    tar, t = tar_at_far(scores, same, 1e-3)
    assert t == pytest.approx(0.998)  # one impostor (0.999) of 1000 above it
    assert np.mean(imp > t) <= 1e-3
    assert tar == pytest.approx(2 / 3)
    # fewer than 1/FAR impostors: none may pass
    tar, t = tar_at_far(np.array([0.9, 0.7, 0.8]), np.array([True, True, False]), 1e-3)
    assert t == pytest.approx(0.8) and tar == pytest.approx(0.5)


def test_gallery_ranks_best_image_per_identity_ties_distractors():
    g = np.eye(4, dtype=np.float32)  # 4 orthogonal gallery vectors
    g_labels = ["a", "a", "b", "\0distractor:0"]
    probes = np.array([
        [0.0, 0.9, 0.1, 0.0],  # a (its 2nd image) wins -> rank 1
        [0.0, 0.5, 0.5, 0.0],  # b ties with a -> a tie counts against: rank 2
        [0.1, 0.0, 0.2, 0.9],  # a, but b and the distractor score higher -> rank 3
        [1.0, 0.0, 0.0, 0.0],  # identity not in the gallery -> inf
        [1.0, 0.0, 0.0, 0.0],  # not embedded -> inf
    ], np.float32)
    labels = ["a", "b", "a", "zed", "a"]
    valid = np.array([True, True, True, True, False])
    ranks = gallery_ranks(probes, labels, g, g_labels, valid=valid, chunk=2)
    assert ranks[:3].tolist() == [1, 2, 3]
    assert np.isinf(ranks[3]) and np.isinf(ranks[4])
    assert rank_k(ranks, 1) == pytest.approx(0.2) and rank_k(ranks, 3) == pytest.approx(0.6)
