"""Multi-face tracker for small faces: size-scaled gating, re-linking, best-K samples.

Detections are associated to live tracks with the Hungarian algorithm (scipy's
``linear_sum_assignment``) on a cost that is the distance between a track's predicted
centre (constant velocity) and a detection's centre, divided by a gate that scales with the
face's size and with the time since the track was last seen: a 10 px face can move more
than its own width between two detections, a 60 px face rarely does. Pairs whose face size
changes by more than ``max_size_ratio`` are never matched.

A track that has not been seen for ``max_missed_s`` is closed but kept for
``relink_max_gap_s`` as a candidate: a new face appearing near where that track was heading
continues it under the same id (re-linking across short occlusions and missed detections).
Only after that window is a track handed on, as a ``Track`` record carrying its best-K
samples (highest quality first), each with a small image patch for later alignment.

Evidence kept per track on the way: its trajectory (frame index and box of each detection,
thinned evenly to at most ``MAX_TRAJECTORY_POINTS`` for very long tracks, the first and the
last detection always kept) and a context frame for the current best sample (the whole
frame, downscaled to ``CONTEXT_LONG_SIDE`` and JPEG-encoded only when a new sample becomes
the best, so a live track holds kilobytes rather than decoded frames).

Why not an off-the-shelf MOT package: the gating rule, the size test, the best-K selection
with image patches and the re-link window are the parts that matter here; general trackers
(norfair, SORT variants) gate with a fixed distance or IoU, which fails for 8-15 px faces
whose boxes do not overlap between detections. The solved part, the assignment, comes from
scipy.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..config import TrackerConfig
from ..types import ContextFrame, FaceDetections, FaceSample, Frame, Track
from .quality import face_quality

_INF = 1e6
MAX_TRAJECTORY_POINTS = 600  # per track; longer tracks are thinned evenly
CONTEXT_LONG_SIDE = 960  # px: context frames are downscaled to at most this long side
CONTEXT_JPEG_QUALITY = 85
# a track may skip detection rounds (``search_hints(every > 1)``) once it has this many
# detections and its last one was within REST_MAX_RESIDUAL face heights of the prediction
REST_MIN_DETECTIONS = 3
REST_MAX_RESIDUAL = 0.5


def encode_context(image: np.ndarray, frame_index: int, long_side: int = CONTEXT_LONG_SIDE,
                   quality: int = CONTEXT_JPEG_QUALITY) -> ContextFrame | None:
    """The whole frame, downscaled to ``long_side`` at most and JPEG-encoded."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, long_side / max(h, w, 1))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        return None
    return ContextFrame(frame_index=int(frame_index), jpeg=buf.tobytes(), scale=float(scale),
                        width=int(image.shape[1]), height=int(image.shape[0]))


@dataclass
class _LiveTrack:
    track_id: int
    first_frame: int
    first_pts_s: float
    first_wall_time: datetime | None
    last_frame: int
    last_pts_s: float
    last_wall_time: datetime | None
    center: np.ndarray  # (2,) last observed centre
    velocity: np.ndarray  # (2,) px per second
    face_px: float  # last observed face height
    n_detections: int = 1
    max_face_px: float = 0.0
    ended_pts_s: float | None = None  # set while waiting in the re-link window
    samples: list = field(default_factory=list)  # min-heap of (quality, seq, FaceSample)
    # evidence: an even grid of trajectory points (every traj_step-th detection) plus the
    # newest point when it is off the grid; the context frame of the best sample so far
    traj: list = field(default_factory=list)
    traj_step: int = 1
    traj_count: int = 0
    traj_tail: tuple | None = None
    best_quality: float = -1.0
    context: ContextFrame | None = None
    # how well the motion model predicted the last sighting (distance / face height) and the
    # detection round it came in (``FaceTracker.search_hints`` lets such a track rest)
    residual: float = float("inf")
    last_round: int = 0

    def add_point(self, frame_index: int, box) -> None:
        point = (int(frame_index), *(round(float(v), 2) for v in box[:4]))
        on_grid = self.traj_count % self.traj_step == 0
        self.traj_count += 1
        if on_grid:
            self.traj.append(point)
            if len(self.traj) >= MAX_TRAJECTORY_POINTS:  # keep every other: the grid doubles
                self.traj = self.traj[::2]
                self.traj_step *= 2
        self.traj_tail = None if self.traj and self.traj[-1] is point else point

    def trajectory(self) -> tuple:
        return tuple(self.traj) + ((self.traj_tail,) if self.traj_tail is not None else ())

    def upgrade(self) -> None:
        """Fill what a checkpoint written before these fields existed lacks."""
        for name, value in (("traj", []), ("traj_step", 1), ("traj_count", 0),
                            ("traj_tail", None), ("context", None),
                            ("residual", float("inf")), ("last_round", 0)):
            self.__dict__.setdefault(name, value)
        if "best_quality" not in self.__dict__:
            self.best_quality = max((q for q, _, _ in self.samples), default=-1.0)

    def predicted_center(self, pts_s: float) -> np.ndarray:
        dt = max(0.0, pts_s - self.last_pts_s)
        return self.center + self.velocity * dt


