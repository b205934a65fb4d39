"""5-point similarity alignment onto a recogniser's chip template (pure numpy / OpenCV)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AlignSpec:
    """Where the five landmarks (``types.py`` order) should land in a ``size`` x ``size`` chip.

    ``border`` is what fills chip pixels that fall outside the source image: ``"constant"``
    (black, as dlib's ``get_face_chip`` and insightface's ``norm_crop`` do) or ``"replicate"``.
    """

    size: int
    template: np.ndarray  # (5, 2) float32, chip pixels
    border: str = "constant"
    name: str = ""

    def __post_init__(self) -> None:
        tpl = np.asarray(self.template, dtype=np.float32).reshape(5, 2)
        object.__setattr__(self, "template", tpl)
        if self.size <= 0:
            raise ValueError(f"AlignSpec.size must be positive, got {self.size}")
        if self.border not in ("constant", "replicate"):
            raise ValueError(f"AlignSpec.border must be 'constant' or 'replicate', got {self.border!r}")

    def scaled(self, size: int) -> AlignSpec:
        """The same template for a chip of another size."""
        return AlignSpec(size, self.template * (size / self.size), self.border, self.name)


# The standard insightface / ArcFace 112x112 template (image-left eye, image-right eye, nose
# tip, image-left mouth corner, image-right mouth corner), as used by ``norm_crop``.
ARCFACE_112 = AlignSpec(
    112,
    np.array(
        [
            [38.2946, 51.6963],
            [73.5318, 51.5014],
            [56.0252, 71.7366],
            [41.5493, 92.3655],
            [70.7299, 92.2041],
        ],
        dtype=np.float32,
    ),
    border="constant",
    name="arcface-112",
)


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, translation) taking ``src`` to ``dst``.

    Least-squares over all points (Umeyama's closed form via scikit-image's
    ``SimilarityTransform``), so all five landmarks weigh in; no outlier rejection is
    needed for five detector landmarks. Returns ``float64 (2, 3)``.
    """
    from skimage.transform import SimilarityTransform

    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if len(src) != len(dst) or len(src) < 2:
        raise ValueError(f"similarity_matrix needs >= 2 matching points, got {len(src)} and {len(dst)}")
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        tform = SimilarityTransform.from_estimate(src, dst)
        if not tform:
            raise ValueError("degenerate landmarks: no similarity transform")
    else:  # pragma: no cover - older scikit-image
        tform = SimilarityTransform()
        if not tform.estimate(src, dst):
            raise ValueError("degenerate landmarks: no similarity transform")
    return np.asarray(tform.params[:2, :], dtype=np.float64)


def _warp_one(image: np.ndarray, matrix: np.ndarray, spec: AlignSpec) -> np.ndarray:
    m = matrix.copy()
    # Anti-aliasing: when the chip is much smaller than the face in the image (gallery
    # photos), bilinear sampling alone aliases; shrink the image first (area average), as
    # dlib's chip extractor does with its pyramid, then warp the rest of the way.
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.5:
        pre = scale * 1.5  # leaves a bilinear step of 1/1.5
        # Only the part of the image that the chip covers needs resizing.
        inv = cv2.invertAffineTransform(m)
        s_ = float(spec.size)
        corners = transform_points(np.array([[0, 0], [s_, 0], [0, s_], [s_, s_]]), inv)
        x0 = int(max(0, np.floor(corners[:, 0].min()) - 2))
        y0 = int(max(0, np.floor(corners[:, 1].min()) - 2))
        x1 = int(min(image.shape[1], np.ceil(corners[:, 0].max()) + 3))
        y1 = int(min(image.shape[0], np.ceil(corners[:, 1].max()) + 3))
        if x1 - x0 < 2 or y1 - y0 < 2:  # chip entirely outside the image
            x0, y0, x1, y1 = 0, 0, image.shape[1], image.shape[0]
        image = image[y0:y1, x0:x1]
        m[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
        h, w = image.shape[:2]
        nw, nh = max(1, int(round(w * pre))), max(1, int(round(h * pre)))
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        sx, sy = nw / w, nh / h
        # chip = M @ [x, y, 1] with x = x_small / sx (pixel-centre offset handled below)
        # INTER_AREA maps pixel centres: x_small + 0.5 = (x + 0.5) * s
        m = m.copy()
        a = m[:, :2] @ np.diag([1.0 / sx, 1.0 / sy])
        t = m[:, 2] + m[:, :2] @ np.array([0.5 / sx - 0.5, 0.5 / sy - 0.5])
        m = np.concatenate([a, t[:, None]], axis=1)
        image = small
    border = cv2.BORDER_CONSTANT if spec.border == "constant" else cv2.BORDER_REPLICATE
    return cv2.warpAffine(
        image,
        m,
        (spec.size, spec.size),
        flags=cv2.INTER_LINEAR,
        borderMode=border,
        borderValue=(0, 0, 0),
    )


def align_faces(image: np.ndarray, landmarks: np.ndarray, spec: AlignSpec) -> np.ndarray:
    """Aligned chips ``(N, size, size, C)`` uint8 for the ``(N, 5, 2)`` ``landmarks`` in ``image``."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    lms = np.asarray(landmarks, dtype=np.float32).reshape(-1, 5, 2)
    channels = image.shape[2]
    out = np.zeros((len(lms), spec.size, spec.size, channels), dtype=np.uint8)
    for i, pts in enumerate(lms):
        m = similarity_matrix(pts, spec.template)
        chip = _warp_one(image, m, spec)
        out[i] = chip.reshape(spec.size, spec.size, channels)
    return out


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine ``matrix`` to ``(..., 2)`` points."""
    pts = np.asarray(points, dtype=np.float64)
    flat = pts.reshape(-1, 2)
    res = flat @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]
    return res.reshape(pts.shape).astype(np.float32)
