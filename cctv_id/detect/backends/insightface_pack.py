"""A user-supplied insightface detection model (SCRFD or RetinaFace ONNX), run by insightface.

``cfg.model_path`` names either a ``.onnx`` file or a model-pack folder. In a folder the
detector is found, in this order:
1. an insightface model-package manifest (``manifest.json`` with ``manifest_version: 2``)
   and its ``detection`` task;
2. a file named like a detector (``det_*.onnx``, ``*scrfd*.onnx``, ``*retinaface*.onnx``);
3. among the remaining ``.onnx`` files, the one whose graph has 5 or more outputs (the rule
   insightface's own model router uses for detectors).

The model is loaded with insightface's own classes (``model_zoo.get_model`` -> ``SCRFD``),
so its pre-processing (mean 127.5, std 128, RGB) and anchor decoding are the ones the
weights were trained for. Nothing is ever downloaded: a missing file or folder, or a
folder without a detector, is a ``ModelError``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ...config import DetectorConfig
from ...errors import ModelError
from ...types import FaceDetections
from ..base import FaceDetector, check_image, parse_options

log = logging.getLogger(__name__)

_DET_PATTERNS = ("det_*.onnx", "*scrfd*.onnx", "*retinaface*.onnx", "*det*.onnx")

# ArcFace's 112x112 landmark template, as fractions of a face box (used only for a
# detector without landmark outputs, so that downstream alignment still has 5 points)
_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float32,
) / 112.0


class InsightFaceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # network input (width, height); None = the image size rounded up to a multiple of 32,
    # so the image is fed at its own scale (what the tiled strategy wants)
    input_size: tuple[int, int] | None = None
    max_num: int = Field(0, ge=0)  # keep at most this many faces per image (0 = all)
    static_shape_sessions: bool = True  # insightface: one fixed-shape session per input size
    providers: list[str] | None = None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _n_outputs(path: Path) -> int:
    import onnx

    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception:  # not an ONNX file; ignored when choosing
        return -1
    return len(model.graph.output)


def find_detector_onnx(folder: Path) -> Path:
    """The detection model inside a plain model-pack folder (no manifest)."""
    onnx_files = sorted(p for p in folder.glob("*.onnx") if p.is_file())
    if not onnx_files:
        raise ModelError(f"no .onnx model in detector folder {folder}")
    for pattern in _DET_PATTERNS:
        named = sorted(p for p in folder.glob(pattern) if p.is_file())
        named = [p for p in named if _n_outputs(p) >= 5]
        if named:
            if len(named) > 1:
                log.warning("several detectors in %s; using %s", folder, named[0].name)
            return named[0]
    dets = [p for p in onnx_files if _n_outputs(p) >= 5]
    if not dets:
        names = ", ".join(p.name for p in onnx_files)
        raise ModelError(f"no face-detection model among the .onnx files in {folder} ({names})")
    if len(dets) > 1:
        log.warning("several detectors in %s; using %s", folder, dets[0].name)
    return dets[0]


class InsightFaceDetector(FaceDetector):
    """An insightface SCRFD / RetinaFace ONNX detector adapted to FaceDetections."""

    def __init__(self, cfg: DetectorConfig):
        self.cfg = cfg
        self.opts = parse_options(InsightFaceOptions, cfg.options, "insightface")
        if not cfg.model_path:
            raise ModelError("detector backend 'insightface' needs detector.model_path (a folder or .onnx file)")
        path = Path(cfg.model_path).expanduser()
        if not path.exists():
            raise ModelError(f"insightface detector model not found: {path}")
        try:
            import onnxruntime as ort
            from insightface.model_zoo import get_model
            from insightface.model_zoo.package_manifest import has_model_package_manifest
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelError(f"the insightface backend needs insightface and onnxruntime: {exc}") from exc

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if cfg.threads > 0:
            so.intra_op_num_threads = cfg.threads
        available = ort.get_available_providers()
        providers = self.opts.providers or (
            ["CUDAExecutionProvider", "CPUExecutionProvider"]
            if "CUDAExecutionProvider" in available
            else ["CPUExecutionProvider"]
        )
        kwargs = dict(
            providers=providers,
            sess_options=so,
            download=False,
            static_shape_sessions=self.opts.static_shape_sessions,
        )
        try:
            if path.is_dir() and has_model_package_manifest(path):
                model = get_model(str(path.resolve()), model_task="detection", **kwargs)
                onnx_file = Path(model.model_file)
            else:
                onnx_file = find_detector_onnx(path) if path.is_dir() else path
                if onnx_file.suffix.lower() != ".onnx":
                    raise ModelError(f"not an .onnx model file: {onnx_file}")
                if _n_outputs(onnx_file) < 5:
                    raise ModelError(f"{onnx_file} is not a face-detection model (fewer than 5 outputs)")
                model = get_model(str(onnx_file.resolve()), **kwargs)
        except ModelError:
            raise
        except Exception as exc:  # insightface raises assorted types (ValueError, RuntimeError...)
            raise ModelError(f"cannot load insightface detector from {path}: {exc}") from exc
        if model is None or getattr(model, "taskname", None) != "detection":
            raise ModelError(f"{onnx_file} is not an insightface detection model")
        ctx_id = 0 if providers and providers[0] == "CUDAExecutionProvider" else -1
        prep = dict(det_thresh=cfg.score_threshold, nms_thresh=cfg.nms_iou)
        if self.opts.input_size is not None:
            prep["input_size"] = tuple(self.opts.input_size)
        model.prepare(ctx_id, **prep)
        self.model = model
        self.model_file = onnx_file
        self.model_sha256 = _sha256_file(onnx_file)
        self.name = f"insightface:{onnx_file.stem}"
        self._lock = threading.Lock()
        self._warned_no_kps = False

    def _prepare(self, img: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """The image to hand to insightface and the network input size (width, height).

        With a dynamic graph and no configured size, the image is padded (black, bottom
        and right, as insightface's own letterbox does) to a multiple of 32 and fed at its
        own scale: no resampling, which matters for 8 px faces.
        """
        fixed = getattr(self.model, "static_input_size", None)
        if fixed is not None:
            return img, tuple(fixed)
        if self.opts.input_size is not None:
            return img, tuple(self.opts.input_size)
        h, w = img.shape[:2]
        pw, ph = max(32, math.ceil(w / 32) * 32), max(32, math.ceil(h / 32) * 32)
        if (pw, ph) != (w, h):
            padded = np.zeros((ph, pw, 3), np.uint8)
            padded[:h, :w] = img
            img = padded
        return img, (pw, ph)

    def _adapt(self, det: np.ndarray, kpss: np.ndarray | None, frame_index: int) -> FaceDetections:
        det = np.asarray(det, np.float32).reshape(-1, 5)
        boxes, scores = det[:, :4], det[:, 4]
        if kpss is None or len(kpss) != len(det):
            if len(det) and not self._warned_no_kps:
                log.warning("%s has no landmark outputs; landmarks are estimated from the box", self.name)
                self._warned_no_kps = True
            wh = (boxes[:, 2:] - boxes[:, :2])[:, None, :]
            kpss = boxes[:, None, :2] + _TEMPLATE[None] * wh
        return FaceDetections(frame_index, boxes, scores, np.asarray(kpss, np.float32).reshape(-1, 5, 2))

    def detect_batch(self, images, frame_indices=None) -> list[FaceDetections]:
        imgs = [check_image(im) for im in images]
        indices = self._indices(len(imgs), frame_indices)
        out = []
        for img, fi in zip(imgs, indices):
            fed, size = self._prepare(img)
            with self._lock:
                det, kpss = self.model.detect(fed, input_size=size, max_num=self.opts.max_num)
            out.append(self._adapt(det, kpss, fi))
        return out
