"""Embeddings of evaluation images under a degradation and a landmark mode.

``embed_images(encoder, annotations, size, landmarks)``:

- ``size`` 0, or a size not below the face: the image unchanged. Else the whole image
  shrunk (area) by ``size / face_px`` and enlarged back (bicubic): ``align.shrink_and_restore``.
- ``landmarks="full"``: align the (degraded) image with the full-size annotation's
  landmarks. ``"detected"``: run the pipeline's detector (``cctv_id.detect``, default
  ``DetectorConfig``: native + 2x upscaled pass) on the image at its small size, take the
  face nearest the image centre, map its landmarks back to full-size pixels; no face ->
  ``detected[i]`` False and a zero vector (the protocols count it as a miss).
- ``flip``: embed each chip and its mirror, average, normalise (TinyFace's protocol).
- ``alignment="template"`` (the pipeline's): the five landmarks warped onto the encoder's
  ``align_spec``. ``"dlib-chip"``: dlib's own extractor, ``get_face_chip(size, padding=0.25)``
  with ``shape_predictor_5``'s points from the full-size image (``annotate``'s
  ``dlib_shape``); landmarks ``"full"`` only. The data README's dlib anchors were made so.
- ``raw``: the encoder's unnormalised descriptors (``FaceEncoder._forward``), for
  distance-based scores (dlib was trained on raw Euclidean distances).

Each encoder aligns with its own ``align_spec`` (its chip size). Unchanged images are looked up in (and
added to) the on-disk cache of full-size embeddings, keyed by the encoder's weights, its
chip template, the image and the exact landmarks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..align import shrink, shrink_and_restore
from .annotate import FaceAnnotation, read_image
from .cache import DiskCache, default_cache, image_key

LANDMARK_MODES = ("full", "detected")
ALIGNMENTS = ("template", "dlib-chip")
EMBED_BATCH = 32


@dataclass(frozen=True)
class Embedded:
    vectors: np.ndarray  # (N, D) float32 unit rows; zero rows where not detected
    detected: np.ndarray  # (N,) bool; always True in "full" mode

    @property
    def n_undetected(self) -> int:
        return int((~self.detected).sum())


@lru_cache(maxsize=1)
def pipeline_detector():
    """The pipeline's detector with the default configuration (built once per process)."""
    from ..config import DetectorConfig
    from ..detect.base import build_detector

    return build_detector(DetectorConfig())


def shrink_factor(face_px: float, size: float) -> float:
    """The resize factor that makes a ``face_px`` face ``size`` px high; 1.0 = unchanged."""
    if size <= 0 or face_px <= 0 or size >= face_px:
        return 1.0
    return float(size) / float(face_px)


def detect_landmarks_small(image: np.ndarray, factor: float) -> np.ndarray | None:
    """Landmarks (full-size pixels) found by the pipeline's detector on ``image`` shrunk by
    ``factor`` (1.0: as is); the face nearest the centre; None when there is none."""
    h, w = image.shape[:2]
    small = shrink(image, factor) if factor < 1.0 else image
    dets = pipeline_detector().detect(small)
    if len(dets) == 0:
        return None
    sh, sw = small.shape[:2]
    centre = np.array([sw / 2.0, sh / 2.0], np.float32)
    k = int(np.argmin(np.linalg.norm(dets.centers - centre, axis=1)))
    sx, sy = sw / w, sh / h
    return ((dets.landmarks[k] + 0.5) / np.array([sx, sy], np.float32) - 0.5).astype(np.float32)


def _spec_digest(encoder) -> str:
    spec = encoder.align_spec
    h = hashlib.sha256()
    h.update(f"{spec.size}|{spec.border}|".encode())
    h.update(np.asarray(spec.template, np.float32).tobytes())
    return h.hexdigest()[:16]


def embedding_key(encoder, annotation: FaceAnnotation, landmarks: np.ndarray, flip: bool,
                  alignment: str = "template", raw: bool = False) -> str:
    h = hashlib.sha256()
    engine = f"{type(encoder).__module__}.{type(encoder).__qualname__}"  # dlib and dlib-torch share a sha
    h.update(f"{engine}|{encoder.name}|{encoder.model_sha256}|{_spec_digest(encoder)}|flip={int(flip)}|"
             f"{alignment}|raw={int(raw)}|".encode())
    h.update(image_key(annotation.path).encode())
    h.update(np.asarray(landmarks, np.float32).tobytes())
    return h.hexdigest()


def _descriptors(encoder, chips: np.ndarray, raw: bool) -> np.ndarray:
    if not raw:
        return encoder.embed_chips(chips).vectors
    step = max(1, int(encoder.batch_size))
    return np.concatenate([np.asarray(encoder._forward(chips[s : s + step]), np.float32).reshape(-1, encoder.dim)
                           for s in range(0, len(chips), step)])


