"""Motion-gated detection for fixed cameras: the expensive pass only where it can find faces.

``GatedDetector`` wraps the full detection strategy (``build_detector(cfg)``, a
``TiledDetector``: native + enlarged passes) and, per frame, decides where to run it:

- a **full pass** on the first frame, whenever ``motion.full_pass_every_s`` of video time has
  passed since the last one (the safety net), when motion gating is disabled (moving
  cameras), and when the regions of interest would cover more than
  ``motion.max_roi_fraction`` of the frame (one big input is cheaper than many crops);
- otherwise an **ROI pass**. Regions of interest are the changed regions of ``MotionMap``
  (motion where the picture also differs from what the last search of that place saw) and
  the caller's hints (the predicted boxes of live tracks), each hint grown by
  ``track_margin_face_sizes`` face heights (where the face may have moved) plus
  ``max(pad_px, pad_face_sizes x face height)`` (so a face at the margin is whole); changed
  regions come padded by ``pad_px``. Every ``motion.refresh_every_s`` the ROIs take in all
  **unexamined changes** instead (``MotionMap.regions(unexamined=True)``): a face that faded
  in too slowly to be motion, or stopped where no pass looked, is searched then; a place
  where nothing changed would only give the same answer again. ROIs are widened onto the
  ``ROI_ROUND`` px grid of the frame (at least ``MIN_ROI`` px): crops then share the full
  pass's anchor grid, so a face scores as it would in the full frame, and equal sizes batch
  together. Overlapping ROIs are merged (repeatedly) when their bounding box wastes little
  (``MERGE_WASTE``). Crops get the whole strategy (native + enlarged ``cfg.upscale``),
  except around live tracks whose faces need less to reach ``motion.native_track_px``
  (where the native pass alone is reliable): at or above it the native pass alone
  (``REDUCED_UPSCALE`` lists the reduced enlargements); changes inside such a crop (that
  face moving) are not searched again enlarged. The caller may also name **resting** tracks
  (``FaceTracker.search_hints``: confirmed, well predicted, seen on a recent round): they
  get no crop this round and changes inside the crop they would have had are not searched
  either (that face moving); the tracker carries them to their next round. All crops go
  through one ``detect_batch`` call; boxes are mapped back to the frame and merged across
  crops (whole before cut-by-a-crop-edge, then by score; greedy IoU
  ``cfg.nms_iou`` / containment suppression, as in ``TiledDetector``); what the whole
  strategy searched is marked examined (``MotionMap.mark_examined``);
- **nothing** (no model call) when there is neither motion, nor a hint, nor (when a refresh
  is due) an unexamined change.

Detections are always in full-frame pixels. ``stats`` holds the counters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from ..config import DetectorConfig
from ..types import FaceDetections, Frame
from .base import FaceDetector, check_image
from .motion import MotionMap, merge_boxes
from .tiling import merge_pieces

__all__ = ["GatedDetector", "plan_rois", "MIN_ROI", "ROI_ROUND"]

MIN_ROI = 64  # smallest crop side, frame pixels
ROI_ROUND = 32  # crops lie on this grid of frame pixels (anchor-aligned; sizes batch together)
MERGE_WASTE = 0.25  # overlapping ROIs merge when their bounding box wastes at most this
# enlargements a live track's crop may get instead of the full one. 1.5 was measured too
# (faces from two thirds of native_track_px): 5 % less detection time on the sparse 1080p
# bench clip for one more miss in 204 faces of 20-30 px - not worth it
REDUCED_UPSCALE: tuple[float, ...] = (1.0,)
_CONTAIN = 0.7  # containment suppression across crops (as in TiledDetector)
_EDGE_PX = 2.0  # a box this close to an inner crop edge counts as cut by it


def _align_axis(lo: float, hi: float, limit: int) -> tuple[int, int]:
    """[lo, hi] widened to ``ROI_ROUND``-aligned ends (or the frame edge), at least
    ``MIN_ROI`` long where the frame allows."""
    a = max(0, int(math.floor(lo / ROI_ROUND)) * ROI_ROUND)
    b = min(limit, int(math.ceil(hi / ROI_ROUND)) * ROI_ROUND)
    grow_low = True
    while b - a < MIN_ROI and (a > 0 or b < limit):
        if (grow_low and a > 0) or b >= limit:
            a = max(0, a - ROI_ROUND)
        else:
            b = min(limit, b + ROI_ROUND)
        grow_low = not grow_low
    return a, max(b, a + 1)


def _round_rect(r, w: int, h: int) -> tuple[int, int, int, int]:
    """A crop on the ``ROI_ROUND`` grid of the frame covering ``r``.

    Aligned origins put the crop's anchor grid (strides 8/16/32, also after the 2x
    enlargement) where the full pass has it, so a face scores the same in a crop as in the
    full frame; off-grid crops change tiny-face scores a lot (0.91 -> 0.39 seen)."""
    x0, y0, x1, y1 = (float(v) for v in r)
    ax0, ax1 = _align_axis(x0, x1, w)
    ay0, ay1 = _align_axis(y0, y1, h)
    return ax0, ay0, ax1, ay1


def plan_rois(
    frame_wh: tuple[int, int],
    motion_boxes: np.ndarray,
    hints: np.ndarray,
    cfg,
    max_waste: float | None = MERGE_WASTE,
) -> list[tuple[int, int, int, int]]:
    """Integer crop rectangles (x0, y0, x1, y1) covering ``motion_boxes`` (already padded)
    and ``hints`` (face boxes; grown by the track margin and padding), rounded and merged
    until no two overlap. ``cfg`` is a ``MotionConfig``."""
    w, h = frame_wh
    rects = [np.asarray(motion_boxes, np.float32).reshape(-1, 4)]
    hb = np.asarray(hints, np.float32).reshape(-1, 4)
    if len(hb):
        fh = np.maximum(hb[:, 3] - hb[:, 1], 1.0)
        grow = cfg.track_margin_face_sizes * fh + np.maximum(cfg.pad_px, cfg.pad_face_sizes * fh)
        g = grow[:, None]
        rects.append(np.concatenate([hb[:, :2] - g, hb[:, 2:] + g], axis=1))
    boxes = np.concatenate(rects)
    # drop empty or fully outside boxes
    ok = (boxes[:, 2] > 0) & (boxes[:, 0] < w) & (boxes[:, 3] > 0) & (boxes[:, 1] < h)
    ok &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes = boxes[ok]
    if len(boxes) == 0:
        return []
    cur = [_round_rect(b, w, h) for b in merge_boxes(boxes, max_waste=max_waste)]
    for _ in range(64):  # rounding can create new overlaps; sides only grow, so this ends
        merged = merge_boxes(np.asarray(cur, np.float32), max_waste=max_waste)
        nxt = sorted(_round_rect(b, w, h) for b in merged)
        if nxt == sorted(cur):
            break
        cur = nxt
    return sorted(set(cur))


class GatedDetector(FaceDetector):
    """A ``FaceDetector`` drop-in that also offers ``detect_frame`` (motion/track gated).

    ``detect``/``detect_batch`` are plain full passes (stateless); ``detect_frame`` is the
    gated per-frame call for one camera's frames in order (it keeps that camera's background
    model and the time of its last full pass). One instance per camera.
    """

    def __init__(self, detector: FaceDetector, cfg: DetectorConfig):
        self.detector = detector
        self.cfg = cfg
        self.mcfg = cfg.motion
        self.name = detector.name
        self.model_sha256 = detector.model_sha256
        self.motion = MotionMap(self.mcfg) if self.mcfg.enabled else None
        self._last_full: float | None = None
        self._last_refresh = 0.0
        self.last: dict = {}  # the latest detect_frame's decision (mode, rois, fraction)
        self.reset_stats()

    # -- drop-in ----------------------------------------------------------------
    @property
    def timings(self):
        """The wrapped detector's timings (``TiledDetector.timings``), when it has them."""
        return getattr(self.detector, "timings", None)

    def detect_batch(
        self, images: Sequence[np.ndarray], frame_indices: Sequence[int] | None = None
    ) -> list[FaceDetections]:
        return self.detector.detect_batch(images, frame_indices)

    @property
    def track_search_every(self) -> int:
        """Rounds between searches of a resting track (``FaceTracker.search_hints``)."""
        return self.mcfg.track_search_every

    # -- state ------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the stream (background model, last full pass); counters are kept."""
        if self.motion is not None:
            self.motion.reset()
        self._last_full = None

    def state(self) -> dict:
        """This camera's stream state for a checkpoint: plain arrays and numbers."""
        m = self.motion
        return {"last_full": self._last_full, "last_refresh": self._last_refresh,
                "motion": None if m is None else m.state()}

    def restore(self, state: dict) -> None:
        """Continue a stream from ``state()`` (a resumed run gates as the uninterrupted one)."""
        self._last_full = state.get("last_full")
        self._last_refresh = float(state.get("last_refresh") or 0.0)
        if self.motion is not None and state.get("motion") is not None:
            self.motion.restore(state["motion"])

    def reset_stats(self) -> None:
        self._n = dict(frames=0, full_passes=0, roi_passes=0, empty_frames=0, crops=0,
                       native_crops=0, scaled_crops=0, refreshes=0, rested_tracks=0)
        self._roi_fraction_sum = 0.0
        self._ms = dict(total=0.0, motion=0.0, detect=0.0)

    @property
    def stats(self) -> dict:
        n = self._n
        frames = max(n["frames"], 1)
        return {
            **n,
            "roi_area_fraction_sum": self._roi_fraction_sum,
            "mean_roi_area_fraction": self._roi_fraction_sum / max(n["roi_passes"], 1),
            "no_model_call_fraction": n["empty_frames"] / frames,
            "ms": self._ms["total"],
            "motion_ms": self._ms["motion"],
            "detect_ms": self._ms["detect"],
            "ms_per_frame": self._ms["total"] / frames,
        }

    # -- the gated call ---------------------------------------------------------
    def detect_frame(
        self,
        image: np.ndarray | Frame,
        frame_index: int,
        pts_s: float,
        hints: Sequence[np.ndarray] | np.ndarray = (),
        resting: Sequence[np.ndarray] | np.ndarray = (),
    ) -> FaceDetections:
        """Faces in ``image`` (frame ``frame_index`` at ``pts_s``), searched where there is
        motion or a hint (xyxy frame boxes where a face is expected), with periodic refreshes
        and full passes; see the module docstring. ``resting``: predicted boxes of tracks
        that skip this round (neither they nor motion inside their crops are searched, except
        by a full pass). Given a ``Frame``, the motion model reads
        its luma plane when it has one and the BGR image is asked for only when a model runs
        (a frame with nothing to search is never converted)."""
        t0 = time.perf_counter()
        frame = image if isinstance(image, Frame) else Frame(frame_index, pts_s, check_image(image))
        h, w = frame.height, frame.width
        self._n["frames"] += 1
        mboxes = np.zeros((0, 4), np.float32)
        if self.motion is not None:
            mboxes = (self.motion.update(frame.luma, frame.grey_limited)
                      if frame.luma is not None else self.motion.update(frame.image))
        t1 = time.perf_counter()
        self._ms["motion"] += (t1 - t0) * 1e3

        mc = self.mcfg
        full_due = (
            self.motion is None
            or self._last_full is None
            or pts_s < self._last_full  # time went back: a new stream
            or pts_s - self._last_full >= mc.full_pass_every_s
        )
        refresh_due = not full_due and pts_s - self._last_refresh >= mc.refresh_every_s
        mode, frac = "full", 1.0
        crops: list = []  # (rect, enlargement factor)
        rested: list = []  # crops of the resting tracks, not searched
        if not full_due:
            none = np.zeros((0, 4), np.float32)
            rb = np.asarray(resting, np.float32).reshape(-1, 4)
            rested = plan_rois((w, h), none, rb, mc) if len(rb) else []
            crops = self._plan(w, h, mboxes, hints, refresh_due, rested)
            frac = sum((r[2] - r[0]) * (r[3] - r[1]) for r, _ in crops) / float(w * h)
            if not crops:
                mode = "empty"
            elif frac <= mc.max_roi_fraction:
                mode = "roi"

        full_up = self.cfg.upscale
        if mode == "full":
            out = self.detector.detect(check_image(frame.image), frame_index)
            self._last_full = self._last_refresh = pts_s
            self._n["full_passes"] += 1
            crops, frac, rested = [((0, 0, w, h), full_up)], 1.0, []
        elif mode == "empty":
            out = FaceDetections.empty(frame_index)
            self._n["empty_frames"] += 1
        else:
            out = self._detect_rois(check_image(frame.image), frame_index, crops)
            self._n["roi_passes"] += 1
            self._n["crops"] += len(crops)
            self._n["native_crops"] += sum(f <= 1.0 for _, f in crops)
            self._n["scaled_crops"] += sum(1.0 < f < full_up for _, f in crops)
            self._roi_fraction_sum += frac
        if rested:
            self._n["rested_tracks"] += len(resting)
        searched = [r for r, f in crops if f >= full_up]
        if self.motion is not None and searched:
            self.motion.mark_examined(searched)
        if refresh_due and mode != "full":
            self._last_refresh = pts_s
            self._n["refreshes"] += 1
        t2 = time.perf_counter()
        self._ms["detect"] += (t2 - t1) * 1e3
        self._ms["total"] += (t2 - t0) * 1e3
        self.last = {"mode": mode, "rois": [r for r, _ in crops],
                     "upscale": [f for _, f in crops], "refresh": refresh_due,
                     "roi_fraction": frac, "rested": rested}
        return out

    def _track_upscale(self, heights: np.ndarray) -> np.ndarray:
        """Enlargement each live track's crop needs: enough to bring its face to
        ``native_track_px`` (1.0 = the native pass alone), in steps of ``REDUCED_UPSCALE``,
        the full ``cfg.upscale`` otherwise."""
        full_up = self.cfg.upscale
        ntp = self.mcfg.native_track_px
        out = np.full(len(heights), full_up, np.float64)
        if ntp <= 0 or not getattr(self.detector, "can_vary_upscale", False):
            return out
        need = ntp / np.maximum(heights, 1e-3)
        for step in sorted(REDUCED_UPSCALE, reverse=True):
            if step < full_up:
                out[need <= step] = step
        return out

    def _plan(self, w: int, h: int, mboxes: np.ndarray, hints, refresh: bool,
              rested: list) -> list:
        """The crops to search and the enlargement of each: [(rect, factor)]; ``rested``:
        crops of resting tracks, whose changes are not searched."""
        mc = self.mcfg
        full_up = self.cfg.upscale
        hb = np.asarray(hints, np.float32).reshape(-1, 4) if len(hints) else np.zeros((0, 4))
        ups = self._track_upscale(hb[:, 3] - hb[:, 1])
        none = np.zeros((0, 4), np.float32)
        reduced = [(r, float(f)) for f in sorted(set(ups.tolist()) - {full_up})
                   for r in plan_rois((w, h), none, hb[ups == f], mc)]
        search = mboxes
        if reduced or refresh or rested:
            # changes inside a larger face's crop are that face moving: its own crop covers
            # them (or, resting, its next round does); everything else is searched with the
            # whole strategy
            search = self.motion.regions(exclude=[r for r, _ in reduced] + list(rested),
                                         unexamined=refresh)
        crops = [(r, full_up) for r in plan_rois((w, h), search, hb[ups == full_up], mc)]
        for r, f in reduced:
            if not any(g > f and _covers(q, r) for q, g in crops + reduced):
                crops.append((r, f))
        return crops

    def _detect_rois(self, img: np.ndarray, frame_index: int, crops) -> FaceDetections:
        h, w = img.shape[:2]
        rois = [r for r, _ in crops]
        pieces = [img[y0:y1, x0:x1] for x0, y0, x1, y1 in rois]
        # one call: the strategy groups equal-sized inputs into model batches itself
        if any(f < self.cfg.upscale for _, f in crops):
            dets = self.detector.detect_batch(pieces, [frame_index] * len(pieces),
                                              upscale=[f for _, f in crops])
        else:
            dets = self.detector.detect_batch(pieces, [frame_index] * len(pieces))
        boxes, scores, lms, cut = [], [], [], []
        for (x0, y0, x1, y1), d in zip(rois, dets):
            if not len(d):
                continue
            d = d.scaled(1.0, (x0, y0))
            b = d.boxes
            inner = np.array([x0 > 0, y0 > 0, x1 < w, y1 < h])
            edge = np.stack([
                b[:, 0] <= x0 + _EDGE_PX, b[:, 1] <= y0 + _EDGE_PX,
                b[:, 2] >= x1 - _EDGE_PX, b[:, 3] >= y1 - _EDGE_PX,
            ], axis=1)
            boxes.append(b)
            scores.append(d.scores)
            lms.append(d.landmarks)
            cut.append((edge & inner[None, :]).any(axis=1))
        if not boxes:
            return FaceDetections.empty(frame_index)
        b = np.concatenate(boxes)
        sc = np.concatenate(scores)
        lm = np.concatenate(lms)
        cf = np.concatenate(cut)
        return merge_pieces(frame_index, b, sc, lm, cf, _CONTAIN, self.cfg.nms_iou)


def _covers(outer, inner) -> bool:
    return (outer[0] <= inner[0] and outer[1] <= inner[1]
            and outer[2] >= inner[2] and outer[3] >= inner[3])
