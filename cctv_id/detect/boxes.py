"""Vectorised box geometry shared by the detector backends and the tiling merge."""

from __future__ import annotations

import numpy as np

__all__ = ["areas", "greedy_suppress", "intersections", "iou_matrix", "nms"]


def areas(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection areas of xyxy boxes (continuous coordinates)."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = intersections(a, b)
    union = areas(a)[:, None] + areas(b)[None, :] - inter
    return inter / np.maximum(union, 1e-9)


def greedy_suppress(boxes: np.ndarray, contain: float | None, iou_threshold: float) -> np.ndarray:
    """Greedy suppression over boxes already in priority order; indices of kept boxes.

    A box is suppressed by an earlier kept box when their IoU exceeds ``iou_threshold``, or,
    with ``contain`` set, when at least that fraction of the smaller box lies inside the
    other and the two are of comparable size (the smaller at least a tenth of the larger).
    """
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    ar = areas(b)
    alive = np.ones(len(b), bool)
    keep: list[int] = []
    for i in range(len(b)):
        if not alive[i]:
            continue
        keep.append(i)
        rest = np.nonzero(alive[i + 1 :])[0] + i + 1
        if len(rest) == 0:
            break
        w = np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0])
        h = np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1])
        inter = np.clip(w, 0, None) * np.clip(h, 0, None)
        suppress = inter / np.maximum(ar[i] + ar[rest] - inter, 1e-9) > iou_threshold
        if contain is not None:
            small = np.minimum(ar[i], ar[rest])
            big = np.maximum(ar[i], ar[rest])
            suppress |= (inter / np.maximum(small, 1e-9) >= contain) & (small >= 0.1 * big)
        alive[rest[suppress]] = False
    return np.asarray(keep, np.int64)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, top_k: int = 0) -> np.ndarray:
    """Greedy non-maximum suppression; indices of kept boxes, highest score first.

    ``top_k`` > 0 keeps only that many highest-scoring candidates before suppression.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    if top_k > 0:
        order = order[:top_k]
    if len(order) <= 1:
        return order.astype(np.int64)
    return order[greedy_suppress(boxes[order], None, iou_threshold)]
