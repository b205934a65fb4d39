"""Speed of the teacher: dlib's own ResNet v1 against its PyTorch port (``dlib-torch``).

Faces per second of ``DlibResNetEncoder._forward`` and ``DlibTorchEncoder._forward`` (the raw
network on aligned 150 px chips, no alignment) at batch 1, 16 and 64 with 1 and 2 CPU threads,
then the port's speed-up over dlib. Each (engine, threads) pair runs in its own process with
OMP/OpenBLAS/MKL thread counts set before import and ``torch.set_num_threads``; dlib-bin has
no BLAS, so its thread setting may change nothing. With a GPU, the port on CUDA (fp32 and fp16
autocast, channels_last) is added, at batch 256 too. Chips are random pixels: the time does
not depend on content. With more than one thread the port is also run with
``OMP_WAIT_POLICY=PASSIVE`` ("torch-passive"): on a CPU shared with other busy processes,
OpenMP's default spin-waiting makes 2 threads far slower than 1. "torch-bf16" is the port
under CPU bfloat16 autocast (worth it only on CPUs with bf16 units: AVX512-BF16 / AMX).

    python bench/teacher_speed.py [--threads 1 2] [--batches 1 16 64] [--seconds 2]

Figures are printed, never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _measure(forward, batches: list[int], seconds: float) -> dict[int, float]:
    import numpy as np

    rng = np.random.default_rng(0)
    out = {}
    for b in batches:
        chips = rng.integers(0, 256, (b, 150, 150, 3), dtype=np.uint8)
        forward(chips)  # warm-up
        n, start = 0, time.perf_counter()
        while True:
            forward(chips)
            n += b
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        out[b] = n / elapsed
    return out


def worker(engine: str, threads: int, batches: list[int], seconds: float) -> dict[int, float]:
    import torch

    torch.set_num_threads(threads)
    from cctv_id.config import RecognizerConfig

    if engine == "dlib":
        from cctv_id.recognize.dlib_resnet import DlibResNetEncoder

        enc = DlibResNetEncoder(RecognizerConfig(backend="dlib", batch_size=max(batches)))
        forward = enc._forward
    else:
        from cctv_id.recognize.dlib_torch import DlibTorchEncoder

        parts = engine.split("-")  # torch | torch-passive | torch-bf16 | torch-cuda-fp32 | -fp16
        bf16 = parts[-1] == "bf16"
        if parts[-1] in ("passive", "bf16"):
            parts = ["torch"]
        opts = {"threads": threads, "device": parts[1] if len(parts) > 1 else "cpu", "fp16": parts[-1] == "fp16"}
        enc = DlibTorchEncoder(RecognizerConfig(backend="dlib-torch", batch_size=max(batches), options=opts))
        forward = enc._forward
        if bf16:  # the port's forward under CPU bfloat16 autocast (its own autocast is CUDA's)
            from cctv_id.recognize.models.dlib_resnet_torch import preprocess

            def forward(chips):  # noqa: E306
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                    x = preprocess(chips, device=enc.device, memory_format=torch.channels_last)
                    return enc._model(x).float().numpy()
        if enc.device.type == "cuda":
            def forward(chips, _f=enc._forward):  # noqa: E306 - include the sync in the time
                out = _f(chips)
                torch.cuda.synchronize()
                return out
    return _measure(forward, batches, seconds)


def _run(engine: str, threads: int, batches: list[int], seconds: float) -> dict[int, float]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    if engine.endswith("-passive"):
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    cmd = [sys.executable, __file__, "--worker", engine, "--threads", str(threads),
           "--batches", *map(str, batches), "--seconds", str(seconds)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{engine} x{threads} failed:\n{res.stderr[-2000:]}")
    return {int(k): v for k, v in json.loads(res.stdout.strip().splitlines()[-1]).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per figure")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        res = worker(args.worker, args.threads[0], args.batches, args.seconds)
        print(json.dumps(res))
        return

    import torch

    print(f"CPU: {os.cpu_count()} cores visible; torch {torch.__version__}; "
          f"{args.seconds:g} s per figure; faces/s (higher is better)")
    header = f"{'engine':<18}{'threads':>8}" + "".join(f"{'b=' + str(b):>10}" for b in args.batches)
    print(header)
    rows: dict[tuple[str, int], dict[int, float]] = {}
    for threads in args.threads:
        for engine in ("dlib", "torch", "torch-bf16") + (("torch-passive",) if threads > 1 else ()):
            rows[(engine, threads)] = r = _run(engine, threads, args.batches, args.seconds)
            print(f"{engine:<18}{threads:>8}" + "".join(f"{r[b]:>10.1f}" for b in args.batches), flush=True)
    print("\nspeed-up over dlib at the same thread count")
    for (engine, threads), t in rows.items():
        if engine != "dlib":
            d = rows[("dlib", threads)]
            label = f"{engine} x{threads}"
            print(f"{label:<26}" + "".join(f"{t[b] / d[b]:>10.2f}" for b in args.batches))
    if len(args.threads) > 1:
        lo, hi = min(args.threads), max(args.threads)
        print(f"\nthread scaling x{hi} / x{lo}")
        for engine in ("dlib", "torch"):
            a, b_ = rows[(engine, lo)], rows[(engine, hi)]
            print(f"{engine:<26}" + "".join(f"{b_[b] / a[b]:>10.2f}" for b in args.batches))
    if torch.cuda.is_available():
        gpu_batches = sorted(set(args.batches) | {256})
        print(f"\nGPU: {torch.cuda.get_device_name(0)}")
        print(f"{'engine':<18}{'':>8}" + "".join(f"{'b=' + str(b):>10}" for b in gpu_batches))
        for engine in ("torch-cuda-fp32", "torch-cuda-fp16"):
            r = _run(engine, 1, gpu_batches, args.seconds)
            print(f"{engine:<26}" + "".join(f"{r[b]:>10.1f}" for b in gpu_batches), flush=True)


if __name__ == "__main__":
    main()
