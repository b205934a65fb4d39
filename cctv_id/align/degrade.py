"""Resolution degradation for evaluation: shrink a face to N px and enlarge it back."""

from __future__ import annotations

import cv2
import numpy as np

_INTERP = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "bilinear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "bicubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}


def _interp(name: str | int) -> int:
    if isinstance(name, int):
        return name
    try:
        return _INTERP[name]
    except KeyError:
        raise ValueError(f"unknown interpolation {name!r}; choose one of {sorted(_INTERP)}") from None


def shrink_and_restore(
    image: np.ndarray,
    factor: float | None = None,
    *,
    face_px: float | None = None,
    target_px: float | None = None,
    down: str | int = "area",
    up: str | int = "cubic",
) -> np.ndarray:
    """``image`` shrunk and enlarged back to its own size (the evaluation protocol).

    Either ``factor`` (< 1: the shrink ratio) or ``face_px`` (the face height in ``image``)
    with ``target_px`` (the face height wanted after shrinking). ``down`` defaults to area
    averaging (what a camera's sensor does), ``up`` to bicubic. Coordinates in ``image``
    stay valid for the result. A factor >= 1 returns a copy.
    """
    if factor is None:
        if face_px is None or target_px is None:
            raise ValueError("give either factor, or face_px and target_px")
        if face_px <= 0:
            raise ValueError(f"face_px must be positive, got {face_px}")
        factor = float(target_px) / float(face_px)
    if factor <= 0:
        raise ValueError(f"shrink factor must be positive, got {factor}")
    if factor >= 1.0:
        return np.array(image, copy=True)
    h, w = image.shape[:2]
    sw, sh = max(1, int(round(w * factor))), max(1, int(round(h * factor)))
    small = cv2.resize(image, (sw, sh), interpolation=_interp(down))
    return cv2.resize(small, (w, h), interpolation=_interp(up))


def shrink(image: np.ndarray, factor: float, interpolation: str | int = "area") -> np.ndarray:
    """``image`` resized by ``factor`` (< 1 shrinks); coordinates scale by the same factor."""
    h, w = image.shape[:2]
    sw, sh = max(1, int(round(w * factor))), max(1, int(round(h * factor)))
    return cv2.resize(image, (sw, sh), interpolation=_interp(interpolation))
