"""What the tracker's evidence (trajectories, context frames) costs on a composite street clip.

Feeds the clip's ground-truth faces as detections (so only the tracker is timed, not the
detector) to a tracker with context frames and to one without, on the same decoded frames,
several rounds each; prints time per frame, context encodes, the JPEG bytes held and the
checkpoint size. Asserts nothing.

    python bench/tracker_evidence.py VIDEO.mp4 [--rounds 5] [--scale 1.0]

VIDEO needs its ``.truth.json`` beside it (tests/helpers/street_scenario.py writes both).
``--scale`` enlarges frames (e.g. 2.5 for 1920x1440) to see the cost at larger sizes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cctv_id.config import TrackerConfig  # noqa: E402
from cctv_id.track.state import dump_tracker  # noqa: E402
from cctv_id.track.tracker import FaceTracker  # noqa: E402
from cctv_id.types import FaceDetections, Frame  # noqa: E402
from cctv_id.video.source import open_video  # noqa: E402
from cctv_id.video.synth import GroundTruth  # noqa: E402


def detections(truth: GroundTruth, index: int, scale: float) -> FaceDetections:
    boxes, lms = [], []
    for f in truth.faces_at(index):
        x1, y1, x2, y2 = (v * scale for v in f.box)
        w, h = x2 - x1, y2 - y1
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        boxes.append([x1, y1, x2, y2])
        lms.append([[cx - 0.2 * w, cy - 0.1 * h], [cx + 0.2 * w, cy - 0.1 * h], [cx, cy + 0.05 * h],
                    [cx - 0.15 * w, cy + 0.25 * h], [cx + 0.15 * w, cy + 0.25 * h]])
    return FaceDetections(index, np.array(boxes).reshape(-1, 4), np.full(len(boxes), 0.9),
                          np.array(lms).reshape(-1, 5, 2))


def run(frames, dets, fps, context: bool) -> tuple[float, FaceTracker, list, int]:
    tracker = FaceTracker(TrackerConfig(), fps, context_frames=context)
    t0 = time.perf_counter()
    tracks = []
    held = 0
    for frame, d in zip(frames, dets):
        tracks += tracker.update(frame, d)
        held = max(held, sum(len(t.context.jpeg) for t in tracker._live if t.context is not None))
    tracks += tracker.flush()
    return time.perf_counter() - t0, tracker, tracks, held


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    truth = GroundTruth.from_json(args.video.with_suffix(".truth.json").read_text())
    with open_video(args.video) as src:
        fps = src.fps
        frames = []
        for f in src:
            img = f.image if args.scale == 1.0 else cv2.resize(f.image, None, fx=args.scale, fy=args.scale)
            frames.append(Frame(f.index, f.pts_s, img))
    dets = [detections(truth, f.index, args.scale) for f in frames]
    h, w = frames[0].image.shape[:2]
    print(f"{len(frames)} frames {w}x{h}, {sum(len(d) for d in dets)} detections")
    # a checkpoint taken halfway (what the archive job stores)
    for context in (False, True):
        times = []
        for _ in range(args.rounds):
            seconds, tracker, tracks, held = run(frames, dets, fps, context)
            times.append(seconds)
        half = FaceTracker(TrackerConfig(), fps, context_frames=context)
        for frame, d in zip(frames[: len(frames) // 2], dets[: len(frames) // 2]):
            half.update(frame, d)
        ctx_bytes = [len(t.context.jpeg) for t in tracks if t.context is not None]
        print(f"context frames {'on ' if context else 'off'}: {1000 * min(times) / len(frames):.2f} ms/frame "
              f"(best of {args.rounds}), {tracker.n_context_encodes} encodes for {len(tracks)} tracks, "
              f"max JPEG bytes held by live tracks {held}, "
              f"mean context {np.mean(ctx_bytes) / 1024 if ctx_bytes else 0:.1f} KB, "
              f"mean trajectory {np.mean([len(t.trajectory) for t in tracks]):.0f} points, "
              f"checkpoint at half {len(dump_tracker(half)) / 1024:.1f} KB")


if __name__ == "__main__":
    main()
