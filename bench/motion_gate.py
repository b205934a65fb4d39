"""Motion-gated detection vs a full pass on every frame: time, model calls saved, recall.

Two clips: the vtest.avi street composite (``tests/helpers/street_scenario``: busy, with
walking pedestrians and seven pasted CelebA faces; its first ``--street-seconds``) and a
generated 1080p static scene where two faces walk across, one after the other (30 -> 20 px). Full and
gated detection are interleaved frame by frame so load from other processes falls on both
alike. Gated detection gets the previous frame's detections as its track hints. Prints a
table; asserts nothing.

    python bench/motion_gate.py [--street-seconds 20] [--hd-seconds 10] [--threads 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "helpers"))

import street_scenario  # noqa: E402

from cctv_id.config import DetectorConfig  # noqa: E402
from cctv_id.detect import build_detector  # noqa: E402
from cctv_id.detect.gated import GatedDetector  # noqa: E402
from cctv_id.video.source import open_video  # noqa: E402
from cctv_id.video.synth import FaceActor, compose_video, generated_background  # noqa: E402

DATA = Path(os.environ.get("CCTV_ID_SHARED_DATA", REPO.parent / "shared" / "data"))


def hd_clip(out: Path, seconds: float):
    celeba = DATA / "faces" / "celeba"
    a = cv2.imread(str(celeba / "7201" / "7201_0001.jpg"))
    b = cv2.imread(str(celeba / "7218" / "7218_0001.jpg"))
    # one after the other, each crossing in 40 % of the clip, so some frames hold no face
    t = seconds / 10
    actors = [
        FaceActor("7201", a, 0.5 * t, 4.5 * t, (100, 420), (1800, 470), 30, 20, wobble_px=1.5),
        FaceActor("7218", b, 5.5 * t, 9.5 * t, (1820, 760), (150, 700), 30, 20, wobble_px=1.5),
    ]
    return compose_video(out, generated_background((1920, 1080)), actors, fps=10,
                         duration_s=seconds)


def compare(label: str, video: Path, truth, cfg: DetectorConfig, detector) -> None:
    with open_video(video) as src:
        frames = list(src)
    detector.detect(frames[0].image)  # warm-up
    gated = GatedDetector(detector, cfg)
    full, out = {}, {}
    t_full = t_gated = 0.0
    prev = np.zeros((0, 4), np.float32)
    for k, f in enumerate(frames):
        order = (0, 1) if k % 2 == 0 else (1, 0)
        for which in order:
            t0 = time.perf_counter()
            if which == 0:
                full[f.index] = detector.detect(f.image, f.index)
                t_full += time.perf_counter() - t0
            else:
                out[f.index] = gated.detect_frame(f.image, f.index, f.pts_s, hints=prev)
                prev = out[f.index].boxes
                t_gated += time.perf_counter() - t0
    n = len(frames)
    st = gated.stats
    h, w = frames[0].image.shape[:2]
    print(f"\n== {label}: {n} frames {w}x{h}, detector {detector.name}")
    print(f"full  : {t_full / n * 1e3:7.1f} ms/frame")
    print(f"gated : {t_gated / n * 1e3:7.1f} ms/frame  (motion model {st['motion_ms'] / n:.2f} ms/frame)")
    print(f"gated : full passes {st['full_passes']}, ROI passes {st['roi_passes']} "
          f"({st['crops']} crops, mean ROI area {st['mean_roi_area_fraction']:.2f} of the frame), "
          f"no model call {st['empty_frames']} = {st['no_model_call_fraction']:.0%} of frames")
    r_full = street_scenario.detection_recall(truth, full)
    r_gated = street_scenario.detection_recall(truth, out)
    print("recall per band (found/total): full | gated")
    for band in r_full:
        (ff, tot), (gf, _) = r_full[band], r_gated[band]
        if tot:
            print(f"  {band:>6} px: {ff:4d}/{tot:<4d} {ff / tot:5.1%} | {gf:4d}/{tot:<4d} {gf / tot:5.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--street-seconds", type=float, default=20.0)
    ap.add_argument("--hd-seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    cfg = DetectorConfig(threads=args.threads)
    detector = build_detector(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.street_seconds > 0:
            sc = street_scenario.build(tmp / "street", DATA / "faces" / "celeba",
                                       DATA / "video" / "vtest.avi", seconds=args.street_seconds)
            compare(f"vtest street composite, first {args.street_seconds:g} s", sc.video, sc.truth,
                    cfg, detector)
        if args.hd_seconds > 0:
            truth = hd_clip(tmp / "hd.mp4", args.hd_seconds)
            compare("1080p static scene, 2 faces 30->20 px in turn", tmp / "hd.mp4", truth, cfg, detector)


if __name__ == "__main__":
    main()
