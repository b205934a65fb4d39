"""Faces found and time per frame on vtest.avi for the detector's scale strategies.

Native scale only vs the frame enlarged 2x (whole) vs enlarged 2x and cut into tiles, on
every Nth frame of the street clip. Prints a table; asserts nothing.

    python bench/detect_scales.py [--video PATH] [--every 10] [--threads 0] [--limit 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cctv_id.config import DetectorConfig  # noqa: E402
from cctv_id.detect import build_detector  # noqa: E402

DEFAULT_VIDEO = Path(os.environ.get("CCTV_ID_SHARED_DATA", REPO.parent / "shared" / "data")) / "video" / "vtest.avi"

STRATEGIES = {
    "native only": dict(upscale=1.0, tile_size=0, native_pass=True),
    "2x whole frame": dict(upscale=2.0, tile_size=0, native_pass=False),
    "2x whole + native": dict(upscale=2.0, tile_size=0, native_pass=True),
    "2x tiles 640/96": dict(upscale=2.0, tile_size=640, tile_overlap=96, native_pass=False),
    "2x tiles 640/96 + native": dict(upscale=2.0, tile_size=640, tile_overlap=96, native_pass=True),
    "2x tiles 512/64": dict(upscale=2.0, tile_size=512, tile_overlap=64, native_pass=False),
    "2x tiles 800/96": dict(upscale=2.0, tile_size=800, tile_overlap=96, native_pass=False),
    "3x tiles 640/96": dict(upscale=3.0, tile_size=640, tile_overlap=96, native_pass=False),
}


def frames(path: Path, every: int, limit: int) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every == 0:
                out.append(frame.to_ndarray(format="bgr24"))
                if limit and len(out) >= limit:
                    break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="at most this many sampled frames")
    ap.add_argument("--backend", default="retinaface")
    ap.add_argument("--score", type=float, default=0.5, help="score threshold")
    ap.add_argument("--only", nargs="*", help="strategy names to run")
    args = ap.parse_args()
    if not args.video.exists():
        sys.exit(f"video not found: {args.video}")
    imgs = frames(args.video, args.every, args.limit)
    h, w = imgs[0].shape[:2]
    print(f"{args.video.name}: {len(imgs)} frames (every {args.every}th), {w}x{h}, backend {args.backend}")
    chosen = {k: v for k, v in STRATEGIES.items() if not args.only or k in args.only}
    dets = {}
    for label, kw in chosen.items():
        cfg = DetectorConfig(backend=args.backend, threads=args.threads, score_threshold=args.score,
                             min_face_px=0.0, **kw)
        dets[label] = build_detector(cfg)
        dets[label].detect(imgs[0])  # warm-up
        dets[label].timings.reset()
    # strategies interleaved frame by frame (rotating order), so that load from other
    # processes on a shared machine falls on all of them alike
    faces = {k: 0 for k in dets}
    with_faces = {k: 0 for k in dets}
    heights = {k: [] for k in dets}
    seconds = {k: 0.0 for k in dets}
    labels = list(dets)
    for i, img in enumerate(imgs):
        for j in range(len(labels)):
            label = labels[(i + j) % len(labels)]
            t0 = time.perf_counter()
            d = dets[label].detect(img, i)
            seconds[label] += time.perf_counter() - t0
            faces[label] += len(d)
            with_faces[label] += len(d) > 0
            heights[label].extend(d.heights.tolist())
    print(f"{'strategy':28s} {'faces':>6s} {'frames>0':>8s} {'median px':>9s} {'ms/frame':>9s} {'inputs/frame':>12s}")
    for label in labels:
        med = float(np.median(heights[label])) if heights[label] else float("nan")
        ms = seconds[label] * 1e3 / len(imgs)
        per = dets[label].timings.tiles / len(imgs)
        print(f"{label:28s} {faces[label]:6d} {with_faces[label]:8d} {med:9.1f} {ms:9.1f} {per:12.1f}")

if __name__ == "__main__":
    main()
