"""The tiny-face strategy: native pass + enlarged, tiled pass + a cross-tile merge.

Detectors trained on ordinary photos miss faces under ~15 px: their smallest anchors are
16 px. Enlarging the frame (``cfg.upscale``, bilinear) brings 6-12 px faces into the range
they were trained on. The enlarged frame can be cut into overlapping tiles of
``cfg.tile_size`` enlarged pixels (bounded memory; equal tiles batch well on a GPU); an
optional pass at native scale finds the large faces that the enlarged pass cuts or
outgrows. All candidates are mapped back to frame pixels and merged:

1. a box that touches an *inner* tile edge (a tile edge that is not the image border) is
   a face cut by that edge; it is dropped when another tile of the same pass holds that
   face whole (the box grown across the cut edge lies inside the other tile, away from
   its own inner edges) - that tile reports the whole face;
2. greedy suppression in score order (uncut boxes before cut ones) removes a box whose
   IoU with a kept one exceeds ``cfg.nms_iou`` or which lies mostly (``contain``) inside
   a kept box of comparable size;
3. faces whose box height is outside [``cfg.min_face_px``, ``cfg.max_face_px``] go.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..config import DetectorConfig
from ..types import FaceDetections
from .base import FaceDetector, check_image
from .boxes import areas, greedy_suppress, intersections

__all__ = ["TiledDetector", "tile_grid", "DetectTimings"]


def _axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    if tile <= 0 or length <= tile:
        return [0]
    step = max(1, tile - overlap)
    n = int(np.ceil((length - tile) / step)) + 1
    # spread the tiles evenly so every overlap is at least ``overlap``
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


def tile_grid(width: int, height: int, tile_size: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Equal-sized tiles ``(x0, y0, x1, y1)`` covering a ``width`` x ``height`` image.

    ``tile_size`` 0 (or larger than the image) gives the whole image along that axis.
    Neighbouring tiles overlap by at least ``overlap`` pixels.
    """
    tw = width if tile_size <= 0 else min(tile_size, width)
    th = height if tile_size <= 0 else min(tile_size, height)
    xs = _axis_starts(width, tw, overlap)
    ys = _axis_starts(height, th, overlap)
    return [(x, y, x + tw, y + th) for y in ys for x in xs]


@dataclass
class DetectTimings:
    """Cumulative counters (milliseconds) since construction or ``reset``."""

    frames: int = 0
    calls: int = 0
    tiles: int = 0  # base-detector inputs (native passes + tiles)
    resize_ms: float = 0.0
    detect_ms: float = 0.0
    merge_ms: float = 0.0
    last: dict = field(default_factory=dict)  # the latest call's figures

    def reset(self) -> None:
        self.frames = self.calls = self.tiles = 0
        self.resize_ms = self.detect_ms = self.merge_ms = 0.0
        self.last = {}

    @property
    def ms_per_frame(self) -> float:
        return (self.resize_ms + self.detect_ms + self.merge_ms) / max(self.frames, 1)


@dataclass
class _Job:
    image_i: int
    pass_id: int  # 0 native, 1 enlarged
    scale_x: float  # pass pixels per frame pixel
    scale_y: float
    rect: tuple[int, int, int, int]  # tile in pass pixels
    inner: tuple[bool, bool, bool, bool]  # left, top, right, bottom edges are inner edges
    pixels: np.ndarray


def merge_pieces(frame_index: int, boxes, scores, landmarks, cut, contain: float,
                 iou: float) -> FaceDetections:
    """Merge detections gathered from overlapping pieces of one frame (tiles, scales, ROIs):
    whole faces win over ones cut by a piece edge, then higher scores; a face is kept once
    (IoU or containment suppression); the result is ordered by score."""
    order = np.lexsort((-scores, cut))
    b, sc, lm = boxes[order], scores[order], landmarks[order]
    keep = greedy_suppress(b, contain, iou)
    out = FaceDetections(frame_index, b[keep], sc[keep], lm[keep])
    return out.select(np.argsort(-out.scores, kind="stable"))


