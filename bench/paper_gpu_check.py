"""GPU check of the A-SKD paper recipe: training speed and memory of teacher and student steps.

Runs the paper trainer's own step (``paper_trainer.forward_loss`` + ``optimise`` on a
``MarginNet``) on SYNTHETIC faces, so no dataset is needed:

- ``teacher``: iResNet + CBAM on 112 px faces, ArcFace over ``--classes`` identities (CE only);
- ``student``: a fresh iResNet on the same faces made LR at ``--lr-size`` (``faces112.make_lr``)
  + the frozen eval-mode teacher on the HR faces + the CBAM attention-similarity term (lambda 5);
- ``collate``: the CPU cost of one DataLoader worker's ``PairCollate`` (to_tensor + make_lr) per
  batch, to size ``data.num_workers``.

Each training phase runs ``--warmup`` steps, then ``--steps`` timed ones (CUDA synchronised),
and prints images/s, ms per step, the loss of the last step and peak memory
(``torch.cuda.max_memory_allocated`` on CUDA; the process's peak RSS on the CPU).

    python bench/paper_gpu_check.py                      # CUDA: iresnet50, batch 128, bf16
    python bench/paper_gpu_check.py --device cpu --arch iresnet18 --batch 8 --steps 3

Figures are printed (``--json`` for one JSON object), never asserted, except that every loss
is finite (exit 1 otherwise).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_phase(name: str, args, device, student: bool) -> dict:
    import torch

    from cctv_id.distill.faces112 import make_lr, to_tensor
    from cctv_id.distill.heads import build_head
    from cctv_id.distill.paper_trainer import MarginNet, amp_dtype_of, forward_loss, optimise
    from cctv_id.recognize.models.iresnet import build_iresnet

    torch.manual_seed(0)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    memory = torch.channels_last if args.channels_last else torch.contiguous_format
    model = build_iresnet(args.arch, cbam=True, input_size=args.input_size).to(device, memory_format=memory)
    head = build_head("arcface", 512, args.classes, 32.0, 0.5).to(device)
    teacher = None
    if student:
        teacher = build_iresnet(args.arch, cbam=True, input_size=args.input_size).to(device, memory_format=memory)
        teacher.eval().requires_grad_(False)
    net = MarginNet(model, head).train()
    params = list(net.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=args.amp == "fp16")
    amp_dtype = amp_dtype_of(args.amp)
    gen = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(2):  # two distinct synthetic batches, cycled
        shape = (args.batch, args.input_size, args.input_size, 3)
        faces = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
        hr = to_tensor(faces.numpy()).to(device).contiguous(memory_format=memory)
        x = make_lr(hr, args.lr_size).contiguous(memory_format=memory) if student else hr
        labels = torch.randint(0, args.classes, (args.batch,), generator=gen).to(device)
        batches.append((x, hr, labels))
    losses = []

    def step(i: int) -> None:
        x, hr, labels = batches[i % len(batches)]
        loss, ce, att = forward_loss(net, teacher, x, hr, labels, 1.0, 5.0 if student else 0.0, amp_dtype)
        optimise(loss, opt, scaler, params, None)
        losses.append(loss.detach())

    for i in range(args.warmup):
        step(i)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    _sync(device)
    seconds = time.perf_counter() - t0
    last = float(losses[-1])
    finite = all(math.isfinite(float(v)) for v in losses)
    return {"phase": name, "images_per_s": round(args.batch * args.steps / seconds, 1),
            "ms_per_step": round(1000 * seconds / args.steps, 1), "last_loss": round(last, 4),
            "finite": finite, "peak_memory_mb": round(_peak_memory_mb(device), 1)}


def run_collate(args) -> dict:
    import numpy as np

    from cctv_id.distill.faces112 import PairCollate

    rng = np.random.default_rng(0)
    shape = (args.input_size, args.input_size, 3)
    items = [(rng.integers(0, 256, shape, dtype=np.uint8), 0) for _ in range(args.batch)]
    collate = PairCollate(args.lr_size, blur=True, flip=False)
    collate(items)
    n = max(3, args.steps)
    t0 = time.perf_counter()
    for _ in range(n):
        collate(items)
    seconds = time.perf_counter() - t0
    return {"phase": "collate", "images_per_s": round(args.batch * n / seconds, 1),
            "ms_per_step": round(1000 * seconds / n, 1), "note": "one worker, CPU: to_tensor + make_lr"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--arch", default="iresnet50")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--classes", type=int, default=10572)
    ap.add_argument("--input-size", type=int, default=112)
    ap.add_argument("--lr-size", type=int, default=14)
    ap.add_argument("--amp", choices=["auto", "off", "bf16", "fp16"], default="auto",
                    help="auto: bf16 on CUDA, off on the CPU")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--phases", default="teacher,student,collate")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from cctv_id.distill.common import select_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    if args.amp == "auto":
        args.amp = "bf16" if device.type == "cuda" else "off"
    if args.amp == "fp16" and device.type != "cuda":
        ap.error("--amp fp16 needs CUDA")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    info = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "arch": args.arch, "batch": args.batch, "classes": args.classes,
            "amp": args.amp, "channels_last": args.channels_last, "steps": args.steps, "warmup": args.warmup,
            "lr_size": args.lr_size, "threads": torch.get_num_threads()}
    results = []
    for phase in [p.strip() for p in args.phases.split(",") if p.strip()]:
        if phase == "collate":
            results.append(run_collate(args))
        elif phase in ("teacher", "student"):
            results.append(run_phase(phase, args, device, phase == "student"))
        else:
            ap.error(f"unknown phase {phase!r}")
        if not args.json:
            r = results[-1]
            extra = (f", last loss {r['last_loss']}, peak memory {r['peak_memory_mb']:.0f} MiB"
                     if "last_loss" in r else f" ({r['note']})")
            print(f"{r['phase']:8s} {r['images_per_s']:9.1f} images/s, {r['ms_per_step']:8.1f} ms/step{extra}",
                  flush=True)
    if args.json:
        print(json.dumps({**info, "results": results}))
    else:
        print("setup: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    return 0 if all(r.get("finite", True) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
