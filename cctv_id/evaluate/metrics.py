"""Scores -> figures: identification ranks, k-fold verification accuracy, TAR at a FAR.

Pure numpy, no models. Conventions: scores are cosine similarities (higher = more alike);
a pair is accepted as "same" iff ``score > threshold``; a probe that could not be embedded
has rank infinity (wrong at every rank); an unscored pair carries -1 (see protocols).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


# ---------------------------------------------------------------- identification
def gallery_ranks(
    probe_vectors: np.ndarray,
    probe_labels: Sequence[str | None],
    gallery_vectors: np.ndarray,
    gallery_labels: Sequence[str],
    valid: np.ndarray | None = None,
    chunk: int = 128,
    metric: str = "cosine",
) -> np.ndarray:
    """1-based rank of each probe's identity among the gallery identities (an identity
    scores its best image). Ties count against the probe. ``metric``: ``"cosine"`` (dot
    products of unit vectors) or ``"euclidean"`` (minus the distance of raw vectors).

    A probe whose identity is not in the gallery, or with ``valid`` False (not embedded),
    has rank infinity. ``chunk`` probes are scored at a time (bounded memory).
    """
    labels = np.asarray([str(x) for x in gallery_labels], dtype=object)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    identities = sorted_labels[starts].tolist()
    column = {ident: j for j, ident in enumerate(identities)}
    g = np.asarray(gallery_vectors, np.float32)[order]
    truth = np.array([column.get(str(x), -1) if x is not None else -1 for x in probe_labels], int)
    ok = np.ones(len(truth), bool) if valid is None else np.asarray(valid, bool)
    ranks = np.full(len(truth), np.inf)
    rows_all = np.flatnonzero((truth >= 0) & ok)
    pv = np.asarray(probe_vectors, np.float32)
    for s in range(0, len(rows_all), chunk):
        rows = rows_all[s : s + chunk]
        per_id = np.maximum.reduceat(similarity(pv[rows], g, metric), starts, axis=1)
        ranks[rows] = true_ranks(per_id, truth[rows])
    return ranks


def similarity(a: np.ndarray, b: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """``(len(a), len(b))`` scores, higher = more alike: cosine of unit rows, or minus the
    Euclidean distance."""
    if metric == "cosine":
        return a @ b.T
    if metric == "euclidean":
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
        return -np.sqrt(np.maximum(sq, 0.0))
    raise ValueError(f"metric must be cosine or euclidean, got {metric!r}")


def true_ranks(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """1-based rank of column ``truth[i]`` in row ``i`` of ``scores`` (``>=`` others count ahead)."""
    rows = np.arange(scores.shape[0])
    own = scores[rows, truth]
    return (scores >= own[:, None]).sum(axis=1).astype(np.float64)  # itself included


def rank_k(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(ranks <= k)) if len(ranks) else float("nan")


# ---------------------------------------------------------------- verification
def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The threshold with the best accuracy on ``(scores, same)``: ``(threshold, accuracy)``.

    Candidates are the midpoints between consecutive distinct scores (plus one below all and
    one above all), so the optimum is exact; among equally good thresholds, the middle one.
    """
    scores = np.asarray(scores, np.float64)
    same = np.asarray(same, bool)
    if len(scores) == 0:
        raise ValueError("no scores")
    u = np.unique(scores)
    cands = np.concatenate([[u[0] - 1e-6], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-6]])
    order = np.argsort(scores, kind="stable")
    s_sorted, y_sorted = scores[order], same[order]
    # for threshold t: accepted = scores > t; correct = genuine accepted + impostors rejected
    idx = np.searchsorted(s_sorted, cands, side="right")  # count of scores <= t
    gen_cum = np.concatenate([[0], np.cumsum(y_sorted)])
    imp_cum = np.concatenate([[0], np.cumsum(~y_sorted)])
    n_gen = int(same.sum())
    correct = (n_gen - gen_cum[idx]) + imp_cum[idx]
    acc = correct / len(scores)
    best = np.flatnonzero(acc == acc.max())
    k = int(best[len(best) // 2])
    return float(cands[k]), float(acc[k])


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """LFW's protocol: for each fold, the threshold chosen on the other folds, accuracy
    measured on it; mean and (population) std over folds.

    One fold only: its own best threshold (optimistic; ``threshold_from`` says so).
    """
    scores, same, folds = np.asarray(scores, np.float64), np.asarray(same, bool), np.asarray(folds)
    ids = sorted(set(folds.tolist()))
    per_fold, thresholds = [], []
    for f in ids:
        test = folds == f
        train = ~test if len(ids) > 1 else test
        t, _ = best_threshold(scores[train], same[train])
        per_fold.append(float(np.mean((scores[test] > t) == same[test])))
        thresholds.append(t)
    return {
        "accuracy": float(np.mean(per_fold)),
        "std": float(np.std(per_fold)),
        "fold_accuracies": per_fold,
        "thresholds": thresholds,
        "threshold_from": "other folds" if len(ids) > 1 else "the same fold (single fold selected)",
    }


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> tuple[float, float]:
    """``(TAR, threshold)`` at false-accept rate ``far`` over all pairs given.

    The threshold is the ``floor(far * n_impostor) + 1``-th highest impostor score: at most
    ``far`` of impostors score above it. With fewer than ``1 / far`` impostors this allows
    none (the strictest reading).
    """
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    imp = np.sort(scores[~same])[::-1]
    gen = scores[same]
    if len(imp) == 0 or len(gen) == 0:
        return float("nan"), float("nan")
    k = int(math.floor(far * len(imp)))
    if k >= len(imp):
        t = float(imp[-1]) - 1e-9
    else:
        t = float(imp[k])
    return float(np.mean(gen > t)), t