class FaceTracker:
    """Online tracker. Feed frames in order with ``update``; collect finished tracks.

    ``update(frame, detections)`` handles a frame the detector ran on (a detection round);
    ``advance(frame)`` handles a frame it skipped (tracks are carried by prediction and may
    time out). Both return the tracks that are finished for good. ``flush()`` ends
    everything. A track the round did not search (``search_hints``) is simply not seen in
    it, as on a skipped frame: only time since its last sighting ends a track.
    """

    def __init__(self, cfg: TrackerConfig, fps: float, camera: str = "",
                 context_frames: bool = True):
        self.cfg = cfg
        self.fps = fps if fps and fps > 0 else 25.0
        self.camera = camera
        self.context_frames = context_frames  # keep a context frame of each track's best shot
        self.n_context_encodes = 0
        self._live: list[_LiveTrack] = []
        self._closing: list[_LiveTrack] = []  # ended, still inside the re-link window
        self._next_id = 1
        self._next_seq = 0
        self.n_relinked = 0
        self._round = 0  # detection rounds (update calls) so far

    # ------------------------------------------------------------------ public API
    @property
    def live_tracks(self) -> int:
        return len(self._live)

    @property
    def open_tracks(self) -> int:
        """Live tracks plus ended ones still waiting in the re-link window."""
        return len(self._live) + len(self._closing)

    def update(self, frame: Frame, dets: FaceDetections) -> list[Track]:
        self._round += 1
        finished = self._expire(frame.pts_s)
        det_centers = dets.centers
        det_heights = dets.heights
        matched_dets: set[int] = set()
        if self._live and len(dets):
            cost = self._cost(self._live, frame.pts_s, det_centers, det_heights)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] <= 1.0:
                    self._observe(self._live[r], frame, dets, c)
                    matched_dets.add(int(c))
        for j in range(len(dets)):
            if j in matched_dets:
                continue
            revived = self._relink(frame, det_centers[j], float(det_heights[j]))
            if revived is not None:
                self._observe(revived, frame, dets, j)
                self._live.append(revived)
                self.n_relinked += 1
            else:
                self._live.append(self._start(frame, dets, j))
        return finished

    def advance(self, frame: Frame) -> list[Track]:
        return self._expire(frame.pts_s)

    def flush(self) -> list[Track]:
        done = [self._finish(t) for t in self._closing + self._live]
        self._closing, self._live = [], []
        return sorted(done, key=lambda t: t.track_id)

    def snapshot(self, pts_s: float, min_age_s: float) -> list[Track]:
        """Live tracks that have lasted at least ``min_age_s`` by ``pts_s``, as ``Track``
        records of what they hold so far (they stay live; a long track can thus be
        recognised while it goes on, e.g. every few seconds by the live daemon)."""
        return [self._finish(t) for t in self._live if pts_s - t.first_pts_s >= min_age_s]

    def predicted_boxes(self, pts_s: float) -> np.ndarray:
        """Where the live tracks are expected at ``pts_s``: (N, 4) xyxy boxes (face size)."""
        boxes = []
        for t in self._live:
            cx, cy = t.predicted_center(pts_s)
            h = t.face_px
            boxes.append([cx - 0.45 * h, cy - 0.5 * h, cx + 0.45 * h, cy + 0.5 * h])
        return np.asarray(boxes, np.float32).reshape(-1, 4)

    def search_hints(self, pts_s: float, every: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """The predicted boxes at ``pts_s`` split for the next detection round: (due,
        resting). With ``every`` > 1 a confirmed track (``REST_MIN_DETECTIONS``) whose last
        sighting was where it was predicted (``REST_MAX_RESIDUAL``) rests until ``every``
        rounds have passed since that sighting, so it is searched on every ``every``-th round
        while it stays predictable; any other track is due on every round."""
        boxes = self.predicted_boxes(pts_s)
        upcoming = self._round + 1
        rest = np.array([
            every > 1 and t.n_detections >= REST_MIN_DETECTIONS
            and t.residual <= REST_MAX_RESIDUAL and upcoming - t.last_round < every
            for t in self._live], bool)
        return boxes[~rest], boxes[rest]

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        """Everything needed to continue exactly where this tracker is (see track/state.py)."""
        return {
            "live": self._live,
            "closing": self._closing,
            "next_id": self._next_id,
            "next_seq": self._next_seq,
            "n_relinked": self.n_relinked,
            "round": self._round,
        }

    def restore(self, state: dict) -> None:
        self._live = list(state["live"])
        self._closing = list(state["closing"])
        for t in self._live + self._closing:
            t.upgrade()
        self._next_id = int(state["next_id"])
        self._next_seq = int(state["next_seq"])
        self.n_relinked = int(state["n_relinked"])
        self._round = int(state.get("round", 0))

    # ------------------------------------------------------------------ internals
    def _take_id(self) -> int:
        tid = self._next_id
        self._next_id += 1
        return tid

    def _gate(self, track: _LiveTrack, pts_s: float, radius_face_sizes: float) -> float:
        steps = max(1.0, (pts_s - track.last_pts_s) * self.fps)
        base = max(self.cfg.min_gate_px, radius_face_sizes * track.face_px)
        # uncertainty grows with the square root of the frames elapsed since the last sighting
        return base * float(np.sqrt(steps))

    def _cost(self, tracks, pts_s, centers, heights) -> np.ndarray:
        cost = np.full((len(tracks), len(centers)), _INF, np.float64)
        for i, t in enumerate(tracks):
            pred = t.predicted_center(pts_s)
            gate = self._gate(t, pts_s, self.cfg.gate_face_sizes)
            dist = np.linalg.norm(centers - pred, axis=1)
            ratio = np.maximum(heights, 1e-3) / max(t.face_px, 1e-3)
            ratio = np.maximum(ratio, 1.0 / ratio)
            ok = ratio <= self.cfg.max_size_ratio
            cost[i, ok] = dist[ok] / gate
        cost[cost > 1.0] = _INF
        return cost

    def _start(self, frame: Frame, dets: FaceDetections, j: int) -> _LiveTrack:
        box = dets.boxes[j]
        center = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float32)
        t = _LiveTrack(
            track_id=self._take_id(),
            first_frame=frame.index,
            first_pts_s=frame.pts_s,
            first_wall_time=frame.wall_time,
            last_frame=frame.index,
            last_pts_s=frame.pts_s,
            last_wall_time=frame.wall_time,
            center=center,
            velocity=np.zeros(2, np.float32),
            face_px=float(box[3] - box[1]),
            n_detections=0,
        )
        self._observe(t, frame, dets, j, first=True)
        return t

    def _observe(self, t: _LiveTrack, frame: Frame, dets: FaceDetections, j: int, first=False):
        box = dets.boxes[j]
        center = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float32)
        face_px = float(box[3] - box[1])
        if not first:
            miss = float(np.linalg.norm(center - t.predicted_center(frame.pts_s)))
            t.residual = miss / max(t.face_px, 1.0)
            dt = frame.pts_s - t.last_pts_s
            if dt > 0:
                v = (center - t.center) / dt
                t.velocity = v if t.n_detections <= 1 else 0.5 * t.velocity + 0.5 * v
        t.center = center
        t.face_px = 0.3 * t.face_px + 0.7 * face_px if not first else face_px
        t.last_frame, t.last_pts_s, t.last_wall_time = frame.index, frame.pts_s, frame.wall_time
        t.last_round = self._round
        t.n_detections += 1
        t.max_face_px = max(t.max_face_px, face_px)
        t.ended_pts_s = None
        t.add_point(frame.index, box)
        self._keep_sample(t, frame, box, dets.landmarks[j], float(dets.scores[j]), face_px)

    def _keep_sample(self, t: _LiveTrack, frame: Frame, box, landmarks, score, face_px):
        quality = face_quality(frame.image, box, landmarks, score)
        k = self.cfg.best_k
        if len(t.samples) >= k and quality <= t.samples[0][0]:
            return
        sample = self._make_sample(frame, box, landmarks, score, face_px, quality)
        entry = (quality, self._next_seq, sample)
        self._next_seq += 1
        if len(t.samples) < k:
            heapq.heappush(t.samples, entry)
        else:
            heapq.heapreplace(t.samples, entry)
        if quality > t.best_quality:  # the new best shot (ties keep the earlier one)
            t.best_quality = quality
            if self.context_frames:
                t.context = encode_context(frame.image, frame.index)
                self.n_context_encodes += 1

    def _make_sample(self, frame, box, landmarks, score, face_px, quality) -> FaceSample:
        h, w = frame.image.shape[:2]
        bw, bh = box[2] - box[0], box[3] - box[1]
        grow = self.cfg.patch_context * max(bw, bh)
        x1 = int(max(0, np.floor(box[0] - grow)))
        y1 = int(max(0, np.floor(box[1] - grow)))
        x2 = int(min(w, np.ceil(box[2] + grow)))
        y2 = int(min(h, np.ceil(box[3] + grow)))
        patch = np.ascontiguousarray(frame.image[y1:y2, x1:x2]).copy()
        return FaceSample(
            frame_index=frame.index,
            pts_s=frame.pts_s,
            wall_time=frame.wall_time,
            box=np.asarray(box, np.float32).copy(),
            landmarks=np.asarray(landmarks, np.float32).copy(),
            score=score,
            face_px=face_px,
            quality=quality,
            patch=patch,
            patch_origin=(x1, y1),
        )

    def _expire(self, pts_s: float) -> list[Track]:
        still_live = []
        for t in self._live:
            if pts_s - t.last_pts_s > self.cfg.max_missed_s:
                t.ended_pts_s = t.last_pts_s
                self._closing.append(t)
            else:
                still_live.append(t)
        self._live = still_live
        finished, waiting = [], []
        for t in self._closing:
            if pts_s - t.last_pts_s > self.cfg.relink_max_gap_s:
                finished.append(self._finish(t))
            else:
                waiting.append(t)
        self._closing = waiting
        return finished

    def _relink(self, frame: Frame, center: np.ndarray, face_px: float) -> _LiveTrack | None:
        best, best_cost = None, 1.0
        for t in self._closing:
            gap = frame.pts_s - t.last_pts_s
            if gap <= 0 or gap > self.cfg.relink_max_gap_s:
                continue
            ratio = max(face_px, 1e-3) / max(t.face_px, 1e-3)
            if max(ratio, 1 / ratio) > self.cfg.relink_max_size_ratio:
                continue
            # after a gap the position is less certain, but far less than for a
            # frame-to-frame jump: the gate grows linearly with the gap in seconds
            gate = max(self.cfg.min_gate_px, self.cfg.relink_gate_face_sizes * t.face_px) * (1.0 + gap)
            cost = float(np.linalg.norm(center - t.predicted_center(frame.pts_s))) / gate
            if cost <= best_cost:
                best, best_cost = t, cost
        if best is not None:
            self._closing.remove(best)
        return best

    def _finish(self, t: _LiveTrack) -> Track:
        best = tuple(s for _, _, s in sorted(t.samples, key=lambda e: (-e[0], e[1])))
        return Track(
            track_id=t.track_id,
            camera=self.camera,
            first_frame=t.first_frame,
            last_frame=t.last_frame,
            first_pts_s=t.first_pts_s,
            last_pts_s=t.last_pts_s,
            first_wall_time=t.first_wall_time,
            last_wall_time=t.last_wall_time,
            n_detections=t.n_detections,
            max_face_px=t.max_face_px,
            best=best,
            trajectory=t.trajectory(),
            context=t.context if best and t.context is not None
            and t.context.frame_index == best[0].frame_index else None,
        )
