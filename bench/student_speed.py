"""Speed of the low-resolution student against its teacher, in one process.

Faces per second of the raw networks on aligned chips (no alignment): the student
(``student`` backend, shipped weights unless ``--weights``) at its own chip size, the teacher
on the PyTorch engine (``dlib-torch``, 150 px chips) and dlib itself, at batch 1, 16 and 64
with the torch thread count given; then the student's ratio to each. The issue's target is
student >= 150 faces/s on 2 cores at batch 64. Chips are random pixels (time does not depend
on content). On a CPU shared with other busy processes run with OMP_WAIT_POLICY=PASSIVE.

    python bench/student_speed.py [--threads 2] [--batches 1 16 64] [--seconds 2] [--no-dlib]

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def faces_per_s(encoder, batch: int, seconds: float) -> float:
    import numpy as np

    size = encoder.align_spec.size
    chips = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    encoder._forward(chips)  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        encoder._forward(chips)
        n += batch
    return n / (time.perf_counter() - start)


def main(argv=None) -> int:
    import torch

    from cctv_id.config import RecognizerConfig
    from cctv_id.registry import resolve

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--no-dlib", action="store_true", help="skip dlib's own engine (slow)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    def build(backend, path=None):
        return resolve("recognizer", backend)(RecognizerConfig(backend=backend, model_path=path,
                                                               batch_size=max(args.batches), small_faces=None))

    engines = {"student": build("student", args.weights), "dlib-torch": build("dlib-torch")}
    if not args.no_dlib:
        engines["dlib"] = build("dlib")
    table = {name: {b: faces_per_s(enc, b, args.seconds) for b in args.batches} for name, enc in engines.items()}
    print(f"faces/s, torch threads={args.threads} (student chip {engines['student'].align_spec.size} px, teacher 150 px)")
    print(f"{'engine':12s}" + "".join(f"{'b=' + str(b):>10s}" for b in args.batches))
    for name, row in table.items():
        print(f"{name:12s}" + "".join(f"{row[b]:10.1f}" for b in args.batches))
    for other in [n for n in table if n != "student"]:
        print(f"{'student/' + other:12s}" + "".join(f"{table['student'][b] / table[other][b]:9.1f}x" for b in args.batches))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