def _embed_chips(encoder, chips: np.ndarray, flip: bool, raw: bool = False) -> np.ndarray:
    vectors = _descriptors(encoder, chips, raw)
    if flip:
        total = vectors + _descriptors(encoder, np.ascontiguousarray(chips[:, :, ::-1]), raw)
        vectors = total / 2 if raw else total / np.maximum(np.linalg.norm(total, axis=1, keepdims=True), 1e-12)
    return vectors.astype(np.float32)


def dlib_chip(image: np.ndarray, shape: np.ndarray, size: int, padding: float = 0.25) -> np.ndarray:
    """dlib's own face chip (BGR in, BGR out) for its ``shape_predictor_5`` points."""
    import dlib

    pts = np.rint(np.asarray(shape, np.float64)).astype(int)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    det = dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)),
                                     dlib.points([dlib.point(int(x), int(y)) for x, y in pts]))
    rgb = np.ascontiguousarray(image[..., ::-1])
    chip = dlib.get_face_chip(rgb, det, size=size, padding=padding)
    return np.ascontiguousarray(np.asarray(chip)[..., ::-1])


def embed_images(
    encoder,
    annotations: Sequence[FaceAnnotation],
    size: float = 0,
    landmarks: str = "full",
    *,
    flip: bool = False,
    alignment: str = "template",
    raw: bool = False,
    progress: bool = False,
    desc: str = "embed",
    cache: DiskCache | None = None,
) -> Embedded:
    """Embeddings of ``annotations``' images shrunk to face size ``size`` (see module notes)."""
    if landmarks not in LANDMARK_MODES:
        raise ValueError(f"landmarks must be one of {LANDMARK_MODES}, got {landmarks!r}")
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
    if alignment == "dlib-chip" and landmarks != "full":
        raise ValueError("the dlib-chip alignment uses dlib's points from the full-size image: landmarks 'full' only")
    cache = default_cache() if cache is None else cache
    n = len(annotations)
    vectors = np.zeros((n, encoder.dim), np.float32)
    detected = np.ones(n, bool)
    factors = [shrink_factor(a.face_px, size) for a in annotations]

    # full-size faces with known landmarks: try the cache first
    keys: dict[int, str] = {}
    if landmarks == "full":
        keys = {i: embedding_key(encoder, a, a.landmarks if alignment == "template" else a.dlib_shape,
                                 flip, alignment, raw)
                for i, a in enumerate(annotations) if factors[i] >= 1.0}
        hits = cache.get_many("embeddings", keys.values())
        done = set()
        for i, key in keys.items():
            if key in hits:
                vectors[i] = np.frombuffer(hits[key], np.float32)
                done.add(i)
        todo = [i for i in range(n) if i not in done]
    else:
        todo = list(range(n))

    from tqdm import tqdm

    size_s = encoder.align_spec.size
    batch = min(256, max(EMBED_BATCH, int(getattr(encoder, "batch_size", 1))))
    chips = np.zeros((batch, size_s, size_s, 3), np.uint8)
    slots: list[int] = []
    fresh: dict[str, bytes] = {}

    def flush() -> None:
        if not slots:
            return
        out = _embed_chips(encoder, chips[: len(slots)], flip, raw)
        for j, i in enumerate(slots):
            vectors[i] = out[j]
            if i in keys:
                fresh[keys[i]] = out[j].tobytes()
        slots.clear()
        if len(fresh) >= 256:
            cache.put_many("embeddings", fresh)
            fresh.clear()

    for i in tqdm(todo, desc=desc, unit="face", disable=not progress, leave=False):
        a = annotations[i]
        image = read_image(a.path)
        f = factors[i]
        if landmarks == "full":
            lm = a.landmarks
        else:
            lm = detect_landmarks_small(image, f)
            if lm is None:
                detected[i] = False
                continue
            if f >= 1.0:  # unchanged image, detected landmarks: cacheable too
                key = embedding_key(encoder, a, lm, flip, alignment, raw)
                hit = cache.get_many("embeddings", [key])
                if key in hit:
                    vectors[i] = np.frombuffer(hit[key], np.float32)
                    continue
                keys[i] = key
        picture = shrink_and_restore(image, f) if f < 1.0 else image
        if alignment == "dlib-chip":
            chips[len(slots)] = dlib_chip(picture, a.dlib_shape, size_s)
        else:
            chips[len(slots)] = encoder.align(picture, lm[None])[0]
        slots.append(i)
        if len(slots) == batch:
            flush()
    flush()
    cache.put_many("embeddings", fresh)
    return Embedded(vectors, detected)
