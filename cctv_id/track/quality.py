"""Per-sample face quality for choosing which faces of a track to recognise.

Pure numpy/cv2. The score combines what makes a small face recognisable: its size, its
sharpness (variance of the Laplacian over the face box, which falls with blur and heavy
compression), how frontal it is (nose position between the eyes, from the 5 landmarks)
and the detector's confidence.
"""

from __future__ import annotations

import cv2
import numpy as np

SIZE_SATURATION_PX = 48.0  # faces this tall or taller get the full size term
SHARPNESS_HALF = 60.0  # Laplacian variance that gives a sharpness term of 0.5


def size_term(face_px: float) -> float:
    return float(np.clip(face_px / SIZE_SATURATION_PX, 0.05, 1.0))


def sharpness(image: np.ndarray, box: np.ndarray) -> float:
    """Variance of the Laplacian inside ``box`` (frame pixels), mapped to [0, 1)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(w, x2), min(h, y2)
    if x2 - x1 < 3 or y2 - y1 < 3:
        return 0.0
    region = image[y1:y2, x1:x2]
    gray = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY) if region.ndim == 3 else region
    # Small faces are enlarged to a common height so that the measure compares like with like.
    if gray.shape[0] < 32:
        scale = 32.0 / gray.shape[0]
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    var = float(cv2.Laplacian(gray, cv2.CV_32F).var())
    return var / (var + SHARPNESS_HALF)


def frontalness(landmarks: np.ndarray) -> float:
    """1 for a frontal face, towards 0 as the nose moves out from between the eyes."""
    lm = np.asarray(landmarks, np.float32).reshape(5, 2)
    eye_mid = (lm[0] + lm[1]) / 2
    eye_dist = float(np.linalg.norm(lm[1] - lm[0]))
    if eye_dist < 1e-3:
        return 0.0
    yaw = abs(float(lm[2, 0] - eye_mid[0])) / eye_dist  # 0 frontal, ~0.5 at profile
    roll = abs(float(np.arctan2(lm[1, 1] - lm[0, 1], lm[1, 0] - lm[0, 0])))
    return float(np.clip(1.0 - 2.0 * yaw, 0.0, 1.0) * np.clip(1.0 - roll / 1.2, 0.0, 1.0))


def face_quality(image: np.ndarray, box, landmarks, score: float) -> float:
    """Recognition quality in [0, 1] of one detected face."""
    box = np.asarray(box, np.float32)
    face_px = float(box[3] - box[1])
    parts = (
        size_term(face_px) ** 0.6,
        (0.2 + 0.8 * sharpness(image, box)) ** 0.4,
        (0.2 + 0.8 * frontalness(landmarks)) ** 0.6,
        float(np.clip(score, 0.0, 1.0)) ** 0.3,
    )
    return float(np.prod(parts))
