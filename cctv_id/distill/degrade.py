"""CCTV degradations for training: a full-size face photo -> the small chip a camera would give.

One call of ``degrade_to_chip`` shrinks the whole image so the face is ``face_px`` tall
(10-32 px by default; area, bilinear or nearest resampling), optionally lights it hard from
one side first (``relight``: half the face in shadow), blurs it (optics, motion), adds sensor
noise, compresses it (JPEG, or a real H.264 intra frame through PyAV's libx264 at a high CRF), optionally enlarges it back (the evaluation protocol's bicubic
restore), and aligns it onto the student's chip with jittered landmarks (detector landmarks
on tiny faces are off by a pixel or two, so the alignment warp must be robust to that).
Every random choice comes from the ``numpy.random.Generator`` passed in, so a bank of
degraded chips is reproducible from a seed.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..align import AlignSpec, align_faces

_DOWN = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


@dataclass(frozen=True)
class DegradeSettings:
    min_face_px: float = 10.0
    max_face_px: float = 32.0
    large_face_prob: float = 0.15  # sometimes a face up to large_face_max_px (full-size behaviour)
    large_face_max_px: float = 80.0
    interpolations: tuple[str, ...] = ("area", "bilinear", "nearest")
    blur_prob: float = 0.4
    blur_sigma_max: float = 1.2  # in pixels of the shrunk image
    noise_prob: float = 0.4
    noise_sigma_max: float = 6.0  # grey levels
    jpeg_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (20, 85)
    h264_prob: float = 0.25
    h264_crf: tuple[int, int] = (28, 42)
    restore_prob: float = 0.5  # enlarge back (bicubic) before aligning, as the eval protocol does
    landmark_jitter: float = 0.04  # std of landmark noise, in face heights
    grey_prob: float = 0.1
    plain_prob: float = 0.0  # only shrunk (area), enlarged back (bicubic): the evaluation's probe
    relight_prob: float = 0.0  # synthetic side light: one half of the face in shadow
    relight_ambient: tuple[float, float] = (0.02, 0.35)  # light left on the shadowed side
    relight_sharpness: tuple[float, float] = (3.0, 15.0)  # steepness of the light-to-shadow edge


def relight(image: np.ndarray, landmarks: np.ndarray, face_px: float, rng: np.random.Generator,
            s: DegradeSettings) -> np.ndarray:
    """Hard directional light, as a camera sees a face lit from one side: the image times a
    field that runs from ``gain`` (1-1.5) on the lit side to ``ambient`` in the shadow, across
    the face centre (the mean of the landmarks) at a random angle, with a random edge sharpness."""
    h, w = image.shape[:2]
    centre = np.asarray(landmarks, np.float32).reshape(-1, 2).mean(axis=0)
    theta = float(rng.uniform(0.0, 2.0 * np.pi))
    ambient = float(rng.uniform(*s.relight_ambient))
    k = float(rng.uniform(*s.relight_sharpness))
    gain = float(rng.uniform(1.0, 1.5))  # the lit side, brighter than the photo's soft light
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    proj = ((xs - centre[0]) * np.cos(theta) + (ys - centre[1]) * np.sin(theta)) / max(float(face_px), 1.0)
    field = ambient + (gain - ambient) / (1.0 + np.exp(-k * proj))
    lit = image.astype(np.float32) * field[..., None]
    return np.clip(lit, 0, 255).astype(np.uint8)


def h264_roundtrip(image: np.ndarray, crf: int) -> np.ndarray:
    """``image`` (uint8 BGR) encoded as one H.264 intra frame (libx264, yuv420p) and decoded."""
    import av

    h, w = image.shape[:2]
    hh, ww = max(16, (h + 1) // 2 * 2), max(16, (w + 1) // 2 * 2)
    padded = np.zeros((hh, ww, 3), np.uint8)
    padded[:h, :w] = image
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = ww, hh, "yuv420p"
    enc.time_base = fractions.Fraction(1, 25)
    enc.options = {"crf": str(int(crf)), "preset": "ultrafast", "tune": "zerolatency"}
    packets = list(enc.encode(av.VideoFrame.from_ndarray(padded, format="bgr24")))
    packets += list(enc.encode(None))
    dec = av.CodecContext.create("h264", "r")
    frames = []
    for packet in packets:
        frames.extend(dec.decode(packet))
    if not frames:  # pragma: no cover - libx264 always returns the frame at flush
        return image.copy()
    return frames[-1].to_ndarray(format="bgr24")[:h, :w].copy()


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover
        return image
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def _scale_points(points: np.ndarray, fx: float, fy: float) -> np.ndarray:
    # cv2.resize maps pixel centres: x' + 0.5 = (x + 0.5) * f
    out = np.asarray(points, np.float32).copy()
    out[..., 0] = (out[..., 0] + 0.5) * fx - 0.5
    out[..., 1] = (out[..., 1] + 0.5) * fy - 0.5
    return out


def sample_face_px(rng: np.random.Generator, s: DegradeSettings) -> float:
    if rng.random() < s.large_face_prob:
        return float(rng.uniform(s.max_face_px, s.large_face_max_px))
    return float(rng.uniform(s.min_face_px, s.max_face_px))


def degrade_to_chip(
    image: np.ndarray,
    landmarks: np.ndarray,
    face_px: float,
    spec: AlignSpec,
    rng: np.random.Generator,
    settings: DegradeSettings = DegradeSettings(),
    target_px: float | None = None,
) -> np.ndarray:
    """A degraded ``spec.size`` chip of the face at ``landmarks`` (full-size image coords)."""
    s = settings
    image = np.asarray(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    target = float(target_px) if target_px is not None else sample_face_px(rng, s)
    if s.plain_prob > 0 and rng.random() < s.plain_prob:
        s = replace(s, interpolations=("area",), blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0, h264_prob=0.0,
                    grey_prob=0.0, relight_prob=0.0, restore_prob=1.0, landmark_jitter=0.0, plain_prob=0.0)
    factor = min(1.0, target / max(float(face_px), 1.0))
    if s.relight_prob > 0 and rng.random() < s.relight_prob:
        image = relight(image, landmarks, face_px, rng, s)
    h, w = image.shape[:2]
    sw, sh = max(1, int(round(w * factor))), max(1, int(round(h * factor)))
    interp = _DOWN[s.interpolations[int(rng.integers(len(s.interpolations)))]]
    small = cv2.resize(image, (sw, sh), interpolation=interp) if factor < 1.0 else image.copy()
    lms = _scale_points(landmarks, sw / w, sh / h)
    if rng.random() < s.blur_prob:
        sigma = float(rng.uniform(0.3, s.blur_sigma_max))
        small = cv2.GaussianBlur(small, (0, 0), sigma)
    if rng.random() < s.noise_prob:
        sigma = float(rng.uniform(1.0, s.noise_sigma_max))
        noisy = small.astype(np.float32) + rng.normal(0.0, sigma, small.shape).astype(np.float32)
        small = np.clip(noisy, 0, 255).astype(np.uint8)
    r = rng.random()
    if r < s.h264_prob:
        small = h264_roundtrip(small, int(rng.integers(s.h264_crf[0], s.h264_crf[1] + 1)))
    elif r < s.h264_prob + s.jpeg_prob:
        small = jpeg_roundtrip(small, int(rng.integers(s.jpeg_quality[0], s.jpeg_quality[1] + 1)))
    if rng.random() < s.grey_prob:
        small = cv2.cvtColor(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    face_small = float(face_px) * (sh / h)
    jitter = rng.normal(0.0, s.landmark_jitter * face_small, lms.shape).astype(np.float32)
    lms = lms + jitter
    if factor < 1.0 and rng.random() < s.restore_prob:
        small = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        lms = _scale_points(lms, w / sw, h / sh)
    return align_faces(small, lms[None], spec)[0]
