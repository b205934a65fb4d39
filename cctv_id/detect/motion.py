"""Where a fixed camera's picture changed: a cheap running-average background model.

``MotionMap.update(image)`` works on a grey, lightly blurred copy of the frame (from the BGR
image, or straight from the decoder's luma plane: no colour conversion) scaled down to
``MotionConfig.analysis_width`` (320 px: a 1080p frame is reduced 6x), compares it with a
running average of past frames (``cv2.accumulateWeighted``, ``learning_rate``), thresholds the
absolute difference (``threshold`` grey levels), dilates the mask once and returns the
connected changed regions as xyxy boxes in *full-frame* pixels, padded by ``pad_px`` and
merged where they overlap. The first frame (and the first after a change of frame size)
returns the whole frame: nothing is known yet.

Besides the background, the map keeps an **examined reference**: for every analysis pixel,
the grey value it had when detection last searched it with the full tiny-face strategy
(``mark_examined``). A place that equals it would only give the search's answer again, so
``update`` reports motion only where the picture also differs from that reference (the
fading "ghost" a passing object leaves in the background is searched once, not for as long
as it fades), and ``regions(unexamined=True)`` reports every difference from it - changes
too slow to count as motion (the running average follows them), a face that stopped where
no pass looked. Pixels nobody examined keep their old reference, so slow drift accumulates
until it is searched.

The model learns everything, foreground included: an object that stops fades into the
background within ~1 / learning_rate frames, and one that leaves leaves a fading "ghost" for
about as long (an extra region, never a missed one). A global change (lights, auto exposure)
marks most of the frame; the caller then does a full pass anyway.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from ..config import MotionConfig

__all__ = ["MotionMap", "merge_boxes"]

FG_RATE = 0.25  # learning-rate factor for pixels currently marked as changed
LIMITED_GAIN = 255.0 / 219.0  # limited-range luma (16..235) to full-range grey


def merge_boxes(boxes: np.ndarray, gap: float = 0.0, max_waste: float | None = 0.25) -> np.ndarray:
    """Merge xyxy boxes pairwise into their bounding box, repeated until stable; (N, 4) float32.

    Two boxes are merged when they overlap (or lie within ``gap`` of each other) and, with
    ``max_waste`` set, their bounding box is at most ``1 + max_waste`` times the area the two
    cover together (so two overlapping ROIs on a diagonal stay two crops instead of one big,
    mostly empty one; ``None`` merges every overlapping pair). The result covers every input.
    """
    b = [list(map(float, r)) for r in np.asarray(boxes, np.float64).reshape(-1, 4)]
    changed = True
    while changed and len(b) > 1:
        changed = False
        i = 0
        while i < len(b):
            j = i + 1
            while j < len(b):
                p, q = b[i], b[j]
                if (p[0] - gap < q[2] and q[0] - gap < p[2]
                        and p[1] - gap < q[3] and q[1] - gap < p[3]):
                    u = [min(p[0], q[0]), min(p[1], q[1]), max(p[2], q[2]), max(p[3], q[3])]
                    ok = max_waste is None
                    if not ok:
                        ap = (p[2] - p[0]) * (p[3] - p[1])
                        aq = (q[2] - q[0]) * (q[3] - q[1])
                        iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
                        ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
                        au = (u[2] - u[0]) * (u[3] - u[1])
                        ok = au <= (1.0 + max_waste) * (ap + aq - iw * ih)
                    if ok:
                        b[i] = u
                        del b[j]
                        changed = True
                        continue
                j += 1
            i += 1
    return np.asarray(b, np.float32).reshape(-1, 4)


class MotionMap:
    """Running-average background model of one fixed camera; see the module docstring."""

    def __init__(self, cfg: MotionConfig | None = None):
        self.cfg = cfg or MotionConfig()
        self._bg: np.ndarray | None = None  # float32 (ah, aw) running average
        self._frame_hw: tuple[int, int] | None = None
        self._scale = (1.0, 1.0)  # full-frame pixels per analysis pixel (x, y)
        self._kernel = np.ones((3, 3), np.uint8)
        self.mask: np.ndarray | None = None  # the latest changed-pixel mask (analysis size)
        self.grey: np.ndarray | None = None  # the latest frame's analysis image
        self._ref: np.ndarray | None = None  # analysis image as detection last examined it
        self._changed: np.ndarray | None = None  # latest frame != reference (analysis size)
        self._search: np.ndarray | None = None  # motion that is also a change: update's mask
        self.frames = 0
        self.ms = 0.0  # total time spent in update()

    def reset(self) -> None:
        """Forget the background (a new stream, a camera that moved)."""
        self._bg = None
        self._frame_hw = None
        self.mask = None
        self.grey = None
        self._ref = None
        self._changed = None
        self._search = None

    def state(self) -> dict:
        """What the next ``update`` depends on (background, examined reference, geometry)."""
        return {"bg": None if self._bg is None else self._bg.copy(),
                "ref": None if self._ref is None else self._ref.copy(),
                "frame_hw": self._frame_hw, "scale": self._scale}

    def restore(self, state: dict) -> None:
        self.reset()
        self._bg, self._ref = state.get("bg"), state.get("ref")
        hw = state.get("frame_hw")
        self._frame_hw = None if hw is None else (int(hw[0]), int(hw[1]))
        self._scale = tuple(state.get("scale") or (1.0, 1.0))

    def _analysis(self, image: np.ndarray, limited: bool = False) -> np.ndarray:
        h, w = image.shape[:2]
        aw = max(1, min(int(self.cfg.analysis_width), w))
        ah = max(1, int(round(h * aw / w)))
        if w >= 2 * aw:
            # bilinear to twice the target, then 2x2 averaging: ~10x faster than INTER_AREA at
            # non-integer factors, and still an average rather than a point sample
            big = cv2.resize(image, (2 * aw, 2 * ah), interpolation=cv2.INTER_LINEAR)
            small = cv2.resize(big, (aw, ah), interpolation=cv2.INTER_AREA)
        else:
            small = cv2.resize(image, (aw, ah), interpolation=cv2.INTER_LINEAR)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        if limited:  # "TV" luma (16..235) stretched to full range: thresholds mean the same
            grey = cv2.convertScaleAbs(grey, alpha=LIMITED_GAIN, beta=-16.0 * LIMITED_GAIN)
        # a light blur: sensor noise and compression blocks are not motion
        return cv2.GaussianBlur(grey, (3, 3), 0)

    def update(self, image: np.ndarray, limited: bool = False) -> np.ndarray:
        """Changed regions of ``image`` as (N, 4) float32 xyxy full-frame boxes. ``image``
        is uint8 BGR or a grey (H, W) plane - a decoder's luma, ``limited`` when it is
        limited-range (16..235) video luma."""
        t0 = time.perf_counter()
        h, w = image.shape[:2]
        grey = self._analysis(image, limited)
        self.grey = grey
        if self._bg is None or self._frame_hw != (h, w):
            self._bg = grey.astype(np.float32)
            self._ref = None
            self._frame_hw = (h, w)
            self._scale = (w / grey.shape[1], h / grey.shape[0])
            self.mask = np.full(grey.shape, 255, np.uint8)
            self._changed = self._search = self.mask
            self.frames += 1
            self.ms += (time.perf_counter() - t0) * 1e3
            return np.array([[0.0, 0.0, w, h]], np.float32)

        bg_u8 = cv2.convertScaleAbs(self._bg)
        mask = self._differs(grey, bg_u8)
        # selective update: changed pixels learn FG_RATE times slower, so a passing object
        # leaves no long ghost trail, while one that stops is still absorbed eventually
        lr = float(self.cfg.learning_rate)
        cv2.accumulateWeighted(grey, self._bg, lr, mask=cv2.bitwise_not(mask))
        cv2.accumulateWeighted(grey, self._bg, lr * FG_RATE, mask=mask)
        self.mask = mask
        if self._ref is None:
            self._changed, self._search = np.full_like(mask, 255), mask
        else:
            self._changed = self._differs(grey, self._ref)
            self._search = cv2.bitwise_and(mask, self._changed)
        boxes = self._regions(self._search, w, h)
        self.frames += 1
        self.ms += (time.perf_counter() - t0) * 1e3
        return boxes

    def _differs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """255 where two analysis images differ by more than ``threshold`` grey levels,
        dilated once."""
        _, mask = cv2.threshold(cv2.absdiff(a, b), int(self.cfg.threshold), 255,
                                cv2.THRESH_BINARY)
        return cv2.dilate(mask, self._kernel)

    # -- what detection has examined -------------------------------------------
    def _inner_cells(self, rect) -> tuple[int, int, int, int]:
        """Analysis pixels lying wholly inside the frame rectangle ``rect``, less one more
        on inner sides (where the blur mixes in pixels from outside): (ax0, ay0, ax1, ay1)."""
        h, w = self._frame_hw
        ah, aw = self.grey.shape
        sx, sy = self._scale
        x0, y0, x1, y1 = rect
        ax0 = 0 if x0 <= 0 else int(np.ceil(x0 / sx)) + 1
        ay0 = 0 if y0 <= 0 else int(np.ceil(y0 / sy)) + 1
        ax1 = aw if x1 >= w else int(np.floor(x1 / sx)) - 1
        ay1 = ah if y1 >= h else int(np.floor(y1 / sy)) - 1
        return ax0, ay0, ax1, ay1

    def mark_examined(self, rects) -> None:
        """Detection searched these integer xyxy frame rectangles of the latest frame with
        the full strategy: remember their content (see ``_inner_cells``)."""
        if self.grey is None or self._frame_hw is None:
            return
        h, w = self._frame_hw
        if self._ref is None:
            if any(r[0] <= 0 and r[1] <= 0 and r[2] >= w and r[3] >= h for r in rects):
                self._ref = self.grey.copy()
            return  # before one complete look there is nothing to compare with
        for rect in rects:
            ax0, ay0, ax1, ay1 = self._inner_cells(rect)
            if ax1 > ax0 and ay1 > ay0:
                self._ref[ay0:ay1, ax0:ax1] = self.grey[ay0:ay1, ax0:ax1]

    def regions(self, exclude=(), unexamined: bool = False) -> np.ndarray:
        """The latest frame's search regions as ``update`` returned them, or with
        ``unexamined`` every difference from what detection last examined; without what lies
        wholly inside the ``exclude`` frame rectangles (searched another way). (N, 4) float32
        xyxy frame boxes (padded, merged); the whole frame before any complete look."""
        if self.grey is None or self._frame_hw is None:
            return np.zeros((0, 4), np.float32)
        h, w = self._frame_hw
        mask = self._changed if unexamined else self._search
        if len(exclude):
            mask = mask.copy()
            for rect in exclude:
                ax0, ay0, ax1, ay1 = self._inner_cells(rect)
                if ax1 > ax0 and ay1 > ay0:
                    mask[ay0:ay1, ax0:ax1] = 0
        return self._regions(mask, w, h)

    def _regions(self, mask: np.ndarray, w: int, h: int) -> np.ndarray:
        if not cv2.countNonZero(mask):
            return np.zeros((0, 4), np.float32)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n <= 1:
            return np.zeros((0, 4), np.float32)
        st = stats[1:].astype(np.float32)
        sx, sy = self._scale
        keep = st[:, cv2.CC_STAT_AREA] * sx * sy >= self.cfg.min_area_px
        st = st[keep]
        if len(st) == 0:
            return np.zeros((0, 4), np.float32)
        x0 = st[:, cv2.CC_STAT_LEFT] * sx
        y0 = st[:, cv2.CC_STAT_TOP] * sy
        x1 = x0 + st[:, cv2.CC_STAT_WIDTH] * sx
        y1 = y0 + st[:, cv2.CC_STAT_HEIGHT] * sy
        p = float(self.cfg.pad_px)
        boxes = np.stack([x0 - p, y0 - p, x1 + p, y1 + p], axis=1)
        boxes = merge_boxes(boxes)
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        return boxes

    @property
    def ms_per_frame(self) -> float:
        return self.ms / max(self.frames, 1)
