"""Per-track aggregation of face embeddings."""

from __future__ import annotations

import numpy as np


def aggregate(embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Quality-weighted mean of unit ``embeddings (K, D)``, renormalised to unit length.

    ``weights (K,)`` are non-negative (e.g. face quality); None or all-zero weights mean a
    plain mean. Rows are renormalised before averaging so each face counts by its weight
    only. Raises ValueError for K = 0 (nothing to aggregate).
    """
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim == 1:
        e = e[None, :]
    if e.ndim != 2 or len(e) == 0:
        raise ValueError(f"aggregate needs embeddings of shape (K>=1, D), got {np.shape(embeddings)}")
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    if weights is None:
        w = np.ones(len(e))
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if len(w) != len(e):
            raise ValueError(f"{len(w)} weights for {len(e)} embeddings")
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite and non-negative")
        if w.sum() <= 0:
            w = np.ones(len(e))
    mean = (w[:, None] * e).sum(axis=0) / w.sum()
    norm = np.linalg.norm(mean)
    if norm < 1e-12:  # opposite vectors cancelled out: fall back to the heaviest one
        mean, norm = e[int(np.argmax(w))], 1.0
    return (mean / norm).astype(np.float32)