class TiledDetector(FaceDetector):
    """Wraps any ``FaceDetector`` in the upscale + tiles + merge strategy of ``cfg``."""

    def __init__(
        self,
        base: FaceDetector,
        cfg: DetectorConfig,
        *,
        contain: float = 0.7,
        edge_margin_px: float = 3.0,
        max_batch: int = 8,
    ):
        self.base = base
        self.cfg = cfg
        self.contain = contain
        self.edge_margin_px = edge_margin_px
        self.max_batch = max_batch
        self.model_sha256 = base.model_sha256
        up, ts = cfg.upscale, cfg.tile_size
        parts = []
        if self._native_enabled:
            parts.append("native")
        if self._enlarged_enabled:
            parts.append(f"x{up:g}" + (f"/tile{ts}+{cfg.tile_overlap}" if ts > 0 else ""))
        self.name = f"{base.name}[{','.join(parts)}]"
        self.timings = DetectTimings()

    @property
    def _enlarged_enabled(self) -> bool:
        return self.cfg.upscale > 1.0 or self.cfg.tile_size > 0

    @property
    def can_vary_upscale(self) -> bool:
        """Whether ``detect_batch(..., upscale=[...])`` means something: a native pass and an
        enlarging one exist (without the native pass every image gets ``cfg.upscale``)."""
        return self.cfg.native_pass and self.cfg.upscale > 1.0

    @property
    def _native_enabled(self) -> bool:
        return self.cfg.native_pass or not self._enlarged_enabled

    # -- planning -------------------------------------------------------------
    def _jobs(self, i: int, img: np.ndarray, upscale: float | None = None) -> list[_Job]:
        h, w = img.shape[:2]
        jobs: list[_Job] = []
        up = self.cfg.upscale
        if upscale is not None and self.can_vary_upscale:
            up = min(max(float(upscale), 1.0), up)
        if self._native_enabled:
            jobs.append(_Job(i, 0, 1.0, 1.0, (0, 0, w, h), (False,) * 4, img))
        if self._enlarged_enabled and (up > 1.0 or self.cfg.upscale <= 1.0):
            if up > 1.0:
                import cv2

                bw, bh = int(round(w * up)), int(round(h * up))
                big = cv2.resize(img, (bw, bh), interpolation=cv2.INTER_LINEAR)
            else:
                bw, bh, big = w, h, img
            for x0, y0, x1, y1 in tile_grid(bw, bh, self.cfg.tile_size, self.cfg.tile_overlap):
                inner = (x0 > 0, y0 > 0, x1 < bw, y1 < bh)
                jobs.append(_Job(i, 1, bw / w, bh / h, (x0, y0, x1, y1), inner, big[y0:y1, x0:x1]))
        return jobs

    # -- merge ----------------------------------------------------------------
    def _cut_flags(self, boxes: np.ndarray, job: _Job) -> np.ndarray:
        """(N, 4) bool: box (tile pixels) touches the tile's inner left/top/right/bottom edge."""
        x0, y0, x1, y1 = job.rect
        tw, th = x1 - x0, y1 - y0
        m = self.edge_margin_px + 0.05 * np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        flags = np.stack(
            [boxes[:, 0] <= m, boxes[:, 1] <= m, boxes[:, 2] >= tw - m, boxes[:, 3] >= th - m], axis=1
        )
        return flags & np.asarray(job.inner, bool)[None, :]

    def _drop_cut(self, cand: list[tuple[_Job, FaceDetections, np.ndarray]]) -> list[np.ndarray]:
        """Per candidate group, a keep mask: a cut box goes when another tile of its pass
        holds the face whole *and* reported a box there (a face that tile missed is kept)."""
        keeps = []
        by_pass: dict[int, list[tuple[_Job, FaceDetections]]] = {}
        for job, det, _ in cand:
            by_pass.setdefault(job.pass_id, []).append((job, det))
        m = self.edge_margin_px
        for job, det, cut in cand:
            keep = np.ones(len(det), bool)
            for r in np.nonzero(cut.any(axis=1))[0]:
                # the face box in pass pixels, grown by its size across each cut edge
                box = det.boxes[r].astype(np.float64)
                g = max(box[2] - box[0], box[3] - box[1])
                gx0, gy0 = box[0] - g * cut[r, 0], box[1] - g * cut[r, 1]
                gx1, gy1 = box[2] + g * cut[r, 2], box[3] + g * cut[r, 3]
                for other, odet in by_pass[job.pass_id]:
                    if other is job:
                        continue
                    ox0, oy0, ox1, oy1 = other.rect
                    whole = (
                        gx0 >= (ox0 + m if other.inner[0] else -np.inf)
                        and gy0 >= (oy0 + m if other.inner[1] else -np.inf)
                        and gx1 <= (ox1 - m if other.inner[2] else np.inf)
                        and gy1 <= (oy1 - m if other.inner[3] else np.inf)
                    )
                    if not whole:
                        continue
                    inter = intersections(box[None, :], odet.boxes)[0]
                    if (inter >= 0.3 * max(areas(box[None, :])[0], 1e-9)).any():
                        keep[r] = False
                        break
            keeps.append(keep)
        return keeps

    def _merge(self, frame_index: int, cand: list[tuple[_Job, FaceDetections]]) -> FaceDetections:
        # cut flags and cut-box removal work in pass pixels (tile offsets added)
        shifted = []
        for job, det in cand:
            cut = self._cut_flags(det.boxes, job)
            shifted.append((job, det.scaled(1.0, (job.rect[0], job.rect[1])), cut))
        keeps = self._drop_cut(shifted)
        boxes, scores, lms, is_cut = [], [], [], []
        for (job, det, cut), keep in zip(shifted, keeps):
            if not keep.any():
                continue
            s = np.array([job.scale_x, job.scale_y], np.float32)
            boxes.append(det.boxes[keep] / np.tile(s, 2))
            lms.append(det.landmarks[keep] / s)
            scores.append(det.scores[keep])
            is_cut.append(cut[keep].any(axis=1))
        if not boxes:
            return FaceDetections.empty(frame_index)
        b = np.concatenate(boxes)
        sc = np.concatenate(scores)
        lm = np.concatenate(lms)
        cutf = np.concatenate(is_cut)

        h = b[:, 3] - b[:, 1]
        ok = h >= self.cfg.min_face_px
        if self.cfg.max_face_px is not None:
            ok &= h <= self.cfg.max_face_px
        b, sc, lm, cutf = b[ok], sc[ok], lm[ok], cutf[ok]
        if len(b) == 0:
            return FaceDetections.empty(frame_index)

        return merge_pieces(frame_index, b, sc, lm, cutf, self.contain, self.cfg.nms_iou)

    # -- public ---------------------------------------------------------------
    def detect_batch(
        self,
        images: Sequence[np.ndarray],
        frame_indices: Sequence[int] | None = None,
        upscale: Sequence[float | None] | None = None,
    ) -> list[FaceDetections]:
        """Faces in each image. ``upscale[i]`` overrides ``cfg.upscale`` for image ``i``
        (at most it; 1.0 = the native pass alone) where the faces there are known to need
        less enlargement; it applies only when both passes exist (``can_vary_upscale``)."""
        t0 = time.perf_counter()
        imgs = [check_image(im) for im in images]
        indices = self._indices(len(imgs), frame_indices)
        ups = [None] * len(imgs) if upscale is None else list(upscale)
        if len(ups) != len(imgs):
            raise ValueError("upscale needs one factor per image")
        jobs = [j for i, im in enumerate(imgs) for j in self._jobs(i, im, ups[i])]
        t1 = time.perf_counter()

        # equal-sized inputs (tiles, frames of one camera) go through detect_batch together
        results: list[FaceDetections | None] = [None] * len(jobs)
        groups: dict[tuple[int, int], list[int]] = {}
        for k, job in enumerate(jobs):
            groups.setdefault(job.pixels.shape[:2], []).append(k)
        for members in groups.values():
            for s in range(0, len(members), self.max_batch):
                chunk = members[s : s + self.max_batch]
                dets = self.base.detect_batch(
                    [jobs[k].pixels for k in chunk], [indices[jobs[k].image_i] for k in chunk]
                )
                for k, d in zip(chunk, dets):
                    results[k] = d
        t2 = time.perf_counter()

        per_image: list[list[tuple[_Job, FaceDetections]]] = [[] for _ in imgs]
        for job, det in zip(jobs, results):
            if det is not None and len(det):
                per_image[job.image_i].append((job, det))
        out = [self._merge(indices[i], per_image[i]) for i in range(len(imgs))]
        t3 = time.perf_counter()

        tm = self.timings
        tm.calls += 1
        tm.frames += len(imgs)
        tm.tiles += len(jobs)
        tm.resize_ms += (t1 - t0) * 1e3
        tm.detect_ms += (t2 - t1) * 1e3
        tm.merge_ms += (t3 - t2) * 1e3
        tm.last = {
            "frames": len(imgs),
            "tiles": len(jobs),
            "resize_ms": (t1 - t0) * 1e3,
            "detect_ms": (t2 - t1) * 1e3,
            "merge_ms": (t3 - t2) * 1e3,
        }
        return out
