"""Batched detector and recogniser throughput, for the device machine (GPU) or the CPU.

Prints images/s of RetinaFace at batch 1/8/32 on 768x576 frames and 2x tiles, and faces/s
of the dlib recogniser at batch 1/16/64, with the onnxruntime providers in use. On a
machine with CUDA, onnxruntime-gpu picks the CUDA execution provider automatically
(``detector.options.providers`` overrides). dlib uses CUDA only when built with it.

    python bench/gpu_throughput.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rate(fn, n_items: int, seconds: float) -> float:
    fn()  # warm-up
    t0, done = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        fn()
        done += n_items
    return done / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()

    import onnxruntime as ort

    from cctv_id.config import DetectorConfig, RecognizerConfig
    from cctv_id.detect.base import build_base_detector
    from cctv_id.recognize.base import build_encoder

    print("onnxruntime providers available:", ort.get_available_providers())
    rng = np.random.default_rng(0)
    det = build_base_detector(DetectorConfig())
    for h, w, label in ((576, 768, "frame 768x576"), (640, 640, "2x tile 640")):
        for batch in (1, 8, 32):
            imgs = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(batch)]
            r = rate(lambda: det.detect_batch(imgs), batch, args.seconds)
            print(f"detector {label:14s} batch {batch:3d}: {r:8.1f} images/s")
    enc = build_encoder(RecognizerConfig())
    for batch in (1, 16, 64):
        chips = rng.integers(0, 255, (batch, 150, 150, 3), dtype=np.uint8)
        r = rate(lambda: enc.embed_chips(chips), batch, args.seconds)
        print(f"recogniser {enc.name} batch {batch:3d}: {r:8.1f} faces/s")


if __name__ == "__main__":
    main()
